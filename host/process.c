/*
** lufa.process: runs child programs with posix_spawn, never through a shell. The child gets only the
** descriptors 0-2 (everything else is closed in it), default signal dispositions and an empty mask, so
** lufa's own handlers, ignored signals and open files never reach it. A pidfd of the child, watched by the
** loop, says when it has exited; waitid then collects its status, which the process object keeps.
*/
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <lauxlib.h>

#include "error.h"
#include "loop.h"
#include "options.h"
#include "process.h"

#define PROC_MT "lufa.process"
#define WAITER_MT "lufa.process.wait"

typedef struct Waiter Waiter;

typedef struct {
  Loop *loop;
  pid_t pid;
  int group;            /* the child leads its own process group: kill reaches the whole group */
  int reaped;           /* the status below is final and the pidfd closed */
  int lost;             /* errno of a failed waitid (ECHILD: the status was collected elsewhere) */
  int exited, code, sig, core;
  LoopWatch watch;      /* the pidfd, readable once the child has exited; watched while someone waits */
  Waiter *waiters;      /* the calls of :wait() in progress */
} Proc;

/* One call of proc:wait(); a userdata on the waiting call's stack, holding its process as user value. */
struct Waiter {
  LoopWait wait;
  LoopTimer timer;      /* the timeout, if any */
  Loop *loop;
  Proc *proc;
  int linked;           /* in proc->waiters */
  Waiter *prev, *next;
};

enum { REDIR_INHERIT, REDIR_NULL, REDIR_FILE, REDIR_STDOUT };

/* ---- errors ---- */

/* nil, err: code the errno name, message "<what>: <strerror>"; err.program and err.errno are set. */
static int fail_errno(lua_State *L, int e, const char *program, const char *what) {
  lufa_error_push_errno_name(L, e);
  lufa_error_fail(L, "process", lua_tostring(L, -1), "%s: %s", what, strerror(e));
  lua_remove(L, -3);  /* the code string */
  lufa_error_setstr(L, -1, "program", program);
  lufa_error_setint(L, -1, "errno", e);
  return 2;
}

/* ---- processes nobody can wait for any more ---- */

/* Children whose process object was collected while they still ran. Reaped (without blocking) at every
** spawn and every collection, so a long-running lufa does not pile up zombies. Shared by all states. */
static pthread_mutex_t abandoned_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t *abandoned;
static int nabandoned, capabandoned;

static void abandoned_reap(void) {
  pthread_mutex_lock(&abandoned_mu);
  for (int i = 0; i < nabandoned;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc = waitid(P_PID, (id_t)abandoned[i], &si, WEXITED | WNOHANG);
    if ((rc == 0 && si.si_pid == 0) || (rc < 0 && errno == EINTR)) {
      i++;  /* still running: next time */
      continue;
    }
    abandoned[i] = abandoned[--nabandoned];
  }
  pthread_mutex_unlock(&abandoned_mu);
}

static void abandon(pid_t pid) {
  pthread_mutex_lock(&abandoned_mu);
  if (nabandoned == capabandoned) {
    int cap = capabandoned ? capabandoned * 2 : 16;
    pid_t *a = realloc(abandoned, (size_t)cap * sizeof *a);
    if (a) {
      abandoned = a;
      capabandoned = cap;
    }
  }
  if (nabandoned < capabandoned) abandoned[nabandoned++] = pid;  /* else it stays a zombie until lufa ends */
  pthread_mutex_unlock(&abandoned_mu);
}

/* ---- waiting ---- */

static void waiter_unlink(Waiter *wt) {
  if (!wt->linked) return;
  Proc *p = wt->proc;
  wt->linked = 0;
  if (wt->prev) wt->prev->next = wt->next;
  else p->waiters = wt->next;
  if (wt->next) wt->next->prev = wt->prev;
  wt->prev = wt->next = NULL;
  if (wt->timer.index >= 0) loop_timer_stop(wt->loop, &wt->timer);
  if (p->waiters == NULL && p->watch.active) loop_unwatch(p->loop, &p->watch);  /* nobody waits: no work */
}

