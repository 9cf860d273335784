/*
** lufa.systemd: the service manager's readiness protocol (sd_notify), spoken directly: one datagram to
** the socket named by NOTIFY_SOCKET. Without that variable every call is a no-op, so a service can
** always call it.
*/
#ifndef LUFA_SYSTEMD_H
#define LUFA_SYSTEMD_H

#include <lua.h>

int luaopen_lufa_systemd(lua_State *L);

#endif
