/*
** lufa.crypto: the primitives Azure signing needs (Shared Key and SAS HMACs, Content-MD5, RS256 client
** assertions with certificate thumbprints, GUIDs), on OpenSSL 3.
**
** Secrets: every input that may be a key accepts a lufa.secret. A transform of a secret (hex, base64 and
** base64url in either direction) is a secret again; digests, MACs and signatures are plain strings.
** Buffers that held secret bytes are wiped before they are dropped, and no message quotes input bytes.
**
** Errors: misuse (a wrong argument type) raises; bad data (malformed base64, an unusable key or certificate,
** an unreadable file) returns nil and a lufa.error of kind "crypto". OpenSSL's error queue is drained into
** the message after every failed call, so the next caller never sees stale errors.
*/
#define _POSIX_C_SOURCE 200809L  /* fseeko, fstat, off_t */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "filehash.h"
#include "error.h"
#include "secret.h"

#define CRYPTO_CERT_MT "lufa.crypto.certificate_guard"
#define CRYPTO_MAX_SIG 2048     /* bytes: an RSA signature of the largest key OpenSSL generates (16384 bits) */
#define CRYPTO_FILE_CHUNK 32768 /* bytes read at a time when hashing a file */
#define CRYPTO_MSG 512

/* ---------------------------------------------------------------------------------------------------- */
/* OpenSSL errors and result buffers                                                                     */

/* Drains OpenSSL's error queue into buf as "reason; reason", so a failure reports every cause once. */
static void crypto_ssl_errors(char *buf, size_t size) {
  size_t used = 0;
  unsigned long code;
  const char *data;
  int flags;
  buf[0] = '\0';
  while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
    char one[256];
    ERR_error_string_n(code, one, sizeof one);
    int n = snprintf(buf + used, size - used, "%s%s%s%s", used ? "; " : "", one,
                     (flags & ERR_TXT_STRING) && data && *data ? " " : "",
                     (flags & ERR_TXT_STRING) && data ? data : "");
    if (n < 0 || (size_t)n >= size - used) break;
    used += (size_t)n;
  }
  ERR_clear_error();
  if (used == 0) snprintf(buf, size, "no details from OpenSSL");
}

/* For OpenSSL failures that no input can cause (a digest of valid bytes): raise, with OpenSSL's reasons. */
static int crypto_raise_ssl(lua_State *L, const char *what) {
  char detail[CRYPTO_MSG];
  crypto_ssl_errors(detail, sizeof detail);
  return luaL_error(L, "%s failed: %s", what, detail);
}

/* Pushes a scratch buffer of n bytes (a userdata, so a Lua error cannot leak it). */
static unsigned char *crypto_scratch(lua_State *L, size_t n) {
  return (unsigned char *)lua_newuserdatauv(L, n ? n : 1, 0);
}

/* Replaces the scratch buffer at the top of the stack by its first len bytes, as a secret or a string.
** A secret's scratch copy is wiped first: userdata memory is not cleared when collected. */
static int crypto_push_result(lua_State *L, unsigned char *scratch, size_t len, int secret) {
  if (secret) {
    lufa_secret_push(L, (const char *)scratch, len);
    OPENSSL_cleanse(scratch, len);
  } else {
    lua_pushlstring(L, (const char *)scratch, len);
  }
  lua_remove(L, -2);
  return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Digests and HMAC                                                                                      */

static int crypto_digest(lua_State *L, const EVP_MD *md, const char *name) {
  size_t len;
  const char *data = lufa_check_bytes(L, 1, &len, NULL);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int outlen = 0;
  if (EVP_Digest(data, len, out, &outlen, md, NULL) != 1) return crypto_raise_ssl(L, name);
  lua_pushlstring(L, (const char *)out, outlen);
  return 1;
}

/***
 * SHA-256 digest.
 * @function sha256
 * @tparam string|secret data
 * @treturn string the 32 raw digest bytes (plain, even for a secret input)
 */
static int crypto_sha256(lua_State *L) {
  return crypto_digest(L, EVP_sha256(), "sha256");
}

/***
 * SHA-1 digest (certificate thumbprints; not for new signatures).
 * @function sha1
 * @tparam string|secret data
 * @treturn string the 20 raw digest bytes
 */
static int crypto_sha1(lua_State *L) {
  return crypto_digest(L, EVP_sha1(), "sha1");
}

/***
 * MD5 digest (Content-MD5 integrity headers only).
 * @function md5
 * @tparam string|secret data
 * @treturn string the 16 raw digest bytes
 */
static int crypto_md5(lua_State *L) {
  return crypto_digest(L, EVP_md5(), "md5");
}

/***
 * HMAC-SHA256 (Blob Shared Key and SAS signatures: the key is the base64-decoded account key).
 * @function hmac_sha256
 * @tparam string|secret key any length
 * @tparam string|secret data
 * @treturn string the 32 raw MAC bytes (plain)
 */
static int crypto_hmac_sha256(lua_State *L) {
  size_t klen, dlen, outlen = 0;
  const char *key = lufa_check_bytes(L, 1, &klen, NULL);
  const char *data = lufa_check_bytes(L, 2, &dlen, NULL);
  unsigned char out[EVP_MAX_MD_SIZE];
  if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, (const unsigned char *)data, dlen,
                out, sizeof out, &outlen) == NULL)
    return crypto_raise_ssl(L, "hmac_sha256");
  lua_pushlstring(L, (const char *)out, outlen);
  return 1;
}