/* Collects the child's status if it has exited, never blocking, and then ends every wait on it.
** Returns p->reaped. */
static int proc_collect(Proc *p) {
  if (p->reaped) return 1;
  siginfo_t si;
  int rc;
  do {
    memset(&si, 0, sizeof si);
    rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0 && si.si_pid == 0) return 0;  /* still running */
  if (rc < 0) {
    p->lost = errno;
  } else if (si.si_code == CLD_EXITED) {
    p->exited = 1;
    p->code = si.si_status;
  } else {
    p->sig = si.si_status;
    p->core = si.si_code == CLD_DUMPED;
  }
  p->reaped = 1;
  while (p->waiters) {
    Waiter *wt = p->waiters;
    waiter_unlink(wt);
    loop_wake(p->loop, &wt->wait);
  }
  if (p->watch.active) loop_unwatch(p->loop, &p->watch);
  if (p->watch.fd >= 0) close(p->watch.fd);
  p->watch.fd = -1;
  return 1;
}

static void proc_ready(LoopWatch *w) {
  proc_collect((Proc *)((char *)w - offsetof(Proc, watch)));
}

static const char *signal_name(lua_State *L, int sig) {
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev) return lua_pushfstring(L, "SIG%s", abbrev);
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return lua_pushfstring(L, "SIGRTMIN+%d", sig - SIGRTMIN);
  return lua_pushfstring(L, "SIG%d", sig);
}

/* Pushes the status table of the reaped process at index 1 (and the shell-style number when asked);
** nil, err when its status was lost. */
static int push_status(lua_State *L, Proc *p, int with_number) {
  if (p->lost) {
    lua_getiuservalue(L, 1, 1);
    const char *program = lua_tostring(L, -1);
    const char *what = lua_pushfstring(L, "the exit status of '%s' (pid %d) was collected elsewhere", program, (int)p->pid);
    return fail_errno(L, p->lost, program, what);
  }
  lua_createtable(L, 0, 4);
  if (p->exited) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "exited");
    lua_pushinteger(L, p->code);
    lua_setfield(L, -2, "code");
  } else {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "signaled");
    lua_pushinteger(L, p->sig);
    lua_setfield(L, -2, "signal");
    signal_name(L, p->sig);
    lua_setfield(L, -2, "signame");
    if (p->core) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "core");
    }
  }
  if (!with_number) return 1;
  lua_pushinteger(L, p->exited ? p->code : 128 + p->sig);
  return 2;
}

static int waiter_results(lua_State *L, LoopWait *w) {
  Waiter *wt = (Waiter *)w;
  Proc *p = wt->proc;
  if (p->reaped) return push_status(L, p, 1);
  lua_getiuservalue(L, 1, 1);
  const char *program = lua_tostring(L, -1);
  lufa_error_fail(L, "process", "timeout", "'%s' (pid %d) is still running", program, (int)p->pid);
  lufa_error_setstr(L, -1, "program", program);
  return 2;
}

static void waiter_cancel(LoopWait *w) {
  waiter_unlink((Waiter *)w);
}

static void waiter_fire(LoopTimer *t) {
  Waiter *wt = (Waiter *)((char *)t - offsetof(Waiter, timer));
  waiter_unlink(wt);
  loop_wake(wt->loop, &wt->wait);
}

/* A wait abandoned by an error or by the state closing must not stay linked or keep its timer. */
static int waiter_gc(lua_State *L) {
  waiter_unlink(lua_touserdata(L, 1));
  return 0;
}

static Proc *check_proc(lua_State *L) {
  return luaL_checkudata(L, 1, PROC_MT);
}

