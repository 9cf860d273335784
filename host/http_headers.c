/*
** Response header blocks into Lua tables (see http_headers.h).
*/
#include <ctype.h>
#include <string.h>

#include <lauxlib.h>

#include "http_headers.h"

#define HEADERS_MT "lufa.http.headers"

static int headers_index(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  for (size_t i = 0; i < n; i++) p[i] = (char)tolower((unsigned char)k[i]);
  luaL_pushresultsize(&b, n);
  lua_rawget(L, 1);
  return 1;
}

void http_headers_register(lua_State *L) {
  if (luaL_newmetatable(L, HEADERS_MT)) {
    lua_pushcfunction(L, headers_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void http_headers_push(lua_State *L, const char *data, size_t len) {
  lua_newtable(L);
  int t = lua_gettop(L);
  const char *line = data;
  const char *end = data ? data + len : NULL;
  int first = 1;
  while (line && line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    const char *next = eol ? eol + 1 : end;
    size_t n = (size_t)((eol ? eol : end) - line);
    if (n && line[n - 1] == '\r') n--;
    const char *colon = first ? NULL : memchr(line, ':', n);  /* the status line has no field */
    first = 0;
    if (colon && colon > line) {
      luaL_Buffer name;
      luaL_buffinit(L, &name);
      for (const char *c = line; c < colon; c++) luaL_addchar(&name, (char)tolower((unsigned char)*c));
      luaL_pushresult(&name);
      const char *v = colon + 1, *ve = line + n;
      while (v < ve && (*v == ' ' || *v == '\t')) v++;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, t) == LUA_TSTRING) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(ve - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(ve - v));
      }
      lua_rawset(L, t);
    }
    line = next;
  }
  luaL_setmetatable(L, HEADERS_MT);
}
