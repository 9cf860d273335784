/*
** lufa.redact: removes secrets from text lufa shows.
**
** Two passes, each linear in the text:
**  1. the bytes of every remembered secret (host/secret.c keeps the set) become "<redacted>";
**  2. credential-shaped text becomes "<redacted>" too, even when lufa never saw the value: the value of a
**     SAS `sig=`, of `SharedAccessSignature=` and `AccountKey=` (connection strings, up to `;`), of
**     `client_secret=`, `client_assertion=`, `access_token=`, `refresh_token=`, `password=` (and the same
**     names as JSON members, `"access_token": "..."`), `?code=`/`&code=` (function keys), the token after
**     `Bearer `, the value of `Authorization:` and `x-ms-...key...:` headers (the scheme word kept:
**     `Authorization: SharedKey <redacted>`), and JWTs (three base64url segments, the first starting eyJ).
** Names match in any letter case and only at the start of a word (`mysig=` is not `sig=`). Only the value
** is replaced; names, quotes and separators stay, so the message remains readable. Text with nothing to
** hide is returned as it is (the same Lua string, no copy).
*/
#include <string.h>

#include <lauxlib.h>

#include "redact.h"
#include "secret.h"

#define MARKER LUFA_SECRET_MARKER
#define MARKER_LEN (sizeof MARKER - 1)

/* A quoted value is looked for this far; secrets are short, and a missing quote must not cost a rescan of
** the rest of a large text at every name. */
#define QUOTED_MAX 65536

/* Bearer tokens shorter than this, or made of letters only, are words ("Bearer authentication"). */
#define BEARER_MIN 16
#define JWT_MIN 20

/* Header names are short; the bound keeps "x-ms-x-ms-x-ms-..." from being rescanned at every name. */
#define HEADER_NAME_MAX 64

typedef struct {
  size_t from, to;
} Span;

enum { STOP_QUERY, STOP_CONN };

static int lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_alnum(unsigned char c) {
  return is_alpha(c) || (c >= '0' && c <= '9');
}

static int is_word(unsigned char c) {
  return is_alnum(c) || c == '_';
}

