/*
** Embedding lufa in an application that owns its main loop: a 60 Hz frame loop pumps the host with
** lufa_poll(host, 0), which never blocks, and sleeps on its own between frames.
**
** The script starts three tasks that sleep for different times; the frames go on while they wait.
** Exits 0 once every task is done and the frame loop has kept its pace.
*/
#include <stdio.h>
#include <time.h>

#include <lauxlib.h>

#include "lufa.h"

static const char *script =
  "local lufa = require 'lufa'\n"
  "done = {}\n"
  "for i, delay in ipairs{0.05, 0.10, 0.15} do\n"
  "  lufa.spawn(function() lufa.sleep(delay); done[#done + 1] = i end)\n"
  "end\n";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_error(lufa_host *host, const char *message, void *ud) {
  (void)host;
  (void)ud;
  fprintf(stderr, "task failed: %s\n", message);
}

int main(void) {
  lufa_host *host = lufa_host_new();
  if (host == NULL) return 1;
  lufa_set_error_handler(host, on_error, NULL);
  if (lufa_spawn_string(host, script, "=frame_loop") != LUFA_OK) {
    fprintf(stderr, "%s\n", lufa_last_error(host));
    lufa_host_free(host);
    return 1;
  }
  const double frame = 1.0 / 60.0;
  double start = now(), worst = 0;
  int frames = 0;
  while (lufa_task_count(host) > 0 && frames < 600) {
    double t0 = now();
    if (lufa_poll(host, 0) < 0) break;  /* the host's share of the frame: never blocks */
    double spent = now() - t0;
    if (spent > worst) worst = spent;
    /* ... the application's own update and render would go here ... */
    frames++;
    double wait = start + frames * frame - now();
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  lua_State *L = lufa_host_state(host);
  lua_getglobal(L, "done");
  lua_Integer finished = luaL_len(L, -1);
  lua_pop(L, 1);
  printf("%d frames, %lld tasks finished, longest lufa_poll %.3f ms\n", frames, (long long)finished, worst * 1000);
  int ok = finished == 3 && lufa_task_count(host) == 0;
  lufa_host_free(host);
  return ok ? 0 : 1;
}
