/*
** lufa.secret: opaque secret values.
** The bytes live in a userdata that Lua code cannot read except through secret.expose; every conversion to
** text (tostring, string.format, json.encode) yields the marker instead. The memory is wiped when collected.
**
** Every secret's bytes are also remembered in a process-wide set, so output that quotes them anyway (a
** service echoing a request in its error message) can be redacted: see lufa.redact. Lookup is one pass
** over the text: a bitmap of the values' first two bytes rejects most positions, and a hash of the first
** four bytes finds the candidates.
*/
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <openssl/crypto.h>

#include "secret.h"

/* ------------------------------------------------------------------------------------------------------ */
/* The set of remembered values                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct {
  char *bytes;
  size_t len;
  uint32_t head;  /* the first four bytes */
  size_t next;    /* the next value in the same bucket, or KNOWN_NONE */
} Known;

#define KNOWN_NONE ((size_t)-1)

static pthread_mutex_t known_mu = PTHREAD_MUTEX_INITIALIZER;
static Known *known;
static size_t known_n, known_cap;
static size_t *known_buckets;  /* heads of the bucket chains; a power of two of them */
static size_t known_nbuckets;
static uint64_t known_pairs[65536 / 64];  /* bit p: some value starts with the two bytes p */

static uint32_t head_of(const char *p) {
  uint32_t h;
  memcpy(&h, p, sizeof h);
  return h;
}

static size_t bucket_of(uint32_t head, size_t nbuckets) {
  uint32_t h = head;  /* an integer mix, so every bit of the four bytes reaches the low bits */
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return (size_t)h & (nbuckets - 1);
}

