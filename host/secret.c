/*
** lufa.secret: opaque secret values.
** The bytes live in a userdata that Lua code cannot read except through secret.expose; every conversion to
** text (tostring, string.format, json.encode) yields the marker instead. The memory is wiped when collected.
*/
#include <string.h>

#include <lauxlib.h>
#include <openssl/crypto.h>

#include "secret.h"

typedef struct {
  size_t len;
  char bytes[];  /* len bytes, then a NUL so C callers may treat it as a string */
} Secret;

static Secret *secret_test(lua_State *L, int idx) {
  return (Secret *)luaL_testudata(L, idx, LUFA_SECRET_MT);
}

static void secret_pushmeta(lua_State *L);

void lufa_secret_push(lua_State *L, const char *bytes, size_t len) {
  Secret *s = (Secret *)lua_newuserdatauv(L, sizeof(Secret) + len + 1, 0);
  s->len = len;
  if (len) memcpy(s->bytes, bytes, len);
  s->bytes[len] = '\0';
  secret_pushmeta(L);
  lua_setmetatable(L, -2);
}

const char *lufa_secret_bytes(lua_State *L, int idx, size_t *len) {
  Secret *s = secret_test(L, idx);
  if (s == NULL) return NULL;
  if (len) *len = s->len;
  return s->bytes;
}

const char *lufa_check_bytes(lua_State *L, int arg, size_t *len, int *was_secret) {
  const char *b = lufa_secret_bytes(L, arg, len);
  if (was_secret) *was_secret = (b != NULL);
  if (b != NULL) return b;
  if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER)
    luaL_typeerror(L, arg, "string or lufa.secret");
  return lua_tolstring(L, arg, len);
}

static int secret_gc(lua_State *L) {
  Secret *s = secret_test(L, 1);
  if (s) OPENSSL_cleanse(s->bytes, s->len);
  return 0;
}

static int secret_tostring(lua_State *L) {
  lua_pushliteral(L, LUFA_SECRET_MARKER);
  return 1;
}

/* Concatenation keeps the result secret: "Bearer " .. token is still a token. */
static int secret_concat(lua_State *L) {
  size_t la, lb;
  const char *a = lufa_check_bytes(L, 1, &la, NULL);
  const char *b = lufa_check_bytes(L, 2, &lb, NULL);
  luaL_Buffer buf;
  char *p = luaL_buffinitsize(L, &buf, la + lb);
  memcpy(p, a, la);
  memcpy(p + la, b, lb);
  lufa_secret_push(L, p, la + lb);
  OPENSSL_cleanse(p, la + lb);
  return 1;
}

/* Constant-time equality: comparing a secret must not leak how much of it matched. */
static int secret_eq(lua_State *L) {
  size_t la, lb;
  const char *a = lufa_secret_bytes(L, 1, &la);
  const char *b = lufa_secret_bytes(L, 2, &lb);
  lua_pushboolean(L, a && b && la == lb && CRYPTO_memcmp(a, b, la) == 0);
  return 1;
}

static int secret_len(lua_State *L) {
  return luaL_error(L, "the length of a lufa.secret is not readable; use secret.expose where truly needed");
}

static int secret_index(lua_State *L) {
  return luaL_error(L, "attempt to index a lufa.secret (it has no fields; use secret.expose where truly needed)");
}

static void secret_pushmeta(lua_State *L) {
  static const luaL_Reg metameth[] = {
    {"__gc", secret_gc},
    {"__tostring", secret_tostring},
    {"__concat", secret_concat},
    {"__eq", secret_eq},
    {"__len", secret_len},
    {"__index", secret_index},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, LUFA_SECRET_MT)) {
    luaL_setfuncs(L, metameth, 0);
    lua_pushliteral(L, "lufa.secret");
    lua_setfield(L, -2, "__metatable");  /* getmetatable() cannot reach the methods */
  }
}

static int secret_new(lua_State *L) {
  size_t len;
  const char *b = lufa_check_bytes(L, 1, &len, NULL);
  if (secret_test(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  lufa_secret_push(L, b, len);
  return 1;
}

static int secret_call(lua_State *L) {
  lua_remove(L, 1);  /* the module table */
  return secret_new(L);
}

static int secret_is(lua_State *L) {
  lua_pushboolean(L, secret_test(L, 1) != NULL);
  return 1;
}

static int secret_expose(lua_State *L) {
  Secret *s = (Secret *)luaL_checkudata(L, 1, LUFA_SECRET_MT);
  lua_pushlstring(L, s->bytes, s->len);
  return 1;
}

int luaopen_lufa_secret(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", secret_new},
    {"is", secret_is},
    {"expose", secret_expose},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  lua_pushliteral(L, LUFA_SECRET_MARKER);
  lua_setfield(L, -2, "marker");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, secret_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  secret_pushmeta(L);
  lua_pop(L, 1);
  return 1;
}
