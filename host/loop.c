/*
** The event loop: libcurl's multi interface behind one epoll descriptor (the ephiperfifo model), a timer
** heap, and a queue of tasks ready to resume. Only loop_step resumes Lua code: curl callbacks, timers and
** cancellations merely mark waits done and queue their tasks, so Lua never runs inside a library callback.
*/
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <lauxlib.h>

#include "error.h"
#include "task.h"

struct Loop {
  lua_State *L;           /* the main thread */
  lua_State *driver;      /* the thread whose C code is running the current step */
  CURLM *multi;
  int epfd, timerfd;
  double curl_deadline;   /* when curl wants socket_action(CURL_SOCKET_TIMEOUT); < 0: never */
  double armed;           /* the deadline timerfd is armed for; < 0: disarmed */
  LoopTimer **heap;
  int nheap, capheap;
  unsigned long seq;
  Task *ready_head, *ready_tail;
  int nready;
  int ntasks;
  int ntransfers;
  LoopWatch **watches;    /* descriptors watched for readability or writability (few: a linear scan finds them) */
  int nwatches, capwatches;
  int nwaiting_watches;   /* the watches that are not passive: pending work */
  LoopPrepare *prepares;  /* hooks run at the start of every step */
  unsigned long added;    /* transfers added since the hooks last ran */
  unsigned long steps;
  Task *live_head, *live_tail;  /* unfinished tasks, oldest first */
  int depth;
  int closed;
  int no_driving;
  int skip_closing;
  int uncaught;
  loop_error_fn on_error;
  void *error_ud;
  int (*interrupt_check)(void *ud);
  void *interrupt_ud;
  void (*resume_hook)(void *ud);
  void *resume_ud;
  lua_State *volatile resuming;  /* read from a signal handler (loop_resuming) */
  double budget_end;      /* loop_now() by which a budgeted step stops taking new work; 0: no budget */
  CURL **pending;         /* transfers added in a budgeted step, handed to curl a few per step (admit) */
  int npending, cappending;
  unsigned long pieces;   /* pieces of work this step has taken: the first is taken whatever the budget */
  int first_phase;        /* where the next step begins: the phase a spent budget skipped, so none starves */
};

static const char loop_key = 'L';

double loop_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void loop_arm(Loop *loop);

/* ---- timers: a binary min-heap ordered by (deadline, seq) ---- */

static int timer_less(const LoopTimer *a, const LoopTimer *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_swap(Loop *loop, int i, int j) {
  LoopTimer *t = loop->heap[i];
  loop->heap[i] = loop->heap[j];
  loop->heap[j] = t;
  loop->heap[i]->index = i;
  loop->heap[j]->index = j;
}

static void heap_up(Loop *loop, int i) {
  while (i > 0 && timer_less(loop->heap[i], loop->heap[(i - 1) / 2])) {
    heap_swap(loop, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void heap_down(Loop *loop, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < loop->nheap && timer_less(loop->heap[l], loop->heap[m])) m = l;
    if (r < loop->nheap && timer_less(loop->heap[r], loop->heap[m])) m = r;
    if (m == i) return;
    heap_swap(loop, i, m);
    i = m;
  }
}

void loop_timer_start(Loop *loop, LoopTimer *t, double seconds) {
  if (loop->nheap == loop->capheap) {
    int cap = loop->capheap ? loop->capheap * 2 : 64;
    LoopTimer **h = realloc(loop->heap, (size_t)cap * sizeof *h);
    if (h == NULL) abort();  /* out of memory in the scheduler: nothing sane is left to do */
    loop->heap = h;
    loop->capheap = cap;
  }
  t->deadline = loop_now() + (seconds > 0 ? seconds : 0);
  t->seq = loop->seq++;
  t->index = loop->nheap++;
  loop->heap[t->index] = t;
  heap_up(loop, t->index);
  if (loop->armed < 0 || t->deadline < loop->armed) loop_arm(loop);
}

void loop_timer_stop(Loop *loop, LoopTimer *t) {
  int i = t->index;
  if (i < 0) return;
  t->index = -1;
  if (--loop->nheap == i) return;
  loop->heap[i] = loop->heap[loop->nheap];
  loop->heap[i]->index = i;
  heap_down(loop, i);
  heap_up(loop, i);
}

static void timers_fire(Loop *loop) {
  double now = loop_now();
  while (loop->nheap > 0 && loop->heap[0]->deadline <= now) {
    if (loop_over_budget(loop)) return;  /* still due: the next step fires it */
    LoopTimer *t = loop->heap[0];
    loop_timer_stop(loop, t);
    loop->pieces++;
    t->fire(t);
  }
}

/* ---- curl's side: sockets into epoll, its single timeout into curl_deadline ---- */

static int loop_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  Loop *loop = userp;
  struct epoll_event ev;
  (void)easy;
  (void)socketp;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s, NULL);  /* may already be gone with the socket */
    return 0;
  }
  memset(&ev, 0, sizeof ev);
  ev.data.fd = s;
  ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
  if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, s, &ev);
  return 0;
}

