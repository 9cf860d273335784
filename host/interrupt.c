/*
** lufa.on_interrupt(fn): SIGINT (Ctrl-C), SIGTERM and SIGHUP run fn(name, number) in a new task instead of
** ending the process, once: the first of them restores the default action of all three, so a second one
** ends the process at once. The handler only records the signal and writes an eventfd; the loop sees it
** readable and spawns the task, so Lua never runs inside the handler. Signals are per process: the last
** state to register wins.
*/
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <lauxlib.h>

#include "interrupt.h"
#include "task.h"

typedef struct {
  LoopWatch watch;
  Loop *loop;
  lua_State *L;  /* the main thread: tasks are spawned from it */
} Interrupt;

static const int handled[] = {SIGINT, SIGTERM, SIGHUP};
#define NHANDLED ((int)(sizeof handled / sizeof handled[0]))

static const char handler_key = 'H';
static int signal_fd = -1;
static volatile sig_atomic_t received;  /* the first signal caught; 0 once the loop has taken it */

static void set_action(void (*action)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = action;
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < NHANDLED; i++) sigaction(handled[i], &sa, NULL);
}

static void on_signal(int sig) {
  uint64_t one = 1;
  int saved = errno;
  set_action(SIG_DFL);  /* sigaction is async-signal-safe: the next signal of the three ends the process */
  received = sig;
  if (write(signal_fd, &one, sizeof one) < 0) { /* nothing safe to do in a handler */ }
  errno = saved;
}

static const char *signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "signal";
  }
}

static void interrupt_ready(LoopWatch *w) {
  Interrupt *in = (Interrupt *)w;
  uint64_t n;
  if (read(w->fd, &n, sizeof n) < 0) return;  /* already drained */
  int sig = received;
  received = 0;
  if (sig == 0) return;
  lua_State *L = in->L;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &handler_key) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pushstring(L, signal_name(sig));
  lua_pushinteger(L, sig);
  task_spawn(L, 2);
  lua_pop(L, 1);
}

static int interrupt_gc(lua_State *L) {
  Interrupt *in = lua_touserdata(L, 1);
  if (in->watch.active) loop_unwatch(in->loop, &in->watch);
  return 0;
}

/** lufa.on_interrupt(fn | nil): the next SIGINT, SIGTERM or SIGHUP runs fn(name, number) in a task
** (nil: those signals end the process again). */
int lufa_on_interrupt(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  Loop *loop = loop_get(L);
  if (signal_fd < 0) {
    signal_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (signal_fd < 0) return luaL_error(L, "cannot watch for interrupts: %s", strerror(errno));
  }
  Interrupt *in;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &signal_fd) == LUA_TUSERDATA) {
    in = lua_touserdata(L, -1);
  } else {
    in = lua_newuserdatauv(L, sizeof *in, 0);
    memset(in, 0, sizeof *in);
    in->loop = loop;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    in->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    in->watch.fd = signal_fd;
    in->watch.ready = interrupt_ready;
    in->watch.passive = 1;  /* waiting for a signal must not keep the program alive */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, interrupt_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &signal_fd);
  }
  lua_pop(L, 1);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &handler_key);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &handler_key) == LUA_TFUNCTION) {
    if (loop_watch(loop, &in->watch) != 0) return luaL_error(L, "cannot watch for interrupts: %s", strerror(errno));
    set_action(on_signal);
  } else {
    loop_unwatch(loop, &in->watch);
    set_action(SIG_DFL);
  }
  lua_pop(L, 1);
  return 0;
}
