/*
** The host's diagnostics go through lufa.log like the modules' lines: one level (-v, -q, LUFA_LOG), one
** format (--log-format json), one redaction. Before Lua is up, or when lufa.log cannot be loaded (an
** embedding without it), they are plain lines on stderr.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "log.h"

/* (level, message): require("lufa.log")[level]("%s", message) */
static int call_logger(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.log");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, lua_tostring(L, 1));
  lua_pushliteral(L, "%s");
  lua_pushvalue(L, 2);
  lua_call(L, 2, 0);
  return 0;
}

void host_log(lua_State *L, const char *level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (msg == NULL) {
    fprintf(stderr, "lufa: [%s] %s\n", level, fmt);  /* out of memory: the format alone still says what */
    fflush(stderr);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  int logged = 0;
  if (L && lua_checkstack(L, 6)) {
    lua_pushcfunction(L, call_logger);
    lua_pushstring(L, level);
    lua_pushstring(L, msg);
    logged = lua_pcall(L, 2, 0, 0) == LUA_OK;
    if (!logged) lua_pop(L, 1);
  }
  if (!logged) {
    fprintf(stderr, "lufa: [%s] %s\n", level, msg);
    fflush(stderr);
  }
  free(msg);
}
