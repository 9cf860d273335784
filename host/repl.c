/*
** The interactive prompt. libedit reads the line, but its character source is ours (EL_GETCFN): while no
** key is pressed, repl_getc waits on stdin, the loop's descriptor and a signal pipe together and pumps the
** loop, so tasks, timers and transfers started at the prompt go on running while it waits. Lua runs only
** here, between keys, never inside the loop's callbacks or a signal handler.
**
** Ctrl-C: at the prompt the signal handler only writes the pipe and repl_getc hands libedit a ^C bound to
** "lufa-interrupt", which drops the line. While a chunk runs, the handler also sets a Lua hook (as lua.c
** does) that raises "interrupted" at the next instruction, and a wait the chunk drives (lufa.sleep,
** task:wait()) is cancelled through loop_set_interrupt_check. The process does not die of it, unless a
** second Ctrl-C comes while a chunk runs before the first was taken (a long native call): that one ends
** the process, as a second SIGINT does under lufa.on_interrupt. A task that is running when Ctrl-C comes
** (one spinning without ever waiting would block the prompt) gets the same hook and fails "interrupted".
**
** Without a terminal on stdin (or with TERM=dumb) lines are read plainly, still pumping the loop between
** them, and no escape codes are written; without a terminal no prompt is printed either.
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <sys/stat.h>

#include <histedit.h>
#include <lauxlib.h>

#include "loop.h"
#include "repl.h"

#define HISTORY_SIZE 1000
#define CTRL_C 3

typedef struct Repl {
  lufa_host *host;
  lua_State *L;
  Loop *loop;
  const char *progname;
  int session;              /* registry reference of the lufa.repl session */
  int editing;              /* libedit drives the terminal */
  int prompting;            /* prompts are printed (stdin is a terminal) */
  EditLine *el;
  History *hist;
  char history_path[PATH_MAX];
  mbstate_t mb;
  int line_dropped;         /* the line ended by Ctrl-C, not Enter */
  int reading;              /* el_gets is editing a line (nothing to hide otherwise) */
  int line_hidden;          /* the line was cleared for a task's output and must be drawn again */
  int eof_warned;           /* Ctrl-D once with tasks running */
  int failed;               /* a chunk failed (reported when stdin is not a terminal) */
  char *pending;            /* plain mode: bytes read past the current line */
  size_t npending, cappending;
  int stdin_done;
} Repl;

/* ---- signals: the handler only records and writes a pipe ---- */

static int signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t interrupt_pending, resize_pending, chunk_running;
static lua_State *running_state;
static Loop *running_loop;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  interrupt_pending = 0;
  luaL_error(L, "interrupted");
}

static void on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;
  if (sig == SIGINT) {
    if (interrupt_pending && chunk_running) {
      /* the first Ctrl-C was not taken (a task busy in Lua, a long native call): this one ends lufa */
      signal(SIGINT, SIG_DFL);
      raise(SIGINT);
    }
    interrupt_pending = 1;
    /* lua_sethook is safe to call from a signal handler (lua.c relies on it) */
    int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;
    if (chunk_running) lua_sethook(running_state, stop_hook, mask, 1);
    /* a task running now is stopped too: it may be the one that never waits; it is alive while resumed */
    lua_State *task = running_loop ? loop_resuming(running_loop) : NULL;
    if (task) lua_sethook(task, stop_hook, mask, 1);
  } else {
    resize_pending = 1;
  }
  if (write(signal_pipe[1], &c, 1) < 0) { /* the pipe is full: a wake-up is already pending */ }
  errno = saved;
}

static void install_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);  /* no SA_RESTART: a blocked wait must wake up */
  sigaction(SIGWINCH, &sa, NULL);
}

static void drain_signal_pipe(void) {
  char buf[64];
  while (read(signal_pipe[0], buf, sizeof buf) > 0) {}
}

static void signal_watch_ready(LoopWatch *w) {
  (void)w;
  drain_signal_pipe();  /* the flags say what happened; the pipe only woke the loop */
}

/* The loop asks after each step of a wait the chunk drives: Ctrl-C cancels it. */
static int interrupt_check(void *ud) {
  (void)ud;
  if (!interrupt_pending || !chunk_running) return 0;
  interrupt_pending = 0;
  lua_sethook(running_state, NULL, 0, 0);
  return 1;
}

