/*
** lufa.h: embedding lufa in an application that owns its main loop.
**
** A host is one Lua 5.4 state with lufa's native modules preloaded and one event loop (libcurl multi,
** timers, suspended Lua tasks). The application pumps it: lufa_poll() with a zero timeout never blocks,
** so it can be called once per frame. No function here may be called from inside a Lua callback that the
** host itself is running (such calls return LUFA_EBUSY).
*/
#ifndef LUFA_H
#define LUFA_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LUFA_API __declspec(dllexport)
#else
#define LUFA_API __attribute__((visibility("default")))
#endif

#define LUFA_VERSION "0.1.0"

/* Return codes (negative) of the functions below. */
#define LUFA_OK 0
#define LUFA_ERROR (-1)  /* a Lua error; lufa_last_error() has its message and traceback */
#define LUFA_EBUSY (-2)  /* called re-entrantly, from code the host is running */

typedef struct lufa_host lufa_host;
typedef struct lufa_plugin lufa_plugin;

/* Called for an error that ended a task no one was waiting for. `message` includes a traceback.
** The default handler prints it to stderr; the host keeps running either way. */
typedef void (*lufa_error_handler)(lufa_host *host, const char *message, void *ud);

/* Creates a host with its own lua_State (standard libraries and lufa's modules available).
** Returns NULL when memory is short. */
LUFA_API lufa_host *lufa_host_new(void);

/* Attaches a host to an existing state the application created (libraries already opened as it wishes).
** lufa's modules become requirable and its module path is appended to package.path.
** The application keeps ownership of L: lufa_host_free() does not close it. */
LUFA_API lufa_host *lufa_host_attach(lua_State *L);

/* The host's Lua state (the main thread). */
LUFA_API lua_State *lufa_host_state(lufa_host *host);

/* Frees the host: cancels every task, aborts every transfer, closes the state if the host created it. */
LUFA_API void lufa_host_free(lufa_host *host);

/* Replaces the handler for uncaught task errors (NULL restores the default). */
LUFA_API void lufa_set_error_handler(lufa_host *host, lufa_error_handler handler, void *ud);

/* Starts a Lua file or string as a new task. The chunk runs until its first wait before this returns;
** the rest runs as the host is pumped. `name` labels the chunk in tracebacks (may be NULL).
** Returns LUFA_OK, or LUFA_ERROR when the chunk does not compile or fails before its first wait. */
LUFA_API int lufa_spawn_file(lufa_host *host, const char *path);
LUFA_API int lufa_spawn_string(lufa_host *host, const char *code, const char *name);

/* Does whatever is ready (finished transfers, due timers, tasks to resume), waiting at most timeout_ms
** for something to become ready first (0: never blocks; -1: waits until something happens), then pumps
** every running plugin once, each within its CPU budget (see lufa_plugin_load_string). No time budget:
** everything ready is done (lufa_poll_budget below bounds it).
** Returns the number of live tasks (>= 0), LUFA_EBUSY, or LUFA_ERROR when an error such as running out of
** memory escaped the step (lufa_last_error has it). */
LUFA_API int lufa_poll(lufa_host *host, int timeout_ms);

/* lufa_poll with a time budget, for a frame loop: never blocks, and stops taking new work once budget_us
** microseconds (from the call) are spent, leaving the rest queued, in order, for the next call. Work is
** taken in small pieces -- one socket's I/O (64 KiB receives, at most 256 KiB of response body per transfer
** and step, fewer once the budget is spent), one finished transfer, one due timer, one task resume, one
** plugin's pump; new transfers are handed to curl four per call, since curl starts all it holds at once --
** and the budget is checked between them; the phase a spent budget skipped goes first
** next time (plugins passed over go before the host's own step), so none starves. What cannot be cut runs
** to its end: a task's resume lasts until its next wait (a plugin's is bounded by its CPU budget, and a
** plugin's pump gets what is left of this budget for its own loop), and a response body read into memory
** becomes one Lua string in its task (request it with body_parts = true to have it made in 32 KiB parts,
** one per step: docs/embedding.md, "Large bodies"). Writing downloads to disk, fsync and rename happen on
** worker threads, never here. budget_us <= 0
** (or a budget already spent) still takes one piece, so every call makes progress. Returns as lufa_poll
** does. */
LUFA_API int lufa_poll_budget(lufa_host *host, long budget_us);

