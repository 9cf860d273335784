/*
** lufa.process: child programs started directly (posix_spawn, never a shell), so every argument arrives as
** one verbatim argv entry. Waiting watches a pidfd on the loop: inside a task it yields like any wait.
** Failures return nil and a lufa.error of kind "process" whose code is the errno name or "timeout".
*/
#ifndef LUFA_PROCESS_H
#define LUFA_PROCESS_H

#include <lua.h>

int luaopen_lufa_process(lua_State *L);

#endif
