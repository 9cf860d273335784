/*
** The lufa command: runs a Lua script (or -e code) on a host, then runs the loop until no task is left.
** Shaped like lua.c: all setup runs protected, errors get a traceback, only main() picks the exit status.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "include/lufa.h"
#include "loop.h"
#include "modules.h"
#include "repl.h"
#include "version.h"

static const char *progname = "lufa";

/* Subcommands implemented in Lua by lufa.cli (run, validate, runs, rerun, resume, schedule, trigger, publish, serve,
** help, completions). */
static const char *const commands[] = {"run", "validate", "runs", "rerun", "resume", "schedule", "trigger", "publish", "serve",
                                       "help", "completions", NULL};

/* The subcommand `word` nearly spells when it is no file (`lufa rnu` → "run"), left on L's stack; else NULL.
** A word with a '/' or '.' is taken as a script's path whatever it looks like. */
static const char *near_command(lua_State *L, const char *word) {
  if (strchr(word, '/') || strchr(word, '.') || access(word, F_OK) == 0) return NULL;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.options");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_getfield(L, -1, "nearest");
  lua_pushstring(L, word);
  lua_newtable(L);
  for (int c = 0; commands[c]; c++) {
    lua_pushstring(L, commands[c]);
    lua_rawseti(L, -2, c + 1);
  }
  if (lua_pcall(L, 2, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 2);
    return NULL;
  }
  return lua_tostring(L, -1);
}

static void usage(FILE *out) {
  fprintf(out,
    "usage: %s [options] [script [args]]\n"
    "  -e CODE   run CODE (may be repeated)\n"
    "  -i        stay at the interactive prompt after the script or -e CODE\n"
    "  -v        print the version\n"
    "  -h        print this help\n"
    "  --        stop handling options\n"
    "       %s run FACTORY PIPELINE [--override FILE] [--param NAME=VALUE]... [--store PATH] [--json]\n"
    "       %s validate FACTORY [--override FILE] [--json]\n"
    "       %s runs list|show|cancel|prune|check ...   %s rerun RUN_ID   %s resume RUN_ID\n"
    "       %s schedule FACTORY [--next N | --once]   %s trigger start|stop NAME\n"
    "       %s publish FACTORY --out DIR | --subscription S --resource-group G --factory F [--dry-run]\n"
    "       %s serve [FACTORY...] [--port N] [--bind ADDRESS]   run history pages for a browser\n"
    "       (%s run --help lists their options)\n"
    "With no script and no -e, starts an interactive prompt (docs/repl.md). After the script ends, lufa runs\n"
    "its tasks until none is left. Lua modules: %s (override with LUFA_PATH).\n",
    progname, progname, progname, progname, progname, progname, progname, progname, progname, progname, progname,
    lufa_lua_dir());
}

/* Message handler: a traceback, honouring __tostring for error objects. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* arg = {[-n..-1] = interpreter and options, [0] = script, [1..] = script arguments}, as lua.c sets it. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  const char *fname = argv[script];
  if (strcmp(fname, "-") == 0) fname = NULL;  /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = argc - script - 1;
    luaL_checkstack(L, n, "too many arguments to script");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    status = docall(L, n, 0);
  }
  return report(L, status);
}

static int run_code(lua_State *L, const char *code) {
  int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

/* lufa.cli.main(name, args...) → exit status; runs in the main chunk like a script. */
static int run_command(lua_State *L, char **argv, int argc, int first) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "lufa.cli");
  int status = docall(L, 1, 1);
  if (status != LUA_OK) return report(L, status), 1;
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  for (int i = first; i < argc; i++) lua_pushstring(L, argv[i]);
  status = docall(L, argc - first, 1);
  if (status != LUA_OK) return report(L, status), 1;
  int code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 1;
  lua_pop(L, 1);
  return code;
}

/* Runs the loop until every task is done; the result tells whether a task failed unobserved. */
static int drain_tasks(lufa_host *host) {
  int rc = lufa_run(host);
  if (rc == LUFA_ERROR && strncmp(lufa_last_error(host), "deadlock", 8) == 0)
    fprintf(stderr, "%s: %s\n", progname, lufa_last_error(host));
  /* a task that failed unobserved at any time, even while the main chunk ran, fails the command */
  return rc == LUFA_OK && lufa_error_count(host) == 0;
}

int main(int argc, char **argv) {
  if (argv[0] && argv[0][0]) progname = argv[0];
  lufa_host *host = lufa_host_new();
  if (host == NULL) {
    fprintf(stderr, "%s: cannot create the Lua state: not enough memory\n", progname);
    return EXIT_FAILURE;
  }
  lua_State *L = lufa_host_state(host);
  int ok = 1, ran = 0, script = 0, interactive = 0;
  for (int c = 0; argc > 1 && commands[c]; c++) {
    if (strcmp(argv[1], commands[c]) == 0) {
      create_arg_table(L, argv, argc, 1);
      int code = run_command(L, argv, argc, 1);
      if (!drain_tasks(host) && code == 0) code = 1;
      lufa_host_free(host);
      return code;
    }
  }
  for (int i = 1; i < argc && script == 0 && ok; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) script = i + 1;
      break;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      lufa_print_versions(stdout);
      ran = 1;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      ran = 1;
    } else if (strcmp(a, "-i") == 0) {
      interactive = 1;
    } else if (strcmp(a, "-e") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: '-e' needs an argument\n", progname);
        usage(stderr);
        ok = 0;
        break;
      }
      create_arg_table(L, argv, argc, 0);
      ok = run_code(L, argv[++i]) == LUA_OK && (interactive || drain_tasks(host));
      ran = 1;
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname, a);
      usage(stderr);
      ok = 0;
    } else {
      script = i;
    }
  }
  if (ok && script == 1) {
    const char *near = near_command(L, argv[1]);
    if (near) {
      fprintf(stderr, "%s: unknown command '%s' (did you mean '%s'?); '%s help' lists the commands\n", progname,
              argv[1], near, progname);
      lufa_host_free(host);
      return 2;
    }
  }
  if (ok && script > 0) {
    create_arg_table(L, argv, argc, script);
    ok = run_script(L, argv, argc, script) == LUA_OK;
    if (!interactive) ok = drain_tasks(host) && ok;
  }
  if (ok && script == 0 && !ran && !interactive && !isatty(0)) {
    /* stdin that is not a terminal runs as one script, as `lua -` does (`lufa -i` reads it line by line) */
    create_arg_table(L, argv, argc, 0);
    int status = luaL_loadfile(L, NULL);
    if (status == LUA_OK) status = docall(L, 0, 0);
    ok = report(L, status) == LUA_OK;
    ok = drain_tasks(host) && ok;
    ran = 1;
  }
  if ((ok || (interactive && (script > 0 || ran))) && (interactive || (!ran && script == 0))) {
    if (script == 0 && !ran) create_arg_table(L, argv, argc, 0);
    char banner[160];
    snprintf(banner, sizeof banner, "lufa %s  (%s)  type Lua, or .help; an expression prints its value\n",
             LUFA_VERSION, LUA_RELEASE);
    /* a piped script ends like a file script; a user who leaves does not wait for the tasks */
    switch (lufa_repl(host, progname, banner)) {
      case REPL_EXIT: break;
      case REPL_DRAIN: ok = drain_tasks(host); break;
      case REPL_FAILED: drain_tasks(host); ok = 0; break;
    }
  }
  lufa_host_free(host);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