/* Runs until no task of the host is left, pumping its plugins meanwhile as lufa_poll does (a plugin's own
** tasks do not keep it running; a plugin that fails is reported to the error handler and the run goes on).
** Returns LUFA_OK, LUFA_ERROR if some host task ended in an error no one waited for, or LUFA_EBUSY. */
LUFA_API int lufa_run(lufa_host *host);

/* How long, in milliseconds, the host may sleep before it next needs lufa_poll (0: work is ready now;
** -1: nothing is pending). */
LUFA_API int lufa_next_timeout(lufa_host *host);

/* A file descriptor that becomes readable when the host has work (an epoll descriptor on Linux), so an
** application can sleep on it with its own poll/select; still call lufa_poll after lufa_next_timeout ms. */
LUFA_API int lufa_fd(lufa_host *host);

/* The number of tasks not yet finished. */
LUFA_API int lufa_task_count(lufa_host *host);

/* The number of task errors reported to the error handler since the host was created. */
LUFA_API int lufa_error_count(lufa_host *host);

/* The message (with traceback) of the last LUFA_ERROR returned, or "" if none. Valid until the next call. */
LUFA_API const char *lufa_last_error(lufa_host *host);

/* ---- plugins ----
** A plugin is code the application does not trust. Each one gets its own Lua state and event loop
** (so nothing it changes -- string metatable, package.loaded, library tables -- reaches another plugin or
** the host), a sandbox of curated globals, a memory ceiling enforced by the allocator and a CPU budget
** per pump. The host's lufa_poll pumps every running plugin; lufa_fd and lufa_next_timeout cover them.
**
** Sandbox: the plugin's chunk and everything it requires see only assert, error, ipairs, next, pairs,
** pcall, print, rawequal, rawget, rawlen, rawset, select, setmetatable (no __gc), getmetatable (tables
** only), tonumber, tostring, type, xpcall, load (text chunks, sandboxed environment), collectgarbage
** ("count" only), string (without dump), table, math, utf8, coroutine, os.clock/date/difftime/time, and
** a `require` that serves the lufa modules allowed (lufa without run and on_interrupt, lufa.json without
** decode_file, lufa.error, lufa.redact, and `modules` below), the capabilities granted below, and .lua
** files in the plugin's own folder. There is no io, os.execute/exit/remove/rename/getenv, debug,
** package, loadfile, dofile or binary chunk.
**
** Budgets (CPU time of the calling thread, checked every 4000 Lua instructions, so time the process
** spends preempted does not count): exceeding the CPU budget within one pump (or one load, reload, call
** or unload), or the memory ceiling, stops the plugin. The stop is raised again at every instruction the
** plugin executes afterwards, and the sandbox's pcall, xpcall and coroutine functions raise it again
** themselves, so no pcall in the plugin can swallow it and the stack unwinds. The host's error handler
** receives "plugin 'NAME' stopped: ..." once; a stopped plugin is not pumped again until it is reloaded
** or unloaded. A single call into C (a large string.rep or gsub) runs to its end before the check; the
** memory ceiling bounds how long such a call can be. */

typedef struct lufa_plugin_options {
  const char *name;               /* in errors and lists; default: the file name, or "plugin" */
  double cpu_budget_ms;           /* per pump, per lufa_plugin_call and for on_unload; 0: 5 ms; < 0: unlimited */
  double load_budget_ms;          /* for a load or reload (compiling, the chunk, on_reload); 0: 200 ms */
  size_t memory_limit;            /* bytes for the plugin's whole Lua state; 0: 64 MiB */
  const char *const *modules;     /* NULL-terminated modules to allow besides the defaults (given whole:
                                  ** a module that can read files lets the plugin read them) */
  const char *const *http_hosts;  /* NULL-terminated host names `require "lufa.http"` may reach (any port,
                                  ** no files); NULL: no HTTP */
  const char *data_dir;           /* the folder `require "lufa.fs"` is confined to (paths relative to it);
                                  ** NULL: no fs */
} lufa_plugin_options;

