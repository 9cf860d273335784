/*
** Plugins: untrusted code, each in its own Lua state and event loop (a lufa_host of its own), pumped by the
** application's host. The state's allocator enforces the memory ceiling; a count hook on every thread
** enforces the time budget. The sandboxed environment itself is built by lua/lufa/plugin/sandbox.lua.
**
** Why a stop cannot be swallowed: once a budget is exceeded the hook switches the thread it fires on to a
** count of 1 and raises the plugin's stop object at every instruction, so a pcall inside the plugin catches
** it only to fail again at the next instruction of its caller, and the stack unwinds to the task's bottom.
** The sandbox's pcall, xpcall, coroutine.resume, coroutine.wrap and coroutine.close (below) raise the stop
** again themselves, so not even that next instruction runs, in this thread or the one resuming it.
** Lua runs some code with hooks off: finalizers (so the sandbox refuses __gc), the message handler of an
** error raised from a hook (so the sandbox's xpcall skips the plugin's handler for a stop), and __close
** handlers of a coroutine closed after such an error (so after a stop neither the loop, nor the sandbox's
** coroutine.wrap and coroutine.close, close a failed coroutine). A stopped plugin is never pumped again;
** a reload starts its new version in a fresh state.
*/
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"
#include "modules.h"
#include "plugin.h"
#include "statecopy.h"
#include "task.h"

#define DEFAULT_BUDGET_MS 5.0
#define DEFAULT_LOAD_BUDGET_MS 200.0
#define DEFAULT_MEMORY_LIMIT ((size_t)64 << 20)
/* Once stopped, a plugin may go this far past its ceiling so that raising and unwinding can still allocate. */
#define STOPPED_SLACK ((size_t)1 << 20)
/* Instructions between budget checks: a check reads the thread's CPU clock (a system call, ~0.2 µs), a
** thousand instructions take a few µs, so checks cost about 1% and a budget is overrun by ~20 µs at most. */
#define HOOK_COUNT 4000

/* One version of a plugin: its state and what is accounted to it (a reload swaps in a new one). */
typedef struct {
  lua_State *L;
  lufa_host *own;           /* the plugin's own host: its state and loop */
  size_t memory, memory_peak;
  int refused;              /* the allocator refused a growing request of refused_size bytes... */
  size_t refused_size;      /* ...and Lua retries the same size once after an emergency collection */
  char stop_reason[160];    /* "" while running */
  int stop_reported;
  int profile_ref, env_ref, stop_ref;  /* the sandbox profile, the environment, the stop object */
} PluginState;

struct lufa_plugin {
  lufa_host *host;          /* the application's host, which pumps this plugin */
  PluginState st;
  lufa_plugin *next;
  char *name;
  char *path;               /* the file it was loaded from, or NULL */
  double budget;            /* seconds per pump or call; < 0: unlimited */
  double load_budget;       /* seconds for a load or reload */
  double deadline;          /* when the running budget ends; 0: no Lua code is being run for the host */
  double armed;             /* the running budget, seconds (for the message) */
  double started;
  double last_pump, max_pump;
  size_t memory_limit;
  int loading;              /* errors go to lufa_last_error only (the load's caller hears of them) */
  LoopWatch watch;          /* the plugin loop's descriptor, in the host's loop (so lufa_fd covers it) */
  int io_ready;             /* the host's step saw that descriptor readable: the plugin has I/O or a timer */
  int owed;                 /* a spent budget passed it over: the next pump serves it first */
};

/* ---- memory: every byte of the plugin's state goes through here ---- */

static void stop(lufa_plugin *p, const char *fmt, ...) {
  if (p->st.stop_reason[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->st.stop_reason, sizeof p->st.stop_reason, fmt, ap);
  va_end(ap);
  if (p->st.own) loop_skip_closing(host_loop(p->st.own), 1);
}

static void *plugin_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lufa_plugin *p = ud;
  size_t old = ptr ? osize : 0;  /* without a block, osize is the kind of object */
  if (nsize == 0) {
    free(ptr);
    p->st.memory -= old;
    return NULL;
  }
  if (nsize > old && p->memory_limit) {
    size_t ceiling = p->memory_limit + (p->st.stop_reason[0] ? STOPPED_SLACK : 0);
    if (p->st.memory - old + nsize > ceiling) {
      /* Lua collects everything and asks again for the same size: refused twice, the ceiling is real.
      ** A large block (a string.rep or table.concat buffer) is not asked for again: refused once is enough. */
      if ((p->st.refused && p->st.refused_size == nsize) || nsize > p->memory_limit / 8)
        stop(p, "exceeded its memory limit of %.1f MiB", (double)p->memory_limit / (1 << 20));
      p->st.refused = 1;
      p->st.refused_size = nsize;
      return NULL;
    }
  }
  void *block = realloc(ptr, nsize);
  if (block == NULL) return NULL;
  p->st.memory = p->st.memory - old + nsize;
  if (nsize > old) p->st.refused = 0;
  if (p->st.memory > p->st.memory_peak) p->st.memory_peak = p->st.memory;
  return block;
}

