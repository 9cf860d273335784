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
** for something to become ready first (0: never blocks; -1: waits until something happens).
** Returns the number of live tasks (>= 0), LUFA_EBUSY, or LUFA_ERROR when an error such as running out of
** memory escaped the step (lufa_last_error has it). */
LUFA_API int lufa_poll(lufa_host *host, int timeout_ms);

/* Runs until no task is left. Returns LUFA_OK, LUFA_ERROR if some task ended in an error no one waited
** for, or LUFA_EBUSY. */
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

#ifdef __cplusplus
}
#endif

#endif