static int loop_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  Loop *loop = userp;
  (void)multi;
  loop->curl_deadline = timeout_ms < 0 ? -1.0 : loop_now() + (double)timeout_ms / 1000.0;
  return 0;
}

int loop_watch(Loop *loop, LoopWatch *w) {
  if (w->active) return 0;
  if (loop->nwatches == loop->capwatches) {
    int cap = loop->capwatches ? loop->capwatches * 2 : 8;
    LoopWatch **a = realloc(loop->watches, (size_t)cap * sizeof *a);
    if (a == NULL) return -1;
    loop->watches = a;
    loop->capwatches = cap;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = w->writable ? EPOLLOUT : EPOLLIN;
  ev.data.fd = w->fd;
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0) return -1;
  loop->watches[loop->nwatches++] = w;
  if (!w->passive) loop->nwaiting_watches++;
  w->active = 1;
  return 0;
}

void loop_unwatch(Loop *loop, LoopWatch *w) {
  if (!w->active) return;
  w->active = 0;
  if (!w->passive) loop->nwaiting_watches--;
  if (loop->epfd >= 0) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
  for (int i = 0; i < loop->nwatches; i++) {
    if (loop->watches[i] == w) {
      loop->watches[i] = loop->watches[--loop->nwatches];
      break;
    }
  }
}

static LoopWatch *watch_of(Loop *loop, int fd) {
  for (int i = 0; i < loop->nwatches; i++)
    if (loop->watches[i]->fd == fd) return loop->watches[i];
  return NULL;
}

/* New transfers handed to curl per budgeted step: curl starts every handle it was given (resolving,
** connecting) within one call that nothing can cut, some 70 µs each on a virtual machine. */
#define ADMIT_PER_STEP 4

CURLMcode loop_add_transfer(Loop *loop, CURL *easy, LoopTransfer *t) {
  curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *)t);
  if (loop->budget_end > 0) {  /* a budgeted step: curl gets it in a coming step's admit */
    if (loop->npending == loop->cappending) {
      int cap = loop->cappending ? loop->cappending * 2 : 16;
      CURL **a = realloc(loop->pending, (size_t)cap * sizeof *a);
      if (a == NULL) return CURLM_OUT_OF_MEMORY;
      loop->pending = a;
      loop->cappending = cap;
    }
    loop->pending[loop->npending++] = easy;
    loop->ntransfers++;
    return CURLM_OK;
  }
  CURLMcode rc = curl_multi_add_handle(loop->multi, easy);
  if (rc == CURLM_OK) {
    loop->ntransfers++;
    loop->added++;
  }
  return rc;
}

void loop_remove_transfer(Loop *loop, CURL *easy) {
  if (loop->closed) return;
  for (int i = 0; i < loop->npending; i++) {
    if (loop->pending[i] == easy) {  /* never handed to curl */
      memmove(loop->pending + i, loop->pending + i + 1,
              (size_t)(loop->npending - i - 1) * sizeof *loop->pending);
      loop->npending--;
      loop->ntransfers--;
      return;
    }
  }
  if (curl_multi_remove_handle(loop->multi, easy) == CURLM_OK) loop->ntransfers--;
}

/* Hands waiting transfers to curl, oldest first: a few in a budgeted step, all in another. */
static void transfers_admit(Loop *loop) {
  int n = loop->budget_end > 0 && loop->npending > ADMIT_PER_STEP ? ADMIT_PER_STEP : loop->npending;
  for (int i = 0; i < n; i++) {
    CURL *easy = loop->pending[i];
    if (curl_multi_add_handle(loop->multi, easy) == CURLM_OK) {
      loop->added++;
      continue;
    }
    LoopTransfer *t = NULL;  /* curl refused it (out of memory): it ends here, as a failed transfer */
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    loop->ntransfers--;
    if (t) t->done(t, CURLE_OUT_OF_MEMORY);
  }
  loop->npending -= n;
  memmove(loop->pending, loop->pending + n, (size_t)loop->npending * sizeof *loop->pending);
}

