// SPDX-License-Identifier: MIT
/* opts.c: parse and check QEMU-style option strings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "util.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

/* Join a NULL-terminated list as "a, b, c" into out. */
static void join(char *out, size_t size, const char *const *list)
{
	size_t off = 0;

	out[0] = '\0';
	for (; list && *list && off + 1 < size; list++) {
		int n = snprintf(out + off, size - off, "%s%s",
				 off ? ", " : "", *list);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	/* Cut short, or full to the last byte with names left over. */
	if ((off >= size || (list && *list)) && size > 4)
		memcpy(out + size - 4, "...", 4);
}

int opts_parse(struct opts *o, const char *s, const char *implied, char *err,
	       size_t errlen)
{
	size_t len = strlen(s);
	/* the address of the buffer to fill, not a read of it (cppcheck's
	 * cross-file check takes it for one) */
	// cppcheck-suppress ctuuninitvar
	char *w = o->buf;
	const char *p = s;

	o->n = 0;
	o->what = "";
	if (len > OPTS_MAX_LEN)
		return fail(err, errlen, "option string too long (%zu bytes, at most %d)",
			    len, OPTS_MAX_LEN);
	if (len == 0)
		return fail(err, errlen, "empty option string");

	while (1) {
		/* One element: copy with ",," unescaped until a lone ','. */
		char *elem = w;
		char *eq = NULL;

		while (*p) {
			if (*p == ',') {
				if (p[1] != ',')
					break;
				p++;	/* ",," -> ',' */
			} else if (*p == '=' && !eq) {
				*w++ = '\0';
				eq = w;
				p++;
				continue;
			}
			*w++ = *p++;
		}
		*w++ = '\0';

		if (o->n == OPTS_MAX_PAIRS)
			return fail(err, errlen, "too many options (at most %d)",
				    OPTS_MAX_PAIRS);
		struct opt_pair *pr = &o->pair[o->n];

		if (eq) {
			pr->key = elem;
			pr->val = eq;
		} else if (o->n == 0 && implied) {
			pr->key = implied;
			pr->val = elem;
		} else {
			pr->key = elem;
			pr->val = "on";
		}
		pr->used = false;
		if (pr->key != implied || eq) {
			const char *k = pr->key;

			if (!*k)
				return fail(err, errlen, "empty key in '%s'", s);
			if (strlen(k) > 63)
				return fail(err, errlen, "key too long: '%.20s...'", k);
			for (; *k; k++)
				if (!key_char(*k))
					return fail(err, errlen,
						    "bad character in key '%s'",
						    pr->key);
		}
		if (pr->key == implied && !*pr->val)
			return fail(err, errlen, "missing %s", implied);
		o->n++;
		if (!*p)
			break;
		p++;	/* the separating ',' */
		if (!*p)
			return fail(err, errlen, "trailing ',' in '%s'", s);
	}
	return 0;
}

int opts_check(struct opts *o, const char *what, const char *const *allowed,
	       const char *const *repeatable, char *err, size_t errlen)
{
	o->what = what;
	for (unsigned i = 0; i < o->n; i++) {
		const char *k = o->pair[i].key;

		if (!in_list(allowed, k)) {
			char list[400];

			join(list, sizeof(list), allowed);
			return fail(err, errlen,
				    "%s: unknown key '%s' (accepted: %s)", what,
				    k, list);
		}
		if (in_list(repeatable, k))
			continue;
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(o->pair[j].key, k))
				return fail(err, errlen,
					    "%s: key '%s' given more than once",
					    what, k);
	}
	return 0;
}

const char *opts_get(const struct opts *o, const char *key)
{
	for (unsigned i = 0; i < o->n; i++)
		if (!strcmp(o->pair[i].key, key))
			return o->pair[i].val;
	return NULL;
}

int opts_get_bool(const struct opts *o, const char *key, bool def, bool *out,
		  char *err, size_t errlen)
{
	static const char *const yes[] = { "on", "yes", "true", "1", NULL };
	static const char *const no[] = { "off", "no", "false", "0", NULL };
	const char *v = opts_get(o, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (in_list(yes, v)) {
		*out = true;
		return 0;
	}
	if (in_list(no, v)) {
		*out = false;
		return 0;
	}
	return fail(err, errlen, "%s: '%s' must be on or off, not '%s'",
		    o->what, key, v);
}

int opts_get_uint(const struct opts *o, const char *key, uint64_t min,
		  uint64_t max, uint64_t def, uint64_t *out, char *err,
		  size_t errlen)
{
	const char *v = opts_get(o, key);
	const char *digits = "0123456789", *d = v;
	int base = 10;
	unsigned long long n;

	if (!v) {
		*out = def;
		return 0;
	}
	/* Only decimal or 0x hex: strtoull's base 0 would read "010" as
	 * octal, and it also takes signs, spaces and a second "0x". */
	if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		digits = "0123456789abcdefABCDEF";
		d = v + 2;
		base = 16;
	}
	if (!*d || d[strspn(d, digits)])
		goto bad;
	errno = 0;
	n = strtoull(d, NULL, base);
	if (errno)
		goto bad;
	if (n < min || n > max)
		return fail(err, errlen,
			    "%s: '%s' must be between %llu and %llu, not %s",
			    o->what, key, (unsigned long long)min,
			    (unsigned long long)max, v);
	*out = n;
	return 0;
bad:
	return fail(err, errlen, "%s: '%s' must be a number, not '%s'",
		    o->what, key, v);
}

int opts_get_enum(const struct opts *o, const char *key,
		  const char *const *choices, const char *def,
		  const char **out, char *err, size_t errlen)
{
	const char *v = opts_get(o, key);
	char list[256];

	if (!v) {
		*out = def;
		return 0;
	}
	for (const char *const *c = choices; *c; c++) {
		if (!strcmp(*c, v)) {
			*out = *c;
			return 0;
		}
	}
	join(list, sizeof(list), choices);
	return fail(err, errlen, "%s: '%s' must be one of %s, not '%s'",
		    o->what, key, list, v);
}
