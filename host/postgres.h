/*
** lufa.postgres: a PostgreSQL client on libpq, for a run store shared by several hosts.
** Queries are parameterised (the SQL text never holds a value), results come back as Lua tables, and
** conn:transaction runs a function between BEGIN and COMMIT (no other task gets in). Calls are synchronous
** (see postgres.c for why); the password is given as a lufa.secret and never appears in an error.
*/
#ifndef LUFA_POSTGRES_H
#define LUFA_POSTGRES_H

#include <lua.h>

int luaopen_lufa_postgres(lua_State *L);

#endif
