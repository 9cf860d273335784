/*
** Plain data from one Lua state to another, read in the source with raw, non-allocating calls only.
*/
#include <stdlib.h>

#include <lauxlib.h>

#include "statecopy.h"

#define MAX_DEPTH 200

typedef struct {
  lua_State *from, *to;
  const void **seen;   /* source tables already copied; the copy of seen[i] is copies[i + 1] in `to` */
  int nseen, capseen;
  int copies;          /* absolute index in `to` of the table holding the copies */
} Copy;

static void copy_value(Copy *c, int depth);

static int copyable(int type) {
  return type == LUA_TSTRING || type == LUA_TNUMBER || type == LUA_TBOOLEAN || type == LUA_TTABLE;
}

static void copy_table(Copy *c, int depth) {
  lua_State *from = c->from, *to = c->to;
  const void *id = lua_topointer(from, -1);
  for (int i = 0; i < c->nseen; i++) {
    if (c->seen[i] == id) {
      lua_rawgeti(to, c->copies, i + 1);
      return;
    }
  }
  if (depth > MAX_DEPTH) luaL_error(to, "cannot copy the plugin's state: tables nested deeper than %d", MAX_DEPTH);
  if (c->nseen == c->capseen) {
    int cap = c->capseen ? c->capseen * 2 : 32;
    const void **seen = realloc(c->seen, (size_t)cap * sizeof *seen);
    if (seen == NULL) luaL_error(to, "not enough memory");
    c->seen = seen;
    c->capseen = cap;
  }
  c->seen[c->nseen++] = id;
  lua_newtable(to);
  lua_pushvalue(to, -1);
  lua_rawseti(to, c->copies, c->nseen);
  if (!lua_checkstack(from, 3)) luaL_error(to, "cannot copy the plugin's state: its stack is full");
  luaL_checkstack(to, 4, "copying the plugin's state");
  lua_pushnil(from);
  while (lua_next(from, -2)) {
    if (copyable(lua_type(from, -2)) && copyable(lua_type(from, -1))) {
      lua_pushvalue(from, -2);
      copy_value(c, depth + 1);  /* the key */
      lua_pop(from, 1);
      copy_value(c, depth + 1);  /* the value */
      if (lua_isnil(to, -2)) lua_pop(to, 2);
      else lua_rawset(to, -3);
    }
    lua_pop(from, 1);
  }
}

static void copy_value(Copy *c, int depth) {
  lua_State *from = c->from, *to = c->to;
  size_t len;
  const char *s;
  switch (lua_type(from, -1)) {
    case LUA_TSTRING:
      s = lua_tolstring(from, -1, &len);  /* already a string: no conversion, no allocation */
      lua_pushlstring(to, s, len);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(from, -1)) lua_pushinteger(to, lua_tointeger(from, -1));
      else lua_pushnumber(to, lua_tonumber(from, -1));
      break;
    case LUA_TBOOLEAN:
      lua_pushboolean(to, lua_toboolean(from, -1));
      break;
    case LUA_TTABLE:
      copy_table(c, depth);
      break;
    default:
      lua_pushnil(to);
  }
}

static int copy_protected(lua_State *to) {
  Copy *c = lua_touserdata(to, 1);
  lua_newtable(to);
  c->copies = lua_gettop(to);
  copy_value(c, 0);
  return 1;
}

int state_copy_value(lua_State *from, lua_State *to) {
  Copy c = {from, to, NULL, 0, 0, 0};
  lua_pushcfunction(to, copy_protected);
  lua_pushlightuserdata(to, &c);
  int status = lua_pcall(to, 1, 1, 0);
  free(c.seen);  /* freed whether or not the copy raised */
  return status;
}
