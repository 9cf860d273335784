/*
** Plugins: untrusted code, each in its own Lua state and event loop (a lufa_host of its own), pumped by the
** application's host. The state's allocator enforces the memory ceiling; a count hook on every thread
** enforces the time budget. Once a budget is exceeded the plugin is stopped: the hook switches the thread it
** fires on to a count of 1 and raises the same error at every instruction, so a pcall inside the plugin
** catches it only to fail again at the next instruction its handler or caller executes, and the stack
** unwinds to the task's bottom. The sandboxed environment itself is built by lua/lufa/plugin/sandbox.lua.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"
#include "modules.h"
#include "plugin.h"
#include "task.h"

#define DEFAULT_BUDGET_MS 5.0
#define DEFAULT_LOAD_BUDGET_MS 200.0
#define DEFAULT_MEMORY_LIMIT ((size_t)64 << 20)
/* Once stopped, a plugin may go this far past its ceiling so that raising and unwinding can still allocate. */
#define STOPPED_SLACK ((size_t)1 << 20)
#define HOOK_COUNT 1000

struct lufa_plugin {
  lufa_host *host;          /* the application's host, which pumps this plugin */
  lufa_host *own;           /* the plugin's own host: its state and loop */
  lua_State *L;
  lufa_plugin *next;
  char *name;
  char *path;               /* the file it was loaded from, or NULL */
  double budget;            /* seconds per pump or call; < 0: unlimited */
  double load_budget;       /* seconds for a load or reload */
  double deadline;          /* when the running budget ends; 0: no Lua code is being run for the host */
  double armed;             /* the running budget, seconds (for the message) */
  double started;
  double last_pump, max_pump;
  size_t memory, memory_peak, memory_limit;
  int refused;              /* the allocator refused a growing request of refused_size bytes... */
  size_t refused_size;      /* ...and Lua retries the same size once after an emergency collection */
  char stop_reason[160];    /* "" while running */
  int stop_reported;
  int loading;              /* errors go to lufa_last_error only (the load's caller hears of them) */
  int profile_ref, env_ref; /* the sandbox profile and the current environment, in the plugin's registry */
  LoopWatch watch;          /* the plugin loop's descriptor, in the host's loop (so lufa_fd covers it) */
};

/* ---- memory: every byte of the plugin's state goes through here ---- */

static void stop(lufa_plugin *p, const char *fmt, ...) {
  if (p->stop_reason[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->stop_reason, sizeof p->stop_reason, fmt, ap);
  va_end(ap);
}

static void *plugin_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lufa_plugin *p = ud;
  size_t old = ptr ? osize : 0;  /* without a block, osize is the kind of object */
  if (nsize == 0) {
    free(ptr);
    p->memory -= old;
    return NULL;
  }
  if (nsize > old && p->memory_limit) {
    size_t ceiling = p->memory_limit + (p->stop_reason[0] ? STOPPED_SLACK : 0);
    if (p->memory - old + nsize > ceiling) {
      /* Lua collects everything and asks again for the same size: refused twice, the ceiling is real */
      if (p->refused && p->refused_size == nsize)
        stop(p, "exceeded its memory limit of %.1f MiB", (double)p->memory_limit / (1 << 20));
      p->refused = 1;
      p->refused_size = nsize;
      return NULL;
    }
  }
  void *block = realloc(ptr, nsize);
  if (block == NULL) return NULL;
  p->memory = p->memory - old + nsize;
  if (nsize > old) p->refused = 0;
  if (p->memory > p->memory_peak) p->memory_peak = p->memory;
  return block;
}

/* ---- time: a count hook on every thread (threads inherit it from the one that creates them) ---- */

static void plugin_hook(lua_State *L, lua_Debug *ar) {
  void *ud;
  (void)ar;
  lua_getallocf(L, &ud);
  lufa_plugin *p = ud;
  if (!p->stop_reason[0] && p->deadline > 0 && loop_now() > p->deadline)
    stop(p, "exceeded its time budget of %.1f ms", p->armed * 1000.0);
  if (p->stop_reason[0]) {
    lua_sethook(L, plugin_hook, LUA_MASKCOUNT, 1);  /* from now on every instruction raises */
    luaL_error(L, "plugin '%s' %s", p->name, p->stop_reason);
  }
}

