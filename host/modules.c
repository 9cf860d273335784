/*
** The list of lufa's native modules and where its Lua modules live.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "crypto.h"
#include "error.h"
#include "fs.h"
#include "json.h"
#include "http.h"
#include "loop.h"
#include "modules.h"
#include "postgres.h"
#include "redact.h"
#include "secret.h"
#include "server.h"
#include "sqlite.h"
#include "xml.h"
#include "process.h"
#include "systemd.h"

static const luaL_Reg native_modules[] = {
  {"lufa", luaopen_lufa},
  {"lufa.process", luaopen_lufa_process},
  {"lufa.error", luaopen_lufa_error},
  {"lufa.secret", luaopen_lufa_secret},
  {"lufa.json", luaopen_lufa_json},
  {"lufa.crypto", luaopen_lufa_crypto},
  {"lufa.core.http", luaopen_lufa_core_http},
  {"lufa.core.xml", luaopen_lufa_core_xml},
  {"lufa.fs", luaopen_lufa_fs},
  {"lufa.redact", luaopen_lufa_redact},
  {"lufa.sqlite", luaopen_lufa_sqlite},
  {"lufa.postgres", luaopen_lufa_postgres},
  {"lufa.server", luaopen_lufa_server},
  {"lufa.systemd", luaopen_lufa_systemd},
  {NULL, NULL}
};

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *lufa_lua_dir(void) {
  static char dir[PATH_MAX];
  const char *env = getenv("LUFA_PATH");
  if (env && *env) return env;
  if (dir[0]) return dir;
  /* A binary in the build tree uses the sources next to it; an installed one its own prefix. */
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    if (strcmp(exe, LUFA_BUILD_DIR) == 0 && is_dir(LUFA_SOURCE_LUA_DIR)) {
      strcpy(dir, LUFA_SOURCE_LUA_DIR);
      return dir;
    }
    slash = strrchr(exe, '/');
    if (slash) {
      *slash = '\0';
      char candidate[PATH_MAX];
      if ((size_t)snprintf(candidate, sizeof candidate, "%s/share/lufa/lua", exe) < sizeof candidate && is_dir(candidate)) {
        strcpy(dir, candidate);
        return dir;
      }
    }
  }
  strcpy(dir, is_dir(LUFA_INSTALL_LUA_DIR) ? LUFA_INSTALL_LUA_DIR : LUFA_SOURCE_LUA_DIR);
  return dir;
}

void lufa_open_modules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (const luaL_Reg *m = native_modules; m->name; m++) {
    lua_pushcfunction(L, m->func);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  /* package.path += ";DIR/?.lua;DIR/?/init.lua" */
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    const char *dir = lufa_lua_dir();
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s;%s/?.lua;%s/?/init.lua", lua_tostring(L, -1), dir, dir);
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
