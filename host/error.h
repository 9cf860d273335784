/*
** lufa.error: structured runtime errors.
** Runtime failures (network, parse, service) are returned to Lua as `nil, err`, where err is a table with
** metatable "lufa.error" and stable fields kind, code, message (and optional extras such as status, line).
*/
#ifndef LUFA_ERROR_H
#define LUFA_ERROR_H

#include <lua.h>

#define LUFA_ERROR_MT "lufa.error"

/* Pushes a new error table {kind, code, message}; message is printf-formatted. Returns its stack index. */
int lufa_error_push(lua_State *L, const char *kind, const char *code, const char *fmt, ...);

/* Pushes nil and a new error; returns 2, for `return lufa_error_fail(L, ...)` from a lua_CFunction. */
int lufa_error_fail(lua_State *L, const char *kind, const char *code, const char *fmt, ...);

/* Sets field `name` of the error table at index idx to an integer or a string (for extras such as line). */
void lufa_error_setint(lua_State *L, int idx, const char *name, lua_Integer value);
void lufa_error_setstr(lua_State *L, int idx, const char *name, const char *value);

/* Pushes the name of errno value e ("ENOENT", "EACCES", ...; "E<n>" for one without a name): the code of
** lufa.error values for failed system calls. */
void lufa_error_push_errno_name(lua_State *L, int e);

int luaopen_lufa_error(lua_State *L);

#endif