static unsigned pair_of(const char *p) {
  return (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
}

static int known_rehash(size_t nbuckets) {
  size_t *b = (size_t *)malloc(nbuckets * sizeof *b);
  if (b == NULL) return -1;
  for (size_t i = 0; i < nbuckets; i++) b[i] = KNOWN_NONE;
  for (size_t i = 0; i < known_n; i++) {
    size_t k = bucket_of(known[i].head, nbuckets);
    known[i].next = b[k];
    b[k] = i;
  }
  free(known_buckets);
  known_buckets = b;
  known_nbuckets = nbuckets;
  return 0;
}

int lufa_secret_remember(const char *bytes, size_t len) {
  if (len < LUFA_SECRET_REMEMBER_MIN) return 0;
  uint32_t head = head_of(bytes);
  int rc = 1;
  pthread_mutex_lock(&known_mu);
  if (known_nbuckets) {
    for (size_t i = known_buckets[bucket_of(head, known_nbuckets)]; i != KNOWN_NONE; i = known[i].next)
      if (known[i].len == len && memcmp(known[i].bytes, bytes, len) == 0) goto done;
  }
  if (known_n == known_cap) {
    size_t cap = known_cap ? known_cap * 2 : 64;
    Known *k = (Known *)realloc(known, cap * sizeof *k);
    if (k == NULL) { rc = -1; goto done; }
    known = k;
    known_cap = cap;
  }
  if (known_n * 2 >= known_nbuckets && known_rehash(known_nbuckets ? known_nbuckets * 2 : 128) != 0) {
    rc = -1;
    goto done;
  }
  char *copy = (char *)malloc(len);
  if (copy == NULL) { rc = -1; goto done; }
  memcpy(copy, bytes, len);
  size_t b = bucket_of(head, known_nbuckets);
  known[known_n] = (Known){ copy, len, head, known_buckets[b] };
  known_buckets[b] = known_n++;
  unsigned p = pair_of(bytes);
  known_pairs[p >> 6] |= (uint64_t)1 << (p & 63);
done:
  pthread_mutex_unlock(&known_mu);
  return rc;
}

void lufa_secret_forget_all(void) {
  pthread_mutex_lock(&known_mu);
  for (size_t i = 0; i < known_n; i++) {
    OPENSSL_cleanse(known[i].bytes, known[i].len);
    free(known[i].bytes);
  }
  free(known);
  free(known_buckets);
  known = NULL;
  known_buckets = NULL;
  known_n = known_cap = known_nbuckets = 0;
  memset(known_pairs, 0, sizeof known_pairs);
  pthread_mutex_unlock(&known_mu);
}

size_t lufa_secret_find_known(const char *s, size_t n, size_t from, size_t *len) {
  size_t found = n;
  pthread_mutex_lock(&known_mu);
  if (known_n == 0 || n < LUFA_SECRET_REMEMBER_MIN) goto done;
  for (size_t i = from; i + LUFA_SECRET_REMEMBER_MIN <= n; i++) {
    unsigned p = pair_of(s + i);
    if (!(known_pairs[p >> 6] >> (p & 63) & 1)) continue;
    uint32_t head = head_of(s + i);
    size_t best = 0;
    for (size_t k = known_buckets[bucket_of(head, known_nbuckets)]; k != KNOWN_NONE; k = known[k].next) {
      const Known *v = &known[k];
      if (v->head == head && v->len > best && v->len <= n - i && memcmp(v->bytes, s + i, v->len) == 0)
        best = v->len;
    }
    if (best) {
      found = i;
      *len = best;
      break;
    }
  }
done:
  pthread_mutex_unlock(&known_mu);
  return found;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Secret values                                                                                          */
/* ------------------------------------------------------------------------------------------------------ */

typedef struct {
  size_t len;
  char bytes[];  /* len bytes, then a NUL so C callers may treat it as a string */
} Secret;

static Secret *secret_test(lua_State *L, int idx) {
  return (Secret *)luaL_testudata(L, idx, LUFA_SECRET_MT);
}

static void secret_pushmeta(lua_State *L);

/* Pushes a secret of len bytes whose content the caller writes, then seals with secret_seal. */
static Secret *secret_alloc(lua_State *L, size_t len) {
  Secret *s = (Secret *)lua_newuserdatauv(L, sizeof(Secret) + len + 1, 0);
  s->len = len;
  s->bytes[len] = '\0';
  secret_pushmeta(L);
  lua_setmetatable(L, -2);
  return s;
}

static void secret_seal(lua_State *L, Secret *s) {
  if (lufa_secret_remember(s->bytes, s->len) < 0) luaL_error(L, "not enough memory to remember a secret");
}

void lufa_secret_push(lua_State *L, const char *bytes, size_t len) {
  Secret *s = secret_alloc(L, len);
  if (len) memcpy(s->bytes, bytes, len);
  secret_seal(L, s);
}

const char *lufa_secret_bytes(lua_State *L, int idx, size_t *len) {
  Secret *s = secret_test(L, idx);
  if (s == NULL) return NULL;
  if (len) *len = s->len;
  return s->bytes;
}

const char *lufa_check_bytes(lua_State *L, int arg, size_t *len, int *was_secret) {
  const char *b = lufa_secret_bytes(L, arg, len);
  if (was_secret) *was_secret = (b != NULL);
  if (b != NULL) return b;
  if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER)
    luaL_typeerror(L, arg, "string or lufa.secret");
  return lua_tolstring(L, arg, len);
}

static int secret_gc(lua_State *L) {
  Secret *s = secret_test(L, 1);
  if (s) OPENSSL_cleanse(s->bytes, s->len);
  return 0;
}

static int secret_tostring(lua_State *L) {
  lua_pushliteral(L, LUFA_SECRET_MARKER);
  return 1;
}

/* Concatenation keeps the result secret: "Bearer " .. token is still a token.
** The bytes go straight into the new secret: no intermediate buffer holds them. */
static int secret_concat(lua_State *L) {
  size_t la, lb;
  const char *a = lufa_check_bytes(L, 1, &la, NULL);
  const char *b = lufa_check_bytes(L, 2, &lb, NULL);
  if (la > SIZE_MAX / 2 || lb > SIZE_MAX / 2) return luaL_error(L, "a secret that long cannot be made");
  Secret *s = secret_alloc(L, la + lb);  /* the operands stay anchored at 1 and 2 meanwhile */
  memcpy(s->bytes, a, la);
  memcpy(s->bytes + la, b, lb);
  secret_seal(L, s);
  return 1;
}

/* secret.concat(...): the strings, numbers and secrets given, joined into one secret by one call. Lua 5.4.4
** mishandles a `..` chain of three or more operands when a metamethod call in it moves the stack (the
** result is the first operand, or the process crashes), and a call of __concat can move it; a chain with a
** secret in it must therefore be joined two operands at a time, or here. */
static int secret_join(lua_State *L) {
  int n = lua_gettop(L);
  size_t total = 0;
  for (int i = 1; i <= n; i++) {
    size_t len;
    lufa_check_bytes(L, i, &len, NULL);
    if (len > SIZE_MAX / 2 - total) return luaL_error(L, "a secret that long cannot be made");
    total += len;
  }
  Secret *s = secret_alloc(L, total);  /* the parts stay anchored at 1..n meanwhile */
  size_t at = 0;
  for (int i = 1; i <= n; i++) {
    size_t len;
    const char *b = lufa_check_bytes(L, i, &len, NULL);
    memcpy(s->bytes + at, b, len);
    at += len;
  }
  secret_seal(L, s);
  return 1;
}

/* Constant-time equality: comparing a secret must not leak how much of it matched. */
static int secret_eq(lua_State *L) {
  size_t la, lb;
  const char *a = lufa_secret_bytes(L, 1, &la);
  const char *b = lufa_secret_bytes(L, 2, &lb);
  lua_pushboolean(L, a && b && la == lb && CRYPTO_memcmp(a, b, la) == 0);
  return 1;
}

static int secret_len(lua_State *L) {
  return luaL_error(L, "the length of a lufa.secret is not readable; use secret.expose where truly needed");
}

static int secret_index(lua_State *L) {
  return luaL_error(L, "attempt to index a lufa.secret (it has no fields; use secret.expose where truly needed)");
}

static void secret_pushmeta(lua_State *L) {
  static const luaL_Reg metameth[] = {
    {"__gc", secret_gc},
    {"__tostring", secret_tostring},
    {"__concat", secret_concat},
    {"__eq", secret_eq},
    {"__len", secret_len},
    {"__index", secret_index},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, LUFA_SECRET_MT)) {
    luaL_setfuncs(L, metameth, 0);
    lua_pushliteral(L, "lufa.secret");
    lua_setfield(L, -2, "__metatable");  /* getmetatable() cannot reach the methods */
  }
}

static int secret_new(lua_State *L) {
  size_t len;
  const char *b = lufa_check_bytes(L, 1, &len, NULL);
  if (secret_test(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  lufa_secret_push(L, b, len);
  return 1;
}

static int secret_call(lua_State *L) {
  lua_remove(L, 1);  /* the module table */
  return secret_new(L);
}

static int secret_is(lua_State *L) {
  lua_pushboolean(L, secret_test(L, 1) != NULL);
  return 1;
}

static int secret_expose(lua_State *L) {
  Secret *s = (Secret *)luaL_checkudata(L, 1, LUFA_SECRET_MT);
  lua_pushlstring(L, s->bytes, s->len);
  return 1;
}

int luaopen_lufa_secret(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"new", secret_new},
    {"is", secret_is},
    {"expose", secret_expose},
    {"concat", secret_join},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  lua_pushliteral(L, LUFA_SECRET_MARKER);
  lua_setfield(L, -2, "marker");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, secret_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  secret_pushmeta(L);
  lua_pop(L, 1);
  return 1;
}
