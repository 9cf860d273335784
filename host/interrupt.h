/*
** lufa.on_interrupt: Ctrl-C as a task instead of the end of the process (see interrupt.c).
*/
#ifndef LUFA_INTERRUPT_H
#define LUFA_INTERRUPT_H

#include <lua.h>

int lufa_on_interrupt(lua_State *L);

#endif
