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

/* The entries of LUA_PATH_5_4 (or LUA_PATH) the user wrote, without ";;" (Lua's defaults, which start with
** "./?.lua"), pushed as a path string; "" when neither is set. */
static void push_user_path(lua_State *L) {
  const char *env = getenv("LUA_PATH_5_4");
  if (env == NULL) env = getenv("LUA_PATH");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = env ? env : ""; *p;) {
    size_t n = strcspn(p, ";");
    if (n > 0) {
      if (luaL_bufflen(&b) > 0) luaL_addchar(&b, ';');
      luaL_addlstring(&b, p, n);
    }
    p += n;
    if (*p == ';') p++;
  }
  luaL_pushresult(&b);
}

/* A searcher ahead of package.path's: `lufa` and `lufa.*` come from what the user chose deliberately (the
** entries of LUA_PATH / LUA_PATH_5_4) and then lufa's own module folder ($LUFA_PATH or the installed one),
** so a lufa/http.lua that merely lies in the working directory cannot replace lufa's. A name found in
** neither (a user's own lufa.activities.<Type>, say) is left to the usual searchers. */
static int lufa_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (strcmp(name, "lufa") != 0 && strncmp(name, "lufa.", 5) != 0) {
    lua_pushliteral(L, "");  /* not ours: no message of its own either */
    return 1;
  }
  const char *dir = lufa_lua_dir();
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  if (!lua_isfunction(L, -1)) {
    lua_pushliteral(L, "");
    return 1;
  }
  lua_pushvalue(L, 1);
  push_user_path(L);
  if (lua_rawlen(L, -1) > 0) lua_pushliteral(L, ";");
  else lua_pushliteral(L, "");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
  lua_concat(L, 3);
  lua_call(L, 2, 2);  /* package.searchpath(name, path) -> filename | nil, message */
  if (lua_isnil(L, -2)) {
    lua_pushfstring(L, "\n\t%s", lua_tostring(L, -1));
    return 1;
  }
  const char *filename = lua_tostring(L, -2);
  if (luaL_loadfilex(L, filename, NULL) != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename, lua_tostring(L, -1));
  lua_pushstring(L, filename);
  return 2;  /* the loader and its file name, as the path searcher returns them */
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
    /* lufa_searcher goes right after the preload searcher, before the path searcher */
    if (lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
      }
      lua_pushcfunction(L, lufa_searcher);
      lua_rawseti(L, -2, 2);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
