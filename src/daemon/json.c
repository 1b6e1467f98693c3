// SPDX-License-Identifier: MIT
/* json.c: a small, bounded JSON parser (see json.h for what it accepts). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct parser {
	char *base, *p, *end;
	struct json_doc *d;
	const struct json_limits *lim;
	char *err;
	size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct parser *ps, const char *fmt, ...)
{
	int n = snprintf(ps->err, ps->errlen, "at byte %zu: ",
			 (size_t)(ps->p - ps->base));
	va_list ap;

	if (n >= 0 && (size_t)n < ps->errlen) {
		va_start(ap, fmt);
		vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* Append a node; returns its index or a negative error. */
static int64_t new_node(struct parser *ps, enum json_type type,
			uint32_t parent, const char *key)
{
	struct json_doc *d = ps->d;
	struct json_node *n;

	if (d->n >= ps->lim->max_nodes)
		return fail(ps, "more than %u values", ps->lim->max_nodes);
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 16;
		struct json_node *nn;

		if (cap > ps->lim->max_nodes)
			cap = ps->lim->max_nodes;
		nn = realloc(d->node, (size_t)cap * sizeof(*nn));
		if (!nn) {
			snprintf(ps->err, ps->errlen, "out of memory");
			return -ENOMEM;
		}
		d->node = nn;
		d->cap = cap;
	}
	n = &d->node[d->n];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->key = key;
	n->parent = parent;
	n->child = n->next = JSON_NONE;
	return d->n++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at ps->p (after "\u"); advances past them. */
static int read_hex4(struct parser *ps, unsigned *out)
{
	unsigned v = 0;

	if (ps->end - ps->p < 4)
		return fail(ps, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		int h = hexval(ps->p[i]);

		if (h < 0)
			return fail(ps, "\\u needs four hex digits");
		v = v << 4 | (unsigned)h;
	}
	ps->p += 4;
	*out = v;
	return 0;
}

static char *put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xc0 | cp >> 6);
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*w++ = (char)(0xe0 | cp >> 12);
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*w++ = (char)(0xf0 | cp >> 18);
		*w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*w++ = (char)(0x80 | (cp & 0x3f));
	}
	return w;
}

/* The escape after a backslash (ps->p just past it): decoded into *w. */
static int read_escape(struct parser *ps, char **w)
{
	unsigned cp, lo;
	char c;
	int rc;

	if (ps->p >= ps->end)
		return fail(ps, "unterminated string");
	c = *ps->p++;
	switch (c) {
	case '"':
	case '\\':
	case '/':
		*(*w)++ = c;
		return 0;
	case 'b':
		*(*w)++ = '\b';
		return 0;
	case 'f':
		*(*w)++ = '\f';
		return 0;
	case 'n':
		*(*w)++ = '\n';
		return 0;
	case 'r':
		*(*w)++ = '\r';
		return 0;
	case 't':
		*(*w)++ = '\t';
		return 0;
	case 'u':
		break;
	default:
		ps->p--;
		return fail(ps, "unknown escape '\\%c'",
			    c > 0x20 && c < 0x7f ? c : '?');
	}
	if ((rc = read_hex4(ps, &cp)))
		return rc;
	if (cp == 0)
		return fail(ps, "\\u0000 is not accepted in strings");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(ps, "lone low surrogate \\u%04x", cp);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
			return fail(ps, "high surrogate \\u%04x without a low one", cp);
		ps->p += 2;
		if ((rc = read_hex4(ps, &lo)))
			return rc;
		if (lo < 0xdc00 || lo > 0xdfff)
			return fail(ps, "high surrogate \\u%04x without a low one", cp);
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	*w = put_utf8(*w, cp);
	return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, size_t rem)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (rem < n)
		return 0;
	/* no overlong forms, no surrogates, nothing above U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A string at ps->p (on its opening quote), decoded in place. */
