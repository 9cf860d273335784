/*
** Unknown keys in the option tables of native modules: the same error, and the same did-you-mean, as
** lufa.options gives the Lua modules, so a misspelt option is never silently ignored.
*/
#include <string.h>

#include <lauxlib.h>

#include "options.h"

static int is_known(lua_State *L, int key, const char *const known[]) {
  if (lua_type(L, key) != LUA_TSTRING) return 0;
  const char *k = lua_tostring(L, key);
  for (int i = 0; known[i]; i++)
    if (strcmp(k, known[i]) == 0) return 1;
  return 0;
}

void host_check_options(lua_State *L, int t, const char *const known[], const char *what) {
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (is_known(L, -1, known)) continue;
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lufa.options");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "check");
    lua_pushvalue(L, t);
    lua_newtable(L);
    for (int i = 0; known[i]; i++) {
      lua_pushstring(L, known[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_pushstring(L, what);
    lua_pushinteger(L, 2);  /* levels above check: the C function, then the line that called it */
    lua_call(L, 4, 0);
    return;  /* not reached: check raised */
  }
}
