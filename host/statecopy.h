/*
** Copying plain data from one Lua state to another (a plugin's globals carried over a reload).
*/
#ifndef LUFA_STATECOPY_H
#define LUFA_STATECOPY_H

#include <lua.h>

/* Pushes onto `to` a copy of the value at the top of `from`: strings, numbers, booleans and tables of them
** (shared and cyclic tables stay shared and cyclic; metatables are not copied). Functions, threads and
** userdata become nil (as table values and keys: left out). Nothing in `from` allocates or raises, so
** `from` may be a state at its memory limit. Returns LUA_OK with the copy pushed onto `to`, or an error
** status with the message pushed instead (out of memory in `to`, tables nested too deep). */
int state_copy_value(lua_State *from, lua_State *to);

#endif
