/*
** Plugins (lufa.h, "plugins"): the sandbox (each forbidden global tried, binary chunks, the string metatable
** and package.loaded shared with no one), budgets a pcall cannot swallow (infinite loops bare, in pcall, in
** a coroutine, in string.rep/gsub work; memory bombs), unload ending a sleep and an HTTP transfer, reload
** carrying state, capabilities (HTTP hosts, a data folder) and the plugin's own folder for require.
** No check measures time: a budget test passes when the pump returns and the plugin is stopped.
*/
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

typedef struct {
  int calls;
  char last[8192];
} ErrorLog;

static void record_error(lufa_host *host, const char *message, void *ud) {
  ErrorLog *log = ud;
  (void)host;
  log->calls++;
  snprintf(log->last, sizeof log->last, "%s", message);
}

static lufa_plugin *load(lufa_host *host, const char *code, const char *name) {
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.name = name;
  lufa_plugin *p = lufa_plugin_load_string(host, code, strlen(code), &o);
  if (p == NULL) fprintf(stderr, "loading %s failed: %s\n", name, lufa_last_error(host));
  return p;
}

/* The plugin's global `name`: pushed onto its state; the caller pops it. */
static lua_State *push_global(lufa_plugin *p, const char *name) {
  lua_State *L = lufa_plugin_state(p);
  lufa_plugin_push_env(p);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return L;
}

