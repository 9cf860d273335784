/*
** test_json: lufa.json from C. Opens a bare state, requires the module with luaL_requiref, and checks
** decoding, encoding, errors and behaviour when memory runs out.
*/
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "json.h"
#include "secret.h"

static lua_State *open_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "lufa.json", luaopen_lufa_json, 0);
  lua_setglobal(L, "json");
  luaL_requiref(L, "lufa.secret", luaopen_lufa_secret, 0);
  lua_setglobal(L, "secret");
  return L;
}

/* Runs `code` (which returns one value) and gives its result as a string, or the error prefixed "error: ". */
static const char *eval(lua_State *L, const char *code) {
  lua_settop(L, 0);
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    lua_pushfstring(L, "error: %s", lua_tostring(L, -1));
    return lua_tostring(L, -1);
  }
  return luaL_tolstring(L, -1, NULL);
}

static void test_fidelity(lua_State *L) {
  CHECK_STR(eval(L, "return json.encode(json.decode('{\"n\":3,\"a\":[],\"o\":{},\"z\":null}'), {sort_keys = true})"),
            "{\"a\":[],\"n\":3,\"o\":{},\"z\":null}");
  CHECK_STR(eval(L, "return math.type(json.decode('3'))"), "integer");
  CHECK_STR(eval(L, "return math.type(json.decode('3.0'))"), "float");
  CHECK_STR(eval(L, "return json.encode(json.decode('3.0'))"), "3.0");
  CHECK_STR(eval(L, "return json.encode(json.decode('[9223372036854775807,-9223372036854775808]'))"),
            "[9223372036854775807,-9223372036854775808]");
  /* Beyond the integer range a number stays exact (a bignum) unless the caller asks for a float. */
  CHECK_STR(eval(L, "return json.encode(json.decode('9223372036854775808'))"), "9223372036854775808");
  CHECK_STR(eval(L, "return type(json.decode('9223372036854775808'))"), "userdata");
  CHECK_STR(eval(L, "return math.type(json.decode('9223372036854775808', {big_integers = 'float'}))"), "float");
  CHECK_STR(eval(L, "return json.encode(1e300)"), "1e+300");
  CHECK_STR(eval(L, "return json.encode(0.1)"), "0.1");
  CHECK_STR(eval(L, "return json.encode(-0.0)"), "-0.0");
  CHECK_STR(eval(L, "return tostring(json.decode('null') == json.null)"), "true");
  CHECK_STR(eval(L, "return json.decode('{\"CamelKey\":1}').CamelKey"), "1");
  CHECK_STR(eval(L, "return json.decode('\"\\\\ud83d\\\\ude00\"')"), "\xF0\x9F\x98\x80");
}

/* The error table's message, code, line and column, as "code line:column message". */
static const char *decode_error(lua_State *L, const char *text) {
  lua_settop(L, 0);
  lua_getglobal(L, "json");
  lua_getfield(L, -1, "decode");
  lua_pushstring(L, text);
  lua_call(L, 1, 2);
  if (!lua_isnil(L, -2)) return "(decoded)";
  lua_getfield(L, -1, "kind");
  lua_getfield(L, -2, "code");
  lua_getfield(L, -3, "line");
  lua_getfield(L, -4, "column");
  lua_getfield(L, -5, "message");
  lua_pushfstring(L, "%s/%s %d:%d %s", lua_tostring(L, -5), lua_tostring(L, -4), (int)lua_tointeger(L, -3),
                  (int)lua_tointeger(L, -2), lua_tostring(L, -1));
  return lua_tostring(L, -1);
}

static void test_decode_errors(lua_State *L) {
  CHECK_STR(decode_error(L, "{\n  \"a\": 1,\n  \"b\": 2\n  \"c\": 3}"),
            "json/syntax 4:3 line 4, column 3: expected ',' or '}' after an object member, found '\"'");
  CHECK_STR(decode_error(L, "[1, 2"), "json/syntax 1:6 line 1, column 6: expected ',' or ']' after an array element, found end of input");
  CHECK_STR(decode_error(L, "\"caf\xC3\xA9 \xFF\""), "json/utf8 1:7 line 1, column 7: invalid UTF-8 in a string (byte 0xFF)");
  CHECK_STR(decode_error(L, "[1] 2"), "json/syntax 1:5 line 1, column 5: expected end of input after the JSON value, found '2'");
  CHECK_STR(decode_error(L, "\"\\udc00\""), "json/utf8 1:2 line 1, column 2: lone low surrogate \\uDC00 (it must follow a high surrogate)");
  CHECK_STR(decode_error(L, "[[[[1]]]]"), "(decoded)");
}