/** proc:wait([timeout]) → status, number; or nil, err ("timeout": the child keeps running). */
static int proc_wait(lua_State *L) {
  Proc *p = check_proc(L);
  double timeout = -1;
  if (!lua_isnoneornil(L, 2)) {
    timeout = luaL_checknumber(L, 2);
    luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
  }
  lua_settop(L, 1);
  if (proc_collect(p)) return push_status(L, p, 1);
  Waiter *wt = lua_newuserdatauv(L, sizeof *wt, 1);
  memset(wt, 0, sizeof *wt);
  wt->timer.index = -1;
  luaL_setmetatable(L, WAITER_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);  /* the process outlives its waits */
  loop_wait_init(L, &wt->wait);
  wt->wait.cancel = waiter_cancel;
  wt->wait.results = waiter_results;
  wt->loop = p->loop;
  wt->proc = p;
  wt->timer.fire = waiter_fire;
  if (!p->watch.active && loop_watch(p->loop, &p->watch) != 0) {
    int e = errno;
    lua_getiuservalue(L, 1, 1);
    const char *program = lua_tostring(L, -1);
    return fail_errno(L, e, program, lua_pushfstring(L, "cannot wait for '%s'", program));
  }
  wt->next = p->waiters;
  if (p->waiters) p->waiters->prev = wt;
  p->waiters = wt;
  wt->linked = 1;
  if (timeout >= 0) loop_timer_start(p->loop, &wt->timer, timeout);
  return loop_wait(L, &wt->wait);
}

/** proc:status() → "running" or the status table; never waits. */
static int proc_status(lua_State *L) {
  Proc *p = check_proc(L);
  lua_settop(L, 1);
  if (proc_collect(p)) return push_status(L, p, 0);
  lua_pushliteral(L, "running");
  return 1;
}

/* A signal: a number, or a name with or without "SIG" ("TERM", "SIGKILL"). */
static int signal_arg(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return SIGTERM;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, arg);
    luaL_argcheck(L, n >= 0 && n < NSIG, arg, "no such signal");
    return (int)n;
  }
  const char *name = luaL_checkstring(L, arg);
  const char *bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
  for (int s = 1; s < NSIG; s++) {
    const char *abbrev = sigabbrev_np(s);
    if (abbrev && strcmp(abbrev, bare) == 0) return s;
  }
  return luaL_argerror(L, arg, lua_pushfstring(L, "unknown signal '%s'", name));
}

/** proc:kill([signal]) → true, or false once the child was reaped, or nil, err. */
static int proc_kill(lua_State *L) {
  Proc *p = check_proc(L);
  int sig = signal_arg(L, 2);
  /* Not collected first: while it is unreaped its pid (and group id) cannot be reused, and a group whose
  ** leader has exited but not been reaped can still be reached. */
  if (p->reaped) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (kill(p->group ? -p->pid : p->pid, sig) != 0) {
    int e = errno;
    lua_getiuservalue(L, 1, 1);
    const char *program = lua_tostring(L, -1);
    return fail_errno(L, e, program, lua_pushfstring(L, "cannot signal '%s' (pid %d)", program, (int)p->pid));
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int proc_index(lua_State *L) {
  Proc *p = check_proc(L);
  const char *key = lua_tostring(L, 2);
  if (key && strcmp(key, "pid") == 0) {
    lua_pushinteger(L, p->pid);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static int proc_tostring(lua_State *L) {
  Proc *p = check_proc(L);
  if (!p->reaped) lua_pushfstring(L, "lufa.process (pid %d): running", (int)p->pid);
  else if (p->lost) lua_pushfstring(L, "lufa.process (pid %d): status lost", (int)p->pid);
  else if (p->exited) lua_pushfstring(L, "lufa.process (pid %d): exited %d", (int)p->pid, p->code);
  else lua_pushfstring(L, "lufa.process (pid %d): %s", (int)p->pid, signal_name(L, p->sig));
  return 1;
}

/* Reaps the child if it has exited; one still running is left to abandoned_reap (it cannot be waited for
** any more). Waits never outlive their process except while the state closes. */
static int proc_gc(lua_State *L) {
  Proc *p = check_proc(L);
  while (p->waiters) waiter_unlink(p->waiters);
  if (!proc_collect(p)) {
    if (p->watch.active) loop_unwatch(p->loop, &p->watch);
    close(p->watch.fd);
    p->watch.fd = -1;
    p->reaped = 1;
    abandon(p->pid);
  }
  abandoned_reap();
  return 0;
}

/* ---- spawning ---- */

typedef struct {
  char **argv;
  char **envp;          /* NULL: inherit */
  const char *cwd;
  int redir[3];         /* REDIR_* for stdin, stdout, stderr */
  const char *path[3];
  int append, new_group, sigdefault;
} Spec;

/* Keeps the string at the top of the stack alive in the anchor table `a`, pops it and returns it. */
static const char *anchor(lua_State *L, int a) {
  const char *s = lua_tostring(L, -1);
  lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);
  return s;
}

/* Whether the value at the top of the stack is a string or a number (converted in place) without NUL bytes. */
static int is_text(lua_State *L) {
  int t = lua_type(L, -1);
  if (t != LUA_TSTRING && t != LUA_TNUMBER) return 0;
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  return strlen(s) == len;
}

static char **parse_argv(lua_State *L, int a) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1, 1, "argv must hold at least the program");
  char **argv = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof *argv, 0);
  lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (!is_text(L)) luaL_argerror(L, 1, lua_pushfstring(L, "argv[%d] must be a string without NUL bytes", (int)i));
    argv[i - 1] = (char *)anchor(L, a);
  }
  argv[n] = NULL;
  luaL_argcheck(L, argv[0][0] != '\0', 1, "the program name is empty");
  return argv;
}

