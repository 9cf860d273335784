/*
** lufa.json: a JSON codec that keeps what the document says.
**
** Decoding is a recursive-descent parser over the Lua string itself: strings without escapes are pushed
** straight from the input, integers are read exactly into lua_Integer (larger ones into a bignum that keeps
** the digits), tables are preallocated from the size of the previous container at the same depth, and each
** object records its key order in a metatable shared by the objects of the same keys (ARM and ADF documents
** repeat their shapes). Errors are returned, not raised, with line, column and what was expected.
** Encoding writes into one growable buffer per module instance; misuse (values JSON cannot hold, cycles)
** raises a message that names the JSON path of the offending value.
*/
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <openssl/crypto.h>

#include "error.h"
#include "json.h"
#include "options.h"
#include "secret.h"

#define JSON_NULL_KEY "lufa.json.null"
#define JSON_ARRAY_MT "lufa.json.array"
#define JSON_OBJECT_MT "lufa.json.object"
#define JSON_BUFFER_MT "lufa.json.buffer"
#define JSON_BIGNUM_MT "lufa.json.bignum"

/* Upvalues shared by every function of the module; the encoder and the decoder each keep a buffer. */
enum {
  UV_NULL = 1, UV_ARRAY_MT, UV_OBJECT_MT, UV_BIGNUM_MT, UV_ENCODE_BUFFER, UV_DECODE_BUFFER,
  UV_COUNT = UV_DECODE_BUFFER
};

/* A buffer up to this size is always kept for the next call. A larger one is kept while calls keep using
** a good part of it (encoding big documents in a row costs no regrowth), and released after a call that
** needed less than a quarter of it. */
#define BUFFER_KEEP (1u << 20)

/* Containers deeper than this get no size hint (the hints live in a fixed array). */
#define HINT_LEVELS 64
#define HINT_MAX 4096

/* Slots of the decoder's cache of key orders (a power of two). */
#define SHAPE_SLOTS 256

#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v

/* 1 for bytes that stand for themselves inside a JSON string: printable ASCII except '"' and '\\'. */
static const unsigned char json_plain[256] = {
  R16(0), R16(0),
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 0x20: '"' */
  R16(1), R16(1),
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* 0x50: '\\' */
  R16(1), R16(1),
  R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0)
};

static const double pow10_exact[] = {  /* every power of ten a double holds exactly */
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#define TWO_POW_53 9007199254740992.0

/*
** Length of the UTF-8 sequence at p (1 to 4), or 0 when it is not valid UTF-8 (overlong forms, surrogates
** and code points above U+10FFFF are invalid). p[0] >= 0x80. Reads at most up to the first byte that is not
** a continuation byte, so the NUL that ends every Lua string stops it.
*/
static int utf8_length(const unsigned char *p) {
  unsigned c = p[0];
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (p[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
    return 3;
  }
  if (c < 0xF5) {
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
    return 4;
  }
  return 0;
}

static char locale_point(void) {
  return localeconv()->decimal_point[0];
}

/* ------------------------------------------------------------------------------------------------------ */
/* The growable buffer                                                                                    */
/* ------------------------------------------------------------------------------------------------------ */

/* Encode output and decode scratch. Memory comes from the state's allocator; __gc releases it. */
typedef struct {
  char *p;
  size_t len, cap;
  int busy;          /* in use further up the C stack (a finalizer run by the GC may call json again) */
  int holds_secret;  /* bytes of a revealed secret may be in p: wipe before reuse or release */
} JsonBuffer;

static void buffer_free(lua_State *L, JsonBuffer *b) {
  void *ud;
  lua_Alloc allocf = lua_getallocf(L, &ud);
  if (b->p != NULL) {
    if (b->holds_secret) OPENSSL_cleanse(b->p, b->cap);
    allocf(ud, b->p, b->cap, 0);
  }
  b->p = NULL;
  b->len = b->cap = 0;
  b->holds_secret = 0;
}

static int buffer_gc(lua_State *L) {
  buffer_free(L, (JsonBuffer *)luaL_checkudata(L, 1, JSON_BUFFER_MT));
  return 0;
}

static JsonBuffer *buffer_new(lua_State *L) {
  JsonBuffer *b = (JsonBuffer *)lua_newuserdatauv(L, sizeof(JsonBuffer), 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, JSON_BUFFER_MT)) {
    lua_pushcfunction(L, buffer_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

/* Makes room for `need` more bytes. A buffer that may hold secret bytes is moved by hand so that the old
** block is wiped before it is freed. */
static void buffer_grow(lua_State *L, JsonBuffer *b, size_t need) {
  void *ud;
  lua_Alloc allocf = lua_getallocf(L, &ud);
  size_t cap = b->cap ? b->cap : 256;
  char *p;
  if (need > (size_t)-1 / 4 - b->len) luaL_error(L, "json: buffer size overflow");
  while (cap < b->len + need) cap *= 2;
  if (b->holds_secret && b->p != NULL) {
    p = (char *)allocf(ud, NULL, 0, cap);
    if (p != NULL) {
      memcpy(p, b->p, b->len);
      OPENSSL_cleanse(b->p, b->cap);
      allocf(ud, b->p, b->cap, 0);
    }
  } else {
    p = (char *)allocf(ud, b->p, b->cap, cap);
  }
  if (p == NULL) {
    b->busy = 0;
    luaL_error(L, "not enough memory");
  }
  b->p = p;
  b->cap = cap;
}

static inline char *buffer_reserve(lua_State *L, JsonBuffer *b, size_t need) {
  if (b->cap - b->len < need) buffer_grow(L, b, need);
  return b->p + b->len;
}

static inline void buffer_add(lua_State *L, JsonBuffer *b, const char *s, size_t n) {
  if (n == 0) return;  /* the buffer may have no memory yet */
  memcpy(buffer_reserve(L, b, n), s, n);
  b->len += n;
}

static inline void buffer_addc(lua_State *L, JsonBuffer *b, char c) {
  *buffer_reserve(L, b, 1) = c;
  b->len++;
}

/* Pushes the module's buffer (upvalue uv), or a fresh one when it is in use (re-entry from a finalizer).
** The codec's own errors release the buffer before raising; only a memory error raised inside the Lua API
** can leave it marked busy, after which calls still work, each with a buffer of its own. */
static JsonBuffer *buffer_acquire(lua_State *L, int uv) {
  JsonBuffer *b = (JsonBuffer *)lua_touserdata(L, lua_upvalueindex(uv));
  if (b->busy) {
    b = buffer_new(L);
  } else {
    lua_pushvalue(L, lua_upvalueindex(uv));
  }
  b->busy = 1;
  b->len = 0;
  return b;
}

static void buffer_release(lua_State *L, JsonBuffer *b) {
  if (b->holds_secret) {
    OPENSSL_cleanse(b->p, b->cap);
    b->holds_secret = 0;
  }
  if (b->cap > BUFFER_KEEP && b->len < b->cap / 4) buffer_free(L, b);
  b->len = 0;
  b->busy = 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Shared values: json.null and the two marker metatables                                                 */
/* ------------------------------------------------------------------------------------------------------ */

static int null_tostring(lua_State *L) {
  lua_pushliteral(L, "null");
  return 1;
}

/* One json.null per state, kept in the registry, so every copy of the module agrees on it. */
static void push_null(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, JSON_NULL_KEY) != LUA_TNIL) return;
  lua_pop(L, 1);
  lua_newuserdatauv(L, 0, 0);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "lufa.json.null");
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "lufa.json.null");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, JSON_NULL_KEY);
}

static int is_null(lua_State *L, int idx) {
  return lua_rawequal(L, idx, lua_upvalueindex(UV_NULL));
}

enum { KIND_PLAIN, KIND_ARRAY, KIND_OBJECT, KIND_ORDERED };

