/*
** File hashing on a worker thread: the event loop's thread keeps moving transfers while another core hashes.
*/
#ifndef LUFA_FILEHASH_H
#define LUFA_FILEHASH_H

#include <lua.h>

/* Adds crypto.file_hasher(algorithm) to the module table at the top of the stack. */
void lufa_filehash_open(lua_State *L);

#endif
