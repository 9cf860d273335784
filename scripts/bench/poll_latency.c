/*
** How long lufa_poll(host, 0) takes while many transfers are in flight (built and run by scripts/bench/poll).
**
**   poll_latency BASE_URL [TRANSFERS] [DELAY_MS]
**
** Starts TRANSFERS tasks, each a GET of BASE_URL/delay?ms=DELAY_MS, then pumps the host as a frame loop
** would (one lufa_poll(host, 0) about every millisecond) and times every call made while all transfers are
** unfinished. Then the same with an idle host, for comparison; then the transfers again with a 50 MB body
** read into memory and a 50 MB download to a file (fsync and rename included) at the same time, timing
** every call until both are done, pumped with lufa_poll(host, 0), then with lufa_poll_budget(host, 1000), then
** so with the in-memory body taken as body_parts;
** then the same transfers made by a sandboxed
** plugin, a host with 10 idle plugins, and the pump that stops a plugin looping forever (1 ms CPU budget).
** Prints one line per case:
**   case samples median_us p99_us max_us
** (and the first call alone, which resumes every new task so each starts its request)
*/
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lufa.h"

static void quiet(lufa_host *host, const char *message, void *ud) {
  (void)host;
  (void)message;
  (void)ud;  /* the stopped plugins' reports are expected */
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* CPU time of the calling thread: what the call itself cost, without the time it was preempted */
static double cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void pause_1ms(void) {
  struct timespec ts = {0, 1000000L};
  nanosleep(&ts, NULL);
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void report(const char *name, double *s, int n) {
  if (n == 0) {
    printf("%s 0 - - -\n", name);
    return;
  }
  qsort(s, (size_t)n, sizeof *s, by_value);
  int p99 = (int)((double)n * 0.99);
  if (p99 >= n) p99 = n - 1;
  printf("%s %d %.1f %.1f %.1f\n", name, n, s[n / 2], s[p99], s[n - 1]);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s BASE_URL [TRANSFERS] [DELAY_MS]\n", argv[0]);
    return 2;
  }
  int transfers = argc > 2 ? atoi(argv[2]) : 100;
  int delay_ms = argc > 3 ? atoi(argv[3]) : 3000;
  enum { MAX_SAMPLES = 200000 };
  double *samples = malloc(MAX_SAMPLES * sizeof *samples), *cpu = malloc(MAX_SAMPLES * sizeof *cpu);
  lufa_host *host = lufa_host_new();
  if (host == NULL || samples == NULL || cpu == NULL) return 1;

  char code[1024];
  snprintf(code, sizeof code,
    "local lufa, http = require 'lufa', require 'lufa.http'\n"
    "failures = 0\n"
    "for i = 1, %d do\n"
    "  lufa.spawn(function()\n"
    "    local res = http.request { url = '%s/delay?ms=%d&group=poll-bench' }\n"
    "    if not (res and res.status == 200) then failures = failures + 1 end\n"
    "  end)\n"
    "end\n", transfers, argv[1], delay_ms);
  if (lufa_spawn_string(host, code, "=poll_latency") != LUFA_OK) {
    fprintf(stderr, "%s\n", lufa_last_error(host));
    return 1;
  }
  /* every transfer is unfinished while all tasks are alive */
  int n = 0;
  while (n < MAX_SAMPLES) {
    double t0 = now_us();
    int live = lufa_poll(host, 0);
    double t1 = now_us();
    if (live < transfers) break;  /* a transfer has finished: the measured phase is over */
    samples[n++] = t1 - t0;
    pause_1ms();
  }
  double first = n > 0 ? samples[0] : 0;
  report("in_flight", samples, n);
  printf("first_call 1 %.1f %.1f %.1f\n", first, first, first);  /* resumes every task: each starts its request */
  while (lufa_task_count(host) > 0) lufa_poll(host, 100);
  lua_State *L = lufa_host_state(host);
  lua_getglobal(L, "failures");
  int failures = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);

  /* the same pump with nothing to do */
  n = 0;
  for (int i = 0; i < 2000; i++) {
    double t0 = now_us();
    lufa_poll(host, 0);
    samples[n++] = now_us() - t0;
  }
  report("idle", samples, n);
  lufa_host_free(host);

  /* the transfers again, with two 50 MB bodies: one into memory, one streaming to a file; first pumped with
  ** lufa_poll(host, 0), then with lufa_poll_budget(host, 1000) (a 1 ms budget), then with that budget and the
  ** in-memory body taken as body_parts */
  for (int mode = 0; mode < 3; mode++) {
    int budgeted = mode > 0;
    char dir[] = "/tmp/lufa-poll-bench-XXXXXX";
    if (mkdtemp(dir) == NULL) return 1;
    host = lufa_host_new();
    char big[2048];
    snprintf(big, sizeof big,
      "local lufa, http = require 'lufa', require 'lufa.http'\n"
      "failures, big_done = 0, 0\n"
      "for i = 1, %d do\n"
      "  lufa.spawn(function()\n"
      "    local res = http.request { url = '%s/delay?ms=%d&group=poll-bench-big' }\n"
      "    if not (res and res.status == 200) then failures = failures + 1 end\n"
      "  end)\n"
      "end\n"
      "lufa.spawn(function()\n"
      "  local res = http.request { url = '%s/bytes?n=50000000', body_parts = %s }\n"
      "  if not (res and (res.body and #res.body or res.size) == 50000000) then failures = failures + 1 end\n"
      "  big_done = big_done + 1\n"
      "end)\n"
      "lufa.spawn(function()\n"
      "  local res = http.request { url = '%s/bytes?n=50000000', output_file = '%s/big.bin' }\n"
      "  if not (res and res.size == 50000000) then failures = failures + 1 end\n"
      "  big_done = big_done + 1\n"
      "end)\n", transfers, argv[1], delay_ms, argv[1], mode == 2 ? "true" : "false", argv[1], dir);
    if (lufa_spawn_string(host, big, "=poll_latency_big") != LUFA_OK) {
      fprintf(stderr, "%s\n", lufa_last_error(host));
      return 1;
    }
    L = lufa_host_state(host);
    n = 0;
    for (;;) {
      double c0 = cpu_us(), t0 = now_us();
      if (budgeted) lufa_poll_budget(host, 1000);
      else lufa_poll(host, 0);
      double t1 = now_us();
      cpu[n] = cpu_us() - c0;
      lua_getglobal(L, "big_done");
      int done = (int)lua_tointeger(L, -1);
      lua_pop(L, 1);
      if (done >= 2 || n >= MAX_SAMPLES) break;
      samples[n++] = t1 - t0;
      pause_1ms();
    }
    const char *name = mode == 0 ? "big_bodies" : mode == 1 ? "big_bodies_budget" : "big_bodies_parts";
    report(name, samples, n);
    char cpu_name[64];
    snprintf(cpu_name, sizeof cpu_name, "%s_cpu", name);
    report(cpu_name, cpu, n);
    while (lufa_task_count(host) > 0) lufa_poll(host, 100);
    lua_getglobal(L, "failures");
    failures += (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lufa_host_free(host);
    char file[64];
    snprintf(file, sizeof file, "%s/big.bin", dir);
    unlink(file);
    rmdir(dir);
  }

  /* the transfers made by a plugin allowed to reach the server's host */
  char server_host[256] = "127.0.0.1";
  sscanf(argv[1], "http://%255[^:/]", server_host);
  const char *hosts[] = {server_host, NULL};
  host = lufa_host_new();
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.http_hosts = hosts;
  o.name = "transfers";
  o.cpu_budget_ms = 50;  /* the first pump starts every request */
  lufa_plugin *p = lufa_plugin_load_string(host, code, strlen(code), &o);
  if (p == NULL) {
    fprintf(stderr, "%s\n", lufa_last_error(host));
    return 1;
  }
  n = 0;
  while (n < MAX_SAMPLES) {
    double t0 = now_us();
    lufa_poll(host, 0);
    double t1 = now_us();
    if (lufa_plugin_tasks(p, NULL, NULL) < transfers) break;
    samples[n++] = t1 - t0;
    pause_1ms();
  }
  report("plugin_in_flight", samples, n);
  while (lufa_plugin_tasks(p, NULL, NULL) > 0) lufa_poll(host, 100);
  lufa_host_free(host);

  /* ten plugins, each with a task asleep */
  host = lufa_host_new();
  const char *sleeper = "require('lufa').spawn(function() require('lufa').sleep(3600) end)";
  for (int i = 0; i < 10; i++) lufa_plugin_load_string(host, sleeper, strlen(sleeper), NULL);
  n = 0;
  for (int i = 0; i < 2000; i++) {
    double t0 = now_us();
    lufa_poll(host, 0);
    samples[n++] = now_us() - t0;
  }
  report("plugins_idle", samples, n);

  /* the pump that stops a plugin in an endless pcall loop, twenty times */
  lufa_set_error_handler(host, quiet, NULL);
  const char *hog = "require('lufa').spawn(function() require('lufa').sleep(0)\n"
                    "  while true do pcall(function() while true do end end) end end)";
  lufa_plugin_options_init(&o);
  o.cpu_budget_ms = 1;
  n = 0;
  for (int i = 0; i < 20; i++) {
    lufa_plugin *h = lufa_plugin_load_string(host, hog, strlen(hog), &o);
    if (h == NULL) return 1;
    while (lufa_plugin_status(h) == LUFA_PLUGIN_RUNNING) {
      double t0 = now_us();
      lufa_poll(host, 0);
      double t1 = now_us();
      if (lufa_plugin_status(h) == LUFA_PLUGIN_STOPPED) samples[n++] = t1 - t0;
    }
    lufa_plugin_unload(h);
  }
  report("plugin_stop", samples, n);
  lufa_host_free(host);
  free(samples);
  free(cpu);
  if (failures) fprintf(stderr, "%d transfers failed\n", failures);
  return failures ? 1 : 0;
}