/* ---- calls into the Lua session ---- */

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Calls session:method(args on the stack) protected; leaves nres results, or returns 0 after reporting. */
static int session_call(Repl *r, const char *method, int nargs, int nres) {
  lua_State *L = r->L;
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->session);
  lua_getfield(L, -1, method);
  lua_insert(L, -2);  /* function, self */
  lua_rotate(L, base + 1, 3);  /* traceback, function, self, args */
  if (lua_pcall(L, nargs + 1, nres, base + 1) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", r->progname, lua_tostring(L, -1));
    fflush(stderr);
    lua_settop(L, base);
    return 0;
  }
  lua_remove(L, base + 1);
  return 1;
}

static const char *session_string(Repl *r, const char *method, char *buf, size_t size) {
  buf[0] = '\0';
  if (session_call(r, method, 0, 1)) {
    const char *s = lua_tostring(r->L, -1);
    if (s) snprintf(buf, size, "%s", s);
    lua_pop(r->L, 1);
  }
  return buf;
}

/* Before a task runs at the prompt (it may print): the line being edited is cleared, to be drawn again
** after the step. A transfer progressing resumes no task, so it redraws nothing. */
static void hide_line(void *ud) {
  Repl *r = ud;
  if (!r->editing || r->line_hidden || !r->reading) return;
  fputs("\r\033[K", stdout);
  fflush(stdout);
  r->line_hidden = 1;
}

/* Notices from the session (tasks started at the prompt that ended), printed above the prompt. */
static void print_notices(Repl *r) {
  char buf[4096];
  session_string(r, "notices", buf, sizeof buf);
  if (buf[0] == '\0') return;
  hide_line(r);
  fputs(buf, stdout);
  fflush(stdout);
}

/* ---- history ---- */

static void history_locate(Repl *r) {
  const char *state = getenv("XDG_STATE_HOME");
  const char *home = getenv("HOME");
  char dir[PATH_MAX - 16];  /* room for "/history" in history_path */
  r->history_path[0] = '\0';
  if (state && state[0] == '/') snprintf(dir, sizeof dir, "%s/lufa", state);
  else if (home && home[0]) snprintf(dir, sizeof dir, "%s/.local/state/lufa", home);
  else return;
  /* create the folders one by one, private to the user */
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(dir, 0700);
    *p = '/';
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return;
  snprintf(r->history_path, sizeof r->history_path, "%s/history", dir);
}

/* Rewrites the whole file (small: HISTORY_SIZE lines) so every line survives a crash; mode 0600 always. */
static void history_save(Repl *r) {
  HistEvent ev;
  if (r->history_path[0] == '\0') return;
  int fd = open(r->history_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  fchmod(fd, 0600);
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    return;
  }
  history(r->hist, &ev, H_SAVE_FP, f);
  fclose(f);
}

static void history_add(Repl *r, const char *line) {
  HistEvent ev;
  if (r->hist == NULL || line[strspn(line, " \t")] == '\0') return;
  lua_pushstring(r->L, line);
  if (!session_call(r, "remember", 1, 1)) return;
  int keep = lua_toboolean(r->L, -1);
  lua_pop(r->L, 1);
  if (!keep) return;
  history(r->hist, &ev, H_ENTER, line);
  history_save(r);
}

/* ---- libedit ---- */