static void budget_begin(lufa_plugin *p, double seconds) {
  p->started = loop_now();
  p->armed = seconds;
  p->deadline = seconds < 0 ? 0 : p->started + seconds;
}

static double budget_end(lufa_plugin *p) {
  p->deadline = 0;
  return loop_now() - p->started;
}

/* The host hears of a stop once, with the reason; the errors it causes in the plugin's tasks are dropped. */
static void report_stop(lufa_plugin *p, const char *detail) {
  if (!p->stop_reason[0] || p->stop_reported) return;
  p->stop_reported = 1;
  char *msg = NULL;
  size_t len = strlen(p->name) + strlen(p->stop_reason) + (detail ? strlen(detail) : 0) + 32;
  msg = malloc(len);
  if (msg == NULL) return;
  snprintf(msg, len, "plugin '%s' stopped: %s%s%s", p->name, p->stop_reason, detail ? "\n" : "", detail ? detail : "");
  host_report_error(p->host, msg);
  free(msg);
}

/* Errors of the plugin's tasks that no one waited for (its own host's error handler). */
static void on_task_error(lufa_host *own, const char *message, void *ud) {
  lufa_plugin *p = ud;
  (void)own;
  if (p->stop_reason[0] && !p->loading) {
    report_stop(p, message);
    return;
  }
  size_t len = strlen(p->name) + strlen(message) + 16;
  char *msg = malloc(len);
  if (msg == NULL) return;
  snprintf(msg, len, "plugin '%s': %s", p->name, message);
  if (p->loading) host_set_error(p->host, msg);  /* the load's or reload's caller gets it as the result */
  else host_report_error(p->host, msg);
  free(msg);
}

static void set_errorf(lufa_plugin *p, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  host_set_error(p->host, msg);
}

/* ---- running plugin code: always as a task, started at once, inside a protected call ---- */

static int start_protected(lua_State *L) {
  int nargs = lua_gettop(L) - 1;
  Task *t = task_spawn(L, nargs);
  task_start_now(t);
  lua_pushboolean(L, t->state == TASK_FAILED || t->state == TASK_CANCELLED);
  return 1;
}

/* Starts the function below nargs arguments on top of L as a task. 0 when it failed (or the call did). */
static int start_task(lufa_plugin *p, int nargs) {
  lua_State *L = p->L;
  lua_pushcfunction(L, start_protected);
  lua_insert(L, -(nargs + 2));
  if (lua_pcall(L, nargs + 1, 1, 0) != LUA_OK) {
    set_errorf(p, "plugin '%s': %s", p->name, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    loop_recover(host_loop(p->own));
    return 0;
  }
  int failed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return !failed && !p->stop_reason[0];
}

/* Starts env[name](arg) as a task if the plugin defines it; 1 when it did not fail. */
static int call_hook(lufa_plugin *p, int env_ref, const char *name, int push_arg_ref, const char *arg) {
  lua_State *L = p->L;
  if (!lua_checkstack(L, 6)) return 0;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, env_ref) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 1;
  }
  lua_pushstring(L, name);
  if (lua_rawget(L, -2) != LUA_TFUNCTION) {  /* raw: a metatable on the environment is plugin code */
    lua_pop(L, 2);
    return 1;
  }
  lua_remove(L, -2);
  int nargs = 0;
  if (push_arg_ref != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, push_arg_ref), nargs = 1;
  else if (arg) lua_pushstring(L, arg), nargs = 1;
  return start_task(p, nargs);
}

/* ---- the state ---- */

static int open_protected(lua_State *L) {
  luaL_openlibs(L);
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");  /* no binary chunks: nothing in the state may produce one either */
  return 0;
}

