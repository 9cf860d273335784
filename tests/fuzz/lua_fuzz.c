/*
** lua_fuzz: a libFuzzer harness that runs one of lufa's Lua-side parsers.
** The script LUFA_FUZZ_SCRIPT (tests/fuzz/NAME_fuzz.lua) runs once in a lufa host and returns a function;
** every input is passed to it as a string. The function checks what the parser must do (return a value, or
** fail with a lufa.error) and raises when it does not: that error, a crash, a sanitizer report, a timeout or
** running out of memory is a finding, and libFuzzer keeps the input.
** With LUFA_FUZZ_HTTP_HEADERS the input is a response header block: the function gets the header table that
** lufa.http builds from it (host/http_headers.c) as a second argument.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "include/lufa.h"
#include "secret.h"
#ifdef LUFA_FUZZ_HTTP_HEADERS
#include "http_headers.h"
#endif

static lufa_host *host;
static lua_State *L;
static int check_ref;

static int traceback(lua_State *S) {
  luaL_traceback(S, S, luaL_tolstring(S, 1, NULL), 1);
  return 1;
}

static void setup(void) {
  host = lufa_host_new();
  if (host == NULL) abort();
  L = lufa_host_state(host);
  lua_pushcfunction(L, traceback);
  if (luaL_loadfile(L, LUFA_FUZZ_SCRIPT) != LUA_OK || lua_pcall(L, 0, 1, 1) != LUA_OK ||
      lua_type(L, -1) != LUA_TFUNCTION) {
    fprintf(stderr, "lua_fuzz: %s does not load to a function: %s\n", LUFA_FUZZ_SCRIPT, luaL_tolstring(L, -1, NULL));
    abort();
  }
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
#ifdef LUFA_FUZZ_HTTP_HEADERS
  http_headers_register(L);
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (host == NULL) setup();
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
  lua_pushlstring(L, (const char *)data, size);
  int nargs = 1;
#ifdef LUFA_FUZZ_HTTP_HEADERS
  http_headers_push(L, (const char *)data, size);
  nargs = 2;
#endif
  if (lua_pcall(L, nargs, 0, 1) != LUA_OK) {
    fprintf(stderr, "lua_fuzz: %s\ninput (%zu bytes): %.*s\n", lua_tostring(L, -1), size,
            (int)(size < 2000 ? size : 2000), (const char *)data);
    abort();
  }
  lua_settop(L, 0);
  /* Parsers make secrets (keys, SAS tokens) from the inputs; lufa remembers each for the life of the
  ** process, which over millions of inputs would be a leak of the harness, not of lufa. */
  lufa_secret_forget_all();
  return 0;
}
