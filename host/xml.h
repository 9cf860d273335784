/*
** lufa.core.xml: parses an XML document (expat) into a plain Lua tree, for Blob Storage listings and error
** bodies. The tree is built in C while expat runs and handed to Lua only after expat returns, so no Lua
** error can unwind through expat.
*/
#ifndef LUFA_XML_H
#define LUFA_XML_H

#include <lua.h>

int luaopen_lufa_core_xml(lua_State *L);

#endif