/* Lets the loop run until fd 0 is readable (or a signal arrives); returns 1 when input is ready, 0 on a
** signal. The line being edited is hidden while tasks may print, then drawn again. */
static int wait_for_input(Repl *r) {
  for (;;) {
    if (interrupt_pending || resize_pending) return 0;
    struct pollfd p[3] = {{0, POLLIN, 0}, {lufa_fd(r->host), POLLIN, 0}, {signal_pipe[0], POLLIN, 0}};
    int timeout = lufa_next_timeout(r->host);
    int n = poll(p, 3, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 1;  /* let read() report it */
    if (p[2].revents) drain_signal_pipe();
    if (p[0].revents) return 1;
    if (p[1].revents || n == 0) {
      r->line_hidden = 0;
      lufa_poll(r->host, 0);
      print_notices(r);
      if (r->line_hidden) el_set(r->el, EL_REFRESH);
    }
  }
}

static int repl_getc(EditLine *el, wchar_t *wc) {
  Repl *r;
  el_get(el, EL_CLIENTDATA, &r);
  for (;;) {
    if (!wait_for_input(r)) {
      if (resize_pending) {
        resize_pending = 0;
        el_resize(el);
      }
      if (interrupt_pending) {
        interrupt_pending = 0;
        *wc = CTRL_C;
        return 1;
      }
      continue;
    }
    char c;
    ssize_t n = read(0, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  /* end of input */
    size_t got = mbrtowc(wc, &c, 1, &r->mb);
    if (got == (size_t)-2) continue;  /* the rest of a UTF-8 sequence follows */
    if (got == (size_t)-1) {
      memset(&r->mb, 0, sizeof r->mb);
      *wc = (unsigned char)c;  /* not UTF-8: take the byte as it is */
    }
    return 1;
  }
}

static char prompt_buf[64];

static char *repl_prompt(EditLine *el) {
  Repl *r;
  el_get(el, EL_CLIENTDATA, &r);
  return (char *)session_string(r, "prompt", prompt_buf, sizeof prompt_buf);
}

static unsigned char on_interrupt_key(EditLine *el, int ch) {
  Repl *r;
  (void)ch;
  el_get(el, EL_CLIENTDATA, &r);
  r->line_dropped = 1;
  fputs("^C", stdout);
  return CC_NEWLINE;
}

static size_t common_prefix(lua_State *L, int list, int n) {
  lua_rawgeti(L, list, 1);
  const char *first = lua_tostring(L, -1);
  size_t len = first ? strlen(first) : 0;
  for (int i = 2; i <= n && len > 0; i++) {
    lua_rawgeti(L, list, i);
    const char *s = lua_tostring(L, -1);
    size_t k = 0;
    while (k < len && s && s[k] == first[k]) k++;
    len = k;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return len;
}

/* Prints the candidates in columns under the line. */
static void list_candidates(lua_State *L, int list, int n) {
  size_t width = 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    size_t len = lua_rawlen(L, -1);
    if (len > width) width = len;
    lua_pop(L, 1);
  }
  int cols = (int)(80 / (width + 2));
  if (cols < 1) cols = 1;
  fputs("\n", stdout);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    printf("%-*s", (int)(width + 2), lua_tostring(L, -1));
    lua_pop(L, 1);
    if (i % cols == 0 || i == n) fputs("\n", stdout);
  }
  fflush(stdout);
}

/* Tab: the session returns how many bytes before the cursor form the word and what it may become. */
static unsigned char on_complete_key(EditLine *el, int ch) {
  Repl *r;
  (void)ch;
  el_get(el, EL_CLIENTDATA, &r);
  lua_State *L = r->L;
  const LineInfo *li = el_line(el);
  lua_pushlstring(L, li->buffer, (size_t)(li->cursor - li->buffer));
  if (!session_call(r, "complete", 1, 2)) return CC_REDISPLAY;
  size_t word = (size_t)lua_tointeger(L, -2);
  int list = lua_gettop(L);
  int n = lua_istable(L, list) ? (int)lua_rawlen(L, list) : 0;
  unsigned char result = CC_REFRESH_BEEP;
  if (n > 0) {
    size_t common = common_prefix(L, list, n);
    if (common > word || n == 1) {
      lua_rawgeti(L, list, 1);
      const char *first = lua_tostring(L, -1);
      char *text = strndup(first, common);
      if (text) {
        el_deletestr(el, (int)word);
        el_insertstr(el, text);
        free(text);
      }
      lua_pop(L, 1);
      result = CC_REFRESH;
    } else {
      list_candidates(L, list, n);
      result = CC_REDISPLAY;
    }
  }
  lua_pop(L, 2);
  return result;
}

static int editor_open(Repl *r) {
  HistEvent ev;
  setlocale(LC_CTYPE, "");  /* libedit decodes and draws UTF-8 by the locale */
  r->el = el_init(r->progname, stdin, stdout, stderr);
  r->hist = history_init();
  if (r->el == NULL || r->hist == NULL) return 0;
  history(r->hist, &ev, H_SETSIZE, HISTORY_SIZE);
  history(r->hist, &ev, H_SETUNIQUE, 1);
  history_locate(r);
  if (r->history_path[0]) history(r->hist, &ev, H_LOAD, r->history_path);
  el_set(r->el, EL_CLIENTDATA, r);
  el_set(r->el, EL_EDITOR, "emacs");
  el_set(r->el, EL_SIGNAL, 0);  /* our handlers; libedit's would re-send signals to the process group */
  el_set(r->el, EL_PROMPT, repl_prompt);
  el_set(r->el, EL_HIST, history, r->hist);
  el_set(r->el, EL_GETCFN, repl_getc);
  /* the wide call keeps these static names; the narrow one copies them and el_end never frees the copies */
  el_wset(r->el, EL_ADDFN, L"lufa-complete", L"complete the word before the cursor", on_complete_key);
  el_wset(r->el, EL_ADDFN, L"lufa-interrupt", L"drop the line", on_interrupt_key);
  el_set(r->el, EL_BIND, "^I", "lufa-complete", NULL);
  el_set(r->el, EL_BIND, "^C", "lufa-interrupt", NULL);
  el_set(r->el, EL_BIND, "^R", "em-inc-search-prev", NULL);
  el_set(r->el, EL_BIND, "^W", "ed-delete-prev-word", NULL);  /* as in readline; libedit kills a region */
  el_set(r->el, EL_BIND, "\033[1;5D", "ed-prev-word", NULL);   /* Ctrl-Left, Ctrl-Right */
  el_set(r->el, EL_BIND, "\033[1;5C", "em-next-word", NULL);
  el_set(r->el, EL_BIND, "\033[3~", "ed-delete-next-char", NULL);  /* Delete */
  el_source(r->el, NULL);  /* ~/.editrc, as other libedit programs read it */
  return 1;
}

static void editor_close(Repl *r) {
  if (r->el) el_end(r->el);
  if (r->hist) history_end(r->hist);
}

/* ---- plain input: a pipe or a dumb terminal ---- */

/* The next line without its newline (malloc'd), or NULL at the end of input or on Ctrl-C (line_dropped). */
static char *plain_read_line(Repl *r) {
  for (;;) {
    char *nl = r->npending ? memchr(r->pending, '\n', r->npending) : NULL;
    if (nl || (r->stdin_done && r->npending)) {
      size_t len = nl ? (size_t)(nl - r->pending) : r->npending;
      char *line = strndup(r->pending, len);
      size_t used = nl ? len + 1 : len;
      memmove(r->pending, r->pending + used, r->npending - used);
      r->npending -= used;
      return line;
    }
    if (r->stdin_done) return NULL;
    if (!wait_for_input(r)) {
      resize_pending = 0;
      if (interrupt_pending) {
        interrupt_pending = 0;
        r->npending = 0;
        r->line_dropped = 1;
        return NULL;
      }
      continue;
    }
    if (r->cappending - r->npending < 4096) {
      size_t cap = r->cappending ? r->cappending * 2 : 8192;
      char *p = realloc(r->pending, cap);
      if (p == NULL) return NULL;
      r->pending = p;
      r->cappending = cap;
    }
    ssize_t n = read(0, r->pending + r->npending, r->cappending - r->npending);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) r->stdin_done = 1;
    else r->npending += (size_t)n;
  }
}

