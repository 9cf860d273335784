/*
** The embedding API (include/lufa.h): a host is a Lua state with lufa's modules and its loop.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"
#include "log.h"
#include "modules.h"
#include "plugin.h"
#include "task.h"

struct lufa_host {
  lua_State *L;
  Loop *loop;
  int owns_state;
  lufa_error_handler handler;
  void *handler_ud;
  char *last_error;
  PluginList plugins;
  int plugin_errors;   /* errors reported by plugins, counted in lufa_error_count */
};

void host_set_error(lufa_host *host, const char *message) {
  free(host->last_error);
  host->last_error = strdup(message ? message : "");
}

static void host_on_task_error(void *ud, const char *message) {
  lufa_host *host = ud;
  host_set_error(host, message);
  if (host->handler) {
    host->handler(host, message, host->handler_ud);
  } else {
    host_log(host->L, "error", "uncaught error in task: %s", message);
  }
}

static int host_setup(lua_State *L) {
  lufa_open_modules(L);
  luaL_requiref(L, "lufa", luaopen_lufa, 0);
  lua_pushlightuserdata(L, loop_get(L));
  return 1;
}

static lufa_host *host_create(lua_State *L, int owns) {
  lufa_host *host = calloc(1, sizeof *host);
  if (host == NULL) return NULL;
  host->L = L;
  host->owns_state = owns;
  lua_pushcfunction(L, host_setup);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    free(host);
    return NULL;
  }
  host->loop = lua_touserdata(L, -1);
  lua_pop(L, 1);
  loop_set_error_handler(host->loop, host_on_task_error, host);
  return host;
}

lufa_host *lufa_host_new(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  lufa_host *host = host_create(L, 1);
  if (host == NULL) lua_close(L);
  return host;
}

lufa_host *lufa_host_attach(lua_State *L) {
  return host_create(L, 0);
}

lufa_host *host_new_on_state(lua_State *L) {
  return host_create(L, 1);
}

Loop *host_loop(lufa_host *host) {
  return host->loop;
}

void host_report_error(lufa_host *host, const char *message) {
  host->plugin_errors++;
  host_on_task_error(host, message);
}

PluginList *host_plugins(lufa_host *host) {
  return &host->plugins;
}

lua_State *lufa_host_state(lufa_host *host) {
  return host->L;
}

void lufa_host_free(lufa_host *host) {
  if (host == NULL) return;
  plugins_free_all(host);
  if (host->owns_state) {
    lua_close(host->L);  /* finalizers abort every transfer and release the loop */
  } else {
    loop_set_error_handler(host->loop, NULL, NULL);
  }
  free(host->last_error);
  free(host);
}

void lufa_set_error_handler(lufa_host *host, lufa_error_handler handler, void *ud) {
  host->handler = handler;
  host->handler_ud = ud;
}

/* The steps below run under lua_pcall: an error such as out of memory becomes LUFA_ERROR, never a panic. */

static int host_spawn_protected(lua_State *L) {
  Task *t = task_spawn(L, 0);  /* the chunk is at the top */
  task_start_now(t);           /* run until its first wait, as lufa.h promises */
  lua_pushboolean(L, t->state == TASK_FAILED);
  return 1;
}

static int host_step_protected(lua_State *L) {
  Loop *loop = lua_touserdata(L, 1);
  lua_pushinteger(L, loop_step(loop, (int)lua_tointeger(L, 2)));
  return 1;
}

/* Runs f with its arguments already on the stack; on error records the message and recovers the loop. */
static int host_pcall(lufa_host *host, int nargs) {
  lua_State *L = host->L;
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
    host_set_error(host, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error in the host");
    lua_pop(L, 1);
    loop_recover(host->loop);
    return 0;
  }
  return 1;
}

static int host_spawn_loaded(lufa_host *host, int status) {
  lua_State *L = host->L;
  if (status != LUA_OK) {
    host_set_error(host, lua_tostring(L, -1));
    lua_pop(L, 1);
    return LUFA_ERROR;
  }
  if (loop_running(host->loop) || host->plugins.busy) {
    lua_pop(L, 1);
    return LUFA_EBUSY;
  }
  if (!lua_checkstack(L, 3)) {
    lua_pop(L, 1);
    return LUFA_ERROR;
  }
  lua_pushcfunction(L, host_spawn_protected);
  lua_insert(L, -2);
  if (!host_pcall(host, 1)) return LUFA_ERROR;
  int failed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return failed ? LUFA_ERROR : LUFA_OK;
}

