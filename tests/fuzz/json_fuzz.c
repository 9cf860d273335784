/*
** json_fuzz: a libFuzzer harness for json.decode.
** Every input is decoded; whatever decodes must encode (compact and pretty) without error, and the encoded
** text must decode again to an equal value: same types (integer vs float, array vs object, json.null),
** same numbers bit for bit, same strings, same bignum digits; and encoding that again must give the same text
** (key order kept). Anything else aborts, and libFuzzer keeps the input.
** Build and run: see README.md beside this file.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "json.h"

static lua_State *L;
static int json_idx;  /* the module table, kept at a fixed stack slot */

static void fail(const char *what, const uint8_t *data, size_t size) {
  fprintf(stderr, "json_fuzz: %s\ninput (%zu bytes): %.*s\n", what, size, (int)(size < 2000 ? size : 2000),
          (const char *)data);
  abort();
}

/* What a table's metatable says: 0 none, 1 array_mt, 2 an object (object_mt, or a key order whose own
** metatable is object_mt), 3 anything else. */
static int table_kind(int idx) {
  int kind = 0;
  if (!lua_getmetatable(L, idx)) return 0;
  lua_getfield(L, json_idx, "array_mt");
  lua_getfield(L, json_idx, "object_mt");
  if (lua_rawequal(L, -3, -2)) kind = 1;
  else if (lua_rawequal(L, -3, -1)) kind = 2;
  else if (lua_getmetatable(L, -3)) {
    kind = lua_rawequal(L, -1, -2) ? 2 : 3;
    lua_pop(L, 1);
  } else {
    kind = 3;
  }
  lua_pop(L, 3);
  return kind;
}

/* Deep equality of the values at a and b, as the codec must preserve them. */
static int same(int a, int b, int depth) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_type(L, a) != lua_type(L, b)) return 0;
  switch (lua_type(L, a)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
      if (lua_isinteger(L, a)) return lua_tointeger(L, a) == lua_tointeger(L, b);
      {
        double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
        return memcmp(&x, &y, sizeof x) == 0;
      }
    case LUA_TSTRING: {
      size_t la, lb;
      const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
      return la == lb && memcmp(sa, sb, la) == 0;
    }
    case LUA_TTABLE: {
      int equal = 1;
      lua_Integer na = 0, nb = 0;
      if (depth > 2000) return 0;
      /* each level keeps a key, a value and a lookup on the stack: without room, a deep document makes the
      ** comparison write past the Lua stack, corrupting the heap (a finding of this harness, not of lufa) */
      luaL_checkstack(L, 8, "comparing nested values");
      if (table_kind(a) != table_kind(b)) return 0;
      lua_pushnil(L);
      while (equal && lua_next(L, a)) {
        na++;
        lua_pushvalue(L, -2);
        lua_rawget(L, b);
        equal = !lua_isnil(L, -1) && same(-2, -1, depth + 1);
        lua_pop(L, 2);
      }
      if (!equal) {
        lua_pop(L, 1);
        return 0;
      }
      lua_pushnil(L);
      while (lua_next(L, b)) {
        nb++;
        lua_pop(L, 1);
      }
      return na == nb;
    }
    case LUA_TUSERDATA:
      /* json.null is one value; bignums are equal when their digits are */
      if (lua_rawequal(L, a, b)) return 1;
      if (luaL_testudata(L, a, "lufa.json.bignum") == NULL || luaL_testudata(L, b, "lufa.json.bignum") == NULL) return 0;
      {
        size_t la, lb;
        int eq;
        const char *sa = luaL_tolstring(L, a, &la), *sb = luaL_tolstring(L, b, &lb);
        eq = la == lb && memcmp(sa, sb, la) == 0;
        lua_pop(L, 2);
        return eq;
      }
    default:
      return lua_rawequal(L, a, b);
  }
}

/* Calls json[fn](args at the top, nargs) and leaves nresults. Returns the pcall status. */
static int call(const char *fn, int nargs, int nresults) {
  lua_getfield(L, json_idx, fn);
  lua_insert(L, -nargs - 1);
  return lua_pcall(L, nargs, nresults, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "lufa.json", luaopen_lufa_json, 0);
    json_idx = lua_gettop(L);
  }
  lua_settop(L, json_idx);
  lua_pushlstring(L, (const char *)data, size);
  if (call("decode", 1, 2) != LUA_OK) fail("json.decode raised", data, size);
  if (lua_isnil(L, -2)) {
    /* A rejected input must come with a positioned lufa.error. */
    if (!lua_istable(L, -1)) fail("json.decode returned nil without an error table", data, size);
    if (lua_getfield(L, -1, "line") != LUA_TNUMBER || lua_getfield(L, -2, "column") != LUA_TNUMBER)
      fail("decode error without line and column", data, size);
    return 0;
  }
  lua_pop(L, 1);
  int value = lua_gettop(L);
  for (int pretty = 0; pretty <= 1; pretty++) {
    lua_pushvalue(L, value);
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, pretty);
    lua_setfield(L, -2, "pretty");
    if (call("encode", 2, 1) != LUA_OK) fail(lua_tostring(L, -1), data, size);
    int text = lua_gettop(L);
    lua_pushvalue(L, text);
    if (call("decode", 1, 2) != LUA_OK || lua_isnil(L, -2)) fail("re-encoded text does not decode", data, size);
    lua_pop(L, 1);
    if (!same(value, -1, 0)) fail("re-encoded text decodes to a different value", data, size);
    /* Key order is kept: encoding the decoded text again gives the same text. */
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, pretty);
    lua_setfield(L, -2, "pretty");
    if (call("encode", 2, 1) != LUA_OK) fail(lua_tostring(L, -1), data, size);
    if (!lua_rawequal(L, -1, text)) fail("decode -> encode of encoded text changes it (key order?)", data, size);
    lua_settop(L, value);
  }
  return 0;
}