static int global_bool(lufa_plugin *p, const char *name) {
  lua_State *L = push_global(p, name);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static lua_Integer global_int(lufa_plugin *p, const char *name) {
  lua_State *L = push_global(p, name);
  lua_Integer v = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -999;
  lua_pop(L, 1);
  return v;
}

static const char *global_str(lufa_plugin *p, const char *name, char *buf, size_t size) {
  lua_State *L = push_global(p, name);
  snprintf(buf, size, "%s", lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)");
  lua_pop(L, 1);
  return buf;
}

static void pump(lufa_host *host, int times) {
  for (int i = 0; i < times; i++) {
    lufa_poll(host, 0);
    sleep_ms(1);
  }
}

/* Pumps until the plugin is stopped (capped: a safety net against a budget that never fires). */
static void pump_until_stopped(lufa_host *host, lufa_plugin *p) {
  for (int i = 0; i < 2000 && lufa_plugin_status(p) == LUFA_PLUGIN_RUNNING; i++) {
    lufa_poll(host, 0);
    sleep_ms(1);
  }
}

/* ---- the sandbox ---- */

/* Every entry is a Lua expression that must be true inside a plugin. */
static const char *const sandbox_checks[] = {
  "io == nil",
  "os.execute == nil",
  "os.exit == nil",
  "not pcall(os.exit, 3)",  /* had it been there, the test program would have ended with status 3 */
  "os.remove == nil",
  "os.rename == nil",
  "os.getenv == nil",
  "os.tmpname == nil",
  "type(os.time()) == 'number' and type(os.clock()) == 'number'",
  "debug == nil",
  "package == nil",
  "loadfile == nil and dofile == nil",
  "string.dump == nil and ('').dump == nil",
  "not pcall(require, 'debug')",
  "not pcall(require, 'io')",
  "not pcall(require, 'os')",
  "not pcall(require, 'package')",
  "not pcall(require, 'lufa.core.http')",
  "not pcall(require, 'lufa.sqlite')",
  "not pcall(require, 'lufa.http')",  /* no HTTP granted */
  "not pcall(require, 'lufa.fs')",    /* no folder granted */
  "require('lufa').run == nil and require('lufa').on_interrupt == nil",
  "require('lufa.json').decode_file == nil",
  "type(require('lufa').spawn) == 'function' and type(require('lufa.json').encode) == 'function'",
  "not pcall(collectgarbage)",
  "not pcall(collectgarbage, 'collect')",
  "not pcall(collectgarbage, 'stop')",
  "not pcall(collectgarbage, 'generational')",
  "type(collectgarbage('count')) == 'number'",
  "getmetatable('') == nil and getmetatable(1) == nil",
  "not pcall(function() return getmetatable('').__index end)",
  "load('return 1 + 1')() == 2",
  "load('return x', 'x')() == nil",  /* a loaded chunk sees the sandbox, where x is not set */
  "load('return io')() == nil",
  "select(2, pcall(load, 'return 1', 'x', 'b')):find('text chunks only') ~= nil",
  "not pcall(load, 'return 1', 'x', 'bt')",
  "_G.io == nil and _G._G == _G",
  "select(2, pcall(setmetatable, {}, {__gc = function() end})):find('__gc') ~= nil",
  "getmetatable(setmetatable({}, {__index = {}})) ~= nil",
};

static void test_sandbox_globals(void) {
  lufa_host *host = lufa_host_new();
  char code[8192];
  size_t n = (size_t)snprintf(code, sizeof code, "checks = {}\n");
  for (size_t i = 0; i < sizeof sandbox_checks / sizeof *sandbox_checks; i++)
    n += (size_t)snprintf(code + n, sizeof code - n, "checks[%zu] = (function() return %s end)()\n", i + 1,
                          sandbox_checks[i]);
  lufa_plugin *p = load(host, code, "sandbox");
  CHECK(p != NULL);
  if (p == NULL) {
    lufa_host_free(host);
    return;
  }
  lua_State *L = push_global(p, "checks");
  for (size_t i = 0; i < sizeof sandbox_checks / sizeof *sandbox_checks; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    if (!check_report(lua_toboolean(L, -1), __FILE__, __LINE__, sandbox_checks[i]))
      fprintf(stderr, "  (inside a plugin)\n");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lufa_host_free(host);
}

/* A binary chunk made outside (where string.dump exists) is refused by load in every mode, and as a plugin. */
static void test_binary_chunks(void) {
  lua_State *maker = luaL_newstate();
  luaL_openlibs(maker);
  CHECK_INT(luaL_dostring(maker, "return string.dump(function() return 'binary ran' end)"), LUA_OK);
  size_t len;
  const char *bytes = lua_tolstring(maker, -1, &len);
  lufa_host *host = lufa_host_new();
  ErrorLog log = {0};
  lufa_set_error_handler(host, record_error, &log);
  CHECK(lufa_plugin_load_string(host, bytes, len, NULL) == NULL);
  CHECK(strstr(lufa_last_error(host), "binary") != NULL);
  lufa_plugin *p = load(host, "function try(b)\n"
    "  local f1, e1 = load(b)\n"
    "  local ok2, f2 = pcall(load, b, 'b', 'b')\n"
    "  local ok3, f3 = pcall(load, b, 'bt', 'bt')\n"
    "  local f4 = load(b, 'x', 't')\n"
    "  refused = f1 == nil and e1:find('binary') ~= nil and not ok2 and not ok3 and f4 == nil\n"
    "  ran = (f1 or (ok2 and f2) or (ok3 and f3) or f4) and true or false\n"
    "end\n", "binary");
  CHECK(p != NULL);
  if (p) {
    lua_State *L = push_global(p, "try");
    lua_pushlstring(L, bytes, len);
    CHECK_INT(lua_pcall(L, 1, 0, 0), LUA_OK);
    CHECK(global_bool(p, "refused"));
    CHECK(!global_bool(p, "ran"));
  }
  lufa_host_free(host);
  lua_close(maker);
}

/* What one plugin does to the string metatable, library tables or required modules reaches no one else. */
static void test_no_shared_tables(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin *a = load(host,
    "local mt = getmetatable('')\n"
    "if mt then mt.__index.upper = function() return 'pwned' end end\n"
    "string.upper = function() return 'pwned' end\n"
    "table.concat = function() return 'pwned' end\n"
    "local json = require 'lufa.json'\n"
    "json.encode = function() return 'pwned' end\n"
    "package = { loaded = { ['lufa.json'] = { encode = function() return 'pwned' end } } }\n"
    "_G.require = function() return { encode = function() return 'pwned' end } end\n"
    "poisoned = require('lufa.json').encode({1}) == 'pwned'\n", "poisoner");
  lufa_plugin *b = load(host,
    "upper = ('abc'):upper()\n"
    "upper2 = string.upper('abc')\n"
    "concat = table.concat({'a', 'b'})\n"
    "encoded = require('lufa.json').encode({1})\n", "victim");
  CHECK(a != NULL && b != NULL);
  if (a && b) {
    char buf[64];
    CHECK(global_bool(a, "poisoned"));  /* the poison did take, in its own plugin */
    CHECK_STR(global_str(b, "upper", buf, sizeof buf), "ABC");
    CHECK_STR(global_str(b, "upper2", buf, sizeof buf), "ABC");
    CHECK_STR(global_str(b, "concat", buf, sizeof buf), "ab");
    CHECK_STR(global_str(b, "encoded", buf, sizeof buf), "[1]");
    /* and the poisoner's own lufa modules still see the real library */
    lufa_plugin *c = load(host, "s = ('abc'):upper()", "third");
    CHECK(c != NULL);
    if (c) CHECK_STR(global_str(c, "s", buf, sizeof buf), "ABC");
  }
  lua_State *L = lufa_host_state(host);
  CHECK_INT(luaL_dostring(L, "return ('abc'):upper()"), LUA_OK);
  CHECK_STR(lua_tostring(L, -1), "ABC");
  lua_pop(L, 1);
  lufa_host_free(host);
}

/* The host made by lufa_host_new is unchanged: scripts keep the full standard library. */
static void test_host_keeps_full_library(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin *p = load(host, "x = 1", "next to a script");
  CHECK(p != NULL);
  lua_State *L = lufa_host_state(host);
  CHECK_INT(luaL_dostring(L, "return io ~= nil and os.exit ~= nil and debug ~= nil and package.loadlib ~= nil"),
            LUA_OK);
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 1);
  lufa_host_free(host);
}

/* ---- budgets ---- */

typedef struct {
  const char *name;
  const char *code;
} Hostile;

/* Each loops forever in its own way, after a first wait (so the loop runs in a pump); none may set `survived`. */
static const Hostile cpu_hogs[] = {
  {"bare loop", "while true do end"},
  {"loop in pcall", "pcall(function() while true do end end) survived = true"},
  {"pcall in a loop", "while true do pcall(function() while true do end end) end"},
  {"nested pcalls", "while true do pcall(pcall, pcall, function() while true do end end) end"},
  {"xpcall with a looping handler",
   "xpcall(function() while true do end end, function() while true do end end) survived = true"},
  {"error object discarded", "while true do local ok, e = pcall(function() while true do end end); e = nil end"},
  {"inside a coroutine", "local co = coroutine.create(function() while true do end end)\n"
                         "while true do\n"
                         "  coroutine.resume(co) co = coroutine.create(function() while true do end end)\n"
                         "end"},
  {"coroutine.wrap in pcall", "pcall(coroutine.wrap(function() while true do end end)) survived = true"},
  {"string.rep and gsub work", "while true do local s = string.rep('x', 200000):gsub('x', 'yy') end"},
  {"gsub with a looping callback",
   "pcall(string.gsub, ('x'):rep(10), 'x', function() while true do end end) survived = true"},
  {"table.sort comparator",
   "local t = {3, 2, 1}\npcall(table.sort, t, function() while true do end end) survived = true"},
  {"__close handler",
   "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end survived = true"},
  {"__close of a stopped task", "local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
                                "while true do end"},
  {"__close of a stopped wrapped coroutine",
   "pcall(coroutine.wrap(function()\n"
   "  local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
   "  while true do end\n"
   "end)) survived = true"},
  {"coroutine.close after the stop",
   "local co = coroutine.create(function()\n"
   "  local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
   "  while true do end\n"
   "end)\n"
   "coroutine.resume(co) coroutine.close(co) survived = true"},
};

static void test_cpu_budgets(void) {
  for (size_t i = 0; i < sizeof cpu_hogs / sizeof *cpu_hogs; i++) {
    lufa_host *host = lufa_host_new();
    ErrorLog log = {0};
    lufa_set_error_handler(host, record_error, &log);
    lufa_plugin *well = load(host, "local lufa = require 'lufa'\nticks = 0\n"
      "lufa.spawn(function() while true do lufa.sleep(0.001) ticks = ticks + 1 end end)\n", "well-behaved");
    char code[1024];
    snprintf(code, sizeof code, "local lufa = require 'lufa'\nlufa.spawn(function()\n  lufa.sleep(0)\n  %s\nend)\n",
             cpu_hogs[i].code);
    lufa_plugin_options o;
    lufa_plugin_options_init(&o);
    o.name = cpu_hogs[i].name;
    o.cpu_budget_ms = 20;
    lufa_plugin *hog = lufa_plugin_load_string(host, code, strlen(code), &o);
    CHECK(well != NULL && hog != NULL);
    if (hog == NULL || well == NULL) {
      lufa_host_free(host);
      continue;
    }
    pump_until_stopped(host, hog);
    if (!check_report(lufa_plugin_status(hog) == LUFA_PLUGIN_STOPPED, __FILE__, __LINE__, cpu_hogs[i].name))
      fprintf(stderr, "  (was not stopped)\n");
    CHECK(strstr(lufa_plugin_stop_reason(hog), "time budget") != NULL);
    if (!check_report(!global_bool(hog, "survived"), __FILE__, __LINE__, cpu_hogs[i].name))
      fprintf(stderr, "  (code after the stopped loop ran)\n");
    CHECK_INT(log.calls, 1);  /* one report, however many errors the stop caused inside */
    CHECK(strstr(log.last, "stopped") != NULL && strstr(log.last, cpu_hogs[i].name) != NULL);
    /* the host and the other plugin go on */
    lua_Integer before = global_int(well, "ticks");
    for (int k = 0; k < 2000 && global_int(well, "ticks") < before + 3; k++) {
      lufa_poll(host, 0);
      sleep_ms(1);
    }
    CHECK(global_int(well, "ticks") >= before + 3);
    CHECK_INT(lufa_plugin_status(well), LUFA_PLUGIN_RUNNING);
    CHECK_INT(lufa_plugin_unload(hog), LUFA_OK);
    lufa_host_free(host);
  }
}

/* A main chunk that never waits exceeds the load budget: no plugin, the reason in lufa_last_error. */
static void test_load_budget(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.load_budget_ms = 30;
  const char *code = "pcall(function() while true do end end) while true do end";
  CHECK(lufa_plugin_load_string(host, code, strlen(code), &o) == NULL);
  CHECK(strstr(lufa_last_error(host), "time budget") != NULL);
  CHECK(lufa_plugin_first(host) == NULL);
  lufa_host_free(host);
}

static const Hostile memory_bombs[] = {
  {"growing table", "local t = {} while true do t[#t + 1] = ('x'):rep(1000) .. #t end"},
  {"bomb in pcall", "pcall(function() local t = {} for i = 1, math.maxinteger do t[i] = {i} end end) survived = true"},
  {"one huge string in pcall", "pcall(string.rep, 'x', 1 << 30) survived = true"},
  {"concat in a loop", "local s = 'x' while true do s = s .. s end"},
};

static void test_memory_limit(void) {
  for (size_t i = 0; i < sizeof memory_bombs / sizeof *memory_bombs; i++) {
    lufa_host *host = lufa_host_new();
    ErrorLog log = {0};
    lufa_set_error_handler(host, record_error, &log);
    lufa_plugin *well = load(host, "local lufa = require 'lufa'\nticks = 0\n"
      "lufa.spawn(function() while true do lufa.sleep(0.001) ticks = ticks + 1 end end)\n", "well-behaved");
    char code[1024];
    snprintf(code, sizeof code, "local lufa = require 'lufa'\nlufa.spawn(function()\n  lufa.sleep(0)\n  %s\nend)\n",
             memory_bombs[i].code);
    lufa_plugin_options o;
    lufa_plugin_options_init(&o);
    o.name = memory_bombs[i].name;
    o.memory_limit = (size_t)8 << 20;
    o.cpu_budget_ms = -1;  /* only the memory ceiling can stop these */
    lufa_plugin *bomb = lufa_plugin_load_string(host, code, strlen(code), &o);
    CHECK(well != NULL && bomb != NULL);
    if (bomb == NULL || well == NULL) {
      lufa_host_free(host);
      continue;
    }
    pump_until_stopped(host, bomb);
    if (!check_report(lufa_plugin_status(bomb) == LUFA_PLUGIN_STOPPED, __FILE__, __LINE__, memory_bombs[i].name))
      fprintf(stderr, "  (was not stopped)\n");
    CHECK(strstr(lufa_plugin_stop_reason(bomb), "memory limit") != NULL);
    if (!check_report(!global_bool(bomb, "survived"), __FILE__, __LINE__, memory_bombs[i].name))
      fprintf(stderr, "  (code after the stopped loop ran)\n");
    lufa_plugin_usage u;
    lufa_plugin_get_usage(bomb, &u);
    CHECK(u.memory_peak <= u.memory_limit + ((size_t)1 << 20));
    CHECK_INT(log.calls, 1);
    lua_Integer before = global_int(well, "ticks");
    for (int k = 0; k < 2000 && global_int(well, "ticks") < before + 3; k++) {
      lufa_poll(host, 0);
      sleep_ms(1);
    }
    CHECK(global_int(well, "ticks") >= before + 3);
    lufa_host_free(host);
  }
}

/* A wait where the task cannot yield fails instead of blocking the pump on the plugin's loop. */
static void test_no_blocking_wait(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin *p = load(host, "local lufa = require 'lufa'\n"
    "ok, err = pcall(string.gsub, 'a', 'a', function() lufa.sleep(10) end)\n"
    "err = tostring(err)\n", "blocker");
  CHECK(p != NULL);
  if (p) {
    char buf[512];
    CHECK(!global_bool(p, "ok"));
    CHECK(strstr(global_str(p, "err", buf, sizeof buf), "cannot wait here") != NULL);
    CHECK_INT(lufa_next_timeout(host), -1);  /* the sleep's timer did not stay behind */
  }
  lufa_host_free(host);
}

/* ---- unload, reload, listing ---- */

static int listen_loopback(int *port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    perror("listen_loopback");
    exit(2);
  }
  *port = ntohs(a.sin_port);
  return s;
}

