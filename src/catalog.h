/*
 * catalog: machine descriptions found by name. --config NAME (no '/', no ".ini") that is no
 * file here is NAME.ini in an installed microvm's PREFIX/share/microvm/machines (found from
 * the binary's own place), then in the machines/ of the source tree whose build/ holds the
 * binary.
 */
#ifndef MICROVM_CATALOG_H
#define MICROVM_CATALOG_H

#include <stdio.h>

/*
 * The machine description --config arg names: arg itself when it exists or is no bare name,
 * else the first NAME.ini found. A copy (caller frees), or NULL when a bare name is nowhere
 * (said, with where it was looked for).
 */
char *catalog_find(const char *arg);
/* Print each machine found, "NAME  PATH  DESCRIPTION" (its first comment). How many. */
int catalog_list(FILE *out);

#endif
