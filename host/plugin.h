/*
** Plugins (include/lufa.h, "plugins"): what the host's own functions call.
*/
#ifndef LUFA_PLUGIN_H
#define LUFA_PLUGIN_H

#include "include/lufa.h"

/* Steps every running plugin that has work once, each within its CPU budget (lufa_poll). With deadline
** (loop_now() seconds; 0: none) the plugins not reached by then are skipped and served first next time.
** Returns 0, or < 0 if an error escaped. */
int plugins_pump(lufa_host *host, double deadline);

/* Whether a spent budget passed over a running plugin in the latest pump (it is served first next time). */
int plugins_owed(lufa_host *host);

/* The earliest lufa_next_timeout among running plugins (-1: none pending). */
int plugins_next_timeout(lufa_host *host);

/* Unloads every plugin without running its on_unload (lufa_host_free). */
void plugins_free_all(lufa_host *host);

#endif