/* Adds the name -> value pairs of the table at t to map (name -> "NAME=value"); false removes a name. */
static void env_merge(lua_State *L, int map, int t, const char *opt) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "%s: variable names must be strings", opt));
    size_t nlen;
    const char *name = lua_tolstring(L, -2, &nlen);
    if (nlen == 0 || strlen(name) != nlen || strchr(name, '='))
      luaL_argerror(L, 2, lua_pushfstring(L, "%s: invalid variable name '%s'", opt, name));
    lua_pushvalue(L, -2);
    if (lua_type(L, -2) == LUA_TBOOLEAN && !lua_toboolean(L, -2)) {
      lua_pushnil(L);
    } else {
      lua_pushvalue(L, -2);
      if (!is_text(L)) luaL_argerror(L, 2, lua_pushfstring(L, "%s.%s must be a string without NUL bytes", opt, name));
      lua_pushfstring(L, "%s=%s", name, lua_tostring(L, -1));
      lua_remove(L, -2);
    }
    lua_rawset(L, map);
    lua_pop(L, 1);
  }
}

/* The child's environment: opts.env or lufa's own, then opts.env_extra; NULL when both are absent. */
static char **parse_env(lua_State *L, int a) {
  int env = lua_getfield(L, 2, "env");
  int extra = lua_getfield(L, 2, "env_extra");
  if (env != LUA_TNIL && env != LUA_TTABLE) luaL_argerror(L, 2, "env must be a table");
  if (extra != LUA_TNIL && extra != LUA_TTABLE) luaL_argerror(L, 2, "env_extra must be a table");
  if (env == LUA_TNIL && extra == LUA_TNIL) {
    lua_pop(L, 2);
    return NULL;
  }
  int top = lua_gettop(L);
  lua_newtable(L);
  int map = top + 1;
  if (env == LUA_TTABLE) {
    env_merge(L, map, top - 1, "env");
  } else {
    for (char **e = environ; *e; e++) {
      const char *eq = strchr(*e, '=');
      lua_pushlstring(L, *e, eq ? (size_t)(eq - *e) : strlen(*e));
      lua_pushstring(L, *e);
      lua_rawset(L, map);
    }
  }
  if (extra == LUA_TTABLE) env_merge(L, map, top, "env_extra");
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, map)) {
    n++;
    lua_pop(L, 1);
  }
  char **envp = lua_newuserdatauv(L, (n + 1) * sizeof *envp, 0);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, map)) {
    envp[i++] = (char *)lua_tostring(L, -1);  /* anchored by map, itself anchored below */
    lua_pop(L, 1);
  }
  envp[i] = NULL;
  lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);
  lua_rawseti(L, a, (lua_Integer)lua_rawlen(L, a) + 1);  /* the map */
  lua_pop(L, 2);
  return envp;
}

