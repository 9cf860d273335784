/*
** The embedding API (lufa.h): hosts, spawning, pumping with lufa_poll, the wake-up descriptor, attaching to
** an application's state, re-entry refusal, the uncaught-error handler, and allocation failures.
** No check measures time: "never blocks" is shown by counting calls, or by a transfer that can only finish
** after this program, acting as the server, has seen many lufa_poll calls return.
*/
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "lufa.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static lua_Integer global_int(lufa_host *host, const char *name) {
  lua_State *L = lufa_host_state(host);
  lua_getglobal(L, name);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -999;
  lua_pop(L, 1);
  return v;
}

static const char *global_str(lufa_host *host, const char *name, char *buf, size_t size) {
  lua_State *L = lufa_host_state(host);
  lua_getglobal(L, name);
  snprintf(buf, size, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
  lua_pop(L, 1);
  return buf;
}

/* Pumps with lufa_poll(host, 0) until no task is left; returns the number of calls (capped: a safety net). */
static int pump_until_idle(lufa_host *host, int cap) {
  int calls = 0;
  while (lufa_task_count(host) > 0 && calls < cap) {
    if (lufa_poll(host, 0) < 0) break;
    calls++;
    sleep_ms(1);
  }
  return calls;
}

/* ---- an error handler that records what it got ---- */

typedef struct {
  int calls;
  char last[4096];
} ErrorLog;

static void record_error(lufa_host *host, const char *message, void *ud) {
  ErrorLog *log = ud;
  (void)host;
  log->calls++;
  snprintf(log->last, sizeof log->last, "%s", message);
}

/* ---- a loopback listener standing in for an HTTP server, answered by hand ---- */

static int listen_loopback(int *port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 256) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    perror("listen_loopback");
    exit(2);
  }
  *port = ntohs(a.sin_port);
  return s;
}

/* Accepts one connection if one is waiting (non-blocking); -1 otherwise. */
static int accept_ready(int listener) {
  struct pollfd p = {listener, POLLIN, 0};
  if (poll(&p, 1, 0) != 1) return -1;
  return accept(listener, NULL, NULL);
}

/* Reads a request head (until the blank line), then answers 200 with body. */
static void answer(int conn, const char *body) {
  char buf[8192];
  size_t got = 0;
  while (got < sizeof buf - 1) {
    ssize_t n = read(conn, buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    buf[got] = '\0';
    if (strstr(buf, "\r\n\r\n")) break;
  }
  char out[512];
  int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   strlen(body), body);
  if (write(conn, out, (size_t)n) != n) perror("answer");
  close(conn);
}

static int open_fd_count(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

/* ---- the tests ---- */

static void test_new_spawn_run(void) {
  lufa_host *host = lufa_host_new();
  CHECK(host != NULL);
  CHECK(lufa_host_state(host) != NULL);
  CHECK_INT(lufa_next_timeout(host), -1);  /* nothing pending */
  CHECK_INT(lufa_poll(host, 0), 0);
  CHECK_INT(lufa_spawn_string(host,
    "local lufa = require 'lufa'\n"
    "step = 1\n"
    "lufa.sleep(0.01)\n"
    "step = 2\n"
    "result = 40 + 2\n", "=new_spawn_run"), LUFA_OK);
  CHECK_INT(global_int(host, "step"), 1);  /* ran until its first wait, no further */
  CHECK_INT(lufa_task_count(host), 1);
  CHECK_INT(lufa_run(host), LUFA_OK);
  CHECK_INT(global_int(host, "step"), 2);
  CHECK_INT(global_int(host, "result"), 42);
  CHECK_INT(lufa_task_count(host), 0);
  CHECK_INT(lufa_run(host), LUFA_OK);  /* nothing left: returns at once */
  lufa_host_free(host);
}

static void test_spawn_errors(void) {
  lufa_host *host = lufa_host_new();
  ErrorLog log = {0};
  lufa_set_error_handler(host, record_error, &log);
  CHECK_INT(lufa_spawn_string(host, "this is not lua", "=broken"), LUFA_ERROR);
  CHECK(strstr(lufa_last_error(host), "broken") != NULL);
  CHECK_INT(lufa_task_count(host), 0);
  CHECK_INT(lufa_spawn_string(host, "error('fails at once')", "=early"), LUFA_ERROR);
  CHECK(strstr(lufa_last_error(host), "fails at once") != NULL);
  CHECK_INT(lufa_task_count(host), 0);
  CHECK_INT(lufa_spawn_file(host, "/nonexistent/script.lua"), LUFA_ERROR);
  CHECK(strstr(lufa_last_error(host), "/nonexistent/script.lua") != NULL);
  lufa_host_free(host);
}

static void test_uncaught_error_handler(void) {
  lufa_host *host = lufa_host_new();
  ErrorLog log = {0};
  lufa_set_error_handler(host, record_error, &log);
  CHECK_INT(lufa_spawn_string(host,
    "local lufa = require 'lufa'\n"
    "lufa.spawn(function() lufa.sleep(0.01); error('handler-test-7') end)\n"
    "local t = lufa.spawn(function() lufa.sleep(0); error('observed') end)\n"
    "caught = not pcall(t.wait, t)\n", "=uncaught"), LUFA_OK);
  CHECK_INT(lufa_run(host), LUFA_ERROR);
  CHECK_INT(log.calls, 1);  /* the observed error is not reported */
  CHECK(strstr(log.last, "handler-test-7") != NULL);
  CHECK(strstr(log.last, "stack traceback") != NULL);
  CHECK(strstr(lufa_last_error(host), "handler-test-7") != NULL);
  lua_State *L = lufa_host_state(host);
  lua_getglobal(L, "caught");
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 1);
  /* the host keeps working after an uncaught error */
  CHECK_INT(lufa_spawn_string(host, "require('lufa').sleep(0); after = 1", "=after"), LUFA_OK);
  CHECK_INT(lufa_run(host), LUFA_OK);
  CHECK_INT(global_int(host, "after"), 1);
  lufa_host_free(host);
}