/* After lufa's modules are in: lufa's own folder only on the path, no C modules, the profile table. */
static int profile_protected(lua_State *L) {
  lufa_plugin *p = lua_touserdata(L, 1);
  const lufa_plugin_options *o = lua_touserdata(L, 2);
  const char *dir = lufa_lua_dir();
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, p->name);
  lua_setfield(L, -2, "name");
  if (p->path) {
    const char *slash = strrchr(p->path, '/');
    if (slash) lua_pushlstring(L, p->path, (size_t)(slash - p->path));
    else lua_pushliteral(L, ".");
    lua_setfield(L, -2, "folder");
  }
  if (o->modules) {
    lua_newtable(L);
    for (int i = 0; o->modules[i]; i++) {
      lua_pushstring(L, o->modules[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "modules");
  }
  if (o->http_hosts) {
    lua_newtable(L);
    for (int i = 0; o->http_hosts[i]; i++) {
      lua_pushstring(L, o->http_hosts[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "http_hosts");
  }
  if (o->data_dir) {
    lua_pushstring(L, o->data_dir);
    lua_setfield(L, -2, "data_dir");
  }
  lua_pushinteger(L, (lua_Integer)p->memory_limit);
  lua_setfield(L, -2, "memory_limit");
  p->profile_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Builds a fresh environment, makes it the chunk's _ENV and anchors it as the current one. */
static int env_protected(lua_State *L) {
  lufa_plugin *p = lua_touserdata(L, 1);  /* 2: the chunk */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.plugin.sandbox");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->profile_ref);
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  if (lua_setupvalue(L, 2, 1) == NULL) lua_pop(L, 1);  /* a chunk's first upvalue is its _ENV */
  return 1;
}

/* Compiles text only; on failure records the message and pushes nothing. */
static int compile(lufa_plugin *p, const char *code, size_t len, const char *chunkname) {
  if (luaL_loadbufferx(p->L, code, len, chunkname, "t") != LUA_OK) {
    set_errorf(p, "plugin '%s': %s", p->name, lua_tostring(p->L, -1));
    lua_pop(p->L, 1);
    return 0;
  }
  return 1;
}

/* Runs the compiled chunk on top of L in a new environment, until its first wait. 1 on success. */
static int run_chunk(lufa_plugin *p) {
  lua_State *L = p->L;
  lua_pushcfunction(L, env_protected);
  lua_pushlightuserdata(L, p);
  lua_pushvalue(L, -3);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    set_errorf(p, "plugin '%s': cannot build its environment: %s", p->name, lua_tostring(L, -1));
    lua_pop(L, 2);
    return 0;
  }
  if (p->env_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, p->env_ref);
  p->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return start_task(p, 0);
}

static void free_plugin(lufa_plugin *p) {
  if (p->own) {
    budget_begin(p, p->budget);  /* finalizers are plugin code too */
    lufa_host_free(p->own);      /* closes the state: timers, transfers and tasks go with it */
  } else if (p->L) {
    lua_close(p->L);
  }
  free(p->name);
  free(p->path);
  free(p);
}

static char *name_of(const lufa_plugin_options *o, const char *path) {
  if (o->name) return strdup(o->name);
  if (path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    return strndup(base, n ? n : strlen(base));
  }
  return strdup("plugin");
}

static void watch_ready(LoopWatch *w) {
  (void)w;  /* the plugin's loop has work: lufa_poll pumps it right after the host's step */
}

void lufa_plugin_options_init(lufa_plugin_options *o) {
  memset(o, 0, sizeof *o);
  o->cpu_budget_ms = DEFAULT_BUDGET_MS;
  o->load_budget_ms = DEFAULT_LOAD_BUDGET_MS;
  o->memory_limit = DEFAULT_MEMORY_LIMIT;
}

static double budget_seconds(double ms, double fallback_ms) {
  if (ms < 0) return -1;
  return (ms == 0 ? fallback_ms : ms) / 1000.0;
}

static lufa_plugin *plugin_load(lufa_host *host, const char *code, size_t len, const char *path,
                                const lufa_plugin_options *options) {
  PluginList *list = host_plugins(host);
  lufa_plugin_options defaults;
  if (options == NULL) {
    lufa_plugin_options_init(&defaults);
    options = &defaults;
  }
  if (list->busy || loop_running(host_loop(host))) {
    host_set_error(host, "lufa_plugin_load: called from code the host is running");
    return NULL;
  }
  lufa_plugin *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->host = host;
  p->name = name_of(options, path);
  p->path = path ? strdup(path) : NULL;
  p->budget = budget_seconds(options->cpu_budget_ms, DEFAULT_BUDGET_MS);
  p->load_budget = budget_seconds(options->load_budget_ms, DEFAULT_LOAD_BUDGET_MS);
  p->memory_limit = options->memory_limit ? options->memory_limit : DEFAULT_MEMORY_LIMIT;
  p->profile_ref = p->env_ref = LUA_NOREF;
  p->watch.fd = -1;
  if (p->name == NULL || (path && p->path == NULL)) {
    free_plugin(p);
    host_set_error(host, "lufa_plugin_load: out of memory");
    return NULL;
  }
  p->L = lua_newstate(plugin_alloc, p);
  if (p->L == NULL) {
    free_plugin(p);
    host_set_error(host, "lufa_plugin_load: out of memory");
    return NULL;
  }
  lua_State *L = p->L;
  lua_sethook(L, plugin_hook, LUA_MASKCOUNT, HOOK_COUNT);  /* before any thread exists: all inherit it */
  lua_pushcfunction(L, open_protected);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK || (p->own = host_new_on_state(L)) == NULL) {
    set_errorf(p, "plugin '%s': cannot create its state (memory limit too low?)", p->name);
    free_plugin(p);
    return NULL;
  }
  loop_forbid_driving(host_loop(p->own));
  lufa_set_error_handler(p->own, on_task_error, p);
  lua_pushcfunction(L, profile_protected);
  lua_pushlightuserdata(L, p);
  lua_pushlightuserdata(L, (void *)options);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    set_errorf(p, "plugin '%s': cannot create its state: %s", p->name, lua_tostring(L, -1));
    free_plugin(p);
    return NULL;
  }
  char chunkname[512];
  snprintf(chunkname, sizeof chunkname, path ? "@%s" : "=%s", path ? path : p->name);
  list->busy = 1;
  p->loading = 1;
  budget_begin(p, p->load_budget);
  int ok = compile(p, code, len, chunkname) && run_chunk(p);
  budget_end(p);
  p->loading = 0;
  list->busy = 0;
  if (!ok) {
    free_plugin(p);
    return NULL;
  }
  p->watch.fd = lufa_fd(p->own);
  p->watch.ready = watch_ready;
  p->watch.passive = 1;  /* a plugin alone does not keep the host's lufa_run going */
  loop_watch(host_loop(host), &p->watch);
  lufa_plugin **tail = &list->head;
  while (*tail) tail = &(*tail)->next;
  *tail = p;
  return p;
}

/* Reads a whole file into memory (plugins are small); NULL with lufa_last_error set on failure. */
static char *read_file(lufa_host *host, const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char msg[1024];
  if (f == NULL) {
    snprintf(msg, sizeof msg, "cannot open plugin file '%s': %s", path, strerror(errno));
    host_set_error(host, msg);
    return NULL;
  }
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (buf == NULL) break;
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *bigger = realloc(buf, cap * 2);
    if (bigger == NULL) free(buf);
    buf = bigger;
    cap *= 2;
  }
  int failed = ferror(f);
  fclose(f);
  if (buf == NULL || failed) {
    snprintf(msg, sizeof msg, "cannot read plugin file '%s'", path);
    host_set_error(host, msg);
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

lufa_plugin *lufa_plugin_load_file(lufa_host *host, const char *path, const lufa_plugin_options *o) {
  size_t len;
  char *code = read_file(host, path, &len);
  if (code == NULL) return NULL;
  lufa_plugin *p = plugin_load(host, code, len, path, o);
  free(code);
  return p;
}

lufa_plugin *lufa_plugin_load_string(lufa_host *host, const char *code, size_t len, const lufa_plugin_options *o) {
  return plugin_load(host, code, len, NULL, o);
}

/* ---- unloading and reloading ---- */

static void unlink_plugin(lufa_plugin *p) {
  PluginList *list = host_plugins(p->host);
  for (lufa_plugin **at = &list->head; *at; at = &(*at)->next) {
    if (*at == p) {
      *at = p->next;
      break;
    }
  }
  loop_unwatch(host_loop(p->host), &p->watch);
}

int lufa_plugin_unload(lufa_plugin *p) {
  PluginList *list = host_plugins(p->host);
  if (list->busy) return LUFA_EBUSY;
  int ok = 1;
  if (!p->stop_reason[0]) {  /* a stopped plugin has had its time: its on_unload is not run */
    list->busy = 1;
    budget_begin(p, p->budget);
    ok = call_hook(p, p->env_ref, "on_unload", LUA_NOREF, "unload");
    budget_end(p);
    list->busy = 0;
    report_stop(p, NULL);
  }
  unlink_plugin(p);
  free_plugin(p);
  return ok ? LUFA_OK : LUFA_ERROR;
}

static int plugin_reload(lufa_plugin *p, const char *code, size_t len, const char *chunkname) {
  PluginList *list = host_plugins(p->host);
  lua_State *L = p->L;
  if (list->busy) return LUFA_EBUSY;
  if (!lua_checkstack(L, 8)) return LUFA_ERROR;
  if (!compile(p, code, len, chunkname)) return LUFA_ERROR;  /* the old version keeps running */
  list->busy = 1;
  /* the old version: its on_unload, then its tasks cancelled and unwound (all within its pump budget) */
  if (!p->stop_reason[0]) {
    budget_begin(p, p->budget);
    call_hook(p, p->env_ref, "on_unload", LUA_NOREF, "reload");
    budget_end(p);
  }
  if (!p->stop_reason[0]) {
    loop_cancel_all(host_loop(p->own), "plugin reloaded");
    budget_begin(p, p->budget);
    lufa_poll(p->own, 0);
    budget_end(p);
  }
  report_stop(p, NULL);
  /* the new version starts with a fresh budget, whatever became of the old one */
  p->stop_reason[0] = '\0';
  p->stop_reported = 0;
  lua_sethook(L, plugin_hook, LUA_MASKCOUNT, HOOK_COUNT);
  loop_cancel_all(host_loop(p->own), "plugin reloaded");  /* what a stop left behind */
  int old_env = p->env_ref;
  p->env_ref = LUA_NOREF;
  p->loading = 1;
  budget_begin(p, p->load_budget);
  int ok = run_chunk(p);  /* the compiled chunk is still on top */
  if (ok) ok = call_hook(p, p->env_ref, "on_reload", old_env, NULL);
  budget_end(p);
  p->loading = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, old_env);
  list->busy = 0;
  if (p->stop_reason[0]) p->stop_reported = 1;  /* the caller hears of it through the result */
  return ok ? LUFA_OK : LUFA_ERROR;
}

int lufa_plugin_reload_file(lufa_plugin *p, const char *path) {
  if (host_plugins(p->host)->busy) return LUFA_EBUSY;
  if (path == NULL) path = p->path;
  if (path == NULL) {
    host_set_error(p->host, "lufa_plugin_reload_file: the plugin was not loaded from a file");
    return LUFA_ERROR;
  }
  size_t len;
  char *code = read_file(p->host, path, &len);
  if (code == NULL) return LUFA_ERROR;
  char chunkname[512];
  snprintf(chunkname, sizeof chunkname, "@%s", path);
  int rc = plugin_reload(p, code, len, chunkname);
  free(code);
  return rc;
}

int lufa_plugin_reload_string(lufa_plugin *p, const char *code, size_t len) {
  char chunkname[512];
  snprintf(chunkname, sizeof chunkname, "=%s", p->name);
  return plugin_reload(p, code, len, chunkname);
}

/* ---- calling, pumping, listing ---- */

int lufa_plugin_call(lufa_plugin *p, const char *name) {
  PluginList *list = host_plugins(p->host);
  if (list->busy) return LUFA_EBUSY;
  if (p->stop_reason[0]) {
    set_errorf(p, "plugin '%s' is stopped: %s", p->name, p->stop_reason);
    return LUFA_ERROR;
  }
  list->busy = 1;
  budget_begin(p, p->budget);
  int ok = call_hook(p, p->env_ref, name, LUA_NOREF, NULL);
  budget_end(p);
  list->busy = 0;
  report_stop(p, NULL);
  return ok ? LUFA_OK : LUFA_ERROR;
}

int plugins_pump(lufa_host *host) {
  PluginList *list = host_plugins(host);
  int rc = 0;
  list->busy = 1;
  for (lufa_plugin *p = list->head; p; p = p->next) {
    if (p->stop_reason[0]) continue;
    budget_begin(p, p->budget);
    int n = lufa_poll(p->own, 0);
    p->last_pump = budget_end(p);
    if (p->last_pump > p->max_pump) p->max_pump = p->last_pump;
    if (n == LUFA_ERROR && !p->stop_reason[0]) {
      set_errorf(p, "plugin '%s': %s", p->name, lufa_last_error(p->own));
      rc = LUFA_ERROR;
    }
    report_stop(p, NULL);
  }
  list->busy = 0;
  return rc;
}

int plugins_next_timeout(lufa_host *host) {
  int best = -1;
  for (lufa_plugin *p = host_plugins(host)->head; p; p = p->next) {
    if (p->stop_reason[0]) continue;
    int t = lufa_next_timeout(p->own);
    if (t >= 0 && (best < 0 || t < best)) best = t;
  }
  return best;
}

void plugins_free_all(lufa_host *host) {
  PluginList *list = host_plugins(host);
  while (list->head) {
    lufa_plugin *p = list->head;
    unlink_plugin(p);
    free_plugin(p);
  }
}

lufa_plugin *lufa_plugin_first(lufa_host *host) {
  return host_plugins(host)->head;
}

lufa_plugin *lufa_plugin_next(lufa_plugin *p) {
  return p->next;
}

const char *lufa_plugin_name(lufa_plugin *p) {
  return p->name;
}

int lufa_plugin_status(lufa_plugin *p) {
  return p->stop_reason[0] ? LUFA_PLUGIN_STOPPED : LUFA_PLUGIN_RUNNING;
}

const char *lufa_plugin_stop_reason(lufa_plugin *p) {
  return p->stop_reason;
}

lua_State *lufa_plugin_state(lufa_plugin *p) {
  return p->L;
}

void lufa_plugin_get_usage(lufa_plugin *p, lufa_plugin_usage *u) {
  u->last_pump_ms = p->last_pump * 1000.0;
  u->max_pump_ms = p->max_pump * 1000.0;
  u->budget_ms = p->budget < 0 ? -1 : p->budget * 1000.0;
  u->memory = p->memory;
  u->memory_peak = p->memory_peak;
  u->memory_limit = p->memory_limit;
}

typedef struct {
  lufa_task_visitor visit;
  void *ud;
  int count;
} TaskVisit;

static const char *const task_states[] = {"ready", "running", "waiting", "done", "failed", "cancelled"};

/* "file:line" of the innermost Lua function a task is in (or will start with). */
static void task_where(Task *t, char *out, size_t size) {
  lua_Debug ar;
  snprintf(out, size, "?");
  if (!t->started) {
    if (lua_gettop(t->co) < 1 || !lua_isfunction(t->co, 1)) return;
    lua_pushvalue(t->co, 1);
    if (lua_getinfo(t->co, ">S", &ar)) snprintf(out, size, "%s:%d", ar.short_src, ar.linedefined);
    return;
  }
  for (int level = 0; lua_getstack(t->co, level, &ar); level++) {
    if (lua_getinfo(t->co, "Sl", &ar) && ar.currentline > 0) {
      snprintf(out, size, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
}

static void visit_task(Task *t, void *ud) {
  TaskVisit *v = ud;
  char where[LUA_IDSIZE + 16];
  v->count++;
  if (v->visit == NULL) return;
  task_where(t, where, sizeof where);
  v->visit(task_states[t->state], where, v->ud);
}

int lufa_plugin_tasks(lufa_plugin *p, lufa_task_visitor visit, void *ud) {
  TaskVisit v = {visit, ud, 0};
  loop_each_task(host_loop(p->own), visit_task, &v);
  return v.count;
}
