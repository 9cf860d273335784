/*
** lufa.sqlite: SQLite databases on local files, for state that must survive the process (the run store).
** Calls are synchronous; a write lock held elsewhere is waited for up to the busy timeout. db:batch groups
** the writes of one loop turn into one transaction that a loop prepare hook commits before the loop waits.
*/
#ifndef LUFA_SQLITE_H
#define LUFA_SQLITE_H

#include <lua.h>

int luaopen_lufa_sqlite(lua_State *L);

#endif
