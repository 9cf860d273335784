/*
** lufa.server: a small HTTP/1.1 server on the event loop, for `lufa serve`. C accepts connections, reads
** and parses each request (bounded: see http_request.h) without blocking the loop, and answers malformed
** ones itself; Lua gets complete requests from srv:accept() and writes responses with conn:send().
** One request per connection (responses say Connection: close).
*/
#ifndef LUFA_SERVER_H
#define LUFA_SERVER_H

#include <lua.h>

int luaopen_lufa_server(lua_State *L);

#endif