/* opts[name] as a redirection: "inherit", "null", "stdout" (stderr only) or a path. */
static int parse_redir(lua_State *L, int a, const char *name, int def, const char **path) {
  *path = NULL;
  int t = lua_getfield(L, 2, name);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return def;
  }
  if (t != LUA_TSTRING || !is_text(L)) luaL_argerror(L, 2, lua_pushfstring(L, "%s must be a string without NUL bytes", name));
  const char *s = lua_tostring(L, -1);
  int r = REDIR_FILE;
  if (strcmp(s, "inherit") == 0) r = REDIR_INHERIT;
  else if (strcmp(s, "null") == 0) r = REDIR_NULL;
  else if (strcmp(s, "stdout") == 0 && strcmp(name, "stderr") == 0) r = REDIR_STDOUT;
  else if (*s == '\0') luaL_argerror(L, 2, lua_pushfstring(L, "%s: the path is empty", name));
  *path = anchor(L, a);
  return r;
}

static int opt_bool(lua_State *L, const char *name, int def) {
  int t = lua_getfield(L, 2, name);
  int v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void parse_opts(lua_State *L, int a, Spec *s) {
  static const char *const known[] = {"env", "env_extra", "cwd", "stdin", "stdout", "stderr", "append",
                                      "new_group", "signals_default", NULL};
  memset(s, 0, sizeof *s);
  s->sigdefault = 1;
  s->redir[0] = REDIR_NULL;
  s->redir[1] = s->redir[2] = REDIR_INHERIT;
  if (lua_isnoneornil(L, 2)) return;
  luaL_checktype(L, 2, LUA_TTABLE);
  host_check_options(L, 2, known, "process.spawn");
  s->envp = parse_env(L, a);
  if (lua_getfield(L, 2, "cwd") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING || !is_text(L)) luaL_argerror(L, 2, "cwd must be a string without NUL bytes");
    s->cwd = anchor(L, a);
  } else {
    lua_pop(L, 1);
  }
  s->redir[0] = parse_redir(L, a, "stdin", REDIR_NULL, &s->path[0]);
  s->redir[1] = parse_redir(L, a, "stdout", REDIR_INHERIT, &s->path[1]);
  s->redir[2] = parse_redir(L, a, "stderr", REDIR_INHERIT, &s->path[2]);
  s->append = opt_bool(L, "append", 0);
  s->new_group = opt_bool(L, "new_group", 0);
  s->sigdefault = opt_bool(L, "signals_default", 1);
}

/* Opens a redirection target close-on-exec, above 0-2 so that no dup2 in the child overwrites another. */
static int open_redirect(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd >= 0 && fd < 3) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    fd = high;
    errno = e;
  }
  return fd;
}

static void close_all(int fds[3]) {
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) close(fds[i]);
}