static void transfers_finish(Loop *loop) {
  CURLMsg *msg;
  int left;
  while (!loop_over_budget(loop) && (msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;  /* msg is invalid once the handle is removed: copy what we need */
    CURLcode result = msg->data.result;
    LoopTransfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(loop->multi, easy);
    loop->ntransfers--;
    loop->pieces++;
    if (t) t->done(t, result);
  }
}

/* ---- prepare hooks ---- */

void loop_prepare_add(Loop *loop, LoopPrepare *p) {
  if (p->active || loop->closed) return;
  p->prev = NULL;
  p->next = loop->prepares;
  if (loop->prepares) loop->prepares->prev = p;
  loop->prepares = p;
  p->active = 1;
}

void loop_prepare_remove(Loop *loop, LoopPrepare *p) {
  if (!p->active) return;
  if (p->prev) p->prev->next = p->next;
  else loop->prepares = p->next;
  if (p->next) p->next->prev = p->prev;
  p->next = p->prev = NULL;
  p->active = 0;
}

/* next is read before each call, so a hook may remove itself. */
static void prepares_run(Loop *loop, int quiet) {
  loop->added = 0;
  for (LoopPrepare *p = loop->prepares, *next; p != NULL; p = next) {
    next = p->next;
    p->fn(p, quiet);
  }
}

/* ---- the ready queue and resuming tasks ---- */

void loop_wake(Loop *loop, LoopWait *w) {
  if (w->done) return;
  w->done = 1;
  Task *t = w->task;
  if (t == NULL || w->driven || t->state != TASK_WAITING) return;
  t->state = TASK_READY;
  t->next_ready = NULL;
  if (loop->ready_tail) loop->ready_tail->next_ready = t;
  else loop->ready_head = t;
  loop->ready_tail = t;
  loop->nready++;
}

static void ready_push(Loop *loop, Task *t) {
  t->state = TASK_WAITING;  /* loop_wake queues only waiting tasks */
  LoopWait none = {0};
  none.task = t;
  loop_wake(loop, &none);
}

static Task *ready_pop(Loop *loop) {
  Task *t = loop->ready_head;
  if (t == NULL) return NULL;
  loop->ready_head = t->next_ready;
  if (loop->ready_head == NULL) loop->ready_tail = NULL;
  loop->nready--;
  t->next_ready = NULL;
  return t;
}

static void ready_remove(Loop *loop, Task *t) {
  Task **p = &loop->ready_head, *prev = NULL;
  while (*p && *p != t) {
    prev = *p;
    p = &(*p)->next_ready;
  }
  if (*p == NULL) return;
  *p = t->next_ready;
  if (loop->ready_tail == t) loop->ready_tail = prev;
  loop->nready--;
  t->next_ready = NULL;
}

/* The error value at the top of L as text for a report, honouring __tostring. */
static const char *error_text(lua_State *L, int idx) {
  if (luaL_callmeta(L, idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return lua_tostring(L, -1);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  return lua_tostring(L, -1);
}

static void default_error_handler(void *ud, const char *message) {
  (void)ud;
  fprintf(stderr, "lufa: uncaught error in task: %s\n", message);
  fflush(stderr);
}

/* Ends a task: stores its results (or error) in its userdata, wakes joiners, drops its anchors. */
static void task_finish(Loop *loop, Task *t, lua_State *D, enum task_state state) {
  t->state = state;
  loop->ntasks--;
  if (t->live_prev) t->live_prev->live_next = t->live_next;
  else loop->live_head = t->live_next;
  if (t->live_next) t->live_next->live_prev = t->live_prev;
  else loop->live_tail = t->live_prev;
  t->live_prev = t->live_next = NULL;
  lua_pushnil(D);
  lua_rawsetp(D, LUA_REGISTRYINDEX, t->co);  /* forget the thread -> task mapping, see task_of */
  while (t->joiners) {
    TaskJoin *j = t->joiners;
    task_unjoin(j);
    loop_wake(loop, &j->wait);
  }
  luaL_unref(D, LUA_REGISTRYINDEX, t->ref);
  t->ref = LUA_NOREF;
}

static void task_resume(Loop *loop, Task *t) {
  lua_State *D = loop->driver ? loop->driver : loop->L;
  lua_State *co = t->co;
  int nargs = 0, nres = 0, status;
  luaL_checkstack(D, 8, "resuming a task");
  lua_rawgeti(D, LUA_REGISTRYINDEX, t->ref);  /* the task userdata, kept on D while we work */
  int ud = lua_gettop(D);
  if (!t->started) {
    t->started = 1;
    nargs = t->nargs;
    if (t->cancelled) {  /* cancelled before it ever ran: its body never starts */
      lua_settop(co, 0);
      lufa_error_push(D, "task", "cancelled", "task cancelled%s%s", t->reason ? ": " : "", t->reason ? t->reason : "");
      lua_setiuservalue(D, ud, 2);
      lua_pushboolean(D, 1);
      lua_setiuservalue(D, ud, 3);
      task_finish(loop, t, D, TASK_CANCELLED);
      lua_settop(D, ud - 1);
      return;
    }
  }
  t->state = TASK_RUNNING;
  lua_State *outer = loop->resuming;
  loop->resuming = co;
  status = lua_resume(co, D, nargs, &nres);
  loop->resuming = outer;
  if (status == LUA_YIELD) {
    if (t->state == TASK_RUNNING) {  /* a plain coroutine.yield(): give others a turn, then continue */
      lua_pop(co, nres);
      ready_push(loop, t);
    }
  } else if (status == LUA_OK) {
    luaL_checkstack(D, nres + 2, "too many results from a task");
    lua_createtable(D, nres, 1);
    lua_xmove(co, D, nres);
    for (int i = nres; i >= 1; i--) lua_rawseti(D, ud + 1, i);
    lua_pushinteger(D, nres);
    lua_setfield(D, ud + 1, "n");
    lua_setiuservalue(D, ud, 2);
    task_finish(loop, t, D, TASK_DONE);
  } else {
    lua_xmove(co, D, 1);  /* the error value */
    int errv = lua_gettop(D);
    int cancelled = t->cancelled;
    const char *msg = error_text(D, errv);
    luaL_traceback(D, co, msg, 0);
    lua_pushvalue(D, errv);
    lua_setiuservalue(D, ud, 2);
    lua_pushboolean(D, 1);
    lua_setiuservalue(D, ud, 3);  /* marks the stored value as an error */
    int unobserved = t->joiners == NULL && !cancelled;
    if (!loop->skip_closing) lua_resetthread(co);  /* closes its pending to-be-closed variables */
    task_finish(loop, t, D, cancelled ? TASK_CANCELLED : TASK_FAILED);
    if (unobserved) {
      loop->uncaught++;
      (loop->on_error ? loop->on_error : default_error_handler)(loop->error_ud, lua_tostring(D, -1));
    }
  }
  lua_settop(D, ud - 1);
}

static void tasks_run_ready(Loop *loop) {
  int n = loop->nready;  /* only those ready now: a task that keeps yielding cannot starve the loop */
  while (n-- > 0) {
    if (loop_over_budget(loop)) return;  /* the rest stay queued, in order, for the next step */
    Task *t = ready_pop(loop);
    if (t == NULL) break;
    if (loop->resume_hook) loop->resume_hook(loop->resume_ud);
    loop->pieces++;
    task_resume(loop, t);
  }
}

/* ---- stepping ---- */

int loop_has_work(Loop *loop) {
  return loop->nready > 0 || loop->nheap > 0 || loop->ntransfers > 0 || loop->curl_deadline >= 0 ||
         loop->nwaiting_watches > 0;
}

static double loop_deadline(Loop *loop) {
  double d = -1;
  if (loop->nheap > 0) d = loop->heap[0]->deadline;
  if (loop->curl_deadline >= 0 && (d < 0 || loop->curl_deadline < d)) d = loop->curl_deadline;
  return d;
}

int loop_next_timeout(Loop *loop) {
  if (loop->nready > 0 || loop->npending > 0) return 0;
  double d = loop_deadline(loop);
  if (d < 0) return -1;
  double ms = (d - loop_now()) * 1000.0;
  if (ms <= 0) return 0;
  if (ms > 86400000.0) return 86400000;
  return (int)ms + 1;  /* round up: waking early would only spin */
}

/* Keeps timerfd armed for the earliest deadline, so an application sleeping on loop_fd wakes in time. */
static void loop_arm(Loop *loop) {
  double d = loop_deadline(loop);
  if (d == loop->armed) return;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (d >= 0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double rel = d - loop_now();
    if (rel < 1e-6) rel = 1e-6;
    if (rel > 86400.0) rel = 86400.0;  /* lufa.sleep(math.huge): re-armed at every step anyway */
    its.it_value.tv_sec = (time_t)rel;
    its.it_value.tv_nsec = (long)((rel - (double)(time_t)rel) * 1e9);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  }
  timerfd_settime(loop->timerfd, 0, &its, NULL);
  loop->armed = d;
}

int loop_over_budget(Loop *loop) {
  return loop->budget_end > 0 && loop->pieces > 0 && loop_now() >= loop->budget_end;
}

int loop_budgeted(Loop *loop) {
  return loop->budget_end > 0;
}

void loop_set_budget(Loop *loop, double deadline) {
  loop->budget_end = deadline;
}

/* Hands epoll's events to their watches and to curl. Returns early once the budget is spent: epoll is
** level-triggered, so the sockets left over are reported again by the next step's epoll_wait. */
static void events_dispatch(Loop *loop, struct epoll_event *evs, int n) {
  int running;
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    if (fd == loop->timerfd) {
      uint64_t expirations;
      if (read(fd, &expirations, sizeof expirations) < 0) { /* spurious: nothing to drain */ }
      loop->armed = -1;
      continue;
    }
    if (loop_over_budget(loop)) continue;  /* the timerfd is still drained, so it cannot spin */
    LoopWatch *w = loop->nwatches ? watch_of(loop, fd) : NULL;
    if (w) {
      loop->pieces++;
      w->ready(w);
      continue;
    }
    int flags = 0;
    if (evs[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (evs[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (evs[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    loop->pieces++;
    curl_multi_socket_action(loop->multi, fd, flags, &running);
  }
  if (!loop_over_budget(loop) && loop->curl_deadline >= 0 && loop_now() >= loop->curl_deadline) {
    loop->curl_deadline = -1;
    loop->pieces++;
    curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
}

enum { PHASE_EVENTS, PHASE_FINISHED, PHASE_TIMERS, PHASE_TASKS, NPHASES };

int loop_step(Loop *loop, int timeout_ms) {
  struct epoll_event evs[64];
  loop->steps++;
  loop->pieces = 0;
  /* before any I/O that the previous step's Lua code asked for can happen */
  prepares_run(loop, loop->nready > 0 && loop->added == 0 && loop->npending == 0);
  if (loop->npending > 0) transfers_admit(loop);
  int t = loop_next_timeout(loop);
  if (timeout_ms >= 0 && (t < 0 || t > timeout_ms)) t = timeout_ms;
  if (t < 0 && !loop_has_work(loop)) t = 0;  /* nothing can ever wake us: do not block */
  if (loop->budget_end > 0) t = 0;            /* a budgeted step never sleeps */
  loop->depth++;
  int n = epoll_wait(loop->epfd, evs, 64, t);
  int start = loop->first_phase, skipped = -1;
  loop->first_phase = PHASE_EVENTS;
  for (int k = 0; k < NPHASES; k++) {
    int phase = (start + k) % NPHASES;
    if (skipped < 0 && loop_over_budget(loop)) skipped = phase;
    switch (phase) {
      case PHASE_EVENTS: events_dispatch(loop, evs, n); break;  /* drains the timerfd even when skipped */
      case PHASE_FINISHED: transfers_finish(loop); break;
      case PHASE_TIMERS: timers_fire(loop); break;
      default: tasks_run_ready(loop); break;
    }
  }
  if (skipped >= 0) loop->first_phase = skipped;
  loop_arm(loop);
  loop->depth--;
  return loop->ntasks;
}

unsigned long loop_steps(Loop *loop) {
  return loop->steps;
}

void loop_recover(Loop *loop) {
  loop->depth = 0;
  loop->driver = NULL;
}

int loop_fd(Loop *loop) {
  return loop->epfd;
}

int loop_task_count(Loop *loop) {
  return loop->ntasks;
}

int loop_running(Loop *loop) {
  return loop->depth > 0;
}

void loop_forbid_driving(Loop *loop) {
  loop->no_driving = 1;
}

void loop_skip_closing(Loop *loop, int skip) {
  loop->skip_closing = skip;
}

void loop_set_error_handler(Loop *loop, loop_error_fn fn, void *ud) {
  loop->on_error = fn;
  loop->error_ud = ud;
}

lua_State *loop_resuming(Loop *loop) {
  return loop->resuming;
}

void loop_set_resume_hook(Loop *loop, void (*fn)(void *ud), void *ud) {
  loop->resume_hook = fn;
  loop->resume_ud = ud;
}

void loop_set_interrupt_check(Loop *loop, int (*check)(void *ud), void *ud) {
  loop->interrupt_check = check;
  loop->interrupt_ud = ud;
}

int loop_uncaught_errors(Loop *loop) {
  return loop->uncaught;
}

/* ---- waiting ---- */

void loop_wait_init(lua_State *L, LoopWait *w) {
  memset(w, 0, sizeof *w);
  w->task = task_of(L);
  if (w->task && w->task->cancelled) task_raise_cancelled(L, w->task);
}

static int loop_wait_k(lua_State *L, int status, lua_KContext ctx) {
  LoopWait *w = (LoopWait *)ctx;
  Task *t = w->task;
  (void)status;
  t->wait = NULL;
  if (t->cancelled) return task_raise_cancelled(L, t);
  return w->results(L, w);
}

int loop_wait(lua_State *L, LoopWait *w) {
  Loop *loop = loop_get(L);
  Task *t = w->task;
  if (w->done) return w->results(L, w);
  if (t && t->co == L && lua_isyieldable(L)) {
    t->state = TASK_WAITING;
    t->wait = w;
    return lua_yieldk(L, 0, (lua_KContext)w, loop_wait_k);
  }
  /* Not inside a task (or not yieldable here): drive the loop until this wait is over. */
  if (loop->no_driving) {
    if (w->cancel) w->cancel(w);
    return luaL_error(L, "cannot wait here: only a task can wait in a plugin, and not inside a metamethod or "
                         "a callback from C (such as a string.gsub or table.sort function)");
  }
  w->driven = 1;
  if (t) t->wait = w;
  lua_State *saved = loop->driver;
  loop->driver = L;
  while (!w->done) {
    if (!loop_has_work(loop)) {
      loop->driver = saved;
      if (t) t->wait = NULL;
      return luaL_error(L, "deadlock: waiting for work that nothing can finish");
    }
    loop_step(loop, -1);
    if (t == NULL && !w->done && loop->interrupt_check && loop->interrupt_check(loop->interrupt_ud)) {
      if (w->cancel) w->cancel(w);  /* as task_cancel does: the pending work must not outlive the wait */
      loop->driver = saved;
      lua_pushliteral(L, "interrupted");  /* no position: the wait is where the user pressed Ctrl-C */
      return lua_error(L);
    }
  }
  loop->driver = saved;
  if (t) {
    t->wait = NULL;
    if (t->cancelled) return task_raise_cancelled(L, t);
  }
  return w->results(L, w);
}

/* ---- creation and teardown ---- */

static int loop_gc(lua_State *L) {
  Loop *loop = lua_touserdata(L, 1);
  loop_close(loop);
  return 0;
}

void loop_close(Loop *loop) {
  if (loop->closed) return;
  prepares_run(loop, 0);
  while (loop->prepares) loop_prepare_remove(loop, loop->prepares);
  loop->closed = 1;
  /* Transfers still attached are removed by their owners' finalizers, which check loop->closed;
  ** curl_multi_cleanup leaves easy handles usable, so cleaning them up later stays safe. */
  if (loop->multi) curl_multi_cleanup(loop->multi);
  loop->multi = NULL;
  if (loop->epfd >= 0) close(loop->epfd);
  if (loop->timerfd >= 0) close(loop->timerfd);
  loop->epfd = loop->timerfd = -1;
  free(loop->heap);
  loop->heap = NULL;
  free(loop->pending);
  loop->pending = NULL;
  loop->npending = loop->cappending = 0;
  for (int i = 0; i < loop->nwatches; i++) loop->watches[i]->active = 0;
  free(loop->watches);
  loop->watches = NULL;
  loop->nwatches = loop->capwatches = loop->nwaiting_watches = 0;
  loop->nheap = loop->capheap = 0;
}

Loop *loop_get(lua_State *L) {
  static int curl_ready;
  Loop *loop;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &loop_key) == LUA_TUSERDATA) {
    loop = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return loop;
  }
  lua_pop(L, 1);
  if (!curl_ready) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ready = 1;
  }
  loop = lua_newuserdatauv(L, sizeof *loop, 0);
  memset(loop, 0, sizeof *loop);
  loop->epfd = loop->timerfd = -1;
  loop->curl_deadline = -1;
  loop->armed = -1;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  loop->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  loop->multi = curl_multi_init();
  if (loop->epfd < 0 || loop->timerfd < 0 || loop->multi == NULL)
    luaL_error(L, "cannot create the event loop: %s", strerror(errno));  /* __gc releases what was made */
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.fd = loop->timerfd;
  epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->timerfd, &ev);
  curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, loop_socket_cb);
  curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
  curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, loop_timer_cb);
  curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  loop->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &loop_key);
  return loop;
}

/* ---- tasks ---- */

Task *task_of(lua_State *L) {
  Task *t = NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, L) == LUA_TUSERDATA)
    t = luaL_testudata(L, -1, LUFA_TASK_MT);
  lua_pop(L, 1);
  return t;
}