static int is_b64url(unsigned char c) {
  return is_alnum(c) || c == '-' || c == '_';
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (unsigned char)lower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The escaped character ending just before i: "%26" (URL) or "\u0026" (JSON); 0 when there is none. */
static int escaped_before(const char *s, size_t i) {
  const unsigned char *u = (const unsigned char *)s;
  if (i < 3 || hex_value(u[i - 1]) < 0 || hex_value(u[i - 2]) < 0) return 0;
  int c = hex_value(u[i - 2]) * 16 + hex_value(u[i - 1]);
  if (u[i - 3] == '%') return c;
  if (i >= 6 && u[i - 6] == '\\' && u[i - 5] == 'u' && u[i - 4] == '0' && u[i - 3] == '0') return c;
  return 0;
}

/* A name starts a word: nothing before it, a character that is not a letter, digit or '_', or an escaped
** one ("\u0026sig=" in JSON, "%26sig%3D" in a URL inside a URL). */
static int word_start(const char *s, size_t i) {
  if (i == 0 || !is_word((unsigned char)s[i - 1])) return 1;
  int c = escaped_before(s, i);
  return c != 0 && !is_word((unsigned char)c);
}

/* A query parameter starts at i: after '?' or '&', plain or escaped. */
static int query_start(const char *s, size_t i) {
  if (i > 0 && (s[i - 1] == '?' || s[i - 1] == '&')) return 1;
  int c = escaped_before(s, i);
  return c == '?' || c == '&';
}

static int is_blank(unsigned char c) {
  return c == ' ' || c == '\t';
}

/* Where an unquoted value ends. Query values stop at '&'; connection-string values (a SAS token holds
** '&' and '=') only at ';'. Base64 padding '=' never stops a value. */
static int stops(unsigned char c, int kind) {
  if (c <= 0x20 || c == 0x7f) return 1;
  switch (c) {
    case '"': case '\'': case '`': case '<': case '>': case ',': case ';':
    case '(': case ')': case '[': case ']': case '{': case '}': case '|': case '#':
      return 1;
    case '&':
      return kind == STOP_QUERY;
    default:
      return 0;
  }
}

/* s[i..] starts with `name` (lowercase) in any letter case. */
static int starts_with(const char *s, size_t n, size_t i, const char *name, size_t len) {
  if (n - i < len) return 0;
  for (size_t k = 0; k < len; k++)
    if (lower((unsigned char)s[i + k]) != (unsigned char)name[k]) return 0;
  return 1;
}

static size_t skip_blanks(const char *s, size_t n, size_t j) {
  while (j < n && is_blank((unsigned char)s[j])) j++;
  return j;
}

/* `encoded`: the value sits URL-encoded inside another URL, where '&' and ';' are "%26" and "%3B". */
static size_t scan_plain(const char *s, size_t n, size_t j, int kind, int encoded) {
  while (j < n) {
    unsigned char c = (unsigned char)s[j];
    if (encoded && c == '%' && n - j >= 3 &&
        ((s[j + 1] == '2' && s[j + 2] == '6') || (s[j + 1] == '3' && lower((unsigned char)s[j + 2]) == 'b')))
      break;
    if (c == '\\') {
      if (j + 1 < n && s[j + 1] == '/') {  /* JSON may write '/' as "\/" */
        j += 2;
        continue;
      }
      break;  /* "\u0026" (an escaped '&') and other escapes end a value */
    }
    if (stops(c, kind)) break;
    j++;
  }
  return j;
}

/* A quoted value starting at j: "…" and '…' (backslash escapes skipped), or \"…\" (JSON inside a JSON
** string). The span is the text between the quotes. */
static int quoted_at(const char *s, size_t n, size_t j, Span *v) {
  if (j >= n) return 0;
  size_t limit = n - j > QUOTED_MAX ? j + QUOTED_MAX : n;
  if (s[j] == '\\' && j + 1 < n && s[j + 1] == '"') {
    size_t k = j + 2;
    while (k < limit && s[k] != '\\' && s[k] != '"' && s[k] != '\n') k++;
    if (k < limit && s[k] == '\\' && k + 1 < n && s[k + 1] == '"' && k > j + 2) {
      v->from = j + 2, v->to = k;
      return 1;
    }
    return 0;
  }
  char q = s[j];
  if (q != '"' && q != '\'') return 0;
  for (size_t k = j + 1; k < limit; k++) {
    if (s[k] == '\\') {
      k++;
      continue;
    }
    if (s[k] == '\n') return 0;
    if (s[k] == q) {
      if (k == j + 1) return 0;
      v->from = j + 1, v->to = k;
      return 1;
    }
  }
  return 0;
}

/* `name=value`, the value unquoted (up to a stop) or quoted; or `name%3Dvalue` in an encoded URL, the
** value ending at an encoded '&' too. j is just past the name. */
static int match_assign(const char *s, size_t n, size_t j, int kind, Span *v) {
  int encoded = 0;
  if (j < n && s[j] == '=') {
    j++;
  } else if (n - j >= 3 && s[j] == '%' && s[j + 1] == '3' && lower((unsigned char)s[j + 2]) == 'd') {
    j += 3;
    encoded = 1;
  } else {
    return 0;
  }
  if (!encoded && quoted_at(s, n, j, v)) return 1;
  size_t end = scan_plain(s, n, j, kind, encoded);
  if (end == j) return 0;
  v->from = j, v->to = end;
  return 1;
}

/* `"name": "value"` (also with single quotes, and \"name\":\"value\"). The name spans [i, j). */
static int match_json(const char *s, size_t n, size_t i, size_t j, Span *v) {
  if (i == 0) return 0;
  char q = s[i - 1];
  if (q != '"' && q != '\'') return 0;
  if (q == '"' && i >= 2 && s[i - 2] == '\\') {
    if (j + 1 >= n || s[j] != '\\' || s[j + 1] != '"') return 0;
    j += 2;
  } else {
    if (j >= n || s[j] != q) return 0;
    j++;
  }
  j = skip_blanks(s, n, j);
  if (j >= n || s[j] != ':') return 0;
  return quoted_at(s, n, skip_blanks(s, n, j + 1), v);
}

/* A header value: to the end of the line (or of the quoted text holding it), its scheme word kept. */
static int header_value(const char *s, size_t n, size_t j, Span *v) {
  j = skip_blanks(s, n, j);
  size_t end = j;
  while (end < n) {
    char c = s[end];
    if (c == '\r' || c == '\n' || c == '"' || c == '\'') break;
    if (c == '\\' && end + 1 < n && (s[end + 1] == 'r' || s[end + 1] == 'n' || s[end + 1] == '"')) break;
    end++;
  }
  while (end > j && is_blank((unsigned char)s[end - 1])) end--;
  size_t k = j;
  while (k < end && (is_alnum((unsigned char)s[k]) || s[k] == '-')) k++;
  if (k > j && is_alpha((unsigned char)s[j]) && k < end && s[k] == ' ') {
    size_t after = skip_blanks(s, end, k);
    if (after < end) j = after;  /* "Bearer <redacted>", "SharedKey <redacted>" */
  }
  if (end == j) return 0;
  v->from = j, v->to = end;
  return 1;
}

/* `Name: value` (a header line) or the JSON member "Name": "value". The name spans [i, j). */
static int match_header(const char *s, size_t n, size_t i, size_t j, Span *v) {
  size_t k = skip_blanks(s, n, j);
  if (k < n && s[k] == ':' && (k + 1 >= n || s[k + 1] != '/')) return header_value(s, n, k + 1, v);
  Span q;
  if (match_json(s, n, i, j, &q)) return header_value(s, q.to, q.from, v);
  return 0;
}

static int match_bearer(const char *s, size_t n, size_t j, Span *v) {
  if (j >= n || !is_blank((unsigned char)s[j])) return 0;
  j = skip_blanks(s, n, j);
  size_t k = j;
  int letters_only = 1;
  while (k < n) {
    unsigned char c = (unsigned char)s[k];
    if (is_alpha(c)) {
      k++;
    } else if ((c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
      letters_only = 0;
      k++;
    } else {
      break;
    }
  }
  while (k < n && s[k] == '=') k++, letters_only = 0;
  if (k - j < BEARER_MIN || letters_only) return 0;
  v->from = j, v->to = k;
  return 1;
}

/* eyJ…​.…​.…: a JWT (or a JWE's five segments). i is at "eyJ", not inside a longer base64url run. */
static int match_jwt(const char *s, size_t n, size_t i, Span *v) {
  size_t k = i;
  int segments = 0;
  for (;;) {
    size_t start = k;
    while (k < n && is_b64url((unsigned char)s[k])) k++;
    segments++;
    if (k == start && segments < 3) return 0;  /* the header and the payload are never empty */
    if (segments >= 3 && (k >= n || s[k] != '.' || k + 1 >= n || !is_b64url((unsigned char)s[k + 1]))) break;
    if (k >= n || s[k] != '.') return 0;
    k++;
  }
  if (k - i < JWT_MIN) return 0;
  v->from = i, v->to = k;
  return 1;
}

enum { N_QUERY, N_CODE, N_CONN, N_FIELD, N_HEADER, N_BEARER, N_XMS };

static const struct {
  const char *name;
  size_t len;
  int kind;
} NAMES[] = {
  {"sig", 3, N_QUERY},
  {"sharedaccesssignature", 21, N_CONN},
  {"accountkey", 10, N_CONN},
  {"client_secret", 13, N_FIELD},
  {"client_assertion", 16, N_FIELD},
  {"code", 4, N_CODE},
  {"access_token", 12, N_FIELD},
  {"authorization", 13, N_HEADER},
  {"refresh_token", 13, N_FIELD},
  {"password", 8, N_FIELD},
  {"bearer", 6, N_BEARER},
  {"x-ms-", 5, N_XMS},
};

/* Bytes at which a credential may start: the first letters of NAMES in either case, and 'e' (eyJ…). */
static const unsigned char TRIGGER[256] = {
  ['a'] = 1, ['A'] = 1, ['b'] = 1, ['B'] = 1, ['c'] = 1, ['C'] = 1, ['p'] = 1, ['P'] = 1,
  ['r'] = 1, ['R'] = 1, ['s'] = 1, ['S'] = 1, ['x'] = 1, ['X'] = 1, ['e'] = 1,
};

static int match_name(const char *s, size_t n, size_t i, Span *v) {
  int c = lower((unsigned char)s[i]);
  for (size_t k = 0; k < sizeof NAMES / sizeof NAMES[0]; k++) {
    if ((unsigned char)NAMES[k].name[0] != c || !starts_with(s, n, i, NAMES[k].name, NAMES[k].len)) continue;
    size_t j = i + NAMES[k].len;
    switch (NAMES[k].kind) {
      case N_QUERY:
        if (match_assign(s, n, j, STOP_QUERY, v)) return 1;
        break;
      case N_CODE:
        if (query_start(s, i) && match_assign(s, n, j, STOP_QUERY, v)) return 1;
        break;
      case N_CONN:
        if (match_assign(s, n, j, STOP_CONN, v) || match_json(s, n, i, j, v)) return 1;
        break;
      case N_FIELD:
        if (match_assign(s, n, j, STOP_QUERY, v) || match_json(s, n, i, j, v)) return 1;
        break;
      case N_HEADER:
        if (match_header(s, n, i, j, v)) return 1;
        break;
      case N_BEARER:
        if (match_bearer(s, n, j, v)) return 1;
        break;
      case N_XMS: {
        size_t end = j;
        int has_key = 0;
        size_t limit = n - j > HEADER_NAME_MAX ? j + HEADER_NAME_MAX : n;
        while (end < limit && (is_alnum((unsigned char)s[end]) || s[end] == '-' || s[end] == '_')) {
          if (end + 3 <= n && starts_with(s, n, end, "key", 3)) has_key = 1;
          end++;
        }
        if (has_key && match_header(s, n, i, end, v)) return 1;
        break;
      }
    }
  }
  return 0;
}

/* The next credential-shaped value at or after from. */
static int next_pattern(const char *s, size_t n, size_t from, Span *v) {
  for (size_t i = from; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!TRIGGER[c]) continue;
    unsigned char before = i > 0 ? (unsigned char)s[i - 1] : ' ';
    if (c == 'e') {
      if (n - i >= 3 && s[i + 1] == 'y' && s[i + 2] == 'J' && !is_b64url(before) && match_jwt(s, n, i, v))
        return 1;
    }
    if (!word_start(s, i)) continue;
    if (match_name(s, n, i, v)) {
      /* already redacted: leave it (redacting twice gives the same text, without a copy) */
      if (v->to - v->from == MARKER_LEN && memcmp(s + v->from, MARKER, MARKER_LEN) == 0) {
        i = v->to - 1;
        continue;
      }
      return 1;
    }
  }
  return 0;
}

/* Pushes the redacted text and returns 1, or pushes nothing and returns 0 when there is nothing to hide. */
static int redact(lua_State *L, const char *s, size_t n) {
  int pushed = 0;
  size_t mlen = 0;
  size_t at = lufa_secret_find_known(s, n, 0, &mlen);
  if (at < n) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t last = 0;
    while (at < n) {
      luaL_addlstring(&b, s + last, at - last);
      luaL_addlstring(&b, MARKER, MARKER_LEN);
      last = at + mlen;
      at = lufa_secret_find_known(s, n, last, &mlen);
    }
    luaL_addlstring(&b, s + last, n - last);
    luaL_pushresult(&b);
    s = lua_tolstring(L, -1, &n);  /* stays on the stack while the second pass reads it */
    pushed = 1;
  }
  Span v;
  if (!next_pattern(s, n, 0, &v)) return pushed;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t last = 0;
  do {
    luaL_addlstring(&b, s + last, v.from - last);
    luaL_addlstring(&b, MARKER, MARKER_LEN);
    last = v.to;
  } while (next_pattern(s, n, last, &v));
  luaL_addlstring(&b, s + last, n - last);
  luaL_pushresult(&b);
  if (pushed) lua_remove(L, -2);
  return 1;
}

