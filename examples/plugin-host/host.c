/*
** A 60 Hz plugin host: loads every .lua file of a folder as a sandboxed plugin, calls each one's update()
** once a frame, pumps them with lufa_poll(host, 0), reloads a plugin when its file changes, and prints
** each plugin's budget use once a second. Hostile plugins (plugins/spinner.lua loops forever,
** plugins/hoarder.lua allocates without bound) are stopped by their budgets; the frames go on.
**
** Usage: plugin_host [FOLDER] [SECONDS]   (defaults: examples/plugin-host/plugins, run until interrupted)
** Exits 0 when it ran its time with every plugin that misbehaved stopped and the others still running.
*/
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lufa.h"

#define MAX_PLUGINS 32

typedef struct {
  lufa_plugin *plugin;
  char path[1024];
  struct timespec mtime;
} Loaded;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_error(lufa_host *host, const char *message, void *ud) {
  (void)host;
  (void)ud;
  fprintf(stderr, "plugin error: %s\n", message);
}

static int modified(Loaded *l) {
  struct stat st;
  if (stat(l->path, &st) != 0) return 0;
  int changed = st.st_mtim.tv_sec != l->mtime.tv_sec || st.st_mtim.tv_nsec != l->mtime.tv_nsec;
  l->mtime = st.st_mtim;
  return changed;
}

static int load_folder(lufa_host *host, const char *folder, Loaded *loaded) {
  DIR *d = opendir(folder);
  if (d == NULL) {
    perror(folder);
    return -1;
  }
  int n = 0;
  struct dirent *e;
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.cpu_budget_ms = 2;                 /* of a 16.7 ms frame */
  o.memory_limit = (size_t)16 << 20;
  while ((e = readdir(d)) != NULL && n < MAX_PLUGINS) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".lua") != 0) continue;
    Loaded *l = &loaded[n];
    snprintf(l->path, sizeof l->path, "%s/%s", folder, e->d_name);
    modified(l);
    l->plugin = lufa_plugin_load_file(host, l->path, &o);
    if (l->plugin == NULL) {
      fprintf(stderr, "cannot load %s: %s\n", l->path, lufa_last_error(host));
      continue;
    }
    printf("loaded %s\n", lufa_plugin_name(l->plugin));
    n++;
  }
  closedir(d);
  return n;
}

static void print_usage(lufa_host *host, int frame, double worst_frame_ms) {
  printf("frame %5d, longest frame so far %.2f ms\n", frame, worst_frame_ms);
  for (lufa_plugin *p = lufa_plugin_first(host); p; p = lufa_plugin_next(p)) {
    lufa_plugin_usage u;
    lufa_plugin_get_usage(p, &u);
    printf("  %-10s %-8s pump %.3f ms (max %.3f of %.1f)  memory %6.1f KiB (peak %.1f of %.0f)  tasks %d%s%s\n",
           lufa_plugin_name(p), lufa_plugin_status(p) == LUFA_PLUGIN_RUNNING ? "running" : "STOPPED",
           u.last_pump_ms, u.max_pump_ms, u.budget_ms, (double)u.memory / 1024, (double)u.memory_peak / 1024,
           (double)u.memory_limit / 1024, lufa_plugin_tasks(p, NULL, NULL),
           lufa_plugin_status(p) == LUFA_PLUGIN_RUNNING ? "" : ": ", lufa_plugin_stop_reason(p));
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *folder = argc > 1 ? argv[1] : "examples/plugin-host/plugins";
  double seconds = argc > 2 ? atof(argv[2]) : -1;
  signal(SIGINT, on_signal);
  lufa_host *host = lufa_host_new();
  if (host == NULL) return 1;
  lufa_set_error_handler(host, on_error, NULL);
  Loaded loaded[MAX_PLUGINS];
  memset(loaded, 0, sizeof loaded);
  int n = load_folder(host, folder, loaded);
  if (n <= 0) {
    lufa_host_free(host);
    return 1;
  }
  const double frame = 1.0 / 60.0;
  double start = now(), worst = 0;
  int frames = 0;
  while (!interrupted && (seconds < 0 || now() - start < seconds)) {
    double t0 = now();
    for (int i = 0; i < n; i++)
      if (lufa_plugin_status(loaded[i].plugin) == LUFA_PLUGIN_RUNNING) lufa_plugin_call(loaded[i].plugin, "update");
    lufa_poll(host, 0);  /* every plugin's tasks, each within its budget */
    /* ... the application's own update and render would go here ... */
    frames++;
    if (frames % 30 == 0) {
      for (int i = 0; i < n; i++) {
        if (!modified(&loaded[i])) continue;
        if (lufa_plugin_reload_file(loaded[i].plugin, NULL) == LUFA_OK)
          printf("reloaded %s\n", lufa_plugin_name(loaded[i].plugin));
        else
          fprintf(stderr, "reloading %s failed (the old version keeps running): %s\n", loaded[i].path,
                  lufa_last_error(host));
      }
    }
    double spent = now() - t0;
    if (spent > worst) worst = spent;
    if (frames % 60 == 0) print_usage(host, frames, worst * 1000);
    double wait = start + frames * frame - now();
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  print_usage(host, frames, worst * 1000);
  /* success: the hostile plugins are stopped, the others run */
  int ok = 1;
  for (int i = 0; i < n; i++) {
    const char *name = lufa_plugin_name(loaded[i].plugin);
    int hostile = strcmp(name, "spinner") == 0 || strcmp(name, "hoarder") == 0;
    if ((lufa_plugin_status(loaded[i].plugin) == LUFA_PLUGIN_STOPPED) != hostile) ok = 0;
  }
  lufa_host_free(host);
  return ok ? 0 : 1;
}
