/*
** lufa.crypto: digests, HMAC, base64/base64url, secure random bytes, RS256 signatures and certificate
** thumbprints, on OpenSSL 3. Secrets are accepted wherever bytes are; transforms of a secret stay secret.
*/
#ifndef LUFA_CRYPTO_H
#define LUFA_CRYPTO_H

#include <lua.h>

#define LUFA_CRYPTO_HASH_MT "lufa.crypto.hash"

int luaopen_lufa_crypto(lua_State *L);

#endif
