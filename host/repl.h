/*
** The interactive prompt (`lufa` with no script, `lufa -i script`): line editing, history and completion
** with libedit, while the host's loop keeps turning. What a line means (evaluation, printing, completion
** candidates, commands) is decided by the Lua module lufa.repl; this file owns the terminal and signals.
*/
#ifndef LUFA_REPL_H
#define LUFA_REPL_H

#include "include/lufa.h"

/* How the prompt ended. */
enum repl_end {
  REPL_EXIT,     /* the user left (Ctrl-D, .quit): tasks still running are cancelled, not awaited */
  REPL_DRAIN,    /* stdin ended (not a terminal): run the remaining tasks as after a script */
  REPL_FAILED    /* stdin ended and a chunk failed (a script fed through a pipe reports it) */
};

/* Reads, evaluates and prints until the user leaves or stdin ends. `banner` is printed first when stdin
** is a terminal. */
enum repl_end lufa_repl(lufa_host *host, const char *progname, const char *banner);

#endif