int lufa_spawn_file(lufa_host *host, const char *path) {
  return host_spawn_loaded(host, luaL_loadfile(host->L, path));
}

int lufa_spawn_string(lufa_host *host, const char *code, const char *name) {
  return host_spawn_loaded(host, luaL_loadbuffer(host->L, code, strlen(code), name ? name : "=(embedded)"));
}

/* One protected loop step; < 0 on error. */
static int host_step(lufa_host *host, int timeout_ms) {
  lua_State *L = host->L;
  if (!lua_checkstack(L, 4)) return LUFA_ERROR;
  lua_pushcfunction(L, host_step_protected);
  lua_pushlightuserdata(L, host->loop);
  lua_pushinteger(L, timeout_ms);
  if (!host_pcall(host, 2)) return LUFA_ERROR;
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* A step of the host's own loop and a pump of its plugins; deadline (loop_now() seconds, 0: none) bounds
** both. Sets *plugin_failed when an error escaped a plugin's pump (its message is lufa_last_error). */
static int host_poll(lufa_host *host, int timeout_ms, double deadline, int *plugin_failed) {
  if (loop_running(host->loop) || host->plugins.busy) return LUFA_EBUSY;
  if (host->plugins.head && deadline == 0) {  /* the host's own step must not sleep past a plugin's deadline */
    int t = plugins_next_timeout(host);
    if (t >= 0 && (timeout_ms < 0 || t < timeout_ms)) timeout_ms = t;
  }
  /* plugins a spent budget passed over last time go before the host's own step, so neither starves */
  int plugins_first = deadline > 0 && plugins_owed(host);
  if (plugins_first && plugins_pump(host, deadline) < 0) *plugin_failed = 1;
  loop_set_budget(host->loop, deadline);
  int n = host_step(host, deadline > 0 ? 0 : timeout_ms);
  loop_set_budget(host->loop, 0);
  if (n < 0 || host->plugins.head == NULL || plugins_first) return n;
  if (plugins_pump(host, deadline) < 0) *plugin_failed = 1;
  return n;
}

int lufa_poll(lufa_host *host, int timeout_ms) {
  int plugin_failed = 0;
  int n = host_poll(host, timeout_ms, 0, &plugin_failed);
  return plugin_failed ? LUFA_ERROR : n;
}

int lufa_poll_budget(lufa_host *host, long budget_us) {
  int plugin_failed = 0;
  double deadline = loop_now() + (double)(budget_us > 0 ? budget_us : 0) / 1e6;
  int n = host_poll(host, 0, deadline, &plugin_failed);
  return plugin_failed ? LUFA_ERROR : n;
}

int lufa_run(lufa_host *host) {
  if (loop_running(host->loop) || host->plugins.busy) return LUFA_EBUSY;
  int before = loop_uncaught_errors(host->loop);
  while (loop_task_count(host->loop) > 0) {
    if (!loop_has_work(host->loop)) {
      host_set_error(host, "deadlock: tasks wait for each other and nothing else is pending");
      return LUFA_ERROR;
    }
    /* plugins are pumped as by lufa_poll; one whose pump failed does not end the host's run */
    int plugin_failed = 0;
    if (host_poll(host, -1, 0, &plugin_failed) < 0) return LUFA_ERROR;
  }
  return loop_uncaught_errors(host->loop) > before ? LUFA_ERROR : LUFA_OK;
}

int lufa_next_timeout(lufa_host *host) {
  int t = loop_next_timeout(host->loop);
  if (host->plugins.head) {
    int p = plugins_next_timeout(host);
    if (p >= 0 && (t < 0 || p < t)) t = p;
  }
  return t;
}

int lufa_fd(lufa_host *host) {
  return loop_fd(host->loop);
}

int lufa_task_count(lufa_host *host) {
  return loop_task_count(host->loop);
}

int lufa_error_count(lufa_host *host) {
  return loop_uncaught_errors(host->loop) + host->plugin_errors;
}

const char *lufa_last_error(lufa_host *host) {
  return host->last_error ? host->last_error : "";
}
