/*
** lufa.fs: the file-system calls lufa's Lua modules need, made directly (no shell, no external program),
** so a path is only ever a path: spaces, quotes, `$(...)`, backquotes and newlines in it mean nothing.
** Failures return nil and a lufa.error of kind "fs" whose code is the errno name ("ENOENT", "EACCES", ...).
*/
#ifndef LUFA_FS_H
#define LUFA_FS_H

#include <lua.h>

int luaopen_lufa_fs(lua_State *L);

#endif
