/* SPDX-License-Identifier: MIT */
/* sbuf.h: a growable text buffer with printf and JSON string output, for
 * control requests and replies. */
#ifndef PB_DAEMON_SBUF_H
#define PB_DAEMON_SBUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Text grows up to max bytes (0: no limit); anything beyond sets
 * overflow, and the text stays as it was before that append.  Out of
 * memory counts as overflow too.  p is NUL-terminated once anything was
 * put.
 */
struct sbuf {
	char *p;
	size_t len, cap, max;
	bool overflow;
};

/* Make room for n more bytes; false (and overflow) if that is impossible. */
bool sb_reserve(struct sbuf *b, size_t n);
void sb_put(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* s as a JSON string: quotes, escapes for '"', '\\' and control bytes. */
void sb_json_str(struct sbuf *b, const char *s);
/* Empty the text (keeping up to keep bytes of memory). */
void sb_reset(struct sbuf *b, size_t keep);
void sb_free(struct sbuf *b);

#endif
