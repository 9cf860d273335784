/*
** The native modules every lufa state can require, and the module path of lufa's own Lua sources.
*/
#ifndef LUFA_MODULES_H
#define LUFA_MODULES_H

#include <lua.h>

/* Registers lufa's native modules in package.preload and appends its Lua directory to package.path
** (after the user's entries, so a user's lufa/http.lua shadows the built-in one). */
void lufa_open_modules(lua_State *L);

/* The directory holding lufa's Lua modules: $LUFA_PATH, the source tree for a build-tree binary, or the
** installed share/lufa/lua next to the executable's prefix. */
const char *lufa_lua_dir(void);

#endif