static void test_depth(lua_State *L) {
  char deep[2 * 1001 + 1];
  memset(deep, '[', 1001);
  memset(deep + 1001, ']', 1001);
  deep[2002] = '\0';
  CHECK_STR(decode_error(L, deep), "json/depth 1:1001 line 1, column 1001: nesting deeper than 1000 levels (max_depth)");
  deep[2001] = '\0';
  CHECK_STR(decode_error(L, deep + 1), "(decoded)");  /* 1000 levels are allowed */
}

static void test_encode_errors(lua_State *L) {
  CHECK_STR(eval(L, "local ok, e = pcall(json.encode, {a = {1, 2, {b = print}}}) return e"),
            "json.encode: cannot encode a function at $.a[2].b");
  CHECK_STR(eval(L, "local t = {} t.self = {t} local ok, e = pcall(json.encode, t) return e"),
            "json.encode: cycle (the table at $ contains itself) at $.self[0]");
  CHECK_STR(eval(L, "local ok, e = pcall(json.encode, {x = 0/0}) return e"),
            "json.encode: cannot encode NaN (JSON has no NaN or infinity) at $.x");
}

static void test_secrets(lua_State *L) {
  CHECK_STR(eval(L, "return json.encode({k = secret('hunter2')})"), "{\"k\":\"<redacted>\"}");
  CHECK_STR(eval(L, "return tostring(json.encode({k = secret('hunter2')}, {reveal_secrets = true}))"), "<redacted>");
  CHECK_STR(eval(L, "return secret.expose(json.encode({k = secret('hunter2')}, {reveal_secrets = true}))"),
            "{\"k\":\"hunter2\"}");
  /* The secret's bytes go through C: check them there too. */
  eval(L, "return json.encode({secret('a\\nb')}, {reveal_secrets = true})");
  {
    size_t n;
    const char *bytes = lufa_secret_bytes(L, -2, &n);  /* -1 is luaL_tolstring's copy */
    CHECK(bytes != NULL && n == 8 && memcmp(bytes, "[\"a\\nb\"]", 8) == 0);
  }
}

/* An allocator that fails once `budget` allocations have been made, to check that running out of memory
** inside the codec raises a memory error and leaves the state usable. */
static long alloc_budget = -1;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (alloc_budget == 0) return NULL;
  if (alloc_budget > 0) alloc_budget--;
  return realloc(ptr, nsize);
}

static void test_out_of_memory(void) {
  lua_State *L = lua_newstate(limited_alloc, NULL);
  int memory_errors = 0, successes = 0;
  luaL_openlibs(L);
  luaL_requiref(L, "lufa.json", luaopen_lufa_json, 0);
  lua_setglobal(L, "json");
  /* The document and its value exist before the budget starts. */
  CHECK(luaL_dostring(L, "doc = '{\"a\":[1,2.5,\"x\\\\ny\",{\"b\":null}],\"c\":\"' .. string.rep('z', 5000) .. '\"}'"
                   " value = json.decode(doc)") == LUA_OK);
  for (long budget = 0; budget < 60; budget++) {
    int status;
    lua_gc(L, LUA_GCCOLLECT);
    lua_settop(L, 0);
    if (luaL_loadstring(L, "local v = json.decode(doc) return json.encode(v, {pretty = true})") != LUA_OK) break;
    alloc_budget = budget;
    status = lua_pcall(L, 0, 1, 0);
    alloc_budget = -1;
    if (status == LUA_ERRMEM) memory_errors++;
    else if (status == LUA_OK) successes++;
    else CHECK(status == LUA_ERRMEM || status == LUA_OK);
  }
  CHECK(memory_errors > 0);
  CHECK(successes > 0);
  /* Still usable afterwards. */
  CHECK_STR(eval(L, "return json.encode(json.decode('[1,{\"a\":[]}]'))"), "[1,{\"a\":[]}]");
  lua_close(L);
}

int main(void) {
  lua_State *L = open_state();
  test_fidelity(L);
  test_decode_errors(L);
  test_depth(L);
  test_encode_errors(L);
  test_secrets(L);
  lua_close(L);
  test_out_of_memory();
  return check_summary();
}
