/*
** Tasks: coroutines scheduled by the loop. Shared between loop.c (scheduling) and lufa_module.c (the Lua API).
*/
#ifndef LUFA_TASK_H
#define LUFA_TASK_H

#include "loop.h"

#define LUFA_TASK_MT "lufa.task"

enum task_state { TASK_READY, TASK_RUNNING, TASK_WAITING, TASK_DONE, TASK_FAILED, TASK_CANCELLED };

/* A wait for another task to end (task:wait()); kept in the awaited task's list of joiners. */
typedef struct TaskJoin {
  LoopWait wait;
  Task *target;
  struct TaskJoin *prev, *next;
} TaskJoin;

struct Task {
  Loop *loop;
  lua_State *co;         /* the coroutine; anchored by the task userdata's first user value */
  int ref;               /* registry reference anchoring the userdata while the task is unfinished */
  enum task_state state;
  int started;
  int cancelled;
  int nargs;             /* arguments waiting on co's stack for the first resume */
  LoopWait *wait;        /* the pending wait, if any */
  Task *next_ready;
  TaskJoin *joiners;
  char *reason;          /* why it was cancelled (malloc'd) */
  Task *live_prev, *live_next;  /* the loop's list of unfinished tasks (loop_each_task) */
};

/* Creates a task for the function and nargs arguments on top of L; pushes the task userdata.
** The task is queued and starts at the next loop step. */
Task *task_spawn(lua_State *L, int nargs);

/* Resumes a new task at once (used by the embedding API so a chunk runs until its first wait). */
void task_start_now(Task *t);

/* The task running on thread L, or NULL. */
Task *task_of(lua_State *L);

void task_cancel(Task *t, const char *reason);

/* Calls fn for every unfinished task, oldest first; fn may cancel tasks but must not run Lua. */
void loop_each_task(Loop *loop, void (*fn)(Task *t, void *ud), void *ud);

/* Cancels every unfinished task; they unwind the next time the loop steps. */
void loop_cancel_all(Loop *loop, const char *reason);

/* Pushes the "cancelled" error for t and raises it. */
int task_raise_cancelled(lua_State *L, Task *t);

/* Joiner bookkeeping (task:wait()). */
void task_join(Task *target, TaskJoin *j);
void task_unjoin(TaskJoin *j);

#endif