Task *task_spawn(lua_State *L, int nargs) {
  Loop *loop = loop_get(L);
  int fn = lua_gettop(L) - nargs;
  luaL_checktype(L, fn, LUA_TFUNCTION);
  Task *t = lua_newuserdatauv(L, sizeof *t, 3);
  memset(t, 0, sizeof *t);
  t->loop = loop;
  t->ref = LUA_NOREF;
  luaL_setmetatable(L, LUFA_TASK_MT);
  lua_State *co = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  t->co = co;
  /* move the function and its arguments onto the new thread */
  lua_rotate(L, fn, 1);                /* task userdata below the function */
  lua_xmove(L, co, nargs + 1);
  t->nargs = nargs;
  lua_pushvalue(L, -1);
  t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, co);  /* thread -> task, for task_of */
  loop->ntasks++;
  t->live_prev = loop->live_tail;
  if (loop->live_tail) loop->live_tail->live_next = t;
  else loop->live_head = t;
  loop->live_tail = t;
  t->state = TASK_WAITING;
  LoopWait start = {0};
  start.task = t;
  loop_wake(loop, &start);
  return t;
}

void task_start_now(Task *t) {
  Loop *loop = t->loop;
  if (t->state != TASK_READY) return;
  ready_remove(loop, t);
  loop->depth++;
  task_resume(loop, t);
  loop->depth--;
}