static int read_string(struct parser *ps, const char **out, size_t *len)
{
	char *start = ++ps->p, *w = start;
	int rc;

	for (;;) {
		unsigned char c;

		if (ps->p >= ps->end)
			return fail(ps, "unterminated string");
		c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c == '\\') {
			ps->p++;
			if ((rc = read_escape(ps, &w)))
				return rc;
		} else if (c < 0x20) {
			return fail(ps, "control character 0x%02x in a string (escape it)",
				    c);
		} else if (c < 0x80) {
			*w++ = *ps->p++;
		} else {
			size_t n = utf8_len((const unsigned char *)ps->p,
					    (size_t)(ps->end - ps->p));

			if (!n)
				return fail(ps, "invalid UTF-8 in a string");
			memmove(w, ps->p, n);
			w += n;
			ps->p += n;
		}
	}
	*w = '\0';
	*out = start;
	*len = (size_t)(w - start);
	return 0;
}

static int read_number(struct parser *ps, struct json_node *n)
{
	char *s = ps->p, buf[JSON_NUMBER_MAX + 1];
	bool integer = true;
	size_t len;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p < ps->end && *ps->p == '0') {
		ps->p++;
	} else if (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	} else {
		return fail(ps, "bad number");
	}
	if (ps->p < ps->end && *ps->p == '.') {
		integer = false;
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad number: digits must follow '.'");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integer = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return fail(ps, "bad number: digits must follow the exponent");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	len = (size_t)(ps->p - s);
	if (len > JSON_NUMBER_MAX) {
		ps->p = s;
		return fail(ps, "number longer than %d characters", JSON_NUMBER_MAX);
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	n->type = JSON_NUMBER;
	n->d = strtod(buf, NULL);
	if (integer) {
		bool neg = buf[0] == '-';
		uint64_t v = 0, max = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;

		n->is_int = true;
		for (const char *c = buf + neg; *c; c++) {
			if (v > (max - (uint64_t)(*c - '0')) / 10) {
				n->is_int = false;
				break;
			}
			v = v * 10 + (uint64_t)(*c - '0');
		}
		if (n->is_int)
			n->i = neg ? (int64_t)(0 - v) : (int64_t)v;
	}
	return 0;
}

static int read_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, "unexpected character");
	ps->p += n;
	return 0;
}

/* NOLINTNEXTLINE(misc-no-recursion): depth is bounded by json_limits.max_depth */
static int read_container(struct parser *ps, uint32_t idx, unsigned depth);

/* One value at ps->p; its node is appended with parent and key. */
/* NOLINTNEXTLINE(misc-no-recursion): depth is bounded by json_limits.max_depth */
static int read_value(struct parser *ps, uint32_t parent, const char *key,
		      unsigned depth, uint32_t *out)
{
	int64_t idx;
	struct json_node tmp = { 0 };
	enum json_type type;
	int rc = 0;

	if (ps->p >= ps->end)
		return fail(ps, "value expected");
	switch (*ps->p) {
	case '{':
		type = JSON_OBJECT;
		break;
	case '[':
		if (!ps->lim->arrays)
			return fail(ps, "arrays are not accepted here");
		type = JSON_ARRAY;
		break;
	case '"':
		type = JSON_STRING;
		rc = read_string(ps, &tmp.str, &tmp.len);
		break;
	case 't':
		type = JSON_BOOL;
		tmp.b = true;
		rc = read_literal(ps, "true");
		break;
	case 'f':
		type = JSON_BOOL;
		rc = read_literal(ps, "false");
		break;
	case 'n':
		type = JSON_NULL;
		rc = read_literal(ps, "null");
		break;
	default:
		type = JSON_NUMBER;
		if (*ps->p != '-' && (*ps->p < '0' || *ps->p > '9'))
			return fail(ps, "unexpected character");
		rc = read_number(ps, &tmp);
		break;
	}
	if (rc)
		return rc;
	idx = new_node(ps, type, parent, key);
	if (idx < 0)
		return (int)idx;
	if (type != JSON_OBJECT && type != JSON_ARRAY) {
		struct json_node *n = &ps->d->node[idx];

		n->b = tmp.b;
		n->is_int = tmp.is_int;
		n->i = tmp.i;
		n->d = tmp.d;
		n->str = tmp.str;
		n->len = tmp.len;
	}
	*out = (uint32_t)idx;
	if (type == JSON_OBJECT || type == JSON_ARRAY)
		return read_container(ps, (uint32_t)idx, depth + 1);
	return 0;
}