void lufa_redact_push(lua_State *L, const char *s, size_t len) {
  if (!redact(L, s, len)) lua_pushlstring(L, s, len);
}

void lufa_redact_at(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return;
  idx = lua_absindex(L, idx);
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (redact(L, s, len)) lua_replace(L, idx);
}

/* Walks the table at idx; `seen` (a table index) holds the tables already done, so cycles end. */
static void redact_table(lua_State *L, int idx, int depth, int seen) {
  luaL_checkstack(L, 8, "redacting a deeply nested table");
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, seen);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (t == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (redact(L, s, len)) {
        lua_pushvalue(L, -3);  /* key */
        lua_insert(L, -2);
        lua_rawset(L, idx);    /* replacing the value of an existing key is allowed while traversing */
      }
    } else if (t == LUA_TTABLE && depth > 0) {
      lua_pushvalue(L, -1);
      int done = lua_rawget(L, seen) != LUA_TNIL;
      lua_pop(L, 1);
      if (!done) redact_table(L, lua_gettop(L), depth - 1, seen);
    }
    lua_pop(L, 1);
  }
}

void lufa_redact_table(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  redact_table(L, idx, depth, lua_gettop(L));
  lua_pop(L, 1);
}

/***
 * The text with every secret replaced by "<redacted>"; text with nothing to hide comes back unchanged.
 * A lufa.secret gives the marker itself.
 * @function text
 * @tparam string|number|secret s
 * @treturn string
 */
