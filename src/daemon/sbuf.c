// SPDX-License-Identifier: MIT
/* sbuf.c: a growable text buffer for control requests and replies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

bool sb_reserve(struct sbuf *b, size_t n)
{
	size_t want = b->len + n + 1, cap;
	char *p;

	if (b->overflow)
		return false;
	if ((b->max && b->len + n > b->max) || want < n) {
		b->overflow = true;
		return false;
	}
	if (want <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->overflow = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (!sb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_json_str(struct sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *run = s;

		if (c == '"' || c == '\\') {
			sb_put(b, "\\", 1);
			sb_put(b, s, 1);
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
		} else {
			while (s[1] && (unsigned char)s[1] >= 0x20 &&
			       s[1] != '"' && s[1] != '\\' && s[1] != 0x7f)
				s++;
			sb_put(b, run, (size_t)(s - run) + 1);
		}
	}
	sb_put(b, "\"", 1);
}

void sb_reset(struct sbuf *b, size_t keep)
{
	b->len = 0;
	b->overflow = false;
	if (b->cap > keep) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	} else if (b->p) {
		b->p[0] = '\0';
	}
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->overflow = false;
}