void task_cancel(Task *t, const char *reason) {
  Loop *loop = t->loop;
  if (t->state == TASK_DONE || t->state == TASK_FAILED || t->state == TASK_CANCELLED || t->cancelled) return;
  t->cancelled = 1;
  if (reason) t->reason = strdup(reason);
  if (!t->started) return;  /* still queued: task_resume ends it without running its body */
  if (t->wait) {
    LoopWait *w = t->wait;
    if (w->cancel) w->cancel(w);
    loop_wake(loop, w);
  }
}

void loop_each_task(Loop *loop, void (*fn)(Task *t, void *ud), void *ud) {
  for (Task *t = loop->live_head, *next; t != NULL; t = next) {
    next = t->live_next;  /* read first: fn may end t (a task cancelled before it started stays listed) */
    fn(t, ud);
  }
}

static void cancel_one(Task *t, void *reason) {
  task_cancel(t, reason);
}

void loop_cancel_all(Loop *loop, const char *reason) {
  loop_each_task(loop, cancel_one, (void *)reason);
}

int task_raise_cancelled(lua_State *L, Task *t) {
  lufa_error_push(L, "task", "cancelled", "task cancelled%s%s", t->reason ? ": " : "", t->reason ? t->reason : "");
  return lua_error(L);
}

void task_join(Task *target, TaskJoin *j) {
  j->target = target;
  j->prev = NULL;
  j->next = target->joiners;
  if (target->joiners) target->joiners->prev = j;
  target->joiners = j;
}

void task_unjoin(TaskJoin *j) {
  if (j->target == NULL) return;
  if (j->prev) j->prev->next = j->next;
  else j->target->joiners = j->next;
  if (j->next) j->next->prev = j->prev;
  j->target = NULL;
  j->prev = j->next = NULL;
}
