/*
** lufa.error: the one shape of runtime failures, shared by every native module and the Lua layer.
** Errors are where a service's echo of a request (a SAS URL, a key) would reach the user, so every
** message passes lufa.redact: when built here, when adopted by E.new, and again when turned into text.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "error.h"
#include "redact.h"

static int error_tostring(lua_State *L);

/* Pushes the shared metatable, creating it on first use (any module may raise before lufa.error is opened). */
static void error_pushmeta(lua_State *L) {
  if (luaL_newmetatable(L, LUFA_ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
}

static void error_setmeta(lua_State *L) {
  error_pushmeta(L);
  lua_setmetatable(L, -2);
}

/* "message" alone reads best; the code is appended when the message does not already say it.
** Redacted again: Lua code may have changed the message since (err.message = prefix .. err.message). */
static int error_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  const char *msg = lua_tostring(L, -2);
  const char *code = lua_tostring(L, -1);
  if (msg == NULL) msg = "error";
  if (code != NULL && *code && strstr(msg, code) == NULL)
    lua_pushfstring(L, "%s (%s)", msg, code);
  else
    lua_pushstring(L, msg);
  lufa_redact_at(L, -1);
  return 1;
}

static int error_vpush(lua_State *L, const char *kind, const char *code, const char *fmt, va_list ap) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushvfstring(L, fmt, ap);
  lufa_redact_at(L, -1);
  lua_setfield(L, -2, "message");
  error_setmeta(L);
  return lua_gettop(L);
}

int lufa_error_push(lua_State *L, const char *kind, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int idx = error_vpush(L, kind, code, fmt, ap);
  va_end(ap);
  return idx;
}

int lufa_error_fail(lua_State *L, const char *kind, const char *code, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  error_vpush(L, kind, code, fmt, ap);
  va_end(ap);
  return 2;
}

void lufa_error_setint(lua_State *L, int idx, const char *name, lua_Integer value) {
  idx = lua_absindex(L, idx);
  lua_pushinteger(L, value);
  lua_setfield(L, idx, name);
}

void lufa_error_setstr(lua_State *L, int idx, const char *name, const char *value) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, value);
  lufa_redact_at(L, -1);
  lua_setfield(L, idx, name);
}

/* E.new{kind=, code=, message=, ...}: adopts the given table as an error, its string fields redacted
** (nested tables are left to redact.error: they are usually errors already redacted when made). */
static int error_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1))
    return luaL_argerror(L, 1, "field 'message' must be a string");
  lua_pop(L, 1);
  lua_settop(L, 1);
  lufa_redact_table(L, 1, 0);
  error_setmeta(L);
  return 1;
}

static int error_is(lua_State *L) {
  int is = 0;
  if (lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, LUFA_ERROR_MT);
    is = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, is);
  return 1;
}

void lufa_error_push_errno_name(lua_State *L, int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(e);
  if (name) {
    lua_pushstring(L, name);
    return;
  }
#endif
  switch (e) {
    case ENOENT: lua_pushliteral(L, "ENOENT"); return;
    case EACCES: lua_pushliteral(L, "EACCES"); return;
    case EEXIST: lua_pushliteral(L, "EEXIST"); return;
    case ENOTDIR: lua_pushliteral(L, "ENOTDIR"); return;
    case EISDIR: lua_pushliteral(L, "EISDIR"); return;
    case ENOTEMPTY: lua_pushliteral(L, "ENOTEMPTY"); return;
    case EPERM: lua_pushliteral(L, "EPERM"); return;
    case ENOSPC: lua_pushliteral(L, "ENOSPC"); return;
    default: lua_pushfstring(L, "E%d", e); return;
  }
}

int luaopen_lufa_error(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", error_new},
    {"is", error_is},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  error_pushmeta(L);
  lua_setfield(L, -2, "mt");
  return 1;
}
