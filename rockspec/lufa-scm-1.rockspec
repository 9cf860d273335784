-- Builds lufa's native modules as one Lua C module (lufa.so: `require "lufa"`, "lufa.json", "lufa.core.http",
-- ... through Lua's all-in-one loader), the `lufa` command, and installs lufa's Lua modules, for a stock
-- Lua 5.4.
-- Offline: `luarocks --lua-version 5.4 make rockspec/lufa-scm-1.rockspec` from the repository root.
rockspec_format = "3.0"
package = "lufa"
version = "scm-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "A Lua-scriptable automation host for model retraining pipelines",
  detailed = [[
    Tasks and an event loop, HTTP on libcurl, JSON with fidelity, crypto, secrets, Azure AD and Blob Storage
    clients, and an Azure Data Factory pipeline engine.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- libcurl, OpenSSL and expat are found by CMake through pkg-config (Debian keeps curl.h in a multiarch dir).
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    LUFA_LUA_MODULE_ONLY = "ON",
    LUFA_BUILD_TESTS = "OFF",
    LUFA_ROCK_LIBDIR = "$(LIBDIR)",
    LUFA_ROCK_LUADIR = "$(LUADIR)",
    LUFA_ROCK_BINDIR = "$(BINDIR)",
    LUFA_INSTALL_LUA_DIR = "$(LUADIR)",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
  },
}
test = {
  type = "command",
  command = "scripts/test",
}