/***
 * Lowercase hexadecimal form of bytes.
 * @function hex
 * @tparam string|secret bytes
 * @treturn string|secret two characters per byte; a secret when `bytes` is one
 */
static int crypto_hex(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  size_t len;
  int secret;
  const unsigned char *in = (const unsigned char *)lufa_check_bytes(L, 1, &len, &secret);
  if (len > SIZE_MAX / 2) return luaL_error(L, "hex: input too large");
  unsigned char *out = crypto_scratch(L, len * 2);
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = (unsigned char)digits[in[i] >> 4];
    out[2 * i + 1] = (unsigned char)digits[in[i] & 0x0f];
  }
  return crypto_push_result(L, out, len * 2, secret);
}

/* ---------------------------------------------------------------------------------------------------- */
/* base64 and base64url (RFC 4648 sections 4 and 5)                                                      */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const unsigned char *in, size_t n, unsigned char *out, const char *alphabet, int pad) {
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = (unsigned char)alphabet[v >> 18];
    out[o++] = (unsigned char)alphabet[(v >> 12) & 63];
    out[o++] = (unsigned char)alphabet[(v >> 6) & 63];
    out[o++] = (unsigned char)alphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = (unsigned char)alphabet[v >> 18];
    out[o++] = (unsigned char)alphabet[(v >> 12) & 63];
    if (pad) { out[o++] = '='; out[o++] = '='; }
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = (unsigned char)alphabet[v >> 18];
    out[o++] = (unsigned char)alphabet[(v >> 12) & 63];
    out[o++] = (unsigned char)alphabet[(v >> 6) & 63];
    if (pad) out[o++] = '=';
  }
  return o;
}

/* All ones when lo <= c <= hi, else zero; branch-free (relies on arithmetic right shift of a negative int,
** which every supported compiler does). */
static int b64_in_range(int c, int lo, int hi) {
  return ((lo - 1 - c) & (c - hi - 1)) >> 8;
}

/* The 6-bit value of character c, or -1. Branch-free so that decoding a key does not time its bytes. */
static int b64_value(unsigned char ch, int url) {
  int c = ch, v = -1;
  v += b64_in_range(c, 'A', 'Z') & (c - 'A' + 1);
  v += b64_in_range(c, 'a', 'z') & (c - 'a' + 27);
  v += b64_in_range(c, '0', '9') & (c - '0' + 53);
  v += b64_in_range(c, url ? '-' : '+', url ? '-' : '+') & 63;
  v += b64_in_range(c, url ? '_' : '/', url ? '_' : '/') & 64;
  return v;
}

typedef struct {
  size_t position;  /* 1-based byte position of the fault; length + 1 when input is missing at the end */
  const char *what;
  const char *hint;  /* what was expected there, or "" */
} B64Fault;

/* Decodes in[0..n) into out (room for n / 4 * 3 + 2 bytes). Padding is required for standard base64 and
** optional for base64url, but must be right when present. Unused low bits of the last character must be
** zero (RFC 4648 section 3.5), so each byte string has exactly one encoding. Returns 0 and fills fault
** on malformed input. */
static int b64_decode(const unsigned char *in, size_t n, int url, unsigned char *out, size_t *outlen,
                      B64Fault *fault) {
  size_t data = n, pads = 0, o = 0;
  uint32_t acc = 0;
  while (data > 0 && in[data - 1] == '=') {
    data--;
    pads++;
  }
  for (size_t i = 0; i < data; i++) {
    int v = b64_value(in[i], url);
    if (v < 0) {
      fault->position = i + 1;
      fault->what = in[i] == '=' ? "unexpected '='" : "invalid character";
      fault->hint = in[i] == '=' ? " (padding may only end the input)"
                  : url ? " (expected A-Z, a-z, 0-9, '-', '_' or final '=' padding)"
                        : " (expected A-Z, a-z, 0-9, '+', '/' or final '=' padding)";
      return 0;
    }
    acc = acc << 6 | (uint32_t)v;
    if ((i & 3) == 3) {
      out[o++] = (unsigned char)(acc >> 16);
      out[o++] = (unsigned char)(acc >> 8);
      out[o++] = (unsigned char)acc;
      acc = 0;
    }
  }
  size_t rest = data % 4, want = rest ? 4 - rest : 0;
  if (rest == 1) {
    fault->position = data;
    fault->what = "a lone final character";
    fault->hint = " (a group needs at least 2 characters; truncated input?)";
    return 0;
  }
  if (pads > want) {
    fault->position = data + want + 1;
    fault->what = "unexpected '='";
    fault->hint = " (too much padding)";
    return 0;
  }
  if (pads < want && (pads > 0 || !url)) {
    fault->position = n + 1;
    fault->what = "missing '=' padding";
    fault->hint = " (the length must be a multiple of 4)";
    return 0;
  }
  if ((rest == 2 && (acc & 0x0f)) || (rest == 3 && (acc & 0x03))) {
    fault->position = data;
    fault->what = "non-canonical final character";
    fault->hint = " (its unused low bits must be zero)";
    return 0;
  }
  if (rest == 2) {
    out[o++] = (unsigned char)(acc >> 4);
  } else if (rest == 3) {
    out[o++] = (unsigned char)(acc >> 10);
    out[o++] = (unsigned char)(acc >> 2);
  }
  *outlen = o;
  return 1;
}

