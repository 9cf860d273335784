/*
** Plugins (include/lufa.h, "plugins"): what the host's own functions call.
*/
#ifndef LUFA_PLUGIN_H
#define LUFA_PLUGIN_H

#include "include/lufa.h"

/* Steps every running plugin once within its budget (lufa_poll). Returns 0, or < 0 if an error escaped. */
int plugins_pump(lufa_host *host);

/* The earliest lufa_next_timeout among running plugins (-1: none pending). */
int plugins_next_timeout(lufa_host *host);

/* Unloads every plugin without running its on_unload (lufa_host_free). */
void plugins_free_all(lufa_host *host);

#endif
