#ifndef LUFA_LOG_H
#define LUFA_LOG_H

#include <lua.h>

/* Writes a host diagnostic through lufa.log (so its level and format apply) when L can load it;
** otherwise, or with L NULL, as a plain "lufa: [LEVEL] MESSAGE" line on stderr. `level` is a lufa.log
** level name. Never call it from a curl callback: it runs Lua. */
void host_log(lua_State *L, const char *level, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

#endif