static int crypto_b64_encode(lua_State *L, int url) {
  size_t len;
  int secret;
  const unsigned char *in = (const unsigned char *)lufa_check_bytes(L, 1, &len, &secret);
  if (len > SIZE_MAX / 4 * 3 - 3) return luaL_error(L, "base64 encode: input too large");
  unsigned char *out = crypto_scratch(L, (len + 2) / 3 * 4);
  size_t outlen = b64_encode(in, len, out, url ? b64_url : b64_std, !url);
  return crypto_push_result(L, out, outlen, secret);
}

static int crypto_b64_decode(lua_State *L, int url) {
  const char *fname = url ? "base64url_decode" : "base64_decode";
  size_t len, outlen = 0;
  int secret;
  const unsigned char *in = (const unsigned char *)lufa_check_bytes(L, 1, &len, &secret);
  unsigned char *out = crypto_scratch(L, len / 4 * 3 + 2);
  B64Fault fault = {0, "", ""};
  if (!b64_decode(in, len, url, out, &outlen, &fault)) {
    if (secret) OPENSSL_cleanse(out, len / 4 * 3 + 2);
    lufa_error_fail(L, "crypto", "base64", "%s: %s at position %I%s", fname, fault.what,
                    (lua_Integer)fault.position, fault.hint);
    lufa_error_setint(L, -1, "position", (lua_Integer)fault.position);
    return 2;
  }
  return crypto_push_result(L, out, outlen, secret);
}

/***
 * Standard base64 with '=' padding (RFC 4648 section 4).
 * @function base64_encode
 * @tparam string|secret bytes
 * @treturn string|secret a secret when `bytes` is one
 */
static int crypto_base64_encode(lua_State *L) {
  return crypto_b64_encode(L, 0);
}

/***
 * Decodes standard base64. Padding is required; whitespace and the URL alphabet are refused.
 * @function base64_decode
 * @tparam string|secret text
 * @treturn string|secret the bytes (a secret when `text` is one)
 * @return nil, err on malformed input (`err.kind` "crypto", `err.code` "base64", `err.position` the
 *   1-based byte position of the fault)
 */
static int crypto_base64_decode(lua_State *L) {
  return crypto_b64_decode(L, 0);
}

/***
 * base64url without padding (RFC 4648 section 5; JWT segments, thumbprints).
 * @function base64url_encode
 * @tparam string|secret bytes
 * @treturn string|secret a secret when `bytes` is one
 */
static int crypto_base64url_encode(lua_State *L) {
  return crypto_b64_encode(L, 1);
}

/***
 * Decodes base64url; '=' padding is optional but must be right when present.
 * @function base64url_decode
 * @tparam string|secret text
 * @treturn string|secret the bytes (a secret when `text` is one)
 * @return nil, err on malformed input (as base64_decode)
 */
static int crypto_base64url_decode(lua_State *L) {
  return crypto_b64_decode(L, 1);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Randomness                                                                                            */

/***
 * Cryptographically secure random bytes (OpenSSL RAND_bytes).
 * @function random_bytes
 * @tparam integer n 0 <= n <= 2^31 - 1
 * @treturn string n bytes
 * @return nil, err (`err.code` "random") if the generator cannot deliver
 */
static int crypto_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= INT_MAX, 1, "expected a count between 0 and 2^31 - 1");
  luaL_Buffer b;
  unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
  if (n > 0 && RAND_bytes(p, (int)n) != 1) {
    char detail[CRYPTO_MSG];
    crypto_ssl_errors(detail, sizeof detail);
    return lufa_error_fail(L, "crypto", "random", "random_bytes: the random generator failed: %s", detail);
  }
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/***
 * A random (version 4) GUID, e.g. for run ids and JWT `jti` claims.
 * @function uuid4
 * @treturn string lowercase "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" (y is 8, 9, a or b)
 * @return nil, err (`err.code` "random") if the generator cannot deliver
 */
