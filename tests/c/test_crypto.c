/*
** test_crypto: lufa.crypto against published vectors (RFC 4231, RFC 4648, FIPS 180 examples, RFC 1321),
** and RS256 / certificate thumbprints against the openssl command on keys made at test time.
*/
#define _POSIX_C_SOURCE 200809L  /* mkdtemp, popen */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "crypto.h"
#include "error.h"
#include "secret.h"

static lua_State *L;
static char tmpdir[256];

/* ------------------------------------------------------------------------------------------------ */
/* Helpers                                                                                           */

static void to_hex(const unsigned char *b, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

/* Pushes crypto[fn] called with up to two byte-string arguments (b may be NULL) and returns the number of
** results; on a raised error pushes the message and returns -1. */
static int call(const char *fn, const void *a, size_t alen, const void *b, size_t blen) {
  lua_getglobal(L, "crypto");
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  int base = lua_gettop(L) - 1, nargs = 0;
  if (a != NULL) { lua_pushlstring(L, (const char *)a, alen); nargs++; }
  if (b != NULL) { lua_pushlstring(L, (const char *)b, blen); nargs++; }
  if (lua_pcall(L, nargs, LUA_MULTRET, 0) != LUA_OK) return -1;
  return lua_gettop(L) - base;
}

/* crypto[fn](a [, b]) as lowercase hex (or a description of what came back instead), in a static buffer. */
static const char *hex_call(const char *fn, const void *a, size_t alen, const void *b, size_t blen) {
  static char out[4096];
  int top = lua_gettop(L);
  int n = call(fn, a, alen, b, blen);
  size_t len;
  const char *r = n >= 1 && lua_type(L, top + 1) == LUA_TSTRING ? lua_tolstring(L, top + 1, &len) : NULL;
  if (r != NULL && len * 2 < sizeof out)
    to_hex((const unsigned char *)r, len, out);
  else
    snprintf(out, sizeof out, "(%s: %s)", n < 0 ? "raised" : "no string",
             n != 0 ? luaL_tolstring(L, n < 0 ? -1 : top + n, NULL) : "nothing");
  lua_settop(L, top);
  return out;
}

/* crypto[fn](a) as text (for encoders), in a static buffer. */
static const char *text_call(const char *fn, const void *a, size_t alen) {
  static char out[4096];
  int top = lua_gettop(L);
  int n = call(fn, a, alen, NULL, 0);
  if (n >= 1 && lua_type(L, top + 1) == LUA_TSTRING)
    snprintf(out, sizeof out, "%s", lua_tostring(L, top + 1));
  else
    snprintf(out, sizeof out, "(%s: %s)", n < 0 ? "raised" : "no string",
             n != 0 ? luaL_tolstring(L, n < 0 ? -1 : top + n, NULL) : "nothing");
  lua_settop(L, top);
  return out;
}

/* Runs a Lua chunk (with `crypto`, `secret` and `dir` as globals) that must return true; reports its
** error or false result as a failed check. */
#define check_lua(what, code) check_lua_at(__LINE__, what, code)
static void check_lua_at(int line, const char *what, const char *code) {
  int top = lua_gettop(L);
  int ok = luaL_loadstring(L, code) == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK && lua_toboolean(L, -1);
  if (!ok && lua_type(L, -1) == LUA_TSTRING) fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
  check_report(ok, __FILE__, line, what);
  lua_settop(L, top);
}

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int status = system(cmd);
  if (status != 0) fprintf(stderr, "command failed (%d): %s\n", status, cmd);
  return status == 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) buf = realloc(buf, cap = cap ? cap * 2 : 4096);
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  *len = n;
  return buf;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, len, f) != len) fprintf(stderr, "cannot write %s\n", path);
  if (f) fclose(f);
}

/* ------------------------------------------------------------------------------------------------ */
/* Digests: FIPS 180-2 appendix examples (SHA-1, SHA-256) and the RFC 1321 test suite (MD5)        */

static const char nist_448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

