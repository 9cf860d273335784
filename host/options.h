#ifndef LUFA_OPTIONS_H
#define LUFA_OPTIONS_H

#include <lua.h>

/* Raises when the options table at index t holds a key that is not in `known` (NULL-terminated), with
** lufa.options' message naming the nearest known key, at the line that called the running C function:
** "WHAT: unknown option 'readnoly' (did you mean 'readonly'?)". Runs Lua: never from a curl callback. */
void host_check_options(lua_State *L, int t, const char *const known[], const char *what);

#endif
