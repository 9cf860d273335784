/*
** What lufa is built from: its own version and those of the libraries linked into it, for `lufa --version`
** and bug reports.
*/
#ifndef LUFA_VERSION_INFO_H
#define LUFA_VERSION_INFO_H

#include <stdio.h>

void lufa_print_versions(FILE *out);

#endif