static void test_poll_never_blocks_while_tasks_sleep(void) {
  lufa_host *host = lufa_host_new();
  CHECK_INT(lufa_spawn_string(host,
    "local lufa = require 'lufa'\n"
    "for i = 1, 10 do lufa.spawn(function() lufa.sleep(0.2) end) end\n"
    "lufa.sleep(0.2)\n", "=sleepers"), LUFA_OK);
  CHECK_INT(lufa_task_count(host), 11);
  int calls = pump_until_idle(host, 100000);
  CHECK_INT(lufa_task_count(host), 0);
  /* a poll that blocked until the sleeps were due would be called a handful of times, not dozens */
  CHECK(calls >= 20);
  lufa_host_free(host);
}

static void test_next_timeout(void) {
  lufa_host *host = lufa_host_new();
  CHECK_INT(lufa_next_timeout(host), -1);
  CHECK_INT(lufa_spawn_string(host, "require('lufa').sleep(0.5)", "=t"), LUFA_OK);
  int t = lufa_next_timeout(host);
  CHECK(t > 0 && t <= 501);
  /* a task that is ready to run needs a poll now */
  CHECK_INT(lufa_spawn_string(host, "local l = require 'lufa'; l.spawn(function() end); l.sleep(0.5)", "=r"), LUFA_OK);
  CHECK_INT(lufa_next_timeout(host), 0);
  lufa_poll(host, 0);
  t = lufa_next_timeout(host);
  CHECK(t > 0 && t <= 501);
  lufa_host_free(host);  /* with tasks still sleeping: they are cancelled */
}

/* The documented pattern: poll(2) on lufa_fd with lufa_next_timeout, then lufa_poll(host, 0). */
static void test_fd_readable_when_timer_due(void) {
  lufa_host *host = lufa_host_new();
  CHECK_INT(lufa_spawn_string(host, "require('lufa').sleep(0.05); woke = 1", "=fd"), LUFA_OK);
  CHECK_INT(lufa_poll(host, 0), 1);
  struct pollfd p = {lufa_fd(host), POLLIN, 0};
  CHECK(p.fd >= 0);
  CHECK_INT(poll(&p, 1, 10000), 1);  /* readable once the sleep is due (10 s is a safety net) */
  CHECK(p.revents & POLLIN);
  CHECK_INT(lufa_poll(host, 0), 0);
  CHECK_INT(global_int(host, "woke"), 1);
  lufa_host_free(host);
}