/*
** Which marker the table at idx carries: array_mt, object_mt, a key order (KIND_ORDERED: a metatable whose
** own metatable is object_mt, see "Key order" below), or none or a foreign one (KIND_PLAIN).
*/
static int table_mark(lua_State *L, int idx) {
  int kind = KIND_PLAIN;
  if (lua_getmetatable(L, idx)) {
    if (lua_rawequal(L, -1, lua_upvalueindex(UV_ARRAY_MT))) {
      kind = KIND_ARRAY;
    } else if (lua_rawequal(L, -1, lua_upvalueindex(UV_OBJECT_MT))) {
      kind = KIND_OBJECT;
    } else if (lua_getmetatable(L, -1)) {
      if (lua_rawequal(L, -1, lua_upvalueindex(UV_OBJECT_MT))) kind = KIND_ORDERED;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return kind;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Big integers                                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

/* An integer JSON text outside the 64-bit range, kept as its digits ("-?[1-9][0-9]*", NUL-terminated). */
typedef struct {
  size_t len;
  char digits[1];
} Bignum;

static void push_bignum(lua_State *L, int mt_idx, const char *s, size_t n) {
  Bignum *b = (Bignum *)lua_newuserdatauv(L, sizeof(Bignum) + n, 0);
  b->len = n;
  memcpy(b->digits, s, n);
  b->digits[n] = '\0';
  lua_pushvalue(L, mt_idx);
  lua_setmetatable(L, -2);
}

static Bignum *to_bignum(lua_State *L, int idx) {
  return (Bignum *)luaL_testudata(L, idx, JSON_BIGNUM_MT);
}

static int bignum_tostring(lua_State *L) {
  Bignum *b = (Bignum *)luaL_checkudata(L, 1, JSON_BIGNUM_MT);
  lua_pushlstring(L, b->digits, b->len);
  return 1;
}

/* The value at idx as a float: a bignum rounds to the nearest double, a number converts. */
static double bignum_operand(lua_State *L, int idx) {
  Bignum *b = to_bignum(L, idx);
  if (b != NULL) return strtod(b->digits, NULL);  /* digits only: no decimal point, so no locale issue */
  if (lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "attempt to perform arithmetic on a %s value (with a json.bignum)", luaL_typename(L, idx));
  return (double)lua_tonumber(L, idx);
}

/* Arithmetic on a bignum is float arithmetic: each operand is converted to the nearest double. */
static int bignum_arith(lua_State *L, int op) {
  lua_pushnumber(L, bignum_operand(L, 1));
  lua_pushnumber(L, bignum_operand(L, 2));
  lua_arith(L, op);
  return 1;
}
static int bignum_add(lua_State *L) { return bignum_arith(L, LUA_OPADD); }
static int bignum_sub(lua_State *L) { return bignum_arith(L, LUA_OPSUB); }
static int bignum_mul(lua_State *L) { return bignum_arith(L, LUA_OPMUL); }
static int bignum_div(lua_State *L) { return bignum_arith(L, LUA_OPDIV); }
static int bignum_mod(lua_State *L) { return bignum_arith(L, LUA_OPMOD); }
static int bignum_pow(lua_State *L) { return bignum_arith(L, LUA_OPPOW); }
static int bignum_idiv(lua_State *L) { return bignum_arith(L, LUA_OPIDIV); }
static int bignum_unm(lua_State *L) {
  lua_pushnumber(L, -bignum_operand(L, 1));
  return 1;
}

#define UNORDERED 2

/* Compares bignum a with the number at idx (see bignum_compare). */
static int bignum_compare_one(lua_State *L, const Bignum *a, int idx) {
  double x, y;
  if (lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "attempt to compare a json.bignum with a %s value", luaL_typename(L, idx));
  if (lua_isinteger(L, idx)) return a->digits[0] == '-' ? -1 : 1;
  x = strtod(a->digits, NULL);
  y = lua_tonumber(L, idx);
  if (isnan(y)) return UNORDERED;
  return x < y ? -1 : x > y;
}

/* -1, 0 or 1 as the value at 1 is below, equal to or above the value at 2. Bignums and integers compare
** exactly (a bignum lies outside the integer range, so its sign decides); a float compares with the
** nearest double of the bignum. */
static int bignum_compare(lua_State *L) {
  Bignum *a = to_bignum(L, 1), *b = to_bignum(L, 2);
  if (a != NULL && b != NULL) {
    int na = a->digits[0] == '-', nb = b->digits[0] == '-', c;
    if (na != nb) return na ? -1 : 1;
    if (a->len != b->len) c = a->len < b->len ? -1 : 1;
    else c = memcmp(a->digits, b->digits, a->len);
    c = c < 0 ? -1 : c > 0;
    return na ? -c : c;
  }
  if (a == NULL) {
    int c = bignum_compare_one(L, b, 1);
    return c == UNORDERED ? c : -c;
  }
  return bignum_compare_one(L, a, 2);
}

static int bignum_lt(lua_State *L) {
  lua_pushboolean(L, bignum_compare(L) == -1);
  return 1;
}

static int bignum_le(lua_State *L) {
  int c = bignum_compare(L);
  lua_pushboolean(L, c == -1 || c == 0);
  return 1;
}

/* Lua calls __eq only with two userdata; a bignum never equals a number (it lies outside the integers). */
static int bignum_eq(lua_State *L) {
  Bignum *a = to_bignum(L, 1), *b = to_bignum(L, 2);
  lua_pushboolean(L, a != NULL && b != NULL && a->len == b->len && memcmp(a->digits, b->digits, a->len) == 0);
  return 1;
}

static int bignum_concat(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  luaL_tolstring(L, 2, NULL);
  lua_concat(L, 2);
  return 1;
}

/* b:tonumber() -> the nearest float */
static int bignum_tonumber(lua_State *L) {
  Bignum *b = (Bignum *)luaL_checkudata(L, 1, JSON_BIGNUM_MT);
  lua_pushnumber(L, strtod(b->digits, NULL));
  return 1;
}

/* Creates the bignum metatable, or finds it in the registry. Leaves it on the stack. */
static void push_bignum_mt(lua_State *L) {
  static const luaL_Reg meta[] = {
    {"__tostring", bignum_tostring}, {"__concat", bignum_concat}, {"__eq", bignum_eq}, {"__lt", bignum_lt},
    {"__le", bignum_le}, {"__add", bignum_add}, {"__sub", bignum_sub}, {"__mul", bignum_mul},
    {"__div", bignum_div}, {"__mod", bignum_mod}, {"__pow", bignum_pow}, {"__idiv", bignum_idiv},
    {"__unm", bignum_unm}, {NULL, NULL}
  };
  if (!luaL_newmetatable(L, JSON_BIGNUM_MT)) return;
  luaL_setfuncs(L, meta, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, bignum_tonumber);
  lua_setfield(L, -2, "tonumber");
  lua_setfield(L, -2, "__index");
}

/* ------------------------------------------------------------------------------------------------------ */
/* Options                                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

/* Misspelt options raise rather than being ignored, naming the option meant. */
static void check_options(lua_State *L, int idx, const char *const allowed[], const char *what) {
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  host_check_options(L, idx, allowed, what);
}

static int option_depth(lua_State *L, int idx) {
  lua_Integer depth = LUFA_JSON_DEFAULT_DEPTH;
  if (lua_istable(L, idx)) {
    int isint = 0;
    if (lua_getfield(L, idx, "max_depth") != LUA_TNIL) {
      depth = lua_tointegerx(L, -1, &isint);
      if (!isint || depth < 1 || depth > LUFA_JSON_MAX_DEPTH)
        luaL_argerror(L, idx, lua_pushfstring(L, "max_depth must be an integer from 1 to %d", LUFA_JSON_MAX_DEPTH));
    }
    lua_pop(L, 1);
  }
  return (int)depth;
}

static int option_flag(lua_State *L, int idx, const char *name, int dflt) {
  int v = dflt;
  if (lua_istable(L, idx)) {
    int t = lua_getfield(L, idx, name);
    if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
    else if (t != LUA_TNIL) luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a boolean", name));
    lua_pop(L, 1);
  }
  return v;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Decoding                                                                                               */
/* ------------------------------------------------------------------------------------------------------ */

/* What decode does with an integer outside the 64-bit range (opts.big_integers). */
enum { BIG_BIGNUM, BIG_FLOAT, BIG_ERROR };

typedef struct {
  const char *s;
  size_t n;
} KeyRef;

/* A key order: the keys of a decoded object, in document order, without repeats. It lives in a userdata
** held at [2] of its metatable; `keys` point into the strings of the keys table at [1]. */
typedef struct {
  int n;
  KeyRef keys[1];
} Shape;

typedef struct {
  lua_State *L;
  const unsigned char *start, *end, *p;
  JsonBuffer *scratch;
  int depth, max_depth;
  int big_integers;
  /* Objects with the same keys in the same order share one metatable. The last one made for each slot
  ** (chosen by depth and the key the object sits under) is the candidate for the next object there; the
  ** table at stack index `anchor` holds [2 * slot] = metatable, [2 * slot + 1] = keys table. */
  int anchor;
  unsigned ctx;
  Shape *cache[SHAPE_SLOTS];
  const unsigned char *err_at;  /* where the error is */
  const char *err_code;         /* "syntax", "depth" or "utf8" */
  char err_msg[200];
  unsigned hint_array[HINT_LEVELS], hint_object[HINT_LEVELS];
} Decoder;

static int decode_value(Decoder *D);

/* Describes what is at p for "found ..." in messages: a word, a character, or the end of input. */
static void describe_found(const Decoder *D, const unsigned char *p, char *out, size_t size) {
  if (p >= D->end) {
    snprintf(out, size, "end of input");
  } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
    int n = 0;
    while (p + n < D->end && n < 16 && ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
                                        (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
      n++;
    snprintf(out, size, "'%.*s'", n, (const char *)p);
  } else if (*p >= 0x20 && *p < 0x7F) {
    snprintf(out, size, "'%c'", *p);
  } else if (*p < 0x80) {
    snprintf(out, size, "the control character U+%04X", *p);
  } else {
    int n = utf8_length(p);
    if (n > 0) snprintf(out, size, "'%.*s'", n, (const char *)p);
    else snprintf(out, size, "the byte 0x%02X", *p);
  }
}

static int decode_fail(Decoder *D, const unsigned char *at, const char *code, const char *fmt, ...) {
  va_list ap;
  D->err_at = at;
  D->err_code = code;
  va_start(ap, fmt);
  vsnprintf(D->err_msg, sizeof D->err_msg, fmt, ap);
  va_end(ap);
  return -1;
}

/* "expected WHAT, found X" at p; invalid UTF-8 at p is reported as such. */
static int decode_expected(Decoder *D, const unsigned char *p, const char *what) {
  char found[48];
  if (p < D->end && *p >= 0x80 && utf8_length(p) == 0)
    return decode_fail(D, p, "utf8", "invalid UTF-8 (byte 0x%02X)", *p);
  describe_found(D, p, found, sizeof found);
  return decode_fail(D, p, "syntax", "expected %s, found %s", what, found);
}

static inline const unsigned char *skip_space(const unsigned char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
  return p;
}

static int hex_digit(unsigned c) {
  if (c >= '0' && c <= '9') return (int)(c - '0');
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
  return -1;
}

/* The 4 hex digits at p, or -1. */
static long hex4(const unsigned char *p) {
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(p[i]);  /* stops at the terminating NUL, so never reads past the input */
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

static char *put_utf8(char *out, unsigned long cp) {
  if (cp < 0x80) {
    *out++ = (char)cp;
  } else if (cp < 0x800) {
    *out++ = (char)(0xC0 | (cp >> 6));
    *out++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out++ = (char)(0xE0 | (cp >> 12));
    *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *out++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *out++ = (char)(0xF0 | (cp >> 18));
    *out++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *out++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *out++ = (char)(0x80 | (cp & 0x3F));
  }
  return out;
}

/* Scans plain bytes and valid UTF-8 from p up to the next quote or backslash; returns where it stopped,
** or NULL after recording an error. */
static const unsigned char *scan_string_run(Decoder *D, const unsigned char *p) {
  for (;;) {
    while (json_plain[*p]) p++;
    if (*p == '"' || *p == '\\') return p;
    if (*p >= 0x80) {
      int n = utf8_length(p);
      if (n == 0) {
        decode_fail(D, p, "utf8", "invalid UTF-8 in a string (byte 0x%02X)", *p);
        return NULL;
      }
      p += n;
      continue;
    }
    if (p >= D->end)
      decode_fail(D, p, "syntax", "expected '\"' to close the string, found end of input");
    else
      decode_fail(D, p, "syntax", "unescaped control character U+%04X in a string (write it as \\u%04X)", *p, *p);
    return NULL;
  }
}

/* The rest of a string from its first backslash at p (run..p already scanned); pushes the result. */
static int decode_string_escaped(Decoder *D, const unsigned char *run, const unsigned char *p) {
  lua_State *L = D->L;
  JsonBuffer *b = D->scratch;
  b->len = 0;
  buffer_add(L, b, (const char *)run, (size_t)(p - run));
  for (;;) {
    char *out;
    if (*p == '"') {
      lua_pushlstring(L, b->p, b->len);
      D->p = p + 1;
      return 0;
    }
    out = buffer_reserve(L, b, 4);  /* no escape yields more than 4 bytes */
    switch (p[1]) {
      case '"': *out++ = '"'; break;
      case '\\': *out++ = '\\'; break;
      case '/': *out++ = '/'; break;
      case 'b': *out++ = '\b'; break;
      case 'f': *out++ = '\f'; break;
      case 'n': *out++ = '\n'; break;
      case 'r': *out++ = '\r'; break;
      case 't': *out++ = '\t'; break;
      case 'u': {
        long cp = hex4(p + 2);
        if (cp < 0) return decode_fail(D, p, "syntax", "expected 4 hex digits after '\\u'");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          return decode_fail(D, p, "utf8", "lone low surrogate \\u%04lX (it must follow a high surrogate)", cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          long lo = (p[6] == '\\' && p[7] == 'u') ? hex4(p + 8) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return decode_fail(D, p, "utf8",
                               "lone high surrogate \\u%04lX (it must be followed by a \\uDC00-\\uDFFF escape)", cp);
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
        out = put_utf8(out, (unsigned long)cp);
        p += 4;
        break;
      }
      default: {
        char found[48];
        describe_found(D, p + 1, found, sizeof found);
        return decode_fail(D, p + 1, "syntax",
                           "expected an escape (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found %s", found);
      }
    }
    p += 2;
    b->len = (size_t)(out - b->p);
    run = p;
    p = scan_string_run(D, p);
    if (p == NULL) return -1;
    buffer_add(L, b, (const char *)run, (size_t)(p - run));
  }
}

/* D->p is at the opening quote; pushes the string (straight from the input when it has no escapes). */
static int decode_string(Decoder *D) {
  const unsigned char *run = D->p + 1;
  const unsigned char *p = scan_string_run(D, run);
  if (p == NULL) return -1;
  if (*p == '\\') return decode_string_escaped(D, run, p);
  lua_pushlstring(D->L, (const char *)run, (size_t)(p - run));
  D->p = p + 1;
  return 0;
}

/* Correctly rounded conversion for what the fast path cannot do exactly. */
static int decode_float_slow(Decoder *D, const unsigned char *s, const unsigned char *e, double *out) {
  char *end;
  *out = strtod((const char *)s, &end);
  if (end != (const char *)e) {
    /* The C library reads numbers in the current locale; give it the locale's decimal point. */
    size_t n = (size_t)(e - s);
    JsonBuffer *b = D->scratch;
    char *copy = buffer_reserve(D->L, b, n + 1);
    memcpy(copy, s, n);
    copy[n] = '\0';
    for (size_t i = 0; i < n; i++)
      if (copy[i] == '.') copy[i] = locale_point();
    *out = strtod(copy, &end);
    if (end != copy + n) return decode_fail(D, s, "syntax", "unreadable number");
  }
  if (isinf(*out)) return decode_fail(D, s, "syntax", "number %.*s is too large for a double", (int)(e - s) > 40 ? 40 : (int)(e - s), (const char *)s);
  return 0;
}

static int decode_number(Decoder *D) {
  const unsigned char *s = D->p, *p = s;
  int neg = 0, is_float = 0, sig = 0, exact = 1;
  uint64_t m = 0;
  int exp10 = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  if (*p == '0') {
    p++;
    if (*p >= '0' && *p <= '9') return decode_fail(D, p - 1, "syntax", "leading zeros are not allowed in numbers");
  } else if (*p >= '1' && *p <= '9') {
    do {
      if (sig < 19) {
        m = m * 10 + (uint64_t)(*p - '0');
        sig++;
      } else {
        exp10++;
        exact = 0;
      }
      p++;
    } while (*p >= '0' && *p <= '9');
  } else {
    return decode_expected(D, p, "a digit after '-'");
  }
  if (*p == '.') {
    is_float = 1;
    p++;
    if (!(*p >= '0' && *p <= '9')) return decode_expected(D, p, "a digit after the decimal point");
    do {
      if (m == 0 && *p == '0') {
        exp10--;
      } else if (sig < 19) {
        m = m * 10 + (uint64_t)(*p - '0');
        sig++;
        exp10--;
      } else if (*p != '0') {
        exact = 0;
      }
      p++;
    } while (*p >= '0' && *p <= '9');
  }
  if (*p == 'e' || *p == 'E') {
    int eneg = 0, ev = 0;
    is_float = 1;
    p++;
    if (*p == '+' || *p == '-') eneg = *p++ == '-';
    if (!(*p >= '0' && *p <= '9')) return decode_expected(D, p, "a digit in the exponent");
    do {
      if (ev < 100000) ev = ev * 10 + (*p - '0');
      p++;
    } while (*p >= '0' && *p <= '9');
    exp10 += eneg ? -ev : ev;
  }
  D->p = p;
  if (!is_float) {
    /* At most 19 digits: fits in uint64; within int64 it stays an integer. */
    if (exact && !neg && m <= (uint64_t)INT64_MAX) {
      lua_pushinteger(D->L, (lua_Integer)m);
      return 0;
    }
    if (exact && neg && m <= (uint64_t)INT64_MAX + 1) {
      lua_pushinteger(D->L, (lua_Integer)(0 - m));
      return 0;
    }
    if (D->big_integers == BIG_BIGNUM) {
      push_bignum(D->L, lua_upvalueindex(UV_BIGNUM_MT), (const char *)s, (size_t)(p - s));
      return 0;
    }
    if (D->big_integers == BIG_ERROR)
      return decode_fail(D, s, "range", "integer %.*s%s is outside the 64-bit range (opts.big_integers is \"error\")",
                         (int)(p - s) > 40 ? 40 : (int)(p - s), (const char *)s, (int)(p - s) > 40 ? "..." : "");
  }
  {
    double d;
    /* Both m and the power of ten are exact doubles, so one IEEE operation rounds correctly. */
    if (exact && m <= (uint64_t)TWO_POW_53 && exp10 >= -22 && exp10 <= 22) {
      d = (double)m;
      d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
      if (neg) d = -d;
    } else if (decode_float_slow(D, s, p, &d)) {
      return -1;
    }
    lua_pushnumber(D->L, d);
  }
  return 0;
}

static void set_meta(lua_State *L, int uv) {
  lua_pushvalue(L, lua_upvalueindex(uv));
  lua_setmetatable(L, -2);
}

static int decode_array(Decoder *D) {
  lua_State *L = D->L;
  const unsigned char *p;
  lua_Integer n = 0;
  int level = D->depth;
  unsigned ctx = D->ctx;  /* elements sit under the key the array sits under */
  if (++D->depth > D->max_depth)
    return decode_fail(D, D->p, "depth", "nesting deeper than %d levels (max_depth)", D->max_depth);
  luaL_checkstack(L, 4, "json nesting");
  lua_createtable(L, level < HINT_LEVELS ? (int)D->hint_array[level] : 0, 0);
  set_meta(L, UV_ARRAY_MT);
  p = skip_space(D->p + 1);
  if (*p == ']') {
    D->p = p + 1;
  } else {
    for (;;) {
      D->p = p;
      D->ctx = ctx;
      if (decode_value(D)) return -1;
      lua_rawseti(L, -2, ++n);
      p = skip_space(D->p);
      if (*p == ',') {
        p = skip_space(p + 1);
        if (*p == ']') return decode_fail(D, p, "syntax", "expected a value after ',', found ']' (trailing commas are not allowed)");
        continue;
      }
      if (*p == ']') {
        D->p = p + 1;
        break;
      }
      return decode_expected(D, p, "',' or ']' after an array element");
    }
  }
  if (level < HINT_LEVELS) D->hint_array[level] = n < HINT_MAX ? (unsigned)n : HINT_MAX;
  D->depth--;
  return 0;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Key order                                                                                              */
/* ------------------------------------------------------------------------------------------------------ */

/*
** A decoded object that has keys gets a metatable that records their order: [1] is the keys table
** (keys[i] = key, keys[key] = i), [2] the Shape userdata, __name is "lufa.json.object", and its own
** metatable is object_mt, which is how table_mark knows it. Objects with the same keys in the same order
** (ARM and ADF documents repeat their shapes) share one, so the record costs a comparison of key bytes, and
** the matching keys are pushed from the keys table instead of being hashed and interned again.
*/

static unsigned key_hash(const unsigned char *s, size_t n) {
  unsigned h = (unsigned)n * 2654435761u;
  if (n > 0) h ^= s[0] * 31u + s[n - 1] * 131u + s[n / 2] * 8191u;
  return h;
}

static unsigned shape_slot(unsigned ctx, int level) {
  unsigned h = ctx + (unsigned)level * 0x9E3779B9u;
  h ^= h >> 15;
  h *= 0x2C1B3C6Du;
  h ^= h >> 12;
  return h & (SHAPE_SLOTS - 1);
}

/* Replaces the nil at rec with a new table holding the first n keys of the keys table at ckeys. */
static void start_recording(lua_State *L, int ckeys, int rec, unsigned n) {
  lua_createtable(L, (int)n + 8, 0);
  for (unsigned i = 1; i <= n; i++) {
    lua_rawgeti(L, ckeys, (lua_Integer)i);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
  lua_replace(L, rec);
}

/* Makes the key order of the n keys in the table at rec (document order; a repeated key keeps its first
** place), makes it the candidate of slot and pushes its metatable. */
static void shape_new(Decoder *D, int rec, unsigned n, unsigned slot) {
  lua_State *L = D->L;
  Shape *sh;
  int m = 0;
  luaL_checkstack(L, 8, "json nesting");
  if (lua_isnil(L, D->anchor)) {
    lua_createtable(L, 8, 0);
    lua_replace(L, D->anchor);
  }
  lua_createtable(L, 2, 1);
  lua_pushliteral(L, JSON_OBJECT_MT);
  lua_setfield(L, -2, "__name");
  lua_createtable(L, (int)n, (int)n);
  sh = (Shape *)lua_newuserdatauv(L, sizeof(Shape) + sizeof(KeyRef) * (n > 0 ? n - 1 : 0), 0);
  for (unsigned i = 1; i <= n; i++) {  /* stack: mt keys ud */
    lua_rawgeti(L, rec, (lua_Integer)i);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) != LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    m++;
    lua_pushvalue(L, -1);
    lua_rawseti(L, -4, m);
    sh->keys[m - 1].s = lua_tolstring(L, -1, &sh->keys[m - 1].n);
    lua_pushinteger(L, m);
    lua_rawset(L, -4);
  }
  sh->n = m;
  lua_rawseti(L, -3, 2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, 1);
  lua_rawseti(L, D->anchor, 2 * (lua_Integer)slot + 2);
  lua_pushvalue(L, lua_upvalueindex(UV_OBJECT_MT));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, D->anchor, 2 * (lua_Integer)slot + 1);
  D->cache[slot] = sh;
}

static int decode_object(Decoder *D) {
  lua_State *L = D->L;
  const unsigned char *p;
  unsigned n = 0, slot;
  int level = D->depth, obj, matching;
  Shape *cand;
  if (++D->depth > D->max_depth)
    return decode_fail(D, D->p, "depth", "nesting deeper than %d levels (max_depth)", D->max_depth);
  luaL_checkstack(L, 8, "json nesting");
  lua_createtable(L, 0, level < HINT_LEVELS ? (int)D->hint_object[level] : 0);
  obj = lua_gettop(L);
  p = skip_space(D->p + 1);
  if (*p == '}') {
    /* No keys, no order: object_mt (keys added later are written as for any marked table). */
    set_meta(L, UV_OBJECT_MT);
    D->p = p + 1;
    if (level < HINT_LEVELS) D->hint_object[level] = 0;
    D->depth--;
    return 0;
  }
  /* Stack: obj, the candidate's metatable (anchors it), its keys, the keys recorded when they differ. */
  slot = shape_slot(D->ctx, level);
  cand = D->cache[slot];
  if (cand != NULL) {
    lua_rawgeti(L, D->anchor, 2 * (lua_Integer)slot + 1);
    lua_rawgeti(L, D->anchor, 2 * (lua_Integer)slot + 2);
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  lua_pushnil(L);
  matching = cand != NULL;
  if (!matching) start_recording(L, obj + 2, obj + 3, 0);
  for (;;) {
    const unsigned char *run, *q;
    size_t klen;
    if (*p != '"')
      return decode_expected(D, p, n == 0 ? "a string key or '}'" : "a string key after ','");
    run = p + 1;
    q = scan_string_run(D, run);
    if (q == NULL) return -1;
    klen = (size_t)(q - run);
    if (matching && *q == '"' && n < (unsigned)cand->n && cand->keys[n].n == klen &&
        memcmp(cand->keys[n].s, run, klen) == 0) {
      lua_rawgeti(L, obj + 2, (lua_Integer)n + 1);
      D->p = q + 1;
    } else {
      if (*q == '\\') {
        if (decode_string_escaped(D, run, q)) return -1;
      } else {
        lua_pushlstring(L, (const char *)run, klen);
        D->p = q + 1;
      }
      if (matching) {
        start_recording(L, obj + 2, obj + 3, n);
        matching = 0;
      }
      lua_pushvalue(L, -1);
      lua_rawseti(L, obj + 3, (lua_Integer)n + 1);
    }
    D->ctx = key_hash(run, klen);
    p = skip_space(D->p);
    if (*p != ':') return decode_expected(D, p, "':' after an object key");
    D->p = p + 1;
    if (decode_value(D)) return -1;
    lua_rawset(L, obj);
    n++;
    p = skip_space(D->p);
    if (*p == ',') {
      p = skip_space(p + 1);
      if (*p == '}') return decode_fail(D, p, "syntax", "expected a string key after ',', found '}' (trailing commas are not allowed)");
      continue;
    }
    if (*p == '}') {
      D->p = p + 1;
      break;
    }
    return decode_expected(D, p, "',' or '}' after an object member");
  }
  if (matching && n == (unsigned)cand->n) {
    lua_pushvalue(L, obj + 1);
  } else {
    if (matching) start_recording(L, obj + 2, obj + 3, n);
    shape_new(D, obj + 3, n, slot);
  }
  lua_setmetatable(L, obj);
  lua_settop(L, obj);
  if (level < HINT_LEVELS) D->hint_object[level] = n < HINT_MAX ? n : HINT_MAX;
  D->depth--;
  return 0;
}

static int decode_literal(Decoder *D, const char *word, size_t n) {
  if ((size_t)(D->end - D->p) >= n && memcmp(D->p, word, n) == 0) {
    D->p += n;
    return 0;
  }
  return decode_expected(D, D->p, "a value");
}

static int decode_value(Decoder *D) {
  D->p = skip_space(D->p);
  switch (*D->p) {
    case '{': return decode_object(D);
    case '[': return decode_array(D);
    case '"': return decode_string(D);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return decode_number(D);
    case 't':
      if (decode_literal(D, "true", 4)) return -1;
      lua_pushboolean(D->L, 1);
      return 0;
    case 'f':
      if (decode_literal(D, "false", 5)) return -1;
      lua_pushboolean(D->L, 0);
      return 0;
    case 'n':
      if (decode_literal(D, "null", 4)) return -1;
      lua_pushvalue(D->L, lua_upvalueindex(UV_NULL));
      return 0;
    default:
      return decode_expected(D, D->p, "a value");
  }
}

/* Pushes nil and the lufa.error for the decoder's error; returns 2. Lines and columns count from 1;
** columns count characters (UTF-8 sequences), not bytes. */
static int decode_push_error(Decoder *D, const char *source) {
  lua_State *L = D->L;
  long line = 1, column = 1;
  const unsigned char *q;
  for (q = D->start; q < D->err_at; q++) {
    if (*q == '\n') {
      line++;
      column = 1;
    } else if ((*q & 0xC0) != 0x80) {
      column++;
    }
  }
  if (source != NULL)
    lufa_error_fail(L, "json", D->err_code, "%s: line %d, column %d: %s", source, (int)line, (int)column, D->err_msg);
  else
    lufa_error_fail(L, "json", D->err_code, "line %d, column %d: %s", (int)line, (int)column, D->err_msg);
  lufa_error_setint(L, -1, "line", line);
  lufa_error_setint(L, -1, "column", column);
  lufa_error_setint(L, -1, "position", (lua_Integer)(D->err_at - D->start) + 1);
  if (source != NULL) lufa_error_setstr(L, -1, "source", source);
  return 2;
}

/* Decodes text[0..len) (a Lua string, so NUL-terminated) and returns 1 value or nil, err. */
static int decode_text(lua_State *L, const char *text, size_t len, const char *source, int max_depth,
                       int big_integers) {
  Decoder D;
  int base, failed;
  memset(D.hint_array, 0, sizeof D.hint_array);
  memset(D.hint_object, 0, sizeof D.hint_object);
  memset(D.cache, 0, sizeof D.cache);
  D.big_integers = big_integers;
  D.ctx = 0;
  D.L = L;
  D.start = (const unsigned char *)text;
  D.end = D.start + len;
  D.p = D.start;
  D.depth = 0;
  D.max_depth = max_depth;
  D.err_at = NULL;
  D.err_code = NULL;
  D.err_msg[0] = '\0';
  /* A UTF-8 byte order mark may start a file saved by some editors; RFC 8259 lets parsers ignore it. */
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) D.p += 3;
  D.scratch = buffer_acquire(L, UV_DECODE_BUFFER);
  lua_pushnil(L);  /* the shape cache's anchor, made at the first object with keys */
  D.anchor = lua_gettop(L);
  base = lua_gettop(L);
  failed = decode_value(&D);
  if (!failed) {
    const unsigned char *p = skip_space(D.p);
    if (p != D.end) failed = decode_expected(&D, p, "end of input after the JSON value");
  }
  buffer_release(L, D.scratch);
  if (failed) {
    lua_settop(L, base);
    return decode_push_error(&D, source);
  }
  return 1;
}

static const char *const decode_options[] = {"source", "max_depth", "big_integers", NULL};

static int option_big_integers(lua_State *L, int idx) {
  static const char *const modes[] = {"bignum", "float", "error", NULL};
  int mode = BIG_BIGNUM;
  if (lua_istable(L, idx)) {
    if (lua_getfield(L, idx, "big_integers") != LUA_TNIL) {
      const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
      mode = -1;
      for (int i = 0; modes[i] != NULL; i++)
        if (strcmp(s, modes[i]) == 0) mode = i;
      if (mode < 0) luaL_argerror(L, idx, "option 'big_integers' must be \"bignum\", \"float\" or \"error\"");
    }
    lua_pop(L, 1);
  }
  return mode;
}

/*
** json.decode(text [, opts]) -> value | nil, err
** Strict RFC 8259. Arrays come back marked with array_mt, objects with object_mt (empty) or a key order,
** null as json.null, integers within int64 as integers, larger integers as bignums (or per
** opts.big_integers: "float", "error"), every other number as a float. err is a lufa.error with kind
** "json", code "syntax" | "depth" | "utf8" | "range", line, column, position (byte index in text) and a
** message "[source: ]line L, column C: expected ..., found ...". opts: source (prefixes the message),
** max_depth, big_integers.
*/
static int json_decode(lua_State *L) {
  size_t len;
  const char *text, *source = NULL;
  int max_depth, big_integers;
  if (lua_type(L, 1) != LUA_TSTRING) return luaL_typeerror(L, 1, "string");
  text = lua_tolstring(L, 1, &len);
  check_options(L, 2, decode_options, "json.decode");
  max_depth = option_depth(L, 2);
  big_integers = option_big_integers(L, 2);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "source");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "option 'source' must be a string");
    source = lua_tostring(L, -1);  /* stays on the stack, so the pointer stays valid */
  }
  return decode_text(L, text, len, source, max_depth, big_integers);
}

/* Reads the whole file into a new string on the stack, or pushes nil, err. Returns 1 on success. */
static int read_file(lua_State *L, const char *path) {
  luaL_Buffer buf;
  FILE *f = fopen(path, "rb");
  size_t n;
  if (f == NULL) {
    int e = errno;
    lufa_error_fail(L, "json", "io", "%s: cannot open: %s", path, strerror(e));
    lufa_error_setstr(L, -1, "file", path);
    return 0;
  }
  luaL_buffinit(L, &buf);
  do {
    char *p = luaL_prepbuffsize(&buf, 65536);
    n = fread(p, 1, 65536, f);
    luaL_addsize(&buf, n);
  } while (n == 65536);
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    lufa_error_fail(L, "json", "io", "%s: cannot read: %s", path, strerror(e));
    lufa_error_setstr(L, -1, "file", path);
    return 0;
  }
  fclose(f);
  luaL_pushresult(&buf);
  return 1;
}

/*
** json.decode_file(path [, opts]) -> value | nil, err
** As json.decode, with the file name as source and in err.file; an unreadable file gives code "io".
*/
static int json_decode_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *source = path;
  size_t len;
  const char *text;
  int max_depth, big_integers, r;
  check_options(L, 2, decode_options, "json.decode_file");
  max_depth = option_depth(L, 2);
  big_integers = option_big_integers(L, 2);
  if (lua_istable(L, 2) && lua_getfield(L, 2, "source") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 2, "option 'source' must be a string");
    source = lua_tostring(L, -1);
  }
  if (!read_file(L, path)) return 2;
  text = lua_tolstring(L, -1, &len);
  r = decode_text(L, text, len, source, max_depth, big_integers);
  if (r == 2) lufa_error_setstr(L, -1, "file", path);
  return r;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Encoding                                                                                               */
/* ------------------------------------------------------------------------------------------------------ */

/* One step of the JSON path: the table at this depth and which member of it is being written. */
typedef struct {
  const void *table;
  const char *key;  /* the member key, or NULL when the member is an array element */
  size_t key_len;
  lua_Integer index;  /* 0-based element index */
  int active;         /* a member is being written */
} PathStep;

#define PATH_LOCAL 64

typedef struct {
  lua_State *L;
  JsonBuffer *b;
  int pretty, indent, reveal;
  int sort_keys;  /* 1: sort every object's keys; 0: never; -1 (default): plain tables' keys when pretty */
  int revealed;  /* the output holds a secret's bytes */
  int depth, max_depth;
  PathStep *path;
  PathStep local[PATH_LOCAL];
  int path_cap;
  int path_idx;  /* stack index of the userdata that holds a longer path, 0 if none */
} Encoder;

static void encode_value(Encoder *E);

static int is_identifier(const char *s, size_t n) {
  if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_')) return 0;
  for (size_t i = 1; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return 0;
  return 1;
}

/* Pushes "$.a[2]['odd key']" for the first `steps` active steps. */
static void push_path(Encoder *E, int steps) {
  lua_State *L = E->L;
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  luaL_addchar(&buf, '$');
  for (int i = 0; i < steps && E->path[i].active; i++) {
    const PathStep *s = &E->path[i];
    if (s->key == NULL) {
      char index[32];
      snprintf(index, sizeof index, "[%lld]", (long long)s->index);
      luaL_addstring(&buf, index);
    } else if (is_identifier(s->key, s->key_len)) {
      luaL_addchar(&buf, '.');
      luaL_addlstring(&buf, s->key, s->key_len);
    } else {
      luaL_addstring(&buf, "[\"");
      for (size_t k = 0; k < s->key_len && k < 80; k++) {
        unsigned char c = (unsigned char)s->key[k];
        if (c == '"' || c == '\\') {
          luaL_addchar(&buf, '\\');
          luaL_addchar(&buf, (char)c);
        } else if (c < 0x20) {
          char esc[8];
          snprintf(esc, sizeof esc, "\\u%04X", c);
          luaL_addstring(&buf, esc);
        } else {
          luaL_addchar(&buf, (char)c);
        }
      }
      if (s->key_len > 80) luaL_addstring(&buf, "...");
      luaL_addstring(&buf, "\"]");
    }
  }
  luaL_pushresult(&buf);
}

/* Raises "json.encode: WHAT at PATH" (fmt is C printf). The buffer is released first, and wiped if it held
** a secret. */
static int encode_fail(Encoder *E, const char *fmt, ...) {
  lua_State *L = E->L;
  char what[320];
  va_list ap;
  buffer_release(L, E->b);
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  luaL_checkstack(L, 4, NULL);
  push_path(E, E->depth);
  lua_pushfstring(L, "json.encode: %s at %s", what, lua_tostring(L, -1));
  return lua_error(L);
}

static const char *type_phrase(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TFUNCTION: return "a function";
    case LUA_TTHREAD: return "a coroutine";
    case LUA_TLIGHTUSERDATA: return "a light userdata";
    case LUA_TUSERDATA: return "a userdata";
    case LUA_TBOOLEAN: return "a boolean";
    case LUA_TTABLE: return "a table";
    case LUA_TNUMBER: return lua_isinteger(L, idx) ? "an integer" : "a float";
    default: return "a value of this type";
  }
}

static void encode_newline(Encoder *E, int depth) {
  size_t n = (size_t)E->indent * (size_t)depth;
  char *out = buffer_reserve(E->L, E->b, 1 + n);
  *out++ = '\n';
  memset(out, ' ', n);
  E->b->len += 1 + n;
}

static char *put_uint(char *out, uint64_t v) {
  static const char pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";
  char tmp[24];
  char *t = tmp + sizeof tmp;
  while (v >= 100) {
    unsigned r = (unsigned)(v % 100);
    v /= 100;
    t -= 2;
    memcpy(t, pairs + 2 * r, 2);
  }
  if (v >= 10) {
    t -= 2;
    memcpy(t, pairs + 2 * v, 2);
  } else {
    *--t = (char)('0' + v);
  }
  memcpy(out, t, (size_t)(tmp + sizeof tmp - t));
  return out + (tmp + sizeof tmp - t);
}

static void encode_integer(Encoder *E, lua_Integer v) {
  char *out = buffer_reserve(E->L, E->b, 24), *o = out;
  uint64_t u = (uint64_t)v;
  if (v < 0) {
    *o++ = '-';
    u = 0 - u;
  }
  o = put_uint(o, u);
  E->b->len += (size_t)(o - out);
}

/*
** Writes the shortest decimal that reads back as exactly d, always recognisable as a float ("3.0", "0.1",
** "1e+300"). Values from 1e-5 to 1e15 are tried in fixed notation first: m / 10^k with m < 2^53 and k <= 22
** is exactly what a correctly rounding reader computes, so the equality test proves the round trip.
*/
static size_t format_double(double d, char *out) {
  double a = d < 0 ? -d : d;
  char *o = out;
  if (d == 0) {
    if (signbit(d)) {
      memcpy(out, "-0.0", 4);
      return 4;
    }
    memcpy(out, "0.0", 3);
    return 3;
  }
  if (a >= 1e-5 && a < 1e15) {
    for (int k = 0; k <= 22; k++) {
      double scaled = a * pow10_exact[k];
      uint64_t m;
      if (scaled >= TWO_POW_53) break;
      m = (uint64_t)(scaled + 0.5);
      if ((double)m / pow10_exact[k] == a) {
        char digits[24];
        size_t nd = (size_t)(put_uint(digits, m) - digits);
        if (d < 0) *o++ = '-';
        if (k == 0) {
          memcpy(o, digits, nd);
          o += nd;
          memcpy(o, ".0", 2);
          o += 2;
        } else if (nd > (size_t)k) {
          memcpy(o, digits, nd - (size_t)k);
          o += nd - (size_t)k;
          *o++ = '.';
          memcpy(o, digits + nd - (size_t)k, (size_t)k);
          o += k;
        } else {
          *o++ = '0';
          *o++ = '.';
          memset(o, '0', (size_t)k - nd);
          o += (size_t)k - nd;
          memcpy(o, digits, nd);
          o += nd;
        }
        return (size_t)(o - out);
      }
    }
  }
  {
    int n = 0;
    char point = locale_point();
    /* 15 digits always suffice to tell apart doubles of full precision that have a shorter form;
    ** subnormals have less precision, so for them start from 1 digit. */
    for (int prec = a < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
      n = snprintf(out, 32, "%.*g", prec, d);
      if (strtod(out, NULL) == d) break;
    }
    int has_mark = 0;
    for (int i = 0; i < n; i++) {
      if (out[i] == point && point != '.') out[i] = '.';
      if (out[i] == '.' || out[i] == 'e') has_mark = 1;
    }
    if (!has_mark) {
      memcpy(out + n, ".0", 2);
      n += 2;
    }
    return (size_t)n;
  }
}

static void encode_float(Encoder *E, double d) {
  if (isnan(d)) encode_fail(E, "cannot encode NaN (JSON has no NaN or infinity)");
  if (isinf(d)) encode_fail(E, "cannot encode %s (JSON has no NaN or infinity)", d > 0 ? "inf" : "-inf");
  char *out = buffer_reserve(E->L, E->b, 40);
  E->b->len += format_double(d, out);
}

enum { STR_VALUE, STR_KEY, STR_SECRET };

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether any of the 8 bytes in w needs more than a copy: below 0x20, '"', '\\' or non-ASCII. (The
** zero-byte test may also flag a byte after a flagged one; the byte loop sorts that out.) */
static inline int has_special(uint64_t w) {
  uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
  uint64_t t = (w - ONES * 0x20) | (q - ONES) | (b - ONES);
  return ((t & ~w) | w) & HIGHS ? 1 : 0;
}

/* Writes str[0..n) as a JSON string. str is NUL-terminated (a Lua string or a secret's bytes), which stops
** utf8_length at the end. A secret's bytes never appear in an error. */
static void encode_string(Encoder *E, const char *str, size_t n, int what) {
  static const char hex[] = "0123456789abcdef";
  JsonBuffer *b = E->b;
  const unsigned char *p = (const unsigned char *)str, *end = p + n;
  /* Chunks keep the reservation bounded: at most 6 output bytes per input byte, a UTF-8 sequence may run
  ** 3 bytes past the chunk, and the quotes. */
  size_t chunk = n < 4096 ? n : 4096;
  char *out = buffer_reserve(E->L, b, chunk * 6 + 8);
  *out++ = '"';
  for (;;) {
    const unsigned char *stop = p + chunk;
    while (p < stop) {
      unsigned c;
      /* Eight plain bytes at a time while they last, then byte by byte (which beats a memcpy call for the
      ** short runs typical of keys and values). */
      while (stop - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (has_special(w)) break;
        memcpy(out, p, 8);
        out += 8;
        p += 8;
      }
      while (p < stop && json_plain[*p]) *out++ = (char)*p++;
      if (p >= stop) break;
      c = *p;
      if (c >= 0x80) {
        int len = utf8_length(p);
        if (len == 0) {
          b->len = (size_t)(out - b->p);
          if (what == STR_SECRET) encode_fail(E, "a secret is not valid UTF-8");
          encode_fail(E, "%s is not valid UTF-8 (byte 0x%02X at byte %d of it)",
                      what == STR_KEY ? "a key" : "a string", c, (int)((const char *)p - str) + 1);
        }
        while (len--) *out++ = (char)*p++;
        continue;
      }
      *out++ = '\\';
      switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        default:
          *out++ = 'u';
          *out++ = '0';
          *out++ = '0';
          *out++ = hex[c >> 4];
          *out++ = hex[c & 15];
      }
      p++;
    }
    b->len = (size_t)(out - b->p);
    if (p >= end) break;
    chunk = (size_t)(end - p) < 4096 ? (size_t)(end - p) : 4096;
    out = buffer_reserve(E->L, b, chunk * 6 + 8);
  }
  *out++ = '"';
  b->len++;
}

/* The path step of the table being written (re-read after any recursion: the path may have moved). */
#define STEP(E) (&(E)->path[(E)->depth - 1])

/* Makes room for one more path step, moving the path into a userdata past PATH_LOCAL levels. */
static void path_reserve(Encoder *E) {
  if (E->depth >= E->path_cap) {
    int cap = E->max_depth + 1;
    PathStep *deep = (PathStep *)lua_newuserdatauv(E->L, sizeof(PathStep) * (size_t)cap, 0);
    memcpy(deep, E->path, sizeof(PathStep) * (size_t)E->path_cap);
    /* Anchor it below everything the recursion has pushed, so it lives until encode returns. */
    lua_copy(E->L, -1, E->path_idx);
    lua_pop(E->L, 1);
    E->path = deep;
    E->path_cap = cap;
  }
}

static void encode_element(Encoder *E, lua_Integer index) {
  PathStep *step = STEP(E);
  if (index > 0) buffer_addc(E->L, E->b, ',');
  if (E->pretty) encode_newline(E, E->depth);
  step->key = NULL;
  step->index = index;
  step->active = 1;
  encode_value(E);
  STEP(E)->active = 0;
}

static void encode_array_slow(Encoder *E, size_t start);

/* The table at the top is written as an array. Walks it with lua_next, which visits 1..n in order for a
** table whose integer keys all sit in its array part; anything else falls back to a checked, indexed pass. */
static void encode_array(Encoder *E) {
  lua_State *L = E->L;
  size_t start = E->b->len;
  lua_Integer n = 0;
  buffer_addc(L, E->b, '[');
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) != n + 1) {
      lua_pop(L, 2);
      encode_array_slow(E, start);
      return;
    }
    encode_element(E, n);
    lua_pop(L, 1);
    n++;
  }
  if (E->pretty && n > 0) encode_newline(E, E->depth - 1);
  buffer_addc(L, E->b, ']');
}

