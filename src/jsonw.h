/* SPDX-License-Identifier: MIT */
/* jsonw.h: writing JSON text: escaped strings and an output stream on an
 * embedder's file descriptor (stats, listings). */
#ifndef PB_JSONW_H
#define PB_JSONW_H

#include <stdio.h>

/* Write s as a JSON string: quotes, '"' and '\\' escaped, control
 * characters as \u00XX.  Other bytes pass unchanged (names we print are
 * ASCII, or UTF-8 that came in as such). */
void jsonw_str(FILE *f, const char *s);

/* A buffered stream writing to a duplicate of fd (fd itself stays open
 * and untouched); NULL with errno set on failure.  Close with
 * jsonw_close(). */
FILE *jsonw_open(int fd);
/* fclose(); 0, or -EIO if anything failed to be written. */
int jsonw_close(FILE *f);

#endif