/* An application that spawns and then sleeps on the descriptor alone must still be woken. */
static void test_fd_readable_right_after_spawn(void) {
  lufa_host *host = lufa_host_new();
  CHECK_INT(lufa_spawn_string(host, "require('lufa').sleep(0.05); woke = 1", "=fd2"), LUFA_OK);
  struct pollfd p = {lufa_fd(host), POLLIN, 0};
  CHECK_INT(poll(&p, 1, 3000), 1);
  lufa_poll(host, 0);
  pump_until_idle(host, 10000);
  CHECK_INT(global_int(host, "woke"), 1);
  lufa_host_free(host);
}

/* While transfers are in flight lufa_poll(host, 0) returns at once: the server (this program) only answers
** after 50 calls have come back, so a blocking poll would never get the answer. */
static void test_poll_never_blocks_during_transfers(void) {
  int port;
  int listener = listen_loopback(&port);
  lufa_host *host = lufa_host_new();
  char code[1024];
  snprintf(code, sizeof code,
    "local lufa, http = require 'lufa', require 'lufa.http'\n"
    "local tasks = {}\n"
    "for i = 1, 5 do\n"
    "  tasks[i] = lufa.spawn(function()\n"
    "    local res, err = http.request { url = 'http://127.0.0.1:%d/item/' .. i, timeout = 60 }\n"
    "    return res and res.body or tostring(err)\n"
    "  end)\n"
    "end\n"
    "local all = {}\n"
    "for i = 1, 5 do all[i] = tasks[i]:wait() end\n"
    "bodies = table.concat(all, ',')\n", port);
  CHECK_INT(lufa_spawn_string(host, code, "=transfers"), LUFA_OK);
  alarm(60);  /* a blocked lufa_poll would hang here: end the test instead */
  int calls = 0, live = 0;
  for (; calls < 50; calls++) {
    live = lufa_poll(host, 0);
    sleep_ms(1);
  }
  CHECK_INT(live, 6);
  int answered = 0;
  for (int spins = 0; answered < 5 && spins < 20000; spins++) {
    int c = accept_ready(listener);
    if (c >= 0) {
      answer(c, "ok");
      answered++;
    }
    lufa_poll(host, 0);
    sleep_ms(1);
  }
  CHECK_INT(answered, 5);
  pump_until_idle(host, 20000);
  alarm(0);
  char buf[256];
  CHECK_STR(global_str(host, "bodies", buf, sizeof buf), "ok,ok,ok,ok,ok");
  lufa_host_free(host);
  close(listener);
}

/* lufa_poll_budget hands new transfers to curl a few per call (curl starts every handle it holds in one
** call nothing can cut): ten requests started at once reach the server four at a time, and all complete. */
static void test_budget_admits_transfers_gradually(void) {
  int port;
  int listener = listen_loopback(&port);
  lufa_host *host = lufa_host_new();
  char code[1024];
  snprintf(code, sizeof code,
    "local lufa, http = require 'lufa', require 'lufa.http'\n"
    "local tasks = {}\n"
    "for i = 1, 10 do\n"
    "  tasks[i] = lufa.spawn(function()\n"
    "    local res, err = http.request { url = 'http://127.0.0.1:%d/item/' .. i, timeout = 60 }\n"
    "    return res and res.body or tostring(err)\n"
    "  end)\n"
    "end\n"
    "local all = {}\n"
    "for i = 1, 10 do all[i] = tasks[i]:wait() end\n"
    "bodies = table.concat(all, ',')\n", port);
  CHECK_INT(lufa_spawn_string(host, code, "=admitted"), LUFA_OK);
  alarm(60);
  int conns[16], nconns = 0, most_per_call = 0;
  for (int calls = 0; calls < 60; calls++) {
    lufa_poll_budget(host, 100000);  /* a budget that is never spent: only the admitting limits */
    int fresh = 0, c;
    while (nconns < 16 && (c = accept_ready(listener)) >= 0) {
      conns[nconns++] = c;
      fresh++;
    }
    if (fresh > most_per_call) most_per_call = fresh;
    sleep_ms(1);
  }
  CHECK_INT(nconns, 10);
  CHECK(most_per_call >= 1 && most_per_call <= 4);
  for (int i = 0; i < nconns; i++) answer(conns[i], "ok");
  for (int spins = 0; lufa_task_count(host) > 0 && spins < 20000; spins++) {
    lufa_poll_budget(host, 1000);
    sleep_ms(1);
  }
  alarm(0);
  char buf[256];
  CHECK_STR(global_str(host, "bodies", buf, sizeof buf), "ok,ok,ok,ok,ok,ok,ok,ok,ok,ok");
  lufa_host_free(host);
  close(listener);
}

