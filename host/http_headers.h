/*
** Response header blocks as lufa.http gives them to Lua: a table of lowercased names whose lookup ignores
** case. Kept apart from the transfer code so the parser can be fuzzed on its own (tests/fuzz).
*/
#ifndef LUFA_HTTP_HEADERS_H
#define LUFA_HTTP_HEADERS_H

#include <stddef.h>

#include <lua.h>

/* Registers the headers metatable (idempotent). */
void http_headers_register(lua_State *L);

/* Pushes the table for the header lines in data[0..len) (status line first, as curl delivers them):
** names lowercased, values trimmed of spaces and tabs, repeated fields joined with ", ". Lines without a
** colon, or with nothing before it, are skipped. Never fails on any bytes. */
void http_headers_push(lua_State *L, const char *data, size_t len);

#endif