static void encode_array_slow(Encoder *E, size_t start) {
  lua_State *L = E->L;
  lua_Integer count = 0, max = 0;
  E->b->len = start;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      count++;
      if (k > max) max = k;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      encode_fail(E, "table mixes array elements with string keys (such as \"%.60s\")", lua_tostring(L, -1));
    } else if (lua_isinteger(L, -1)) {
      encode_fail(E, "table has the integer key %lld (an array needs keys 1..n)", (long long)lua_tointeger(L, -1));
    } else {
      encode_fail(E, "table has %s as a key (an array needs keys 1..n)", type_phrase(L, -1));
    }
  }
  if (count != max) {
    lua_Integer hole = 1;
    while (lua_rawgeti(L, -1, hole) != LUA_TNIL) {
      lua_pop(L, 1);
      hole++;
    }
    encode_fail(E, "array has a hole at Lua index %lld of %lld (use json.null for JSON null)", (long long)hole,
                (long long)max);
  }
  buffer_addc(L, E->b, '[');
  for (lua_Integer i = 1; i <= max; i++) {
    lua_rawgeti(L, -1, i);
    encode_element(E, i - 1);
    lua_pop(L, 1);
  }
  if (E->pretty && max > 0) encode_newline(E, E->depth - 1);
  buffer_addc(L, E->b, ']');
}