static void test_sha256(void) {
  CHECK_STR(hex_call("sha256", "abc", 3, NULL, 0),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK_STR(hex_call("sha256", nist_448, strlen(nist_448), NULL, 0),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK_STR(hex_call("sha256", "", 0, NULL, 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  char *million = malloc(1000000);
  memset(million, 'a', 1000000);
  CHECK_STR(hex_call("sha256", million, 1000000, NULL, 0),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free(million);
}

static void test_sha1(void) {
  CHECK_STR(hex_call("sha1", "abc", 3, NULL, 0), "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK_STR(hex_call("sha1", nist_448, strlen(nist_448), NULL, 0), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  char *million = malloc(1000000);
  memset(million, 'a', 1000000);
  CHECK_STR(hex_call("sha1", million, 1000000, NULL, 0), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  free(million);
}

static void test_md5(void) {
  static const char *suite[][2] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
  };
  for (size_t i = 0; i < sizeof suite / sizeof suite[0]; i++)
    CHECK_STR(hex_call("md5", suite[i][0], strlen(suite[i][0]), NULL, 0), suite[i][1]);
}

/* crypto.hex itself, against bytes whose hex form is known by construction. */
static void test_hex(void) {
  CHECK_STR(text_call("hex", "\x00\x01\x7f\x80\xab\xff", 6), "00017f80abff");
  CHECK_STR(text_call("hex", "", 0), "");
}

/* ------------------------------------------------------------------------------------------------ */
/* HMAC-SHA256: RFC 4231 section 4                                                                   */

static void test_hmac_rfc4231(void) {
  unsigned char key[131], data[50];

  memset(key, 0x0b, 20);
  CHECK_STR(hex_call("hmac_sha256", key, 20, "Hi There", 8),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

  const char *jefe_data = "what do ya want for nothing?";
  CHECK_STR(hex_call("hmac_sha256", "Jefe", 4, jefe_data, strlen(jefe_data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  memset(key, 0xaa, 20);
  memset(data, 0xdd, 50);
  CHECK_STR(hex_call("hmac_sha256", key, 20, data, 50),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");

  for (int i = 0; i < 25; i++) key[i] = (unsigned char)(i + 1);
  memset(data, 0xcd, 50);
  CHECK_STR(hex_call("hmac_sha256", key, 25, data, 50),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");

  /* Test case 5 publishes only the first 128 bits. */
  memset(key, 0x0c, 20);
  char truncated[33];
  snprintf(truncated, sizeof truncated, "%s", hex_call("hmac_sha256", key, 20, "Test With Truncation", 20));
  CHECK_STR(truncated, "a3b6167473100ee06e0c796c2955552b");

  memset(key, 0xaa, 131);
  const char *tc6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  CHECK_STR(hex_call("hmac_sha256", key, 131, tc6, strlen(tc6)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  const char *tc7 = "This is a test using a larger than block-size key and a larger than block-size data. "
                    "The key needs to be hashed before being used by the HMAC algorithm.";
  CHECK_STR(hex_call("hmac_sha256", key, 131, tc7, strlen(tc7)),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* ------------------------------------------------------------------------------------------------ */
/* base64 / base64url: RFC 4648 section 10, plus the characters the two alphabets differ in         */

static void test_base64_rfc4648(void) {
  static const char *vectors[][2] = {
    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
    const char *plain = vectors[i][0], *encoded = vectors[i][1];
    char unpadded[16];
    snprintf(unpadded, sizeof unpadded, "%.*s", (int)strcspn(encoded, "="), encoded);
    CHECK_STR(text_call("base64_encode", plain, strlen(plain)), encoded);
    CHECK_STR(text_call("base64_decode", encoded, strlen(encoded)), plain);
    CHECK_STR(text_call("base64url_encode", plain, strlen(plain)), unpadded);
    CHECK_STR(text_call("base64url_decode", unpadded, strlen(unpadded)), plain);
    CHECK_STR(text_call("base64url_decode", encoded, strlen(encoded)), plain);  /* padding is optional */
  }
  /* 0xfb 0xff 0xbf uses both of the characters the alphabets differ in. */
  CHECK_STR(text_call("base64_encode", "\xfb\xff\xbf", 3), "+/+/");
  CHECK_STR(text_call("base64url_encode", "\xfb\xff\xbf", 3), "-_-_");
  CHECK_STR(hex_call("base64_decode", "+/+/", 4, NULL, 0), "fbffbf");
  CHECK_STR(hex_call("base64url_decode", "-_-_", 4, NULL, 0), "fbffbf");
  CHECK_STR(text_call("base64_encode", "\xfb\xff", 2), "+/8=");
  CHECK_STR(text_call("base64url_encode", "\xfb\xff", 2), "-_8");
  /* Every byte value survives a round trip through both codecs. */
  check_lua("all 256 byte values round-trip",
            "local t = {} for i = 0, 255 do t[#t + 1] = string.char(i) end local s = table.concat(t)\n"
            "return crypto.base64_decode(crypto.base64_encode(s)) == s\n"
            "  and crypto.base64url_decode(crypto.base64url_encode(s)) == s\n"
            "  and not crypto.base64url_encode(s):find('[+/=]')");
}

/* Malformed input: nil plus a lufa.error with kind "crypto", code "base64" and the offending position. */
static void test_base64_errors(void) {
  static const struct { const char *fn, *input; int position; const char *words; } cases[] = {
    {"base64_decode", "Zm9v!mFy", 5, "invalid character at position 5 (expected"},
    {"base64_decode", "Zm9-", 4, "invalid character"},          /* URL alphabet in standard base64 */
    {"base64url_decode", "Zm9+", 4, "invalid character"},       /* and the other way round */
    {"base64_decode", "Zm 9v", 3, "invalid character"},         /* whitespace is refused */
    {"base64_decode", "Zg", 3, "missing '=' padding"},
    {"base64_decode", "Zg=", 4, "missing '=' padding"},
    {"base64url_decode", "Zg=", 4, "missing '=' padding"},     /* optional, but complete when present */
    {"base64_decode", "Zg===", 5, "unexpected '=' at position 5 (too much padding)"},
    {"base64_decode", "Zm9v=", 5, "too much padding"},
    {"base64_decode", "Zg=a", 3, "unexpected '='"},
    {"base64_decode", "Zm9vY", 5, "lone final character"},
    {"base64url_decode", "Zm9vY", 5, "lone final character"},
    {"base64_decode", "Zh==", 2, "non-canonical"},              /* "Zg==" with a low bit set */
    {"base64url_decode", "Zm9", 3, "non-canonical"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int top = lua_gettop(L);
    int n = call(cases[i].fn, cases[i].input, strlen(cases[i].input), NULL, 0);
    int ok = n == 2 && lua_isnil(L, top + 1) && lua_istable(L, top + 2);
    if (check_report(ok, __FILE__, __LINE__, cases[i].input)) {
      lua_getfield(L, top + 2, "kind");
      lua_getfield(L, top + 2, "code");
      lua_getfield(L, top + 2, "position");
      lua_getfield(L, top + 2, "message");
      CHECK_STR(lua_tostring(L, -4), "crypto");
      CHECK_STR(lua_tostring(L, -3), "base64");
      CHECK_INT(lua_tointeger(L, -2), cases[i].position);
      const char *msg = lua_tostring(L, -1);
      if (!CHECK(msg != NULL && strstr(msg, cases[i].words) != NULL && strstr(msg, cases[i].fn) == msg))
        fprintf(stderr, "  message for %s: %s\n", cases[i].input, msg ? msg : "(none)");
    }
    lua_settop(L, top);
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Secrets in and out                                                                                */

static void test_secrets(void) {
  /* The well-known Azurite development account key: a key whose decoding must stay secret. */
  lua_pushstring(L, "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
  lua_setglobal(L, "azurite_key");
  check_lua("decoding a secret gives a secret with the decoded bytes",
            "local k = crypto.base64_decode(secret(azurite_key))\n"
            "return secret.is(k) and secret.expose(k) == crypto.base64_decode(azurite_key)");
  check_lua("encoding a secret gives a secret",
            "local e = crypto.base64url_encode(secret('\\251\\255'))\n"
            "return secret.is(e) and secret.expose(e) == '-_8'\n"
            "  and secret.is(crypto.base64_encode(secret('x'))) and secret.is(crypto.hex(secret('x')))");
  check_lua("digests, MACs and signatures of secrets are plain strings",
            "local k = crypto.base64_decode(secret(azurite_key))\n"
            "local mac = crypto.hmac_sha256(k, 'data')\n"
            "return type(mac) == 'string' and mac == crypto.hmac_sha256(secret.expose(k), 'data')\n"
            "  and type(crypto.sha256(secret('abc'))) == 'string'\n"
            "  and crypto.sha256(secret('abc')) == crypto.sha256('abc')");
  check_lua("a malformed secret's error quotes none of its bytes",
            "local r, err = crypto.base64_decode(secret('SECRETVALUE!xyz'))\n"
            "return r == nil and err.position == 12 and not tostring(err):find('SECRET', 1, true)\n"
            "  and not tostring(err):find('!', 1, true)");
  /* blob.md worked example 1: a Put Blob Shared Key signature with the Azurite key (verified service). */
  check_lua("Shared Key signature of the Put Blob example",
            "local sts = 'PUT\\n\\n\\n13\\nlZhMZDckyBLOzwM6r3q68A==\\ntext/plain; charset=utf-8\\n\\n\\n\\n\\n\\n\\n'\n"
            "  .. 'x-ms-blob-type:BlockBlob\\nx-ms-date:Thu, 27 Nov 2025 10:00:00 GMT\\n'\n"
            "  .. 'x-ms-meta-owner:lufa\\nx-ms-version:2025-11-05\\n'\n"
            "  .. '/devstoreaccount1/devstoreaccount1/lufa-test/docs/hello%20world.txt'\n"
            "local key = crypto.base64_decode(secret(azurite_key))\n"
            "return crypto.base64_encode(crypto.hmac_sha256(key, sts))\n"
            "  == 'hd23ENZrKKQH435uU78w29QJWnwaac8259f+O5n2RsA='\n"
            "  and crypto.base64_encode(crypto.md5('Hello, Azure!')) == 'lZhMZDckyBLOzwM6r3q68A=='");
}

/* ------------------------------------------------------------------------------------------------ */
/* Incremental and file hashing                                                                      */

static void test_streaming(void) {
  check_lua("chunked sha256 equals the one-shot digest (FIPS 180 million 'a')",
            "local h = crypto.sha256_new()\n"
            "local chunk = string.rep('a', 1000)\n"
            "for _ = 1, 1000 do assert(h:update(chunk) == h) end\n"
            "return crypto.hex(h:final()) == 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'");
  check_lua("chunked md5 with chained updates",
            "local h <close> = crypto.md5_new()\n"
            "return crypto.hex(h:update('message'):update(' '):update('digest'):final())\n"
            "  == 'f96b697d7cb7938d525a2f31aaf161d0'");
  check_lua("a finished or closed hash refuses use; close is idempotent",
            "local h = crypto.sha256_new() h:final()\n"
            "local ok1, e1 = pcall(h.update, h, 'x')\n"
            "local g = crypto.md5_new() g:close() g:close()\n"
            "local ok2, e2 = pcall(g.final, g)\n"
            "return not ok1 and e1:find('finished') and not ok2 and e2:find('closed')");

  char path[512];
  snprintf(path, sizeof path, "%s/data.bin", tmpdir);
  char *content = malloc(200000);
  for (int i = 0; i < 200000; i++) content[i] = (char)(i * 7 + 3);
  write_file(path, content, 200000);
  free(content);
  lua_pushstring(L, path);
  lua_setglobal(L, "data_path");
  check_lua("md5_file and sha256_file equal the digests of the bytes read whole",
            "local f = assert(io.open(data_path, 'rb')) local s = f:read('a') f:close()\n"
            "return #s == 200000 and crypto.md5_file(data_path) == crypto.md5(s)\n"
            "  and crypto.sha256_file(data_path) == crypto.sha256(s)\n"
            "  and crypto.md5_file(data_path, 70000, 65536) == crypto.md5(s:sub(70001, 70000 + 65536))\n"
            "  and crypto.sha256_file(data_path, 199999) == crypto.sha256(s:sub(200000))\n"
            "  and crypto.sha256_file(data_path, 200000) == crypto.sha256('')\n"
            "  and crypto.md5_file(data_path, 5, 0) == crypto.md5('')");
  check_lua("an unreadable file or a short range is nil, err naming the file",
            "local r1, e1 = crypto.md5_file(data_path .. '.missing')\n"
            "local r2, e2 = crypto.sha256_file(data_path, 199000, 5000)\n"
            "local r3, e3 = crypto.sha256_file(data_path, 200001)\n"
            "return r1 == nil and e1.code == 'io' and e1.file == data_path .. '.missing'\n"
            "  and tostring(e1):find(data_path .. '.missing', 1, true)\n"
            "  and r2 == nil and e2.code == 'io' and tostring(e2):find('short', 1, true)\n"
            "  and r3 == nil and e3.code == 'io' and tostring(e3):find('beyond', 1, true)");
  unlink(path);
}

/* ------------------------------------------------------------------------------------------------ */
/* Random bytes and GUIDs                                                                            */

static void test_random(void) {
  check_lua("random_bytes gives the length asked for, and differs between calls",
            "return #crypto.random_bytes(0) == 0 and #crypto.random_bytes(33) == 33\n"
            "  and crypto.random_bytes(32) ~= crypto.random_bytes(32)");
  check_lua("uuid4 is a lowercase version-4 GUID, fresh each time",
            "local seen = {}\n"
            "for _ = 1, 200 do\n"
            "  local u = crypto.uuid4()\n"
            "  if not u:match('^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$')\n"
            "    or u:find('%u') or seen[u] then return false end\n"
            "  seen[u] = true\n"
            "end\n"
            "return true");
  check_lua("random_bytes refuses a negative count", "return not pcall(crypto.random_bytes, -1)");
}

/* ------------------------------------------------------------------------------------------------ */
/* RS256 and thumbprints against the openssl command                                                 */

/* The colon-separated hex after '=' in `openssl x509 -fingerprint` output, lowercased without colons. */
static int openssl_fingerprint(const char *cert, const char *digest, char *out, size_t size) {
  char cmd[1024], line[512];
  snprintf(cmd, sizeof cmd, "openssl x509 -in '%s' -noout -fingerprint -%s", cert, digest);
  FILE *p = popen(cmd, "r");
  if (p == NULL) return 0;
  int ok = fgets(line, sizeof line, p) != NULL;
  pclose(p);
  const char *eq = ok ? strchr(line, '=') : NULL;
  if (eq == NULL) return 0;
  size_t o = 0;
  for (const char *c = eq + 1; *c && *c != '\n' && o + 1 < size; c++)
    if (*c != ':') out[o++] = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
  out[o] = '\0';
  return o > 0;
}

static void test_rs256(void) {
  char key[512], pub[512], cert[512], enc[512], ec[512], pkcs1[512], input[512], sig[512];
  snprintf(key, sizeof key, "%s/key.pem", tmpdir);
  snprintf(pub, sizeof pub, "%s/pub.pem", tmpdir);
  snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
  snprintf(enc, sizeof enc, "%s/encrypted.pem", tmpdir);
  snprintf(ec, sizeof ec, "%s/ec.pem", tmpdir);
  snprintf(pkcs1, sizeof pkcs1, "%s/pkcs1.pem", tmpdir);
  snprintf(input, sizeof input, "%s/input.txt", tmpdir);
  snprintf(sig, sizeof sig, "%s/cli.sig", tmpdir);
  int made = CHECK(sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s' 2>/dev/null", key))
    && CHECK(sh("openssl pkey -in '%s' -pubout -out '%s'", key, pub))
    && CHECK(sh("openssl req -x509 -new -key '%s' -subj /CN=lufa-test -days 2 -out '%s'", key, cert))
    && CHECK(sh("openssl pkey -in '%s' -aes256 -passout pass:lufa -out '%s'", key, enc))
    && CHECK(sh("openssl pkey -in '%s' -traditional -out '%s'", key, pkcs1))
    && CHECK(sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s' 2>/dev/null", ec));
  if (!made) return;

  const char *signing_input = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJsdWZhIn0";
  write_file(input, signing_input, strlen(signing_input));
  if (!CHECK(sh("openssl dgst -sha256 -sign '%s' -out '%s' '%s'", key, sig, input))) return;

  size_t cli_len = 0;
  char *cli_sig = read_file(sig, &cli_len);
  lua_pushlstring(L, cli_sig ? cli_sig : "", cli_len);
  lua_setglobal(L, "cli_sig");
  free(cli_sig);
  lua_pushstring(L, signing_input);
  lua_setglobal(L, "signing_input");
  static const struct { const char *global, *path; } files[] = {
    {"key_pem", "key.pem"}, {"pub_pem", "pub.pem"}, {"cert_pem", "cert.pem"},
    {"encrypted_pem", "encrypted.pem"}, {"ec_pem", "ec.pem"}, {"pkcs1_pem", "pkcs1.pem"},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[512];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", tmpdir, files[i].path);
    char *text = read_file(path, &len);
    lua_pushlstring(L, text ? text : "", len);
    lua_setglobal(L, files[i].global);
    free(text);
  }

  /* PKCS#1 v1.5 signatures are deterministic, so lufa's must equal the openssl command's byte for byte. */
  check_lua("sign_rs256 equals `openssl dgst -sha256 -sign`",
            "local s = assert(crypto.sign_rs256(key_pem, signing_input))\n"
            "return #s == 256 and s == cli_sig");
  check_lua("a PKCS#1 key, a secret key and a key+certificate file sign the same",
            "return crypto.sign_rs256(pkcs1_pem, signing_input) == cli_sig\n"
            "  and crypto.sign_rs256(secret(key_pem), signing_input) == cli_sig\n"
            "  and crypto.sign_rs256(cert_pem .. key_pem, signing_input) == cli_sig");
  check_lua("verify_rs256 with the public key and with the certificate",
            "local s = crypto.sign_rs256(key_pem, signing_input)\n"
            "return crypto.verify_rs256(pub_pem, signing_input, s) == true\n"
            "  and crypto.verify_rs256(cert_pem, signing_input, s) == true\n"
            "  and crypto.verify_rs256(pub_pem, signing_input .. 'x', s) == false\n"
            "  and crypto.verify_rs256(pub_pem, signing_input, s:sub(1, -2) .. 'x') == false\n"
            "  and crypto.verify_rs256(pub_pem, signing_input, 'short') == false");
  check_lua("an encrypted key is refused as such",
            "local r, e = crypto.sign_rs256(encrypted_pem, 'x')\n"
            "return r == nil and e.kind == 'crypto' and e.code == 'key_encrypted'\n"
            "  and tostring(e):find('encrypted', 1, true)");
  check_lua("a non-RSA key is refused with its type",
            "local r, e = crypto.sign_rs256(ec_pem, 'x')\n"
            "return r == nil and e.code == 'key_type' and tostring(e):find('EC', 1, true)");
  check_lua("text without a key is nil, err",
            "local r, e = crypto.sign_rs256(cert_pem, 'x')\n"
            "local r2, e2 = crypto.verify_rs256('not a key', 'x', 'y')\n"
            "return r == nil and e.code == 'key' and r2 == nil and e2.code == 'key'");

  /* The lufa signature verifies under the openssl command too. */
  check_lua("write lufa's signature",
            "local f = assert(io.open(dir .. '/cli.sig', 'wb'))\n"
            "f:write(crypto.sign_rs256(key_pem, signing_input)) f:close() return true");
  CHECK(sh("openssl dgst -sha256 -verify '%s' -signature '%s' '%s' >/dev/null", pub, sig, input));

  char sha1[128], sha256[128];
  if (CHECK(openssl_fingerprint(cert, "sha1", sha1, sizeof sha1)) &&
      CHECK(openssl_fingerprint(cert, "sha256", sha256, sizeof sha256))) {
    lua_pushstring(L, sha1);
    lua_setglobal(L, "cli_sha1");
    lua_pushstring(L, sha256);
    lua_setglobal(L, "cli_sha256");
    check_lua("certificate_thumbprints equal `openssl x509 -fingerprint -sha1/-sha256`",
              "local t = assert(crypto.certificate_thumbprints(key_pem .. cert_pem))\n"
              "return crypto.hex(t.sha1) == cli_sha1 and crypto.hex(t.sha256) == cli_sha256");
    check_lua("load_certificate gives DER, names, validity and thumbprints",
              "local c = assert(crypto.load_certificate(cert_pem))\n"
              "return crypto.hex(crypto.sha1(c.der)) == cli_sha1 and crypto.hex(c.sha256) == cli_sha256\n"
              "  and c.subject == 'CN=lufa-test' and c.issuer == 'CN=lufa-test'\n"
              "  and c.not_after - c.not_before == 2 * 86400\n"
              "  and math.abs(c.not_before - os.time()) < 3600");
  }
  check_lua("a malformed certificate is nil, err",
            "local r1, e1 = crypto.certificate_thumbprints(key_pem)\n"
            "local broken = cert_pem:gsub('MII', 'MIJ', 1)\n"
            "local r2, e2 = crypto.certificate_thumbprints(broken)\n"
            "return r1 == nil and e1.code == 'certificate' and r2 == nil and e2.code == 'certificate'");

  const char *names[] = {"key.pem", "pub.pem", "cert.pem", "encrypted.pem", "ec.pem", "pkcs1.pem",
                         "input.txt", "cli.sig"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
    unlink(path);
  }
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/lufa-crypto-XXXXXX", base && *base ? base : "/tmp");
  if (mkdtemp(tmpdir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "lufa.crypto", luaopen_lufa_crypto, 0);
  lua_setglobal(L, "crypto");
  luaL_requiref(L, "lufa.secret", luaopen_lufa_secret, 0);
  lua_setglobal(L, "secret");
  luaL_requiref(L, "lufa.error", luaopen_lufa_error, 0);
  lua_pop(L, 1);
  lua_pushstring(L, tmpdir);
  lua_setglobal(L, "dir");

  test_sha256();
  test_sha1();
  test_md5();
  test_hex();
  test_hmac_rfc4231();
  test_base64_rfc4648();
  test_base64_errors();
  test_secrets();
  test_streaming();
  test_random();
  test_rs256();

  lua_close(L);
  rmdir(tmpdir);
  return check_summary();
}