/* ---- the loop of lines ---- */

/* The next line (malloc'd), or NULL at the end of input; sets line_dropped on Ctrl-C. */
static char *read_line(Repl *r) {
  r->line_dropped = 0;
  if (!r->editing) {
    if (r->prompting) {
      char prompt[64];
      fputs(session_string(r, "prompt", prompt, sizeof prompt), stdout);
      fflush(stdout);
    }
    char *line = plain_read_line(r);
    if (r->line_dropped && r->prompting) fputs("\n", stdout);
    if (line == NULL && r->prompting) r->stdin_done = 0;  /* Ctrl-D on a terminal: it may be pressed again */
    return line;
  }
  int count = 0;
  r->reading = 1;
  const char *line = el_gets(r->el, &count);
  r->reading = 0;
  if (r->line_dropped) {
    fputs("\n", stdout);  /* el_gets ended the line without moving down */
    fflush(stdout);
    return NULL;
  }
  if (line == NULL || count <= 0) return NULL;
  char *copy = strdup(line);
  if (copy) {
    size_t len = strlen(copy);
    if (len && copy[len - 1] == '\n') copy[len - 1] = '\0';
  }
  return copy;
}

/* Runs one line through the session; returns 0 when the user asked to quit. */
static int submit(Repl *r, const char *line) {
  lua_State *L = r->L;
  lua_pushstring(L, line);
  chunk_running = 1;
  int ok = session_call(r, "submit", 1, 1);
  chunk_running = 0;
  lua_sethook(L, NULL, 0, 0);
  interrupt_pending = 0;
  install_handlers();  /* the chunk may have claimed SIGINT (lufa.on_interrupt) */
  if (!ok) {
    r->failed = 1;
    return 1;
  }
  const char *status = lua_tostring(L, -1);
  int quit = status && strcmp(status, "quit") == 0;
  if (status && strcmp(status, "failed") == 0) r->failed = 1;
  lua_pop(L, 1);
  return !quit;
}