/* Writes "key": value for the value at the top. */
static void encode_member(Encoder *E, const char *key, size_t klen, int first) {
  PathStep *step = STEP(E);
  if (!first) buffer_addc(E->L, E->b, ',');
  if (E->pretty) encode_newline(E, E->depth);
  step->key = key;
  step->key_len = klen;
  step->active = 1;
  encode_string(E, key, klen, STR_KEY);
  if (E->pretty) buffer_add(E->L, E->b, ": ", 2);
  else buffer_addc(E->L, E->b, ':');
  encode_value(E);
  STEP(E)->active = 0;
}

/* Raises for the non-string key at the top. */
static void encode_bad_key(Encoder *E, int plain) {
  lua_State *L = E->L;
  if (plain && lua_isinteger(L, -1))
    encode_fail(E, "table mixes string keys with integer keys (such as %lld)", (long long)lua_tointeger(L, -1));
  if (lua_type(L, -1) == LUA_TNUMBER)
    encode_fail(E, "object has the number key %s (JSON object keys must be strings)", lua_tostring(L, -1));
  encode_fail(E, "object has %s as a key (JSON object keys must be strings)", type_phrase(L, -1));
}

static int key_compare(const void *a, const void *b) {
  const KeyRef *x = (const KeyRef *)a, *y = (const KeyRef *)b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  if (c != 0) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* Writes the string keys of the table at -1, sorted by their bytes, but for those a key order at skip
** (0: none) has written; first as for encode_member. Returns whether anything was written. */
static int encode_sorted_members(Encoder *E, int plain, int skip, int first) {
  lua_State *L = E->L;
  size_t count = 0, i = 0;
  KeyRef *keys;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) encode_bad_key(E, plain);
    count++;
  }
  /* The keys stay alive as keys of the table; only their addresses are sorted. */
  keys = (KeyRef *)lua_newuserdatauv(L, count * sizeof(KeyRef) + 1, 0);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pop(L, 1);
    if (skip != 0) {
      /* written already when keys[keys[k]] is k */
      int written = 0;
      lua_pushvalue(L, -1);
      if (lua_rawget(L, skip) == LUA_TNUMBER && lua_isinteger(L, -1)) {
        lua_rawget(L, skip);
        written = lua_rawequal(L, -1, -2);
      }
      lua_pop(L, 1);
      if (written) continue;
    }
    if (i < count && lua_type(L, -1) == LUA_TSTRING) {
      keys[i].s = lua_tolstring(L, -1, &keys[i].n);
      i++;
    }
  }
  qsort(keys, i, sizeof(KeyRef), key_compare);
  for (size_t k = 0; k < i; k++) {
    lua_pushlstring(L, keys[k].s, keys[k].n);
    lua_rawget(L, -3);
    encode_member(E, keys[k].s, keys[k].n, first);
    lua_pop(L, 1);
    first = 0;
  }
  lua_pop(L, 1);
  return i > 0;
}