/** process.spawn(argv [, opts]) → proc, or nil, err. */
static int process_spawn(lua_State *L) {
  static const char *const stream[] = {"stdin", "stdout", "stderr"};
  Loop *loop = loop_get(L);
  lua_settop(L, 2);
  lua_newtable(L);  /* 3: anchors every string handed to the child */
  Spec s;
  char **argv = parse_argv(L, 3);
  parse_opts(L, 3, &s);
  const char *program = argv[0];
  abandoned_reap();

  Proc *p = lua_newuserdatauv(L, sizeof *p, 1);  /* 4; inert (reaped, no pidfd) until the child runs */
  memset(p, 0, sizeof *p);
  p->reaped = 1;
  p->watch.fd = -1;
  luaL_setmetatable(L, PROC_MT);
  lua_pushstring(L, program);
  lua_setiuservalue(L, 4, 1);

  if (s.cwd) {
    /* checked here: a failed chdir in the child would read as a missing program */
    struct stat st;
    int e = stat(s.cwd, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (e) return fail_errno(L, e, program, lua_pushfstring(L, "cannot run '%s' in '%s'", program, s.cwd));
  }
  int fds[3] = {-1, -1, -1};
  for (int i = 0; i < 3; i++) {
    if (s.redir[i] != REDIR_NULL && s.redir[i] != REDIR_FILE) continue;
    const char *path = s.redir[i] == REDIR_NULL ? "/dev/null" : s.path[i];
    int flags = i == 0 ? O_RDONLY : O_WRONLY | (s.redir[i] == REDIR_NULL ? 0 : O_CREAT | (s.append ? O_APPEND : O_TRUNC));
    fds[i] = open_redirect(path, flags);
    if (fds[i] < 0) {
      int e = errno;
      close_all(fds);
      fail_errno(L, e, program, lua_pushfstring(L, "cannot open '%s' as the %s of '%s'", path, stream[i], program));
      lufa_error_setstr(L, -1, "path", path);
      return 2;
    }
  }

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc != 0) {
    close_all(fds);
    return fail_errno(L, rc, program, lua_pushfstring(L, "cannot run '%s'", program));
  }
  rc = posix_spawnattr_init(&attr);
  if (rc != 0) {
    posix_spawn_file_actions_destroy(&fa);
    close_all(fds);
    return fail_errno(L, rc, program, lua_pushfstring(L, "cannot run '%s'", program));
  }
  for (int i = 0; i < 3 && rc == 0; i++)
    if (fds[i] >= 0) rc = posix_spawn_file_actions_adddup2(&fa, fds[i], i);  /* dup2 clears close-on-exec */
  if (rc == 0 && s.redir[2] == REDIR_STDOUT) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
  /* whatever lufa holds (sockets, Lua's io files, a database) stays out of the child */
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (rc == 0 && s.cwd) rc = posix_spawn_file_actions_addchdir_np(&fa, s.cwd);
  short flags = 0;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  if (s.sigdefault) {
    /* exec keeps ignored signals ignored and the mask as is: reset both */
    flags |= POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &none);
  }
  if (s.new_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);
  }
  if (rc == 0) rc = posix_spawnattr_setflags(&attr, flags);
  /* the child's inherited output must follow what lufa has printed so far */
  if (s.redir[1] == REDIR_INHERIT || s.redir[2] == REDIR_INHERIT) {
    fflush(stdout);
    fflush(stderr);
  }
  pid_t pid = 0;
  if (rc == 0) rc = posix_spawnp(&pid, program, &fa, &attr, argv, s.envp ? s.envp : environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_all(fds);
  if (rc != 0) return fail_errno(L, rc, program, lua_pushfstring(L, "cannot run '%s'", program));

  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);  /* close-on-exec by definition */
  if (pidfd < 0) {
    /* a child nobody could wait for without blocking the loop: do not leave it behind */
    int e = errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return fail_errno(L, e, program, lua_pushfstring(L, "cannot watch '%s' (pidfd_open)", program));
  }
  p->loop = loop;
  p->pid = pid;
  p->group = s.new_group;
  p->watch.fd = pidfd;
  p->watch.ready = proc_ready;
  p->reaped = 0;
  lua_settop(L, 4);
  return 1;
}

/** process.getpid() → this process's id. */
static int process_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

/** process.is_alive(pid) → whether a process with that id exists (one of another user's counts). */
static int process_is_alive(lua_State *L) {
  lua_Integer pid = luaL_checkinteger(L, 1);
  luaL_argcheck(L, pid > 0 && pid == (pid_t)pid, 1, "not a process id");
  lua_pushboolean(L, kill((pid_t)pid, 0) == 0 || errno == EPERM);
  return 1;
}

int luaopen_lufa_process(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"spawn", process_spawn},
    {"getpid", process_getpid},
    {"is_alive", process_is_alive},
    {NULL, NULL}
  };
  static const luaL_Reg methods[] = {
    {"wait", proc_wait},
    {"status", proc_status},
    {"kill", proc_kill},
    {NULL, NULL}
  };
  loop_get(L);  /* before any process: the loop must be finalized after them */
  if (luaL_newmetatable(L, PROC_MT)) {
    lua_pushcfunction(L, proc_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, proc_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_pushcclosure(L, proc_index, 1);
    lua_setfield(L, -2, "__index");
  }
  if (luaL_newmetatable(L, WAITER_MT)) {
    lua_pushcfunction(L, waiter_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 2);
  luaL_newlib(L, funcs);
  return 1;
}