static char *make_temp_dir(void) {
  char tmpl[] = "/tmp/lufa-plugin-test-XXXXXX";
  char *d = mkdtemp(tmpl);
  return d ? strdup(d) : NULL;
}

static void write_text(const char *dir, const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

static int read_text(const char *dir, const char *name, char *buf, size_t size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
  return 1;
}

static void remove_tree(const char *dir) {
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

typedef struct {
  int count, waiting;
  char where[4][256];
} TaskList;

static void list_task(const char *status, const char *where, void *ud) {
  TaskList *l = ud;
  if (l->count < 4) snprintf(l->where[l->count], sizeof l->where[0], "%s", where);
  l->count++;
  if (strcmp(status, "waiting") == 0) l->waiting++;
}

static void test_unload_ends_sleep_and_transfer(void) {
  int port;
  int listener = listen_loopback(&port);
  char *data = make_temp_dir();
  CHECK(data != NULL);
  lufa_host *host = lufa_host_new();
  ErrorLog log = {0};
  lufa_set_error_handler(host, record_error, &log);
  char code[2048];
  snprintf(code, sizeof code,
    "local lufa = require 'lufa'\n"
    "local http = require 'lufa.http'\n"
    "local fs = require 'lufa.fs'\n"
    "lufa.spawn(function() lufa.sleep(1000); fs.write_file('slept.txt', 'yes') end)\n"
    "lufa.spawn(function() http.request{url = 'http://127.0.0.1:%d/slow'}; fs.write_file('answered.txt', 'yes') end)\n"
    "function on_unload(why) fs.write_file('unloaded.txt', why) end\n", port);
  const char *hosts[] = {"127.0.0.1", NULL};
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.name = "unloadable";
  o.http_hosts = hosts;
  o.data_dir = data;
  lufa_plugin *p = lufa_plugin_load_string(host, code, strlen(code), &o);
  CHECK(p != NULL);
  if (p == NULL) {
    fprintf(stderr, "%s\n", lufa_last_error(host));
    lufa_host_free(host);
    close(listener);
    return;
  }
  /* the request reaches the server, which never answers */
  int conn = -1;
  for (int i = 0; i < 5000 && conn < 0; i++) {
    lufa_poll(host, 0);
    struct pollfd pl = {listener, POLLIN, 0};
    if (poll(&pl, 1, 1) == 1) conn = accept(listener, NULL, NULL);
  }
  CHECK(conn >= 0);
  pump(host, 5);
  TaskList tasks = {0};
  CHECK_INT(lufa_plugin_tasks(p, list_task, &tasks), 2);
  CHECK_INT(tasks.count, 2);
  CHECK_INT(tasks.waiting, 2);
  CHECK(strstr(tasks.where[0], "unloadable:4") != NULL);
  CHECK(strstr(tasks.where[1], "lufa/http.lua") != NULL || strstr(tasks.where[1], "unloadable:5") != NULL);
  CHECK(lufa_next_timeout(host) > 0);  /* the plugin's sleep is pending */
  CHECK_INT(lufa_plugin_unload(p), LUFA_OK);
  CHECK(lufa_plugin_first(host) == NULL);
  char buf[64];
  CHECK(read_text(data, "unloaded.txt", buf, sizeof buf));
  CHECK_STR(buf, "unload");
  /* the transfer's connection is closed: the server reads the end of the stream */
  struct pollfd pc = {conn, POLLIN, 0};
  CHECK_INT(poll(&pc, 1, 10000), 1);
  char rest[4096];
  ssize_t n;
  while ((n = read(conn, rest, sizeof rest)) > 0) { /* the request itself */ }
  CHECK_INT(n, 0);
  CHECK_INT(lufa_next_timeout(host), -1);  /* no timer left behind */
  pump(host, 5);
  CHECK(!read_text(data, "slept.txt", buf, sizeof buf));
  CHECK(!read_text(data, "answered.txt", buf, sizeof buf));
  CHECK_INT(log.calls, 0);
  close(conn);
  close(listener);
  lufa_host_free(host);
  remove_tree(data);
  free(data);
}

static void test_reload_carries_state(void) {
  lufa_host *host = lufa_host_new();
  ErrorLog log = {0};
  lufa_set_error_handler(host, record_error, &log);
  lufa_plugin *p = load(host,
    "local lufa = require 'lufa'\n"
    "version = 1\ncount = 0\n"
    "lufa.spawn(function() while true do lufa.sleep(0.001) count = count + 1 end end)\n"
    "function on_unload(why) reason = why end\n", "reloadable");
  CHECK(p != NULL);
  if (p == NULL) {
    lufa_host_free(host);
    return;
  }
  for (int i = 0; i < 5000 && global_int(p, "count") < 3; i++) {
    lufa_poll(host, 0);
    sleep_ms(1);
  }
  CHECK(global_int(p, "count") >= 3);
  CHECK_INT(lufa_plugin_tasks(p, NULL, NULL), 1);
  const char *v2 =
    "version = 2\n"
    "function on_reload(old) carried = old.count; old_reason = old.reason; old_version = old.version end\n";
  CHECK_INT(lufa_plugin_reload_string(p, v2, strlen(v2)), LUFA_OK);
  char buf[64];
  CHECK_INT(global_int(p, "version"), 2);
  CHECK(global_int(p, "carried") >= 3);
  CHECK_INT(global_int(p, "old_version"), 1);
  CHECK_STR(global_str(p, "old_reason", buf, sizeof buf), "reload");
  CHECK_INT(global_int(p, "count"), -999);  /* a fresh environment */
  CHECK_INT(lufa_plugin_tasks(p, NULL, NULL), 0);  /* v1's counting task is gone */
  CHECK_INT(lufa_next_timeout(host), -1);
  /* new code that does not compile leaves v2 running */
  const char *broken = "version = = 3";
  CHECK_INT(lufa_plugin_reload_string(p, broken, strlen(broken)), LUFA_ERROR);
  CHECK(strstr(lufa_last_error(host), "reloadable") != NULL);
  CHECK_INT(global_int(p, "version"), 2);
  /* a stopped plugin comes back with a reload */
  const char *hog = "require('lufa').spawn(function() require('lufa').sleep(0) while true do end end)";
  CHECK_INT(lufa_plugin_reload_string(p, hog, strlen(hog)), LUFA_OK);
  pump_until_stopped(host, p);
  CHECK_INT(lufa_plugin_status(p), LUFA_PLUGIN_STOPPED);
  const char *v4 = "version = 4";
  CHECK_INT(lufa_plugin_reload_string(p, v4, strlen(v4)), LUFA_OK);
  CHECK_INT(lufa_plugin_status(p), LUFA_PLUGIN_RUNNING);
  CHECK_INT(global_int(p, "version"), 4);
  CHECK_INT(log.calls, 1);  /* the stop */
  lufa_host_free(host);
}

/* A plugin stopped at its memory ceiling still hands its data to the next version. */
static void test_reload_after_memory_stop(void) {
  lufa_host *host = lufa_host_new();
  ErrorLog log = {0};
  lufa_set_error_handler(host, record_error, &log);
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.name = "hoarder";
  o.cpu_budget_ms = -1;  /* only the memory ceiling stops it */
  o.memory_limit = (size_t)4 << 20;
  const char *v1 = "local lufa = require 'lufa'\nnote = 'kept'\nhoard = {}\n"
                   "lufa.spawn(function()\n"
                   "  lufa.sleep(0)\n"
                   "  while true do hoard[#hoard + 1] = ('x'):rep(100) .. #hoard end\n"
                   "end)";
  lufa_plugin *p = lufa_plugin_load_string(host, v1, strlen(v1), &o);
  CHECK(p != NULL);
  if (p == NULL) {
    lufa_host_free(host);
    return;
  }
  pump_until_stopped(host, p);
  CHECK(strstr(lufa_plugin_stop_reason(p), "memory limit") != NULL);
  const char *v2 = "function on_reload(old) note = old.note; count = #old.hoard end";
  CHECK_INT(lufa_plugin_reload_string(p, v2, strlen(v2)), LUFA_OK);
  char buf[64];
  CHECK_STR(global_str(p, "note", buf, sizeof buf), "kept");
  CHECK(global_int(p, "count") > 1000);
  lufa_plugin_usage u;
  lufa_plugin_get_usage(p, &u);
  CHECK(u.memory < u.memory_limit);
  CHECK_INT(lufa_plugin_status(p), LUFA_PLUGIN_RUNNING);
  lufa_host_free(host);
}

/* lufa_fd and lufa_next_timeout cover the plugins: an application sleeping on them wakes for a plugin. */
static void test_fd_covers_plugins(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin *p = load(host, "local lufa = require 'lufa'\n"
    "lufa.spawn(function() lufa.sleep(0.05) woke = true end)\n", "sleeper");
  CHECK(p != NULL);
  lufa_poll(host, 0);  /* the task starts and sleeps */
  int t = lufa_next_timeout(host);
  CHECK(t > 0 && t <= 51);
  struct pollfd pf = {lufa_fd(host), POLLIN, 0};
  CHECK_INT(poll(&pf, 1, 10000), 1);  /* readable once the plugin's sleep is due (10 s: a safety net) */
  lufa_poll(host, 0);
  CHECK(p && global_bool(p, "woke"));
  CHECK_INT(lufa_plugin_tasks(p, NULL, NULL), 0);
  lufa_host_free(host);
}

static void test_list_and_call(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin *a = load(host, "frames = 0\nfunction update() frames = frames + 1 end", "alpha");
  lufa_plugin *b = load(host, "x = 1", "beta");
  CHECK(a != NULL && b != NULL);
  CHECK(lufa_plugin_first(host) == a);
  CHECK(a && lufa_plugin_next(a) == b);
  CHECK(b && lufa_plugin_next(b) == NULL);
  CHECK_STR(lufa_plugin_name(a), "alpha");
  for (int i = 0; i < 3; i++) CHECK_INT(lufa_plugin_call(a, "update"), LUFA_OK);
  CHECK_INT(lufa_plugin_call(a, "no_such_function"), LUFA_OK);
  CHECK_INT(global_int(a, "frames"), 3);
  CHECK_INT(lufa_plugin_unload(a), LUFA_OK);
  CHECK(lufa_plugin_first(host) == b);
  lufa_host_free(host);
}

/* The error handler runs inside the pump: plugin calls from it are refused, not re-entered. */
static lufa_plugin *reentry_target;
static int reentry_rc = 1;

static void unload_from_handler(lufa_host *host, const char *message, void *ud) {
  (void)host;
  (void)message;
  (void)ud;
  reentry_rc = lufa_plugin_unload(reentry_target);
}

static void test_reentry_refused(void) {
  lufa_host *host = lufa_host_new();
  lufa_set_error_handler(host, unload_from_handler, NULL);
  reentry_target = load(host, "require('lufa').spawn(function() require('lufa').sleep(0) error('boom') end)", "r");
  CHECK(reentry_target != NULL);
  pump(host, 3);
  CHECK_INT(reentry_rc, LUFA_EBUSY);
  CHECK(lufa_plugin_first(host) == reentry_target);
  lufa_host_free(host);
}

/* ---- capabilities and the plugin's folder ---- */

static void test_capabilities(void) {
  char *data = make_temp_dir();
  lufa_host *host = lufa_host_new();
  const char *hosts[] = {"127.0.0.1", NULL};
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.name = "capable";
  o.http_hosts = hosts;
  o.data_dir = data;
  const char *code =
    "local http, fs = require 'lufa.http', require 'lufa.fs'\n"
    "local function fails(f, ...) local ok, e = pcall(f, ...) return not ok and tostring(e) or 'succeeded' end\n"
    "other_host = fails(http.request, {url = 'http://localhost:1/'})\n"
    "userinfo = fails(http.request, {url = 'http://127.0.0.1@example.com/'})\n"
    "file_option = fails(http.request, {url = 'http://127.0.0.1:1/', output_file = '/tmp/x'})\n"
    "not_http = fails(http.request, {url = 'file:///etc/passwd'})\n"
    "absolute = fails(fs.read_file, '/etc/passwd')\n"
    "climbing = fails(fs.read_file, 'a/../../x')\n"
    "climbing_inside = fails(fs.write_file, 'notes/../n.txt', 'x')\n"  /* '..' is refused even within */
    "fs.mkdir('notes')\n"
    "fs.write_file('notes/n.txt', 'kept')\n"
    "read_back = fs.read_file('notes/n.txt')\n";
  lufa_plugin *p = lufa_plugin_load_string(host, code, strlen(code), &o);
  CHECK(p != NULL);
  if (p == NULL) fprintf(stderr, "%s\n", lufa_last_error(host));
  if (p) {
    char buf[1024];
    CHECK(strstr(global_str(p, "other_host", buf, sizeof buf), "may not reach host 'localhost'") != NULL);
    CHECK(strstr(global_str(p, "userinfo", buf, sizeof buf), "may not reach host 'example.com'") != NULL);
    CHECK(strstr(global_str(p, "file_option", buf, sizeof buf), "'output_file' is not available") != NULL);
    CHECK(strstr(global_str(p, "not_http", buf, sizeof buf), "http:// or https://") != NULL);
    CHECK(strstr(global_str(p, "absolute", buf, sizeof buf), "relative to the plugin's data folder") != NULL);
    CHECK(strstr(global_str(p, "climbing", buf, sizeof buf), "may not leave") != NULL);
    CHECK(strstr(global_str(p, "climbing_inside", buf, sizeof buf), "may not leave") != NULL);
    CHECK_STR(global_str(p, "read_back", buf, sizeof buf), "kept");
    CHECK(read_text(data, "notes/n.txt", buf, sizeof buf));
    CHECK_STR(buf, "kept");
  }
  lufa_host_free(host);
  remove_tree(data);
  free(data);
}

/* require finds modules in the plugin's folder, never lufa's names there, and nothing outside it. */
static void test_plugin_folder(void) {
  char *dir = make_temp_dir();
  char sub[1100];
  snprintf(sub, sizeof sub, "%s/lufa", dir);
  mkdir(sub, 0700);
  snprintf(sub, sizeof sub, "%s/util", dir);
  mkdir(sub, 0700);
  write_text(dir, "lufa/json.lua", "return { encode = function() return 'shadowed' end }\n");
  write_text(dir, "util/strings.lua", "local M = {}\nfunction M.shout(s) return s:upper() .. '!' end\n"
                                      "M.sees_io = io ~= nil\nreturn M\n");
  write_text(dir, "main.lua",
    "local strings = require 'util.strings'\n"
    "shout = strings.shout('hi')\n"
    "module_sees_io = strings.sees_io\n"
    "same = require('util.strings') == strings\n"
    "encoded = require('lufa.json').encode({1})\n"
    "climb = pcall(require, '..secret')\n"
    "missing = select(2, pcall(require, 'nope'))\n");
  lufa_host *host = lufa_host_new();
  char path[1100];
  snprintf(path, sizeof path, "%s/main.lua", dir);
  lufa_plugin *p = lufa_plugin_load_file(host, path, NULL);
  CHECK(p != NULL);
  if (p == NULL) fprintf(stderr, "%s\n", lufa_last_error(host));
  if (p) {
    char buf[512];
    CHECK_STR(lufa_plugin_name(p), "main");
    CHECK_STR(global_str(p, "shout", buf, sizeof buf), "HI!");
    CHECK(!global_bool(p, "module_sees_io"));
    CHECK(global_bool(p, "same"));
    CHECK_STR(global_str(p, "encoded", buf, sizeof buf), "[1]");
    CHECK(!global_bool(p, "climb"));
    CHECK(strstr(global_str(p, "missing", buf, sizeof buf), "module 'nope' is not available to plugin 'main'") != NULL);
    /* reload from the same file picks up an edit */
    write_text(dir, "main.lua", "edited = true\nfunction on_reload(old) before = old.shout end\n");
    CHECK_INT(lufa_plugin_reload_file(p, NULL), LUFA_OK);
    CHECK(global_bool(p, "edited"));
    CHECK_STR(global_str(p, "before", buf, sizeof buf), "HI!");
  }
  lufa_host_free(host);
  remove_tree(dir);
  free(dir);
}

/* The host state's global `name` as an integer. */
static lua_Integer host_int(lufa_host *host, const char *name) {
  lua_State *L = lufa_host_state(host);
  lua_getglobal(L, name);
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A symbolic link already in the data folder gives no access outside it, whether its target exists or not;
** a link that stays inside is followed as usual. */
static void test_data_dir_symlinks(void) {
  char *data = make_temp_dir();
  char *outside = make_temp_dir();
  char path[1100], target[1100];
  write_text(outside, "secret.txt", "outside");
  snprintf(path, sizeof path, "%s/out", data);
  CHECK(symlink(outside, path) == 0);
  snprintf(path, sizeof path, "%s/dangling", data);
  snprintf(target, sizeof target, "%s/created.txt", outside);
  CHECK(symlink(target, path) == 0);
  snprintf(path, sizeof path, "%s/notes", data);
  mkdir(path, 0700);
  write_text(data, "notes/n.txt", "inside");
  snprintf(path, sizeof path, "%s/inner", data);
  CHECK(symlink("notes", path) == 0);
  lufa_host *host = lufa_host_new();
  lufa_plugin_options o;
  lufa_plugin_options_init(&o);
  o.name = "linked";
  o.data_dir = data;
  const char *code =
    "local fs = require 'lufa.fs'\n"
    "local function fails(f, ...) local ok, e = pcall(f, ...) return not ok and tostring(e) or 'succeeded' end\n"
    "read_out = fails(fs.read_file, 'out/secret.txt')\n"
    "list_out = fails(fs.list, 'out')\n"
    "write_dangling = fails(fs.write_file, 'dangling', 'x')\n"
    "write_through = fails(fs.write_file, 'out/new.txt', 'x')\n"
    "rename_out = fails(fs.rename, 'notes/n.txt', 'out/moved.txt')\n"
    "read_inner = fs.read_file('inner/n.txt')\n";
  lufa_plugin *p = lufa_plugin_load_string(host, code, strlen(code), &o);
  CHECK(p != NULL);
  if (p == NULL) fprintf(stderr, "%s\n", lufa_last_error(host));
  if (p) {
    char buf[1024];
    const char *names[] = {"read_out", "list_out", "write_dangling", "write_through", "rename_out"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      const char *v = global_str(p, names[i], buf, sizeof buf);
      if (strstr(v, "leads out of the plugin's data folder") == NULL) fprintf(stderr, "%s: %s\n", names[i], v);
      CHECK(strstr(v, "leads out of the plugin's data folder") != NULL);
    }
    CHECK_STR(global_str(p, "read_inner", buf, sizeof buf), "inside");
    CHECK(!read_text(outside, "created.txt", buf, sizeof buf));
    CHECK(!read_text(outside, "new.txt", buf, sizeof buf));
    CHECK(!read_text(outside, "moved.txt", buf, sizeof buf));
    CHECK(read_text(data, "notes/n.txt", buf, sizeof buf));
  }
  lufa_host_free(host);
  remove_tree(data);
  remove_tree(outside);
  free(data);
  free(outside);
}

/* A lufa/json.lua in the working directory does not replace lufa's module inside a plugin's state. */
static void test_cwd_cannot_shadow(void) {
  char *dir = make_temp_dir();
  char sub[1100], cwd[1024];
  snprintf(sub, sizeof sub, "%s/lufa", dir);
  mkdir(sub, 0700);
  write_text(dir, "lufa/json.lua", "return { encode = function() return 'shadowed' end }\n");
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  CHECK(chdir(dir) == 0);
  lufa_host *host = lufa_host_new();
  lufa_plugin *p = load(host, "encoded = require('lufa.json').encode({1})", "cwd");
  CHECK(p != NULL);
  if (p) {
    char buf[64];
    CHECK_STR(global_str(p, "encoded", buf, sizeof buf), "[1]");
  }
  lufa_host_free(host);
  CHECK(chdir(cwd) == 0);
  remove_tree(dir);
  free(dir);
}

/* lufa_run pumps the host's plugins while its own tasks run (a plugin's tasks alone do not keep it going). */
static void test_run_pumps_plugins(void) {
  lufa_host *host = lufa_host_new();
  lufa_plugin *p = load(host, "local lufa = require 'lufa'\n"
                              "ticks = 0\n"
                              "lufa.spawn(function() while true do lufa.sleep(0.01); ticks = ticks + 1 end end)\n",
                        "ticker");
  CHECK(p != NULL);
  CHECK_INT(lufa_spawn_string(host, "require('lufa').sleep(0.2)", "=sleeper"), LUFA_OK);
  CHECK_INT(lufa_run(host), LUFA_OK);
  if (p) {
    lua_Integer ticks = global_int(p, "ticks");
    if (ticks < 5) fprintf(stderr, "the plugin ticked %lld times during lufa_run\n", (long long)ticks);
    CHECK(ticks >= 5);
  }
  lufa_host_free(host);
}

/* lufa_poll_budget stops taking tasks once its budget is spent and leaves the rest queued; every call makes
** progress (a zero budget still takes one piece), and plugins are not starved by host tasks that fill it. */
static void test_poll_budget(void) {
  lufa_host *host = lufa_host_new();
  const char *code =
    "local lufa = require 'lufa'\n"
    "finished = 0\n"
    "for i = 1, 20 do lufa.spawn(function()\n"
    "  local t = os.clock() while os.clock() - t < 0.002 do end\n"
    "  finished = finished + 1 end) end\n";
  CHECK_INT(lufa_spawn_string(host, code, "=busy"), LUFA_OK);
  CHECK_INT(lufa_poll_budget(host, 1000), 19);  /* the first task spends the budget: 19 stay queued */
  CHECK_INT(host_int(host, "finished"), 1);
  CHECK_INT(lufa_poll_budget(host, 0), 18);     /* no budget: one piece all the same */
  int calls = 0;
  while (lufa_task_count(host) > 0 && calls < 100) {
    lufa_poll_budget(host, 1000);
    calls++;
  }
  CHECK_INT(host_int(host, "finished"), 20);
  CHECK(calls >= 18);
  /* lufa_poll has no budget: everything ready runs in one call */
  CHECK_INT(lufa_spawn_string(host, code, "=busy"), LUFA_OK);
  CHECK_INT(lufa_poll(host, 0), 0);

  /* a host task that always fills the budget, and a plugin with work every time */
  CHECK_INT(lufa_spawn_string(host,
    "hog_runs = 0\n"
    "require('lufa').spawn(function() while hog_runs < 40 do\n"
    "  local t = os.clock() while os.clock() - t < 0.002 do end\n"
    "  hog_runs = hog_runs + 1; coroutine.yield() end end)", "=hog"), LUFA_OK);
  lufa_plugin *p = load(host, "local lufa = require 'lufa'\n"
                              "ticks = 0\n"
                              "lufa.spawn(function() while true do lufa.sleep(0); ticks = ticks + 1 end end)\n",
                        "ticker");
  CHECK(p != NULL);
  for (int i = 0; i < 20; i++) lufa_poll_budget(host, 1000);
  if (p) {
    lua_Integer ticks = global_int(p, "ticks");
    if (ticks < 8) fprintf(stderr, "the plugin ticked %lld times in 20 budgeted polls\n", (long long)ticks);
    CHECK(ticks >= 8);
  }
  CHECK(host_int(host, "hog_runs") >= 8);
  lufa_host_free(host);
}

int main(void) {
  test_sandbox_globals();
  test_binary_chunks();
  test_no_shared_tables();
  test_host_keeps_full_library();
  test_cpu_budgets();
  test_load_budget();
  test_memory_limit();
  test_no_blocking_wait();
  test_unload_ends_sleep_and_transfer();
  test_reload_carries_state();
  test_reload_after_memory_stop();
  test_fd_covers_plugins();
  test_list_and_call();
  test_reentry_refused();
  test_capabilities();
  test_plugin_folder();
  test_data_dir_symlinks();
  test_cwd_cannot_shadow();
  test_run_pumps_plugins();
  test_poll_budget();
  return check_summary();
}