/* The decoded object at the top is written in its recorded key order (keys removed since are left out),
** then the keys added since, sorted. */
static void encode_object(Encoder *E, int plain, int sorted);

static void encode_object_ordered(Encoder *E) {
  lua_State *L = E->L;
  int first = 1;
  lua_Integer n, found = 0, count = 0;
  lua_getmetatable(L, -1);
  if (lua_rawgeti(L, -1, 1) != LUA_TTABLE) {
    /* the record was replaced through getmetatable(): write the object as a marked table */
    lua_pop(L, 2);
    encode_object(E, 0, E->sort_keys == 1 || (E->sort_keys == -1 && E->pretty));
    return;
  }
  lua_remove(L, -2);  /* stack: obj keys */
  buffer_addc(L, E->b, '{');
  n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t klen;
    const char *key;
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -4) == LUA_TNIL) {
      lua_pop(L, 2);
      continue;
    }
    key = lua_tolstring(L, -2, &klen);
    encode_member(E, key, klen, first);
    lua_pop(L, 2);
    first = 0;
    found++;
  }
  /* Keys added since: only a count tells, without a lookup per key. */
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pop(L, 1);
    count++;
  }
  if (count > found) {
    lua_pushvalue(L, -2);  /* stack: obj keys obj */
    if (encode_sorted_members(E, 0, lua_gettop(L) - 1, first)) first = 0;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (E->pretty && !first) encode_newline(E, E->depth - 1);
  buffer_addc(L, E->b, '}');
}