static int crypto_uuid4(lua_State *L) {
  static const char digits[] = "0123456789abcdef";
  unsigned char b[16];
  char s[37];
  if (RAND_bytes(b, sizeof b) != 1) {
    char detail[CRYPTO_MSG];
    crypto_ssl_errors(detail, sizeof detail);
    return lufa_error_fail(L, "crypto", "random", "uuid4: the random generator failed: %s", detail);
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
  for (int i = 0, o = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s[o++] = '-';
    s[o++] = digits[b[i] >> 4];
    s[o++] = digits[b[i] & 0x0f];
  }
  s[36] = '\0';
  lua_pushlstring(L, s, 36);
  return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* RS256 (RSASSA-PKCS1-v1_5 with SHA-256)                                                                */

typedef struct {
  const char *code;  /* NULL while nothing failed */
  char message[CRYPTO_MSG * 2];  /* room for a prefix and a full OpenSSL detail */
} CryptoFault;

static void crypto_fault(CryptoFault *f, const char *code, const char *fmt, const char *detail) {
  f->code = code;
  snprintf(f->message, sizeof f->message, fmt, detail);
}

/* Password callback: lufa never prompts for a pass phrase; it notes that one was asked for. */
static int crypto_no_password(char *buf, int size, int rwflag, void *asked) {
  (void)buf;
  (void)size;
  (void)rwflag;
  *(int *)asked = 1;
  return -1;
}

static BIO *crypto_pem_bio(const char *pem, size_t len, CryptoFault *f) {
  BIO *bio = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
  if (bio == NULL) crypto_fault(f, "key", "%s", len > INT_MAX ? "PEM text too large" : "out of memory");
  return bio;
}

/* The RSA private key in a PEM text (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY"; other blocks, such
** as a certificate in the same file, are skipped). NULL with f filled when there is none, it is encrypted,
** or it is not RSA. */
static EVP_PKEY *crypto_private_key(const char *pem, size_t len, CryptoFault *f) {
  char detail[CRYPTO_MSG];
  int asked = 0;
  BIO *bio = crypto_pem_bio(pem, len, f);
  if (bio == NULL) return NULL;
  EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, crypto_no_password, &asked);
  BIO_free(bio);
  if (pkey == NULL) {
    crypto_ssl_errors(detail, sizeof detail);
    if (asked)
      crypto_fault(f, "key_encrypted", "%s", "the private key is encrypted; lufa needs an unencrypted PEM key "
                   "(decrypt it once with `openssl pkey -in KEY.pem -out PLAIN.pem`)");
    else
      crypto_fault(f, "key", "no usable PEM private key (expected -----BEGIN PRIVATE KEY----- or "
                   "-----BEGIN RSA PRIVATE KEY-----): %s", detail);
    return NULL;
  }
  if (!EVP_PKEY_is_a(pkey, "RSA")) {
    crypto_fault(f, "key_type", "RS256 needs an RSA key, and this key's type is %s", EVP_PKEY_get0_type_name(pkey));
    EVP_PKEY_free(pkey);
    return NULL;
  }
  ERR_clear_error();  /* decoders tried on the way may have queued errors */
  return pkey;
}

/* The public key of a PEM "PUBLIC KEY" block or of the first "CERTIFICATE" block. */
static EVP_PKEY *crypto_public_key(const char *pem, size_t len, CryptoFault *f) {
  char detail[CRYPTO_MSG];
  int asked = 0;
  BIO *bio = crypto_pem_bio(pem, len, f);
  if (bio == NULL) return NULL;
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, crypto_no_password, &asked);
  BIO_free(bio);
  if (pkey == NULL) {
    ERR_clear_error();
    bio = crypto_pem_bio(pem, len, f);
    if (bio == NULL) return NULL;
    X509 *cert = PEM_read_bio_X509(bio, NULL, crypto_no_password, &asked);
    BIO_free(bio);
    if (cert != NULL) pkey = X509_get_pubkey(cert);
    X509_free(cert);
  }
  if (pkey == NULL) {
    crypto_ssl_errors(detail, sizeof detail);
    crypto_fault(f, "key", "no usable PEM public key or certificate (expected -----BEGIN PUBLIC KEY----- or "
                 "-----BEGIN CERTIFICATE-----): %s", detail);
    return NULL;
  }
  if (!EVP_PKEY_is_a(pkey, "RSA")) {
    crypto_fault(f, "key_type", "RS256 needs an RSA key, and this key's type is %s", EVP_PKEY_get0_type_name(pkey));
    EVP_PKEY_free(pkey);
    return NULL;
  }
  ERR_clear_error();
  return pkey;
}

/* Sets up ctx to sign or verify with RS256. */
static int crypto_rs256_init(EVP_MD_CTX *ctx, EVP_PKEY *pkey, int sign) {
  EVP_PKEY_CTX *pctx = NULL;
  int ok = sign ? EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pkey)
                : EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, pkey);
  return ok == 1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
}

/***
 * RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256), as in a JWT client assertion.
 * @function sign_rs256
 * @tparam string|secret pem_private_key an unencrypted PEM RSA key ("PRIVATE KEY" or "RSA PRIVATE KEY");
 *   other PEM blocks in the text (a certificate) are skipped
 * @tparam string|secret data the signing input (base64url(header) .. "." .. base64url(payload))
 * @treturn string the raw signature (as many bytes as the modulus); base64url it for a JWT
 * @return nil, err when the key is unusable: `err.code` "key" (missing or malformed), "key_encrypted",
 *   "key_type" (not RSA) or "sign"
 */