/* lufa_host_free with a transfer in flight and a long sleep pending: everything is released. */
static void test_free_with_pending_work(void) {
  int port;
  int listener = listen_loopback(&port);
  lufa_host *host = lufa_host_new();
  char code[512];
  snprintf(code, sizeof code,
    "local lufa, http = require 'lufa', require 'lufa.http'\n"
    "lufa.spawn(function() lufa.sleep(3600) end)\n"
    "lufa.spawn(function() http.request { url = 'http://127.0.0.1:%d/never' } end)\n", port);
  CHECK_INT(lufa_spawn_string(host, code, "=pending"), LUFA_OK);
  for (int i = 0; i < 20; i++) lufa_poll(host, 0);
  CHECK_INT(lufa_task_count(host), 2);
  lufa_host_free(host);
  close(listener);
}

static void test_attach(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_pushinteger(L, 7);
  lua_setglobal(L, "app_value");
  lufa_host *host = lufa_host_attach(L);
  CHECK(host != NULL);
  CHECK(lufa_host_state(host) == L);
  CHECK_INT(lufa_spawn_string(host,
    "assert(app_value == 7)\n"
    "local lufa = require 'lufa'\n"
    "local http = require 'lufa.http'\n"   /* the Lua layer is found on the appended path */
    "lufa.sleep(0.01)\n"
    "seen = type(http.request)\n", "=attached"), LUFA_OK);
  CHECK_INT(lufa_run(host), LUFA_OK);
  lufa_host_free(host);
  /* the application still owns a working state */
  lua_getglobal(L, "seen");
  CHECK_STR(lua_tostring(L, -1), "function");
  lua_pop(L, 1);
  CHECK(luaL_dostring(L, "return 1 + 1") == LUA_OK);
  CHECK_INT(lua_tointeger(L, -1), 2);
  lua_close(L);
}

/* Lua code the host runs calls back into the API: every such call must be refused with LUFA_EBUSY. */
static lufa_host *reentry_host;

static int l_reenter(lua_State *L) {
  lua_pushinteger(L, lufa_poll(reentry_host, 0));
  lua_pushinteger(L, lufa_run(reentry_host));
  lua_pushinteger(L, lufa_spawn_string(reentry_host, "nested = true", "=nested"));
  return 3;
}

static void test_reentry_from_a_resumed_task(void) {
  lufa_host *host = reentry_host = lufa_host_new();
  lua_register(lufa_host_state(host), "reenter", l_reenter);
  CHECK_INT(lufa_spawn_string(host, "require('lufa').sleep(0); a, b, c = reenter()", "=reenter"), LUFA_OK);
  CHECK_INT(lufa_run(host), LUFA_OK);
  CHECK_INT(global_int(host, "a"), LUFA_EBUSY);
  CHECK_INT(global_int(host, "b"), LUFA_EBUSY);
  CHECK_INT(global_int(host, "c"), LUFA_EBUSY);
  lufa_host_free(host);
}

static void test_reentry_from_a_starting_chunk(void) {
  lufa_host *host = reentry_host = lufa_host_new();
  lua_register(lufa_host_state(host), "reenter", l_reenter);
  /* lufa_spawn_string runs the chunk until its first wait: that is code the host is running too */
  CHECK_INT(lufa_spawn_string(host, "a, b, c = reenter()", "=reenter-start"), LUFA_OK);
  lufa_run(host);
  CHECK_INT(global_int(host, "a"), LUFA_EBUSY);
  CHECK_INT(global_int(host, "b"), LUFA_EBUSY);
  CHECK_INT(global_int(host, "c"), LUFA_EBUSY);
  lufa_host_free(host);
}

/* The main thread driving the loop itself (a wait outside any task) is the host running too. */
static void test_reentry_while_main_thread_drives(void) {
  lufa_host *host = reentry_host = lufa_host_new();
  lua_State *L = lufa_host_state(host);
  lua_register(L, "reenter", l_reenter);
  CHECK(luaL_dostring(L,
    "local lufa = require 'lufa'\n"
    "local t = lufa.spawn(function() lufa.sleep(0); return reenter() end)\n"
    "a, b, c = t:wait()\n") == LUA_OK);
  CHECK_INT(global_int(host, "a"), LUFA_EBUSY);
  CHECK_INT(global_int(host, "b"), LUFA_EBUSY);
  CHECK_INT(global_int(host, "c"), LUFA_EBUSY);
  lufa_host_free(host);
}