/* Ctrl-D: leaves, unless tasks are running and this is the first Ctrl-D (then it warns). */
static int may_leave(Repl *r) {
  char warning[1024];
  if (!r->prompting || r->eof_warned) return 1;
  session_string(r, "exit_warning", warning, sizeof warning);
  if (warning[0] == '\0') return 1;
  printf("\n%s\n", warning);
  fflush(stdout);
  r->eof_warned = 1;
  return 0;
}

static int session_open(Repl *r) {
  lua_State *L = r->L;
  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.repl");
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", r->progname, lua_tostring(L, -1));
    lua_pop(L, 2);
    return 0;
  }
  lua_getfield(L, -1, "new");
  lua_remove(L, -2);
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, r->prompting);
  lua_setfield(L, -2, "interactive");
  lua_pushboolean(L, r->editing);
  lua_setfield(L, -2, "editing");
  if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", r->progname, lua_tostring(L, -1));
    lua_pop(L, 2);
    return 0;
  }
  r->session = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return 1;
}

enum repl_end lufa_repl(lufa_host *host, const char *progname, const char *banner) {
  Repl r;
  memset(&r, 0, sizeof r);
  r.host = host;
  r.L = lufa_host_state(host);
  r.loop = loop_get(r.L);
  r.progname = progname;
  r.session = LUA_NOREF;
  const char *term = getenv("TERM");
  r.prompting = isatty(0);
  r.editing = r.prompting && isatty(1) && !(term && strcmp(term, "dumb") == 0);
  if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    fprintf(stderr, "%s: cannot watch for Ctrl-C: %s\n", progname, strerror(errno));
    return REPL_FAILED;
  }
  if (!session_open(&r)) return REPL_FAILED;
  running_state = r.L;
  running_loop = r.loop;
  LoopWatch watch = {.fd = signal_pipe[0], .ready = signal_watch_ready, .passive = 1};
  loop_watch(r.loop, &watch);
  loop_set_interrupt_check(r.loop, interrupt_check, &r);
  loop_set_resume_hook(r.loop, hide_line, &r);
  install_handlers();
  if (r.editing && !editor_open(&r)) {
    editor_close(&r);
    r.el = NULL;
    r.hist = NULL;
    r.editing = 0;
  }
  if (r.prompting && banner) {
    fputs(banner, stdout);
    fflush(stdout);
  }
  for (;;) {
    char *line = read_line(&r);
    if (line == NULL) {
      if (r.line_dropped) {
        session_call(&r, "reset", 0, 0);
        continue;
      }
      if (may_leave(&r)) break;
      continue;
    }
    r.eof_warned = 0;
    history_add(&r, line);
    int go_on = submit(&r, line);
    free(line);
    print_notices(&r);
    if (!go_on) break;
  }
  if (r.prompting) fputs("\n", stdout);
  fflush(stdout);
  editor_close(&r);
  free(r.pending);
  loop_set_interrupt_check(r.loop, NULL, NULL);
  loop_set_resume_hook(r.loop, NULL, NULL);
  running_loop = NULL;
  loop_unwatch(r.loop, &watch);
  signal(SIGINT, SIG_DFL);
  signal(SIGWINCH, SIG_DFL);
  luaL_unref(r.L, LUA_REGISTRYINDEX, r.session);
  if (r.prompting) return REPL_EXIT;
  return r.failed ? REPL_FAILED : REPL_DRAIN;
}