static int crypto_sign_rs256(lua_State *L) {
  size_t klen, dlen, siglen = CRYPTO_MAX_SIG;
  const char *pem = lufa_check_bytes(L, 1, &klen, NULL);
  const char *data = lufa_check_bytes(L, 2, &dlen, NULL);
  unsigned char *sig = crypto_scratch(L, CRYPTO_MAX_SIG);  /* before any OpenSSL object exists */
  CryptoFault f = {NULL, ""};
  EVP_PKEY *pkey = crypto_private_key(pem, klen, &f);
  if (pkey != NULL) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (EVP_PKEY_get_size(pkey) > CRYPTO_MAX_SIG) {
      crypto_fault(&f, "key_type", "%s", "RSA keys above 16384 bits are not supported");
    } else if (ctx == NULL || !crypto_rs256_init(ctx, pkey, 1) ||
               EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data, dlen) != 1) {
      char detail[CRYPTO_MSG];
      crypto_ssl_errors(detail, sizeof detail);
      crypto_fault(&f, "sign", "signing failed: %s", detail);
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
  }
  if (f.code != NULL) return lufa_error_fail(L, "crypto", f.code, "sign_rs256: %s", f.message);
  return crypto_push_result(L, sig, siglen, 0);
}

/***
 * Checks an RS256 signature.
 * @function verify_rs256
 * @tparam string pem_public_key_or_certificate a PEM "PUBLIC KEY" or "CERTIFICATE"
 * @tparam string|secret data
 * @tparam string signature the raw signature bytes
 * @treturn boolean whether the signature is valid for data under that key
 * @return nil, err when the key is unusable (`err.code` "key" or "key_type")
 */
static int crypto_verify_rs256(lua_State *L) {
  size_t klen, dlen, siglen;
  const char *pem = lufa_check_bytes(L, 1, &klen, NULL);
  const char *data = lufa_check_bytes(L, 2, &dlen, NULL);
  const char *sig = luaL_checklstring(L, 3, &siglen);
  CryptoFault f = {NULL, ""};
  int valid = 0;
  EVP_PKEY *pkey = crypto_public_key(pem, klen, &f);
  if (pkey != NULL) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || !crypto_rs256_init(ctx, pkey, 0)) {
      char detail[CRYPTO_MSG];
      crypto_ssl_errors(detail, sizeof detail);
      crypto_fault(&f, "verify", "verification could not start: %s", detail);
    } else {
      valid = EVP_DigestVerify(ctx, (const unsigned char *)sig, siglen, (const unsigned char *)data, dlen) == 1;
      ERR_clear_error();  /* a bad signature queues an error; it is an answer, not a failure */
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
  }
  if (f.code != NULL) return lufa_error_fail(L, "crypto", f.code, "verify_rs256: %s", f.message);
  lua_pushboolean(L, valid);
  return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Certificates                                                                                          */

/* Owns what a certificate lookup holds, so a Lua error while building the result leaks nothing. */
typedef struct {
  X509 *x509;
  unsigned char *der;  /* the DER bytes exactly as in the PEM block */
  long der_len;
  BIO *text;
} CertGuard;

static void crypto_cert_release(CertGuard *g) {
  X509_free(g->x509);
  OPENSSL_free(g->der);
  BIO_free(g->text);
  g->x509 = NULL;
  g->der = NULL;
  g->text = NULL;
}

static int crypto_cert_guard_gc(lua_State *L) {
  crypto_cert_release((CertGuard *)luaL_checkudata(L, 1, CRYPTO_CERT_MT));
  return 0;
}

/* Reads the first CERTIFICATE block of a PEM text into g (other blocks, such as the private key of a
** combined key+certificate file, are skipped and wiped). Returns 0 with f filled when there is none or
** it does not parse. */
static int crypto_read_certificate(const char *pem, size_t len, CertGuard *g, CryptoFault *f) {
  char detail[CRYPTO_MSG];
  BIO *bio = crypto_pem_bio(pem, len, f);
  if (bio == NULL) return 0;
  for (;;) {
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    if (!PEM_read_bio(bio, &name, &header, &der, &der_len)) {
      int none = ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
      crypto_ssl_errors(detail, sizeof detail);
      if (none)
        crypto_fault(f, "certificate", "%s", "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)");
      else
        crypto_fault(f, "certificate", "malformed PEM text: %s", detail);
      break;
    }
    int is_cert = strcmp(name, PEM_STRING_X509) == 0;
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (!is_cert) {
      OPENSSL_clear_free(der, (size_t)der_len);
      continue;
    }
    g->der = der;
    g->der_len = der_len;
    const unsigned char *p = der;
    g->x509 = d2i_X509(NULL, &p, der_len);
    if (g->x509 == NULL) {
      crypto_ssl_errors(detail, sizeof detail);
      crypto_fault(f, "certificate", "malformed certificate: %s", detail);
    } else if (p != der + der_len) {
      crypto_fault(f, "certificate", "%s", "malformed certificate: trailing bytes after the DER structure");
    }
    break;
  }
  BIO_free(bio);
  ERR_clear_error();
  return f->code == NULL;
}

