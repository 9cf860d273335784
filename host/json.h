/*
** lufa.json: JSON (RFC 8259) with fidelity: 64-bit integers stay integers, floats stay floats, [] stays an
** array and {} an object, null is the distinct value json.null. Decode errors give line, column and what
** was expected; encode errors name the JSON path of the offending value.
*/
#ifndef LUFA_JSON_H
#define LUFA_JSON_H

#include <lua.h>

/* Nesting limit of decode and encode unless opts.max_depth says otherwise, and the largest allowed. */
#define LUFA_JSON_DEFAULT_DEPTH 1000
#define LUFA_JSON_MAX_DEPTH 10000

int luaopen_lufa_json(lua_State *L);

#endif