/* ---- allocation failures: lufa_host_attach on a state whose allocator starts failing ---- */

typedef struct {
  long budget;  /* allocations left before failing; < 0: unlimited */
} AllocControl;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  AllocControl *c = ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (c->budget == 0 && nsize > osize) return NULL;
  if (c->budget > 0) c->budget--;
  return realloc(ptr, nsize);
}

/* A Lua panic (an error outside any protected call) would abort the whole program; recover from it here so
** the failure is reported as a check and the remaining cases still run. The state is abandoned. */
static jmp_buf panic_jump;
static char panic_message[512];

static int on_panic(lua_State *L) {
  snprintf(panic_message, sizeof panic_message, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
  longjmp(panic_jump, 1);
  return 0;
}

/* Attaching to a state whose allocator fails at every possible point: NULL or a working host, never a crash
** or a leaked descriptor. */
static void test_attach_with_failing_allocator(void) {
  int fds_before = open_fd_count();
  volatile int failed = 0, attached = 0, panics = 0;
  for (volatile long budget = 0; budget < 300; budget++) {
    AllocControl ctl = {-1};
    lua_State *L = lua_newstate(limited_alloc, &ctl);
    luaL_openlibs(L);
    lua_atpanic(L, on_panic);
    if (setjmp(panic_jump) != 0) {
      panics++;
      fprintf(stderr, "lua panic in lufa_host_attach with an allocation budget of %ld: %s\n", budget, panic_message);
      continue;  /* the state is unusable after a panic: leave it */
    }
    ctl.budget = budget;
    lufa_host *host = lufa_host_attach(L);
    ctl.budget = -1;
    if (host == NULL) {
      failed++;
    } else {
      attached++;
      lufa_host_free(host);
    }
    lua_close(L);
  }
  CHECK_INT(panics, 0);
  CHECK(failed > 0);    /* the small budgets really did fail */
  CHECK(attached > 0);  /* and the larger ones worked */
  CHECK_INT(open_fd_count(), fds_before);  /* no descriptor leaked by a half-made loop */
}

/* Spawning and running a chunk while allocations fail: LUFA_OK or LUFA_ERROR, never a panic. */
static void test_spawn_with_failing_allocator(void) {
  volatile int spawn_failed = 0, spawned = 0, panics = 0;
  for (volatile long budget = 0; budget < 400; budget += 2) {
    AllocControl ctl = {-1};
    lua_State *L = lua_newstate(limited_alloc, &ctl);
    luaL_openlibs(L);
    lua_atpanic(L, on_panic);
    lufa_host *host = lufa_host_attach(L);
    if (host == NULL) {
      CHECK(host != NULL);
      lua_close(L);
      continue;
    }
    const char *volatile stage = "lufa_spawn_string";
    if (setjmp(panic_jump) != 0) {
      panics++;
      fprintf(stderr, "lua panic in %s with an allocation budget of %ld: %s\n", stage, budget, panic_message);
      continue;  /* the state is unusable after a panic: leave it */
    }
    ctl.budget = budget;
    int rc = lufa_spawn_string(host, "local l = require 'lufa'; l.sleep(0); x = {1, 2, 3}", "=lowmem");
    CHECK(rc == LUFA_OK || rc == LUFA_ERROR);
    if (rc == LUFA_OK) {
      spawned++;
      stage = "lufa_run";
      rc = lufa_run(host);
      CHECK(rc == LUFA_OK || rc == LUFA_ERROR);
    } else {
      spawn_failed++;
    }
    ctl.budget = -1;
    lufa_host_free(host);
    lua_close(L);
  }
  CHECK_INT(panics, 0);
  CHECK(spawn_failed > 0);
  CHECK(spawned > 0);
}

int main(void) {
  test_new_spawn_run();
  test_spawn_errors();
  test_uncaught_error_handler();
  test_poll_never_blocks_while_tasks_sleep();
  test_next_timeout();
  test_fd_readable_when_timer_due();
  test_fd_readable_right_after_spawn();
  test_poll_never_blocks_during_transfers();
  test_budget_admits_transfers_gradually();
  test_free_with_pending_work();
  test_attach();
  test_reentry_from_a_resumed_task();
  test_reentry_from_a_starting_chunk();
  test_reentry_while_main_thread_drives();
  test_attach_with_failing_allocator();
  test_spawn_with_failing_allocator();
  return check_summary();
}