/* Pushes a new CertGuard holding the certificate in argument 1, or returns 0 after pushing nil, err. */
static CertGuard *crypto_check_certificate(lua_State *L, const char *fname) {
  size_t len;
  const char *pem = lufa_check_bytes(L, 1, &len, NULL);
  CertGuard *g = (CertGuard *)lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  luaL_setmetatable(L, CRYPTO_CERT_MT);
  CryptoFault f = {NULL, ""};
  if (!crypto_read_certificate(pem, len, g, &f)) {
    lufa_error_fail(L, "crypto", f.code, "%s: %s", fname, f.message);
    return NULL;
  }
  return g;
}

/* Sets thumbprint fields sha1 and sha256 (raw digests of the DER) on the table at the top. */
static void crypto_set_thumbprints(lua_State *L, CertGuard *g) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(g->der, (size_t)g->der_len, md, &mdlen, EVP_sha1(), NULL) != 1) crypto_raise_ssl(L, "sha1");
  lua_pushlstring(L, (const char *)md, mdlen);
  lua_setfield(L, -2, "sha1");
  if (EVP_Digest(g->der, (size_t)g->der_len, md, &mdlen, EVP_sha256(), NULL) != 1) crypto_raise_ssl(L, "sha256");
  lua_pushlstring(L, (const char *)md, mdlen);
  lua_setfield(L, -2, "sha256");
}

/***
 * Thumbprints of a certificate: the SHA-1 and SHA-256 digests of its DER encoding (base64url them for
 * the `x5t` and `x5t#S256` JWT headers; hex them to compare with the portal).
 * @function certificate_thumbprints
 * @tparam string|secret pem_certificate the first CERTIFICATE block is used; other blocks are skipped
 * @treturn table `{sha1 = raw 20 bytes, sha256 = raw 32 bytes}`
 * @return nil, err (`err.code` "certificate") when there is no well-formed certificate
 */
static int crypto_certificate_thumbprints(lua_State *L) {
  CertGuard *g = crypto_check_certificate(L, "certificate_thumbprints");
  if (g == NULL) return 2;
  lua_createtable(L, 0, 2);
  crypto_set_thumbprints(L, g);
  crypto_cert_release(g);  /* now rather than at the next collection */
  return 1;
}

/* Seconds since 1970-01-01 UTC of a broken-down UTC time (days-from-civil; no dependence on TZ). */
static lua_Integer crypto_unix_time(const struct tm *tm) {
  lua_Integer y = tm->tm_year + 1900, m = tm->tm_mon + 1, d = tm->tm_mday;
  y -= m <= 2;
  lua_Integer era = (y >= 0 ? y : y - 399) / 400;
  lua_Integer yoe = y - era * 400;
  lua_Integer doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  lua_Integer doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  lua_Integer days = era * 146097 + doe - 719468;
  return days * 86400 + tm->tm_hour * 3600 + tm->tm_min * 60 + tm->tm_sec;
}

static void crypto_set_time(lua_State *L, const ASN1_TIME *t, const char *field) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1) {
    lua_pushinteger(L, crypto_unix_time(&tm));
    lua_setfield(L, -2, field);
  }
  ERR_clear_error();
}

static void crypto_set_name(lua_State *L, CertGuard *g, const X509_NAME *name, const char *field) {
  char *text = NULL;
  BIO_reset(g->text);
  if (X509_NAME_print_ex(g->text, name, 0, XN_FLAG_RFC2253) >= 0) {
    long n = BIO_get_mem_data(g->text, &text);
    lua_pushlstring(L, text, n > 0 ? (size_t)n : 0);
    lua_setfield(L, -2, field);
  }
  ERR_clear_error();
}

/***
 * Parses a PEM certificate.
 * @function load_certificate
 * @tparam string|secret pem the first CERTIFICATE block is used; other blocks are skipped
 * @treturn table `{der =, sha1 =, sha256 =, subject =, issuer =, not_before =, not_after =}`: the DER bytes
 *   (standard-base64 them for a JWT `x5c`), the raw thumbprints, the names in RFC 2253 form
 *   ("CN=app,O=Example") and the validity bounds in Unix seconds
 * @return nil, err (`err.code` "certificate") when there is no well-formed certificate
 */
static int crypto_load_certificate(lua_State *L) {
  CertGuard *g = crypto_check_certificate(L, "load_certificate");
  if (g == NULL) return 2;
  g->text = BIO_new(BIO_s_mem());
  if (g->text == NULL) return crypto_raise_ssl(L, "load_certificate");
  lua_createtable(L, 0, 7);
  lua_pushlstring(L, (const char *)g->der, (size_t)g->der_len);
  lua_setfield(L, -2, "der");
  crypto_set_thumbprints(L, g);
  crypto_set_name(L, g, X509_get_subject_name(g->x509), "subject");
  crypto_set_name(L, g, X509_get_issuer_name(g->x509), "issuer");
  crypto_set_time(L, X509_get0_notBefore(g->x509), "not_before");
  crypto_set_time(L, X509_get0_notAfter(g->x509), "not_after");
  crypto_cert_release(g);
  return 1;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Incremental hashing                                                                                   */

typedef struct {
  EVP_MD_CTX *ctx;   /* NULL once finished or closed */
  const char *algo;
  int finished;      /* final() was called */
} Hash;

static Hash *crypto_hash_push(lua_State *L, const EVP_MD *md, const char *algo) {
  Hash *h = (Hash *)lua_newuserdatauv(L, sizeof *h, 0);
  h->ctx = NULL;
  h->algo = algo;
  h->finished = 0;
  luaL_setmetatable(L, LUFA_CRYPTO_HASH_MT);
  h->ctx = EVP_MD_CTX_new();
  if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, md, NULL) != 1) crypto_raise_ssl(L, algo);
  return h;
}