/* The table at the top is written as an object, keys in byte order when sorted. */
static void encode_object(Encoder *E, int plain, int sorted) {
  lua_State *L = E->L;
  int first = 1;
  buffer_addc(L, E->b, '{');
  if (!sorted) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      size_t klen;
      const char *key;
      if (lua_type(L, -2) != LUA_TSTRING) {
        lua_pop(L, 1);
        encode_bad_key(E, plain);
      }
      key = lua_tolstring(L, -2, &klen);
      encode_member(E, key, klen, first);
      lua_pop(L, 1);
      first = 0;
    }
  } else if (encode_sorted_members(E, plain, 0, first)) {
    first = 0;
  }
  if (E->pretty && !first) encode_newline(E, E->depth - 1);
  buffer_addc(L, E->b, '}');
}

static void encode_table(Encoder *E) {
  lua_State *L = E->L;
  const void *t = lua_topointer(L, -1);
  int kind;
  for (int i = 0; i < E->depth; i++) {
    if (E->path[i].table == t) {
      push_path(E, i);
      encode_fail(E, "cycle (the table at %s contains itself)", lua_tostring(L, -1));
    }
  }
  if (E->depth >= E->max_depth) encode_fail(E, "nesting deeper than %d levels (max_depth)", E->max_depth);
  if (!lua_checkstack(L, 6)) encode_fail(E, "no room on the Lua stack");
  path_reserve(E);
  E->path[E->depth].table = t;
  E->path[E->depth].active = 0;
  E->depth++;
  kind = table_mark(L, -1);
  if (kind == KIND_ARRAY) {
    encode_array(E);
  } else if (kind == KIND_ORDERED && E->sort_keys != 1) {
    encode_object_ordered(E);
  } else if (kind != KIND_PLAIN) {
    encode_object(E, 0, E->sort_keys == 1 || (E->sort_keys == -1 && E->pretty));
  } else {
    /* A plain table whose first key is an integer is meant as an array (encode_array checks it is one);
    ** a string first key, or no key at all, makes an object. */
    int is_array = 0;
    lua_pushnil(L);
    if (lua_next(L, -2)) {
      is_array = lua_isinteger(L, -2);
      lua_pop(L, 2);
    }
    if (is_array) encode_array(E);
    else encode_object(E, 1, E->sort_keys == 1 || (E->sort_keys == -1 && E->pretty));
  }
  E->depth--;
}

