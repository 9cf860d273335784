/*
** lufa.secret: opaque values whose bytes only native code reads.
** Printing, formatting or JSON-encoding a secret yields LUFA_SECRET_MARKER; concatenation yields a new secret.
*/
#ifndef LUFA_SECRET_H
#define LUFA_SECRET_H

#include <stddef.h>
#include <lua.h>

#define LUFA_SECRET_MT "lufa.secret"
#define LUFA_SECRET_MARKER "<redacted>"

/* Pushes a new secret holding a copy of bytes[0..len). */
void lufa_secret_push(lua_State *L, const char *bytes, size_t len);

/* The bytes of the secret at idx (and its length), or NULL when the value is not a secret. */
const char *lufa_secret_bytes(lua_State *L, int idx, size_t *len);

/* For arguments that may be a string or a secret: their bytes. Raises an argument error otherwise.
** *was_secret (may be NULL) tells whether the value was a secret, so derived values can stay secret. */
const char *lufa_check_bytes(lua_State *L, int arg, size_t *len, int *was_secret);

int luaopen_lufa_secret(lua_State *L);

#endif