static void crypto_hash_release(Hash *h) {
  EVP_MD_CTX_free(h->ctx);
  h->ctx = NULL;
}

static Hash *crypto_hash_check(lua_State *L) {
  Hash *h = (Hash *)luaL_checkudata(L, 1, LUFA_CRYPTO_HASH_MT);
  if (h->ctx == NULL) {
    if (h->finished) luaL_error(L, "attempt to use a finished %s hash (final() was already called)", h->algo);
    luaL_error(L, "attempt to use a closed %s", LUFA_CRYPTO_HASH_MT);
  }
  return h;
}

/***
 * A streaming MD5 (Content-MD5 of a large body).
 * @function md5_new
 * @treturn lufa.crypto.hash with `:update(data)`, `:final()`, `:close()`
 */
static int crypto_md5_new(lua_State *L) {
  crypto_hash_push(L, EVP_md5(), "md5");
  return 1;
}

/***
 * A streaming SHA-256.
 * @function sha256_new
 * @treturn lufa.crypto.hash with `:update(data)`, `:final()`, `:close()`
 */
static int crypto_sha256_new(lua_State *L) {
  crypto_hash_push(L, EVP_sha256(), "sha256");
  return 1;
}

/***
 * Feeds bytes to the hash.
 * @function hash:update
 * @tparam string|secret data
 * @treturn lufa.crypto.hash the same object, so calls chain
 * @raise on a finished or closed hash
 */
static int crypto_hash_update(lua_State *L) {
  Hash *h = crypto_hash_check(L);
  size_t len;
  const char *data = lufa_check_bytes(L, 2, &len, NULL);
  if (EVP_DigestUpdate(h->ctx, data, len) != 1) return crypto_raise_ssl(L, h->algo);
  lua_settop(L, 1);
  return 1;
}

/***
 * Finishes the hash; afterwards the object only accepts `:close()`.
 * @function hash:final
 * @treturn string the raw digest
 * @raise on a finished or closed hash
 */
static int crypto_hash_final(lua_State *L) {
  Hash *h = crypto_hash_check(L);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int ok = EVP_DigestFinal_ex(h->ctx, md, &mdlen) == 1;
  crypto_hash_release(h);
  h->finished = 1;
  if (!ok) return crypto_raise_ssl(L, h->algo);
  lua_pushlstring(L, (const char *)md, mdlen);
  return 1;
}

/***
 * Frees the hash state. Idempotent; also run by the garbage collector and by `local h <close>`.
 * @function hash:close
 */
static int crypto_hash_close(lua_State *L) {
  Hash *h = (Hash *)luaL_checkudata(L, 1, LUFA_CRYPTO_HASH_MT);
  crypto_hash_release(h);
  return 0;
}

static int crypto_hash_tostring(lua_State *L) {
  Hash *h = (Hash *)luaL_checkudata(L, 1, LUFA_CRYPTO_HASH_MT);
  lua_pushfstring(L, "%s %s (%s%p)", LUFA_CRYPTO_HASH_MT, h->algo,
                  h->ctx ? "" : h->finished ? "finished, " : "closed, ", (void *)h);
  return 1;
}

/* Hashes path[offset, offset + length) (to the end when length < 0) with the Hash at the top of the stack.
** Returns 0 with msg filled on failure. No Lua call happens while the file is open. */
static int crypto_hash_stream(Hash *h, const char *path, lua_Integer offset, lua_Integer length,
                              char *msg, size_t msgsize) {
  unsigned char buf[CRYPTO_FILE_CHUNK];
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) {
    snprintf(msg, msgsize, "cannot open '%s': %s", path, strerror(errno));
    return 0;
  }
  struct stat st;
  int ok = 1, have_stat = fstat(fileno(fp), &st) == 0;
  if (have_stat && S_ISDIR(st.st_mode)) {
    snprintf(msg, msgsize, "cannot read '%s': it is a directory", path);
    ok = 0;
  } else if (have_stat && S_ISREG(st.st_mode) && offset > (lua_Integer)st.st_size) {
    snprintf(msg, msgsize, "offset %lld is beyond the end of '%s' (%lld bytes)", (long long)offset, path,
             (long long)st.st_size);
    ok = 0;
  } else if (offset > 0 && fseeko(fp, (off_t)offset, SEEK_SET) != 0) {
    snprintf(msg, msgsize, "cannot seek to offset %lld in '%s': %s", (long long)offset, path, strerror(errno));
    ok = 0;
  }
  lua_Integer left = length;
  while (ok && (length < 0 || left > 0)) {
    size_t want = length < 0 || left > (lua_Integer)sizeof buf ? sizeof buf : (size_t)left;
    size_t got = fread(buf, 1, want, fp);
    if (got > 0 && EVP_DigestUpdate(h->ctx, buf, got) != 1) {
      char detail[CRYPTO_MSG];
      crypto_ssl_errors(detail, sizeof detail);
      snprintf(msg, msgsize, "%s failed: %s", h->algo, detail);
      ok = 0;
    }
    if (length >= 0) left -= (lua_Integer)got;
    if (got < want) {
      if (ferror(fp)) {
        snprintf(msg, msgsize, "cannot read '%s': %s", path, strerror(errno));
        ok = 0;
      } else if (length >= 0 && left > 0) {
        snprintf(msg, msgsize, "'%s' ends %lld bytes short of the range asked for (offset %lld, length %lld)",
                 path, (long long)left, (long long)offset, (long long)length);
        ok = 0;
      }
      break;
    }
  }
  fclose(fp);
  return ok;
}