/* ---- time: a count hook on every thread (threads inherit it from the one that creates them) ---- */

static int raise_stop(lua_State *L);

/* Budgets count the CPU time of the thread running the plugin: time the process spends preempted (a busy
** machine) is no fault of the plugin's and must not stop it. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void plugin_hook(lua_State *L, lua_Debug *ar) {
  void *ud;
  (void)ar;
  lua_getallocf(L, &ud);
  lufa_plugin *p = ud;
  if (!p->st.stop_reason[0] && p->deadline > 0 && cpu_now() > p->deadline)
    stop(p, "exceeded its CPU time budget of %.1f ms", p->armed * 1000.0);
  if (p->st.stop_reason[0]) {
    lua_sethook(L, plugin_hook, LUA_MASKCOUNT, 1);  /* from now on every instruction raises */
    raise_stop(L);
  }
}

static void budget_begin(lufa_plugin *p, double seconds) {
  p->started = cpu_now();
  p->armed = seconds;
  p->deadline = seconds < 0 ? 0 : p->started + seconds;
}

static double budget_end(lufa_plugin *p) {
  p->deadline = 0;
  return cpu_now() - p->started;
}

/* The host hears of a stop once, with the reason; the errors it causes in the plugin's tasks are dropped. */
static void report_stop(lufa_plugin *p, const char *detail) {
  if (!p->st.stop_reason[0] || p->st.stop_reported) return;
  p->st.stop_reported = 1;
  char *msg = NULL;
  size_t len = strlen(p->name) + strlen(p->st.stop_reason) + (detail ? strlen(detail) : 0) + 32;
  msg = malloc(len);
  if (msg == NULL) return;
  snprintf(msg, len, "plugin '%s' stopped: %s%s%s", p->name, p->st.stop_reason, detail ? "\n" : "",
           detail ? detail : "");
  host_report_error(p->host, msg);
  free(msg);
}

/* Errors of the plugin's tasks that no one waited for (its own host's error handler). */
static void on_task_error(lufa_host *own, const char *message, void *ud) {
  lufa_plugin *p = ud;
  (void)own;
  if (p->st.stop_reason[0] && !p->loading) {
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
  lua_State *L = p->st.L;
  lua_pushcfunction(L, start_protected);
  lua_insert(L, -(nargs + 2));
  if (lua_pcall(L, nargs + 1, 1, 0) != LUA_OK) {
    set_errorf(p, "plugin '%s': %s", p->name, lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    loop_recover(host_loop(p->st.own));
    return 0;
  }
  int failed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return !failed && !p->st.stop_reason[0];
}

/* Starts env[name](arg) as a task if the plugin defines it; arg is a stack index (0: the string `text`, or
** no argument when that is NULL too). 1 when it did not fail. */
static int call_hook(lufa_plugin *p, const char *name, int arg, const char *text) {
  lua_State *L = p->st.L;
  if (!lua_checkstack(L, 6)) return 0;
  if (lua_rawgeti(L, LUA_REGISTRYINDEX, p->st.env_ref) != LUA_TTABLE) {
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
  if (arg) lua_pushvalue(L, arg), nargs = 1;
  else if (text) lua_pushstring(L, text), nargs = 1;
  return start_task(p, nargs);
}

/* ---- what the sandbox gets from C: xpcall, coroutine.wrap and coroutine.close that respect a stop ---- */

/* The plugin a state belongs to (the allocator's data; a reload points a new state at the same plugin). */
static lufa_plugin *plugin_of(lua_State *L) {
  void *ud;
  lua_getallocf(L, &ud);
  return ud;
}

static int raise_stop(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, plugin_of(L)->st.stop_ref);
  return lua_error(L);
}

static int stop_tostring(lua_State *L) {
  lufa_plugin *p = plugin_of(L);
  lua_pushfstring(L, "plugin '%s' %s", p->name, p->st.stop_reason[0] ? p->st.stop_reason : "stopped");
  return 1;
}

/* pcall and xpcall results; after a stop, the stop again instead (so the caller's next instruction never
** runs, even when the error that stopped it was a memory error the hook has not seen yet). */
static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (plugin_of(L)->st.stop_reason[0]) return raise_stop(L);
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

/* The plugin's message handler, except for a stop: that error was raised by the hook, so the handler would
** run with hooks off, out of the budget's reach. */
static int stop_aware_handler(lua_State *L) {
  if (plugin_of(L)->st.stop_reason[0]) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int sandbox_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, stop_aware_handler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);  /* the first result */
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);    /* both below the function's arguments */
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
  return finish_pcall(L, status, 2);
}

