/*
** lufa.redact: the one place where text lufa shows (messages, errors, output) loses its secrets.
** Two things are replaced by LUFA_SECRET_MARKER ("<redacted>"): the bytes of every remembered secret
** (every lufa.secret, and values given to redact.add), and whatever is shaped like a credential even when
** lufa never saw it (a SAS `sig=`, `AccountKey=`, `Bearer <token>`, JWTs, ...). Only the secret part goes:
** `...&sig=<redacted>&se=...`. Text with nothing to hide comes back unchanged, byte for byte.
*/
#ifndef LUFA_REDACT_H
#define LUFA_REDACT_H

#include <stddef.h>
#include <lua.h>

/* Pushes s[0..len) redacted. */
void lufa_redact_push(lua_State *L, const char *s, size_t len);

/* Replaces the string at idx by its redacted form; a value that is not a string is left alone. */
void lufa_redact_at(lua_State *L, int idx);

/* Redacts, in place, every string value of the table at idx, and of the tables it holds (to a depth). */
void lufa_redact_table(lua_State *L, int idx, int depth);

int luaopen_lufa_redact(lua_State *L);

#endif