static int redact_text(lua_State *L) {
  if (lufa_secret_bytes(L, 1, NULL)) {
    lua_pushliteral(L, MARKER);
    return 1;
  }
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (!redact(L, s, len)) lua_pushvalue(L, 1);
  return 1;
}

/***
 * Remembers a value as secret text: from now on redact.text replaces it wherever it appears (for the life
 * of the process). Values shorter than redact.min_length bytes are not remembered.
 * @function add
 * @tparam string|secret value
 * @treturn boolean whether it is remembered
 */
static int redact_add(lua_State *L) {
  size_t len;
  const char *b = lufa_check_bytes(L, 1, &len, NULL);
  int rc = lufa_secret_remember(b, len);
  if (rc < 0) return luaL_error(L, "not enough memory to remember a secret");
  lua_pushboolean(L, rc);
  return 1;
}

/***
 * Redacts an error built in Lua, in place: every string field, and those of the tables it holds (such as
 * `cause` and `sources`). A string is redacted as by redact.text.
 * @function error
 * @tparam table|string e
 * @return e
 */
static int redact_error(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    lufa_redact_table(L, 1, 16);
    lua_settop(L, 1);
    return 1;
  }
  if (lua_type(L, 1) == LUA_TSTRING) return redact_text(L);
  lua_settop(L, 1);
  return 1;
}

int luaopen_lufa_redact(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"text", redact_text},
    {"add", redact_add},
    {"error", redact_error},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  lua_pushliteral(L, MARKER);
  lua_setfield(L, -2, "marker");
  lua_pushinteger(L, LUFA_SECRET_REMEMBER_MIN);
  lua_setfield(L, -2, "min_length");
  return 1;
}