static int sandbox_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);  /* the first result */
  lua_insert(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, finish_pcall);
  return finish_pcall(L, status, 0);
}

/* coroutine.resume returns a coroutine's error to its caller, another thread the hook has not marked. */
static int sandbox_resume(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_pushvalue(L, lua_upvalueindex(1));  /* the real coroutine.resume */
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (plugin_of(L)->st.stop_reason[0]) return raise_stop(L);
  return lua_gettop(L);
}

static int wrap_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int narg = lua_gettop(L), nres;
  if (!lua_checkstack(co, narg)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, narg);
  int status = lua_resume(co, L, narg, &nres);
  if (plugin_of(L)->st.stop_reason[0]) return raise_stop(L);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);  /* the error */
  status = lua_resetthread(co);  /* like coroutine.wrap: close its to-be-closed variables */
  lua_xmove(co, L, 1);
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int sandbox_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, wrap_resume, 1);
  return 1;
}

static int sandbox_close(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  if (plugin_of(L)->st.stop_reason[0]) return raise_stop(L);
  lua_pushvalue(L, lua_upvalueindex(1));  /* the real coroutine.close */
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  if (plugin_of(L)->st.stop_reason[0]) return raise_stop(L);
  return lua_gettop(L);
}

/* ---- the state ---- */

