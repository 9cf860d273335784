/*
** What the plugin layer (plugin.c) needs from a host beyond the public API (include/lufa.h).
*/
#ifndef LUFA_HOST_H
#define LUFA_HOST_H

#include "include/lufa.h"
#include "loop.h"

/* A host on a state created by the caller (with its own allocator); lufa_host_free closes it.
** NULL when memory is short (the state is then left to the caller). */
lufa_host *host_new_on_state(lua_State *L);

Loop *host_loop(lufa_host *host);

/* Records message as lufa_last_error(host). */
void host_set_error(lufa_host *host, const char *message);

/* Counts message as an uncaught error and hands it to the host's error handler. */
void host_report_error(lufa_host *host, const char *message);

/* The host's plugins, kept by plugin.c. `busy` is set while plugin code runs (re-entry is refused). */
typedef struct PluginList {
  lufa_plugin *head;
  int busy;
} PluginList;

PluginList *host_plugins(lufa_host *host);

#endif