static void encode_value(Encoder *E) {
  lua_State *L = E->L;
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      encode_string(E, s, n, STR_VALUE);
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1)) encode_integer(E, lua_tointeger(L, -1));
      else encode_float(E, lua_tonumber(L, -1));
      break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, -1)) buffer_add(L, E->b, "true", 4);
      else buffer_add(L, E->b, "false", 5);
      break;
    case LUA_TNIL:
      buffer_add(L, E->b, "null", 4);
      break;
    case LUA_TTABLE:
      encode_table(E);
      break;
    case LUA_TUSERDATA: {
      size_t n;
      const char *s;
      if (is_null(L, -1)) {
        buffer_add(L, E->b, "null", 4);
        break;
      }
      if (lua_getmetatable(L, -1)) {
        int big = lua_rawequal(L, -1, lua_upvalueindex(UV_BIGNUM_MT));
        lua_pop(L, 1);
        if (big) {
          const Bignum *bn = (const Bignum *)lua_touserdata(L, -1);
          buffer_add(L, E->b, bn->digits, bn->len);
          break;
        }
      }
      s = lufa_secret_bytes(L, -1, &n);
      if (s == NULL) encode_fail(E, "cannot encode %s", type_phrase(L, -1));
      if (E->reveal) {
        E->b->holds_secret = 1;
        E->revealed = 1;
        encode_string(E, s, n, STR_SECRET);
      } else {
        buffer_add(L, E->b, "\"" LUFA_SECRET_MARKER "\"", sizeof(LUFA_SECRET_MARKER) + 1);
      }
      break;
    }
    default:
      encode_fail(E, "cannot encode %s", type_phrase(L, -1));
  }
}