static int open_protected(lua_State *L) {
  luaL_openlibs(L);
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");  /* no binary chunks: nothing in the state may produce one either */
  lua_newuserdatauv(L, 0, 0);   /* the stop object, made now so raising it never allocates */
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, stop_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  plugin_of(L)->st.stop_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* A new state for p (accounted to p, hooked, with lufa's modules). 1, or 0 with lufa_last_error set. */
static int state_open(lufa_plugin *p) {
  p->st.profile_ref = p->st.env_ref = p->st.stop_ref = LUA_NOREF;
  p->st.L = lua_newstate(plugin_alloc, p);
  if (p->st.L == NULL) {
    set_errorf(p, "plugin '%s': out of memory", p->name);
    return 0;
  }
  lua_State *L = p->st.L;
  lua_sethook(L, plugin_hook, LUA_MASKCOUNT, HOOK_COUNT);  /* before any thread exists: all inherit it */
  lua_pushcfunction(L, open_protected);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK || (p->st.own = host_new_on_state(L)) == NULL) {
    set_errorf(p, "plugin '%s': cannot create its state (memory limit too low?)", p->name);
    return 0;
  }
  loop_forbid_driving(host_loop(p->st.own));
  lufa_set_error_handler(p->st.own, on_task_error, p);
  return 1;
}

static void push_string_list(lua_State *L, const char *const *list, const char *field) {
  if (list == NULL) return;
  lua_newtable(L);
  for (int i = 0; list[i]; i++) {
    lua_pushstring(L, list[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, field);
}

/* The profile's data (what the host granted) from the options; the functions are added by profile_finish. */
static int profile_from_options(lua_State *L) {
  lufa_plugin *p = plugin_of(L);
  const lufa_plugin_options *o = lua_touserdata(L, 1);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, p->name);
  lua_setfield(L, -2, "name");
  if (p->path) {
    const char *slash = strrchr(p->path, '/');
    if (slash) lua_pushlstring(L, p->path, (size_t)(slash - p->path));
    else lua_pushliteral(L, ".");
    lua_setfield(L, -2, "folder");
  }
  push_string_list(L, o->modules, "modules");
  push_string_list(L, o->http_hosts, "http_hosts");
  if (o->data_dir) {
    lua_pushstring(L, o->data_dir);
    lua_setfield(L, -2, "data_dir");
  }
  lua_pushinteger(L, (lua_Integer)p->memory_limit);
  lua_setfield(L, -2, "memory_limit");
  return 1;
}

/* Takes the profile's data at 1: lufa's own folder alone on the path, no C modules, the stop-aware
** functions added, the profile anchored. */
static int profile_finish(lua_State *L) {
  lufa_plugin *p = plugin_of(L);
  const char *dir = lufa_lua_dir();
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_settop(L, 1);
  lua_pushcfunction(L, sandbox_xpcall);
  lua_setfield(L, 1, "xpcall");
  lua_pushcfunction(L, sandbox_pcall);
  lua_setfield(L, 1, "pcall");
  lua_pushcfunction(L, sandbox_wrap);
  lua_setfield(L, 1, "coroutine_wrap");
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "close");
  lua_pushcclosure(L, sandbox_close, 1);
  lua_setfield(L, 1, "coroutine_close");
  lua_getfield(L, -1, "resume");
  lua_pushcclosure(L, sandbox_resume, 1);
  lua_setfield(L, 1, "coroutine_resume");
  lua_pop(L, 1);
  lua_pushvalue(L, 1);
  p->st.profile_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Runs profile_finish on the profile data on top of p's stack. 1, or 0 with lufa_last_error set. */
static int profile_install(lufa_plugin *p) {
  lua_State *L = p->st.L;
  lua_pushcfunction(L, profile_finish);
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    set_errorf(p, "plugin '%s': cannot create its state: %s", p->name, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Builds a fresh environment, makes it the chunk's _ENV and returns it. */
static int env_protected(lua_State *L) {
  lufa_plugin *p = plugin_of(L);  /* 1: the chunk */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.plugin.sandbox");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_rawgeti(L, LUA_REGISTRYINDEX, p->st.profile_ref);
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  if (lua_setupvalue(L, 1, 1) == NULL) lua_pop(L, 1);  /* a chunk's first upvalue is its _ENV */
  return 1;
}

/* Compiles text only; pushes the chunk, or records the message and pushes nothing. */
static int compile(lufa_plugin *p, const char *code, size_t len, const char *chunkname) {
  if (luaL_loadbufferx(p->st.L, code, len, chunkname, "t") != LUA_OK) {
    set_errorf(p, "plugin '%s': %s", p->name, lua_tostring(p->st.L, -1));
    lua_pop(p->st.L, 1);
    return 0;
  }
  return 1;
}

/* Runs the compiled chunk on top of L in a new environment, until its first wait. 1 on success. */
static int run_chunk(lufa_plugin *p) {
  lua_State *L = p->st.L;
  lua_pushcfunction(L, env_protected);
  lua_pushvalue(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    if (!p->st.stop_reason[0])
      set_errorf(p, "plugin '%s': cannot build its environment: %s", p->name, luaL_tolstring(L, -1, NULL));
    else
      set_errorf(p, "plugin '%s' %s", p->name, p->st.stop_reason);
    lua_settop(L, lua_gettop(L) - 2);
    return 0;
  }
  if (p->st.env_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, p->st.env_ref);
  p->st.env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return start_task(p, 0);
}

static void state_close(lufa_plugin *p) {
  if (p->st.own) {
    budget_begin(p, p->budget);  /* finalizers are plugin code too */
    lufa_host_free(p->st.own);   /* closes the state: timers, transfers and tasks go with it */
    budget_end(p);
  } else if (p->st.L) {
    lua_close(p->st.L);
  }
  p->st.own = NULL;
  p->st.L = NULL;
}

static void free_plugin(lufa_plugin *p) {
  state_close(p);
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
  lufa_plugin *p = (lufa_plugin *)((char *)w - offsetof(lufa_plugin, watch));
  p->io_ready = 1;  /* lufa_poll pumps it right after the host's step */
}

static void watch_start(lufa_plugin *p) {
  p->watch.fd = lufa_fd(p->st.own);
  p->watch.ready = watch_ready;
  p->watch.passive = 1;  /* a plugin alone does not keep the host's lufa_run going */
  loop_watch(host_loop(p->host), &p->watch);
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
  p->watch.fd = -1;
  if (p->name == NULL || (path && p->path == NULL)) {
    free_plugin(p);
    host_set_error(host, "lufa_plugin_load: out of memory");
    return NULL;
  }
  if (!state_open(p)) {
    free_plugin(p);
    return NULL;
  }
  lua_State *L = p->st.L;
  lua_pushcfunction(L, profile_from_options);
  lua_pushlightuserdata(L, (void *)options);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    set_errorf(p, "plugin '%s': cannot create its state: %s", p->name, lua_tostring(L, -1));
    free_plugin(p);
    return NULL;
  }
  if (!profile_install(p)) {
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
  watch_start(p);
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
  if (!p->st.stop_reason[0]) {  /* a stopped plugin has had its time: its on_unload is not run */
    list->busy = 1;
    budget_begin(p, p->budget);
    ok = call_hook(p, "on_unload", 0, "unload");
    budget_end(p);
    list->busy = 0;
    report_stop(p, NULL);
  }
  unlink_plugin(p);
  free_plugin(p);
  return ok ? LUFA_OK : LUFA_ERROR;
}

/* Points a state's allocator, hook data and error handler at the plugin that now holds it. */
static void state_adopt(lufa_plugin *p) {
  lua_setallocf(p->st.L, plugin_alloc, p);
  lufa_set_error_handler(p->st.own, on_task_error, p);
}

/* The new version gets a fresh state, so nothing the old one did (or left half-done when stopped) carries
** over but the plain data of its globals. */
static int plugin_reload(lufa_plugin *p, const char *code, size_t len, const char *chunkname) {
  PluginList *list = host_plugins(p->host);
  if (list->busy) return LUFA_EBUSY;
  lufa_plugin *fresh = calloc(1, sizeof *fresh);
  if (fresh == NULL || (fresh->name = strdup(p->name)) == NULL) {
    free(fresh);
    host_set_error(p->host, "lufa_plugin_reload: out of memory");
    return LUFA_ERROR;
  }
  fresh->host = p->host;
  fresh->budget = p->budget;
  fresh->load_budget = p->load_budget;
  fresh->memory_limit = p->memory_limit;
  int ok = state_open(fresh) && lua_checkstack(p->st.L, 4);
  if (ok) {  /* the same profile: what the host granted does not change with the code */
    lua_rawgeti(p->st.L, LUA_REGISTRYINDEX, p->st.profile_ref);
    ok = state_copy_value(p->st.L, fresh->st.L) == LUA_OK;
    lua_pop(p->st.L, 1);
    if (!ok) lua_pop(fresh->st.L, 1);
    ok = ok && profile_install(fresh);
  }
  if (!ok || !compile(fresh, code, len, chunkname)) {  /* the old version keeps running */
    free_plugin(fresh);
    return LUFA_ERROR;
  }
  list->busy = 1;
  if (!p->st.stop_reason[0]) {
    budget_begin(p, p->budget);
    call_hook(p, "on_unload", 0, "reload");
    budget_end(p);
    report_stop(p, NULL);
  }
  /* the old globals' data, beside the chunk on the new state's stack */
  lua_State *L = fresh->st.L;
  int copied = 0;
  if (lua_checkstack(p->st.L, 2) && lua_rawgeti(p->st.L, LUA_REGISTRYINDEX, p->st.env_ref) == LUA_TTABLE)
    copied = state_copy_value(p->st.L, L) == LUA_OK;
  lua_pop(p->st.L, 1);
  if (!copied) {
    if (lua_gettop(L) > 1) lua_pop(L, 1);  /* a failed copy's message */
    lua_pushnil(L);
    if (fresh->st.stop_reason[0]) {  /* the old data did not fit: the new version starts without it */
      fresh->st.stop_reason[0] = '\0';
      loop_skip_closing(host_loop(fresh->st.own), 0);
      lua_gc(L, LUA_GCCOLLECT);
    }
  }
  lua_insert(L, -2);
  int old_index = lua_gettop(L) - 1;
  /* swap: p keeps its identity (the host's handle), fresh takes the old state away and closes it */
  loop_unwatch(host_loop(p->host), &p->watch);
  PluginState old = p->st;
  p->st = fresh->st;
  fresh->st = old;
  state_adopt(p);
  state_adopt(fresh);
  free_plugin(fresh);
  watch_start(p);
  p->loading = 1;
  budget_begin(p, p->load_budget);
  ok = run_chunk(p) && call_hook(p, "on_reload", old_index, NULL);
  budget_end(p);
  p->loading = 0;
  lua_settop(L, 0);
  list->busy = 0;
  if (p->st.stop_reason[0]) p->st.stop_reported = 1;  /* the caller hears of it through the result */
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
  if (p->st.stop_reason[0]) {
    set_errorf(p, "plugin '%s' is stopped: %s", p->name, p->st.stop_reason);
    return LUFA_ERROR;
  }
  list->busy = 1;
  budget_begin(p, p->budget);
  int ok = call_hook(p, name, 0, NULL);
  budget_end(p);
  list->busy = 0;
  report_stop(p, NULL);
  return ok ? LUFA_OK : LUFA_ERROR;
}

/* One plugin's turn: its loop's step within what is left of the host's budget (deadline, 0: none). */
static int pump_one(lufa_plugin *p, double deadline) {
  int rc = 0;
  p->io_ready = 0;
  budget_begin(p, p->budget);
  int n;
  if (deadline > 0) {
    double left_us = (deadline - loop_now()) * 1e6;
    n = lufa_poll_budget(p->st.own, left_us > 1 ? (long)left_us : 1);
  } else {
    n = lufa_poll(p->st.own, 0);
  }
  p->last_pump = budget_end(p);
  if (p->last_pump > p->max_pump) p->max_pump = p->last_pump;
  if (n == LUFA_ERROR && !p->st.stop_reason[0]) {
    set_errorf(p, "plugin '%s': %s", p->name, lufa_last_error(p->st.own));
    rc = LUFA_ERROR;
  }
  report_stop(p, NULL);
  return rc;
}

int plugins_pump(lufa_host *host, double deadline) {
  PluginList *list = host_plugins(host);
  int rc = 0;
  list->busy = 1;
  /* those a spent budget passed over last time go first, then the rest in load order */
  for (int pass = 0; pass < 2; pass++) {
    for (lufa_plugin *p = list->head; p; p = p->next) {
      if (p->owed != (pass == 0)) continue;  /* owed: 1 passed over last time, -1 served in this pump */
      p->owed = pass == 0 ? -1 : 0;
      if (p->st.stop_reason[0]) continue;
      /* a plugin with nothing readable and nothing due costs no step (a step is a system call or two) */
      if (!p->io_ready && lufa_next_timeout(p->st.own) != 0) continue;
      if (deadline > 0 && loop_now() >= deadline) {
        p->owed = 1;
        continue;
      }
      if (pump_one(p, deadline) < 0) rc = LUFA_ERROR;
    }
  }
  for (lufa_plugin *p = list->head; p; p = p->next)
    if (p->owed < 0) p->owed = 0;
  list->busy = 0;
  return rc;
}

int plugins_owed(lufa_host *host) {
  for (lufa_plugin *p = host_plugins(host)->head; p; p = p->next)
    if (p->owed > 0 && !p->st.stop_reason[0]) return 1;
  return 0;
}

int plugins_next_timeout(lufa_host *host) {
  int best = -1;
  for (lufa_plugin *p = host_plugins(host)->head; p; p = p->next) {
    if (p->st.stop_reason[0]) continue;
    int t = lufa_next_timeout(p->st.own);
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
  return p->st.stop_reason[0] ? LUFA_PLUGIN_STOPPED : LUFA_PLUGIN_RUNNING;
}

const char *lufa_plugin_stop_reason(lufa_plugin *p) {
  return p->st.stop_reason;
}

lua_State *lufa_plugin_state(lufa_plugin *p) {
  return p->st.L;
}

void lufa_plugin_push_env(lufa_plugin *p) {
  lua_rawgeti(p->st.L, LUA_REGISTRYINDEX, p->st.env_ref);
}

void lufa_plugin_get_usage(lufa_plugin *p, lufa_plugin_usage *u) {
  u->last_pump_ms = p->last_pump * 1000.0;
  u->max_pump_ms = p->max_pump * 1000.0;
  u->budget_ms = p->budget < 0 ? -1 : p->budget * 1000.0;
  u->memory = p->st.memory;
  u->memory_peak = p->st.memory_peak;
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
  loop_each_task(host_loop(p->st.own), visit_task, &v);
  return v.count;
}