static int crypto_hash_file(lua_State *L, const EVP_MD *md, const char *algo, const char *fname) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer offset = luaL_optinteger(L, 2, 0);
  lua_Integer length = luaL_optinteger(L, 3, -1);
  luaL_argcheck(L, offset >= 0, 2, "offset must be 0 or more");
  luaL_argcheck(L, lua_isnoneornil(L, 3) || length >= 0, 3, "length must be 0 or more");
  Hash *h = crypto_hash_push(L, md, algo);  /* owns the digest state until collected */
  char msg[CRYPTO_MSG + 256];
  if (!crypto_hash_stream(h, path, offset, length, msg, sizeof msg)) {
    crypto_hash_release(h);
    lufa_error_fail(L, "crypto", "io", "%s: %s", fname, msg);
    lufa_error_setstr(L, -1, "file", path);
    return 2;
  }
  lua_replace(L, 1);
  lua_settop(L, 1);
  return crypto_hash_final(L);
}

/***
 * MD5 of a file or a byte range of it, read in bounded memory (Content-MD5 of a block being uploaded).
 * @function md5_file
 * @tparam string path
 * @tparam[opt=0] integer offset first byte (0-based)
 * @tparam[opt] integer length bytes to hash (default: to the end); the file must hold them all
 * @treturn string the 16 raw digest bytes
 * @return nil, err (`err.code` "io", `err.file` the path) when the file cannot be read or is too short
 */
static int crypto_md5_file(lua_State *L) {
  return crypto_hash_file(L, EVP_md5(), "md5", "md5_file");
}

/***
 * SHA-256 of a file or a byte range of it, read in bounded memory.
 * @function sha256_file
 * @tparam string path
 * @tparam[opt=0] integer offset
 * @tparam[opt] integer length
 * @treturn string the 32 raw digest bytes
 * @return nil, err (as md5_file)
 */
static int crypto_sha256_file(lua_State *L) {
  return crypto_hash_file(L, EVP_sha256(), "sha256", "sha256_file");
}

/* ---------------------------------------------------------------------------------------------------- */

static void crypto_createmeta(lua_State *L) {
  static const luaL_Reg meth[] = {
    {"update", crypto_hash_update},
    {"final", crypto_hash_final},
    {"close", crypto_hash_close},
    {NULL, NULL}
  };
  static const luaL_Reg metameth[] = {
    {"__index", NULL},  /* set below */
    {"__gc", crypto_hash_close},
    {"__close", crypto_hash_close},
    {"__tostring", crypto_hash_tostring},
    {NULL, NULL}
  };
  luaL_newmetatable(L, LUFA_CRYPTO_HASH_MT);
  luaL_setfuncs(L, metameth, 0);
  luaL_newlibtable(L, meth);
  luaL_setfuncs(L, meth, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, CRYPTO_CERT_MT);
  lua_pushcfunction(L, crypto_cert_guard_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

int luaopen_lufa_crypto(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"sha256", crypto_sha256},
    {"sha1", crypto_sha1},
    {"md5", crypto_md5},
    {"hmac_sha256", crypto_hmac_sha256},
    {"hex", crypto_hex},
    {"base64_encode", crypto_base64_encode},
    {"base64_decode", crypto_base64_decode},
    {"base64url_encode", crypto_base64url_encode},
    {"base64url_decode", crypto_base64url_decode},
    {"random_bytes", crypto_random_bytes},
    {"uuid4", crypto_uuid4},
    {"sign_rs256", crypto_sign_rs256},
    {"verify_rs256", crypto_verify_rs256},
    {"certificate_thumbprints", crypto_certificate_thumbprints},
    {"load_certificate", crypto_load_certificate},
    {"md5_new", crypto_md5_new},
    {"sha256_new", crypto_sha256_new},
    {"md5_file", crypto_md5_file},
    {"sha256_file", crypto_sha256_file},
    {NULL, NULL}
  };
  crypto_createmeta(L);
  luaL_newlib(L, funcs);
  lufa_filehash_open(L);
  return 1;
}