static const char *const encode_options[] = {"pretty", "indent", "sort_keys", "reveal_secrets", "max_depth", NULL};

/* opts.indent: spaces per level, 1 to 16; implies pretty. 0 when not given. */
static int option_indent(lua_State *L, int idx) {
  lua_Integer n = 0;
  if (lua_istable(L, idx)) {
    if (lua_getfield(L, idx, "indent") != LUA_TNIL) {
      int isint = 0;
      if (lua_type(L, -1) == LUA_TNUMBER) n = lua_tointegerx(L, -1, &isint);
      if (!isint || n < 1 || n > 16) luaL_argerror(L, idx, "option 'indent' must be an integer from 1 to 16");
    }
    lua_pop(L, 1);
  }
  return (int)n;
}

/*
** json.encode(value [, opts]) -> string
** opts: pretty, indent (spaces per level, default 2; implies pretty), sort_keys (true: all objects; default:
** decoded objects in their key order, other tables sorted when pretty), reveal_secrets, max_depth. Secrets are
** written as the redacted marker; with reveal_secrets their bytes are written and the result is itself a
** secret. Raises, naming the JSON path ($.a[2].b, indices from 0), for what JSON cannot hold: functions,
** other userdata, NaN and infinities, cycles, tables that are neither arrays 1..n nor string-keyed, invalid
** UTF-8, nesting past max_depth.
*/
static int json_encode(lua_State *L) {
  Encoder E;
  luaL_checkany(L, 1);
  check_options(L, 2, encode_options, "json.encode");
  lua_settop(L, 2);
  E.L = L;
  E.indent = option_indent(L, 2);
  E.pretty = option_flag(L, 2, "pretty", E.indent > 0);
  if (E.indent == 0) E.indent = 2;
  E.sort_keys = option_flag(L, 2, "sort_keys", -1);
  E.reveal = option_flag(L, 2, "reveal_secrets", 0);
  E.max_depth = option_depth(L, 2);
  E.revealed = 0;
  E.depth = 0;
  E.path = E.local;
  E.path_cap = PATH_LOCAL;
  lua_pushnil(L);  /* slot 3: the path storage once nesting passes PATH_LOCAL */
  E.path_idx = 3;
  E.b = buffer_acquire(L, UV_ENCODE_BUFFER);  /* slot 4 */
  lua_pushvalue(L, 1);
  encode_value(&E);
  lua_pop(L, 1);
  if (E.revealed) lufa_secret_push(L, E.b->p, E.b->len);
  else lua_pushlstring(L, E.b->p, E.b->len);
  buffer_release(L, E.b);
  return 1;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Marking and inspecting values                                                                          */
/* ------------------------------------------------------------------------------------------------------ */

static int mark_table(lua_State *L, int uv) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  switch (table_mark(L, 1)) {
    case KIND_ORDERED:
      if (uv == UV_OBJECT_MT) return 1;  /* already an object, and it keeps its key order */
      break;
    case KIND_PLAIN:
      if (lua_getmetatable(L, 1)) luaL_argerror(L, 1, "table already has a metatable");
      break;
    default: break;
  }
  lua_pushvalue(L, lua_upvalueindex(uv));
  lua_setmetatable(L, 1);
  return 1;
}

/*
** json.array([t]) -> t marked as a JSON array (a new table when t is nil)
*/
static int json_array(lua_State *L) {
  return mark_table(L, UV_ARRAY_MT);
}

/*
** json.object([t]) -> t marked as a JSON object (a new table when t is nil)
*/
static int json_object(lua_State *L) {
  return mark_table(L, UV_OBJECT_MT);
}

/* For a plain table: "array" when its keys are exactly 1..n, "object" when they are strings (or it is
** empty), NULL otherwise. */
static const char *plain_kind(lua_State *L, int idx) {
  lua_Integer count = 0, max = 0;
  int strings = 0, others = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      strings++;
    } else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      count++;
      if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
    } else {
      others++;
    }
  }
  if (others) return NULL;
  if (count == 0) return "object";
  if (strings == 0 && count == max) return "array";
  return NULL;
}

/*
** json.bignum(text) -> what decode gives for the JSON integer text: an integer within 64 bits, else a bignum
*/
static int json_bignum(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  size_t i = s[0] == '-';
  int ok = n > i && s[i] >= '1' && s[i] <= '9';
  for (size_t k = i; ok && k < n; k++) ok = s[k] >= '0' && s[k] <= '9';
  if (!ok && !(n == 1 && s[0] == '0'))
    return luaL_argerror(L, 1, "expected the digits of an integer (-?[1-9][0-9]*)");
  if (lua_stringtonumber(L, s) == n + 1 && lua_isinteger(L, -1)) return 1;
  lua_settop(L, 1);
  push_bignum(L, lua_upvalueindex(UV_BIGNUM_MT), s, n);
  return 1;
}

/*
** json.type(v) -> "null", "boolean", "integer", "number", "string", "array", "object", or nil
*/
static int json_type(lua_State *L) {
  const char *t = NULL;
  luaL_checkany(L, 1);
  switch (lua_type(L, 1)) {
    case LUA_TBOOLEAN: t = "boolean"; break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, 1)) t = "integer";
      else if (!isnan(lua_tonumber(L, 1)) && !isinf(lua_tonumber(L, 1))) t = "number";
      break;
    case LUA_TSTRING: t = "string"; break;
    case LUA_TUSERDATA:
      if (is_null(L, 1)) t = "null";
      else if (to_bignum(L, 1) != NULL) t = "bignum";
      else if (lufa_secret_bytes(L, 1, NULL) != NULL) t = "string";
      break;
    case LUA_TTABLE: {
      int kind = table_mark(L, 1);
      if (kind == KIND_ARRAY) t = "array";
      else if (kind == KIND_OBJECT) t = "object";
      else t = plain_kind(L, 1);
      break;
    }
    default: break;
  }
  if (t == NULL) lua_pushnil(L);
  else lua_pushstring(L, t);
  return 1;
}

/** keys(t) → the string keys of t in the order encode writes them by default: a decoded object's in document
** order (those removed since left out), then the others sorted by their bytes. */
static int json_keys(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L);  /* 2: the keys */
  lua_newtable(L);  /* 3: those taken from the order */
  lua_Integer n = 0;
  if (table_mark(L, 1) == KIND_ORDERED) {
    lua_getmetatable(L, 1);
    if (lua_rawgeti(L, -1, 1) == LUA_TTABLE) {
      lua_Integer m = (lua_Integer)lua_rawlen(L, -1);
      for (lua_Integer i = 1; i <= m; i++) {
        if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
          lua_pushvalue(L, -1);
          int present = lua_rawget(L, 1) != LUA_TNIL;
          lua_pop(L, 1);
          if (present) {
            lua_pushvalue(L, -1);
            lua_rawseti(L, 2, ++n);
            lua_pushboolean(L, 1);
            lua_rawset(L, 3);
            continue;
          }
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 2);
  }
  lua_Integer ordered = n;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) continue;
    lua_pushvalue(L, -1);
    int seen = lua_rawget(L, 3) != LUA_TNIL;
    lua_pop(L, 1);
    if (seen) continue;
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, ++n);
  }
  if (n > ordered) {
    size_t count = (size_t)(n - ordered);
    KeyRef *rest = (KeyRef *)lua_newuserdatauv(L, count * sizeof *rest, 0);  /* 4 */
    for (size_t i = 0; i < count; i++) {
      lua_rawgeti(L, 2, ordered + 1 + (lua_Integer)i);
      rest[i].s = lua_tolstring(L, -1, &rest[i].n);  /* the string stays in the keys table */
      lua_pop(L, 1);
    }
    qsort(rest, count, sizeof *rest, key_compare);
    lua_createtable(L, (int)count, 0);  /* 5: the sorted strings, before the keys table is rewritten */
    for (size_t i = 0; i < count; i++) {
      lua_pushlstring(L, rest[i].s, rest[i].n);
      lua_rawseti(L, 5, (lua_Integer)i + 1);
    }
    for (size_t i = 0; i < count; i++) {
      lua_rawgeti(L, 5, (lua_Integer)i + 1);
      lua_rawseti(L, 2, ordered + 1 + (lua_Integer)i);
    }
    lua_pop(L, 2);
  }
  lua_pushvalue(L, 2);
  return 1;
}

int luaopen_lufa_json(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"decode", json_decode},
    {"decode_file", json_decode_file},
    {"encode", json_encode},
    {"array", json_array},
    {"object", json_object},
    {"type", json_type},
    {"bignum", json_bignum},
    {"keys", json_keys},
    {NULL, NULL}
  };
  luaL_newlibtable(L, funcs);
  push_null(L);
  luaL_newmetatable(L, JSON_ARRAY_MT);
  luaL_newmetatable(L, JSON_OBJECT_MT);
  push_bignum_mt(L);
  buffer_new(L);
  buffer_new(L);
  luaL_setfuncs(L, funcs, UV_COUNT);
  push_null(L);
  lua_setfield(L, -2, "null");
  luaL_getmetatable(L, JSON_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  luaL_getmetatable(L, JSON_OBJECT_MT);
  lua_setfield(L, -2, "object_mt");
  return 1;
}
