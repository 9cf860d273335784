/*
** The native modules every lufa state can require, and the module path of lufa's own Lua sources.
*/
#ifndef LUFA_MODULES_H
#define LUFA_MODULES_H

#include <lua.h>

/* Registers lufa's native modules in package.preload, appends its Lua directory to package.path and puts a
** searcher before the path searcher that finds `lufa` and `lufa.*` in the entries of LUA_PATH(_5_4) the user
** set and then in that directory, so a ./lufa/http.lua in the working directory cannot shadow lufa's
** (docs/extending.md, "Overriding lufa's own modules"). */
void lufa_open_modules(lua_State *L);

/* The directory holding lufa's Lua modules: $LUFA_PATH, the source tree for a build-tree binary, or the
** installed share/lufa/lua next to the executable's prefix. */
const char *lufa_lua_dir(void);

#endif