static bool has_key(const struct json_doc *d, uint32_t obj, const char *key)
{
	return json_get(d, obj, key) != JSON_NONE;
}

/* The object or array node idx, at ps->p on its bracket. */
/* NOLINTNEXTLINE(misc-no-recursion): depth is bounded by json_limits.max_depth */
static int read_container(struct parser *ps, uint32_t idx, unsigned depth)
{
	bool object = ps->d->node[idx].type == JSON_OBJECT;
	char close = object ? '}' : ']';
	uint32_t prev = JSON_NONE;
	int rc;

	if (depth > ps->lim->max_depth)
		return fail(ps, "nested deeper than %u levels", ps->lim->max_depth);
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		const char *key = NULL;
		uint32_t child;

		if (object) {
			size_t klen = 0;
			char *kpos = ps->p;

			if (ps->p >= ps->end || *ps->p != '"')
				return fail(ps, "a member name (string) expected");
			if (ps->d->node[idx].count == JSON_MEMBERS_MAX)
				return fail(ps, "more than %d members in one object",
					    JSON_MEMBERS_MAX);
			if ((rc = read_string(ps, &key, &klen)))
				return rc;
			if (klen > JSON_KEY_MAX) {
				ps->p = kpos;
				return fail(ps, "member name longer than %d bytes",
					    JSON_KEY_MAX);
			}
			if (has_key(ps->d, idx, key)) {
				ps->p = kpos;
				return fail(ps, "duplicate member \"%.40s\"", key);
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				return fail(ps, "':' expected after a member name");
			ps->p++;
			skip_ws(ps);
		}
		if ((rc = read_value(ps, idx, key, depth, &child)))
			return rc;
		if (prev == JSON_NONE)
			ps->d->node[idx].child = child; /* NOLINT(clang-analyzer-core.uninitialized.Assign): the analyzer does not follow the variadic error helper, which never returns 0 */
		else
			ps->d->node[prev].next = child;
		prev = child;
		ps->d->node[idx].count++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return 0;
		}
		return fail(ps, "',' or '%c' expected", close);
	}
}

int json_parse(struct json_doc *d, char *text, size_t len,
	       const struct json_limits *lim, char *err, size_t errlen)
{
	struct parser ps = { .base = text, .p = text, .end = text + len,
			     .d = d, .lim = lim, .err = err, .errlen = errlen };
	uint32_t root;
	int rc;

	d->n = 0;
	if (errlen)
		err[0] = '\0';
	skip_ws(&ps);
	if (ps.p >= ps.end || *ps.p != '{')
		rc = fail(&ps, "a JSON object expected");
	else
		rc = read_value(&ps, JSON_NONE, NULL, 0, &root);
	if (!rc) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			rc = fail(&ps, "unexpected bytes after the object");
	}
	if (rc)
		d->n = 0;
	return rc;
}

void json_free(struct json_doc *d)
{
	free(d->node);
	d->node = NULL;
	d->n = d->cap = 0;
}

uint32_t json_get(const struct json_doc *d, uint32_t obj, const char *key)
{
	if (obj >= d->n || d->node[obj].type != JSON_OBJECT)
		return JSON_NONE;
	for (uint32_t c = d->node[obj].child; c != JSON_NONE;
	     c = d->node[c].next)
		/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): members always have a key */
		if (!strcmp(d->node[c].key, key))
			return c;
	return JSON_NONE;
}
