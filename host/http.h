/*
** lufa.core.http: HTTP(S) requests on libcurl's multi interface, waited for by the event loop.
*/
#ifndef LUFA_HTTP_H
#define LUFA_HTTP_H

#include <lua.h>

int luaopen_lufa_core_http(lua_State *L);

#endif