/* Fills o with the defaults above. */
LUFA_API void lufa_plugin_options_init(lufa_plugin_options *o);

/* Loads a plugin and runs its chunk until its first wait (a file's folder is where its require looks).
** o may be NULL (the defaults). The chunk's globals are the plugin's environment; the hooks below are
** global functions it may define. Returns NULL when the code does not compile, fails or exceeds a budget
** before its first wait, or memory is short: lufa_last_error(host) says why. */
LUFA_API lufa_plugin *lufa_plugin_load_file(lufa_host *host, const char *path, const lufa_plugin_options *o);
LUFA_API lufa_plugin *lufa_plugin_load_string(lufa_host *host, const char *code, size_t len,
                                              const lufa_plugin_options *o);

/* Unloads the plugin: runs its on_unload("unload") within its budget, then closes its state, which ends
** its tasks, stops its timers and aborts its transfers. p is freed. LUFA_OK, LUFA_ERROR if on_unload
** failed (the plugin is unloaded anyway; lufa_last_error has the message), or LUFA_EBUSY. */
LUFA_API int lufa_plugin_unload(lufa_plugin *p);

/* Replaces the plugin's code. The new code is compiled first: if it does not compile, the old version keeps
** running (LUFA_ERROR). Otherwise the old version's on_unload("reload") runs, its tasks are cancelled and
** unwound, the new chunk runs in a fresh environment until its first wait, and then its on_reload(old)
** receives the old environment (so `function on_reload(old) count = old.count end` carries state over).
** A stopped plugin runs again. path NULL: the file it was loaded from. LUFA_OK, LUFA_ERROR or LUFA_EBUSY. */
LUFA_API int lufa_plugin_reload_file(lufa_plugin *p, const char *path);
LUFA_API int lufa_plugin_reload_string(lufa_plugin *p, const char *code, size_t len);

/* Calls the plugin's global function `name` with no arguments as a new task (e.g. an "update" hook once a
** frame); it runs until its first wait within the CPU budget. LUFA_OK (also when there is no such
** function), LUFA_ERROR if it failed or the plugin is stopped, LUFA_EBUSY. */
LUFA_API int lufa_plugin_call(lufa_plugin *p, const char *name);

/* Listing: the host's plugins in load order (NULL after the last). */
LUFA_API lufa_plugin *lufa_plugin_first(lufa_host *host);
LUFA_API lufa_plugin *lufa_plugin_next(lufa_plugin *p);
LUFA_API const char *lufa_plugin_name(lufa_plugin *p);

#define LUFA_PLUGIN_RUNNING 0
#define LUFA_PLUGIN_STOPPED 1   /* a budget was exceeded; lufa_plugin_stop_reason says which */
LUFA_API int lufa_plugin_status(lufa_plugin *p);
LUFA_API const char *lufa_plugin_stop_reason(lufa_plugin *p);  /* "" while running */

/* The plugin's unfinished tasks; the visitor receives each one's status ("ready", "waiting", ...) and
** where it is ("file:line" of the function it runs or waits in). Returns their number. */
typedef void (*lufa_task_visitor)(const char *status, const char *where, void *ud);
LUFA_API int lufa_plugin_tasks(lufa_plugin *p, lufa_task_visitor visit, void *ud);

typedef struct lufa_plugin_usage {
  double last_pump_ms;   /* CPU time the plugin took in the latest lufa_poll (what the budget counts) */
  double max_pump_ms;    /* the most it took in any pump */
  double budget_ms;      /* its CPU budget (< 0: unlimited) */
  size_t memory;         /* bytes its state holds now */
  size_t memory_peak;
  size_t memory_limit;
} lufa_plugin_usage;
LUFA_API void lufa_plugin_get_usage(lufa_plugin *p, lufa_plugin_usage *u);

/* The plugin's own state, and its current environment (the globals its code sees) pushed onto that state's
** stack, for the application to read or set values. Code run on the state directly is outside the budget. */
LUFA_API lua_State *lufa_plugin_state(lufa_plugin *p);
LUFA_API void lufa_plugin_push_env(lufa_plugin *p);

#ifdef __cplusplus
}
#endif

#endif
