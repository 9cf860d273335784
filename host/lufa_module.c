/*
** The `lufa` module: tasks and time for Lua code (spawn, sleep, run, now, current) on the state's loop.
*/
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "error.h"
#include "interrupt.h"
#include "task.h"
#include "include/lufa.h"

static Task *check_task(lua_State *L, int idx) {
  return (Task *)luaL_checkudata(L, idx, LUFA_TASK_MT);
}

static const char *const state_names[] = {"ready", "running", "waiting", "done", "failed", "cancelled"};

static int finished(const Task *t) {
  return t->state == TASK_DONE || t->state == TASK_FAILED || t->state == TASK_CANCELLED;
}

/* Pushes the results of the finished task at idx, or raises its error. */
static int push_outcome(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, 3);
  int failed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getiuservalue(L, idx, 2);
  if (failed) return lua_error(L);
  int tbl = lua_gettop(L);
  lua_getfield(L, tbl, "n");
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, n, "too many results");
  for (int i = 1; i <= n; i++) lua_rawgeti(L, tbl, i);
  return n;
}

static int join_results(lua_State *L, LoopWait *w) {
  (void)w;
  return push_outcome(L, 1);
}

static void join_cancel(LoopWait *w) {
  task_unjoin((TaskJoin *)w);
}

/** task:wait() → the task function's results; raises its error. */
static int task_wait(lua_State *L) {
  Task *t = check_task(L, 1);
  lua_settop(L, 1);
  if (finished(t)) return push_outcome(L, 1);
  if (task_of(L) == t) return luaL_error(L, "a task cannot wait for itself");
  TaskJoin *j = lua_newuserdatauv(L, sizeof *j, 0);
  loop_wait_init(L, &j->wait);
  memset((char *)j + sizeof j->wait, 0, sizeof *j - sizeof j->wait);
  j->wait.cancel = join_cancel;
  j->wait.results = join_results;
  task_join(t, j);
  return loop_wait(L, &j->wait);
}

/** task:cancel([reason]): aborts what the task waits for; it unwinds with a "cancelled" error. */
static int task_cancel_l(lua_State *L) {
  Task *t = check_task(L, 1);
  task_cancel(t, luaL_optstring(L, 2, NULL));
  return 0;
}

static int task_status(lua_State *L) {
  Task *t = check_task(L, 1);
  lua_pushstring(L, state_names[t->state]);
  return 1;
}

static int task_tostring(lua_State *L) {
  Task *t = check_task(L, 1);
  lua_pushfstring(L, "lufa.task (%p): %s", (void *)t, state_names[t->state]);
  return 1;
}

static int task_gc(lua_State *L) {
  Task *t = check_task(L, 1);
  free(t->reason);
  t->reason = NULL;
  return 0;
}

/** lufa.spawn(fn, ...) → task. The task starts at the loop's next step. */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  task_spawn(L, lua_gettop(L) - 1);
  return 1;
}

typedef struct {
  LoopWait wait;
  LoopTimer timer;
  Loop *loop;
} Sleep;

static void sleep_fire(LoopTimer *timer) {
  Sleep *s = (Sleep *)((char *)timer - offsetof(Sleep, timer));
  loop_wake(s->loop, &s->wait);
}

static void sleep_cancel(LoopWait *w) {
  Sleep *s = (Sleep *)w;
  loop_timer_stop(s->loop, &s->timer);
}

static int sleep_results(lua_State *L, LoopWait *w) {
  (void)L;
  (void)w;
  return 0;
}

/* A sleep abandoned by an error must not leave its timer in the heap. */
static int sleep_gc(lua_State *L) {
  Sleep *s = lua_touserdata(L, 1);
  if (s->timer.index >= 0) loop_timer_stop(s->loop, &s->timer);
  return 0;
}

/** lufa.sleep(seconds): waits without blocking other tasks. */
static int l_sleep(lua_State *L) {
  double secs = luaL_checknumber(L, 1);
  Loop *loop = loop_get(L);
  lua_settop(L, 1);
  Sleep *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->timer.index = -1;
  if (luaL_newmetatable(L, "lufa.sleep")) {
    lua_pushcfunction(L, sleep_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  loop_wait_init(L, &s->wait);
  s->loop = loop;
  s->timer.fire = sleep_fire;
  s->wait.cancel = sleep_cancel;
  s->wait.results = sleep_results;
  loop_timer_start(loop, &s->timer, secs);
  return loop_wait(L, &s->wait);
}

/** lufa.now() → monotonic seconds. */
static int l_now(lua_State *L) {
  lua_pushnumber(L, loop_now());
  return 1;
}

/** lufa.time(): the wall clock, seconds since the epoch with sub-second precision (os.time has whole
** seconds only, too coarse to order the runs of processes started within the same second). */
static int l_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
  return 1;
}

/** lufa.run(): runs the loop until no task is left. */
static int l_run(lua_State *L) {
  Loop *loop = loop_get(L);
  if (task_of(L)) return luaL_error(L, "lufa.run cannot be called from inside a task");
  while (loop_task_count(loop) > 0) {
    if (!loop_has_work(loop))
      return luaL_error(L, "deadlock: %d task(s) wait for each other and nothing else is pending",
                        loop_task_count(loop));
    loop_step(loop, -1);
  }
  return 0;
}

/** lufa.current() → the running task, or nil outside tasks. */
static int l_current(lua_State *L) {
  if (task_of(L) == NULL) return 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, L);
  return 1;
}

/** lufa.isatty([fd]) → whether the descriptor (default 1, standard output) is a terminal. */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

/** lufa.tasks() → the number of unfinished tasks. */
static int l_tasks(lua_State *L) {
  lua_pushinteger(L, loop_task_count(loop_get(L)));
  return 1;
}

/** lufa.inspect(v [, opts]) → text: the prompt's printer (lufa.repl.pretty), loaded on first use. */
static int l_inspect(lua_State *L) {
  lua_settop(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.repl.pretty");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "inspect");
  lua_insert(L, 1);
  lua_pop(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

int luaopen_lufa(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"spawn", l_spawn},
    {"sleep", l_sleep},
    {"now", l_now},
    {"time", l_time},
    {"run", l_run},
    {"current", l_current},
    {"tasks", l_tasks},
    {"isatty", l_isatty},
    {"on_interrupt", lufa_on_interrupt},
    {"inspect", l_inspect},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"wait", task_wait},
    {"cancel", task_cancel_l},
    {"status", task_status},
    {NULL, NULL}
  };
  static const luaL_Reg metamethods[] = {
    {"__tostring", task_tostring},
    {"__gc", task_gc},
    {"__index", NULL},
    {NULL, NULL}
  };
  loop_get(L);
  if (luaL_newmetatable(L, LUFA_TASK_MT)) {
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushliteral(L, LUFA_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
