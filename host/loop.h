/*
** The event loop: one per Lua state. It owns a libcurl multi handle driven through epoll, a timer heap and
** the tasks (coroutines). Native calls that wait describe their wait with a LoopWait and call loop_wait():
** inside a task that yields the task; elsewhere it drives the loop itself until the wait is over.
*/
#ifndef LUFA_LOOP_H
#define LUFA_LOOP_H

#include <curl/curl.h>
#include <lua.h>

typedef struct Loop Loop;
typedef struct Task Task;
typedef struct LoopWait LoopWait;
typedef struct LoopTimer LoopTimer;
typedef struct LoopTransfer LoopTransfer;

struct LoopWait {
  Task *task;                                  /* the task that waits (NULL: the main thread) */
  int done;                                    /* set by loop_wake: the waiter may continue */
  int driven;                                  /* the waiter drives the loop itself instead of yielding */
  void (*cancel)(LoopWait *w);                 /* aborts the pending work when its task is cancelled */
  int (*results)(lua_State *L, LoopWait *w);   /* pushes the call's results once done; returns their count */
};

struct LoopTimer {
  double deadline;       /* lufa.now() seconds */
  unsigned long seq;     /* keeps equal deadlines first-in first-out */
  int index;             /* position in the heap, -1 when not armed */
  void (*fire)(LoopTimer *t);
};

/* A descriptor the loop watches for readability (e.g. an eventfd a worker thread writes when done), or
** for writability when `writable` is set; ready() is called from the loop, never from another thread. */
typedef struct LoopWatch {
  int fd;
  void (*ready)(struct LoopWatch *w);
  int passive;   /* set: the watch alone does not keep the loop running (e.g. a signal handler's) */
  int active;
  int writable;  /* set before loop_watch: ready() when fd can be written (a socket's send buffer has room) */
} LoopWatch;

/* A hook called at the very start of every loop_step (before the loop waits for I/O or timers) and once
** from loop_close. For work that must happen before the loop sleeps, such as committing writes grouped
** during one turn. `quiet` is set when the coming step will neither wait nor start a transfer (tasks are
** ready and no request was added since the last step): work that only has to precede waits and requests
** may then be left for a later step. fn must not run Lua; it may remove its own hook (only). Hooks are not
** pending work. */
typedef struct LoopPrepare {
  void (*fn)(struct LoopPrepare *p, int quiet);
  struct LoopPrepare *next, *prev;
  int active;
} LoopPrepare;

/* A transfer on the multi handle; done() is called once, from the loop, after curl is finished with it. */
struct LoopTransfer {
  void (*done)(LoopTransfer *t, CURLcode result);
};

/* The loop of L's state, created on first use. */
Loop *loop_get(lua_State *L);

/* Frees everything the loop owns; tasks still waiting are cancelled first. Called when the state closes. */
void loop_close(Loop *loop);

double loop_now(void);

/* Waits for w inside the calling native function: `return loop_wait(L, w);`. The caller has set w->cancel
** and w->results and started the work, which calls loop_wake(w) when finished. Raises a "cancelled" error
** when the calling task is cancelled meanwhile. */
int loop_wait(lua_State *L, LoopWait *w);

/* Prepares w for the calling thread (sets task, clears done). Raises "cancelled" if that task is cancelled. */
void loop_wait_init(lua_State *L, LoopWait *w);

/* Marks w finished and schedules its task. Safe to call from anywhere but Lua itself (never resumes here). */
void loop_wake(Loop *loop, LoopWait *w);

void loop_timer_start(Loop *loop, LoopTimer *t, double seconds);
void loop_timer_stop(Loop *loop, LoopTimer *t);

/* Starts and stops watching w->fd; a watch counts as pending work while active. Returns 0, or -1 (errno). */
int loop_watch(Loop *loop, LoopWatch *w);
void loop_unwatch(Loop *loop, LoopWatch *w);

/* Adds and removes a prepare hook; both are no-ops when it already is (or is not) added. After loop_close,
** adding does nothing. */
void loop_prepare_add(Loop *loop, LoopPrepare *p);
void loop_prepare_remove(Loop *loop, LoopPrepare *p);

/* Adds an easy handle whose CURLOPT_PRIVATE is t; returns a curl multi code. */
CURLMcode loop_add_transfer(Loop *loop, CURL *easy, LoopTransfer *t);
void loop_remove_transfer(Loop *loop, CURL *easy);

/* One step: waits at most timeout_ms (-1: until something happens) and does what is ready.
** Returns the number of live tasks. */
int loop_step(Loop *loop, int timeout_ms);
/* A budget for the steps that follow: once loop_now() reaches deadline a step takes no new work (socket
** events, curl's timeout, finished transfers, due timers, ready tasks) and leaves it queued for the next
** step; a budgeted step never sleeps. What was begun runs to its end (a Lua resume cannot be cut).
** 0 removes the budget. */
void loop_set_budget(Loop *loop, double deadline);
/* Nonzero while a budget is set (the step is a budgeted one). */
int loop_budgeted(Loop *loop);
/* Nonzero when a budget is set and spent: work that can be split (a transfer's body bytes) stops there. */
int loop_over_budget(Loop *loop);
/* How many steps have begun (a step's prepare hooks already see the new count). */
unsigned long loop_steps(Loop *loop);
int loop_next_timeout(Loop *loop);
int loop_fd(Loop *loop);
/* Nonzero while anything can still happen: a ready task, a timer, a transfer. */
int loop_has_work(Loop *loop);
int loop_task_count(Loop *loop);
/* Nonzero while a step is in progress (the embedding API refuses to re-enter). */
int loop_running(Loop *loop);
/* After an error (such as out of memory) escaped a step called from the embedding API: the step is over. */
void loop_recover(Loop *loop);

/* The interactive prompt's Ctrl-C: while check(ud) returns nonzero, a wait that the main thread drives
** itself (lufa.sleep, task:wait() or a request outside any task) is cancelled and raises "interrupted".
** check is called after every step of such a wait; NULL removes it. */
void loop_set_interrupt_check(Loop *loop, int (*check)(void *ud), void *ud);

/* Called by loop_step before it resumes a task (the only way Lua code, and so output, happens in a step):
** the prompt hides the line being edited then. fn must not run Lua. NULL removes it. */
void loop_set_resume_hook(Loop *loop, void (*fn)(void *ud), void *ud);

/* The coroutine of the task loop_step is resuming at this moment, or NULL. A plain read, so the prompt's
** Ctrl-C handler may call it to set a Lua hook that stops a task spinning without ever waiting. */
lua_State *loop_resuming(Loop *loop);

/* A loop that must never block its caller (a plugin's): a wait that cannot yield its task raises an error
** instead of driving the loop itself. */
void loop_forbid_driving(Loop *loop);

/* When set, a task that ends in an error is left as it is instead of being closed: its pending to-be-closed
** variables are not closed (a stopped plugin's code must not run again, see plugin.c). */
void loop_skip_closing(Loop *loop, int skip);

/* Uncaught task errors go to this handler (message includes a traceback). */
typedef void (*loop_error_fn)(void *ud, const char *message);
void loop_set_error_handler(Loop *loop, loop_error_fn fn, void *ud);
int loop_uncaught_errors(Loop *loop);

/* The `lufa` module (lufa_module.c). */
int luaopen_lufa(lua_State *L);

#endif
