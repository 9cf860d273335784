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

/* Values shorter than this are not remembered for redaction: they would mask ordinary words. */
#define LUFA_SECRET_REMEMBER_MIN 6

/* Remembers bytes as secret text, so lufa.redact replaces them wherever they show up in output. Every
** lufa.secret is remembered when it is made (derived ones too: a concatenation is a new secret). The set
** is process-wide, thread-safe and kept for the life of the process (a collected secret is not forgotten).
** Returns 1 when remembered (or already known), 0 when shorter than LUFA_SECRET_REMEMBER_MIN, -1 when out
** of memory. */
int lufa_secret_remember(const char *bytes, size_t len);

/* The first occurrence, at or after `from`, of a remembered value in s[0..n): its offset, with the length
** of the longest value starting there in *len; n when there is none. */
size_t lufa_secret_find_known(const char *s, size_t n, size_t from, size_t *len);

/* Wipes and forgets every remembered value. Only for programs that make secrets without end and own
** all their output, such as the fuzz harnesses (tests/fuzz): lufa itself never forgets a secret. */
void lufa_secret_forget_all(void);

int luaopen_lufa_secret(lua_State *L);

#endif
