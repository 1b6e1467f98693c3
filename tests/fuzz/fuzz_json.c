// SPDX-License-Identifier: MIT
/* fuzz_json.c: libFuzzer harness for the control socket's JSON parser
 * (src/daemon/json.c). */

/*
 * The first input byte picks the limits: even, those of control requests
 * (depth 2, 64 values, no arrays); odd, those of `patchbay ctl` reading
 * replies (depth 16, arrays).  The rest is the text.
 *
 * Checked after every call: a failure leaves no nodes and a message; a
 * success gives a well-linked tree (parents, first-child / next-sibling
 * chains, counts, keys exactly on object members, strings as long as they
 * say, without NUL, valid UTF-8) within the limits; and writing the tree
 * back out as JSON and parsing that again yields the same tree.
 *
 * Built with -DJSON_FUZZ_MAIN it is a plain program that replays the
 * files named on its command line (the seed corpus is in
 * tests/fuzz/corpus/json/).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/json.h"

static const struct json_limits limits[2] = {
	{ .max_depth = 2, .max_nodes = 64, .arrays = false },
	{ .max_depth = 16, .max_nodes = 4096, .arrays = true },
};

struct out {
	char *p;
	size_t n, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->n + n + 1 > o->cap) {
		o->cap = (o->n + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		CHECK(o->p);
	}
	memcpy(o->p + o->n, s, n);
	o->n += n;
	o->p[o->n] = '\0';
}

static void put_str(struct out *o, const char *s, size_t len)
{
	char esc[8];

	put(o, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\' || c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(o, esc, 6);
		} else {
			put(o, s + i, 1);
		}
	}
	put(o, "\"", 1);
}

static void write_node(struct out *o, const struct json_doc *d, uint32_t i)
{
	const struct json_node *n = &d->node[i];
	char num[64];

	if (n->key) {
		put_str(o, n->key, strlen(n->key));
		put(o, ":", 1);
	}
	switch (n->type) {
	case JSON_NULL:
		put(o, "null", 4);
		break;
	case JSON_BOOL:
		put(o, n->b ? "true" : "false", n->b ? 4 : 5);
		break;
	case JSON_NUMBER:
		if (n->is_int)
			snprintf(num, sizeof(num), "%lld", (long long)n->i);
		else
			snprintf(num, sizeof(num), "%.17g", n->d);
		/* inf has no JSON form: write something that parses to it;
		 * keep a non-integer looking like one */
		if (!n->is_int && (strchr(num, 'n') || strchr(num, 'i')))
			snprintf(num, sizeof(num), "%s1e999",
				 n->d < 0 ? "-" : "");
		else if (!n->is_int && !strpbrk(num, ".e"))
			strcat(num, ".0");
		put(o, num, strlen(num));
		break;
	case JSON_STRING:
		put_str(o, n->str, n->len);
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		put(o, n->type == JSON_OBJECT ? "{" : "[", 1);
		for (uint32_t c = n->child; c != JSON_NONE; c = d->node[c].next) {
			write_node(o, d, c);
			if (d->node[c].next != JSON_NONE)
				put(o, ",", 1);
		}
		put(o, n->type == JSON_OBJECT ? "}" : "]", 1);
		break;
	}
}

static unsigned depth_of(const struct json_doc *d, uint32_t i)
{
	unsigned k = 0;

	for (; i != JSON_NONE; i = d->node[i].parent)
		k++;
	return k;
}

static void check_tree(const struct json_doc *d, const struct json_limits *l)
{
	CHECK(d->n >= 1 && d->n <= l->max_nodes);
	CHECK(d->node[0].type == JSON_OBJECT && d->node[0].parent == JSON_NONE);
	CHECK(!d->node[0].key);
	for (uint32_t i = 0; i < d->n; i++) {
		const struct json_node *n = &d->node[i];
		uint32_t count = 0;

		if (i) {
			CHECK(n->parent < i);
			CHECK((d->node[n->parent].type == JSON_OBJECT) ==
			      (n->key != NULL));
			CHECK(!n->key || strlen(n->key) <= JSON_KEY_MAX);
		}
		CHECK(l->arrays || n->type != JSON_ARRAY);
		if (n->type == JSON_STRING) {
			CHECK(n->str && strlen(n->str) == n->len);
		}
		if (n->type == JSON_OBJECT || n->type == JSON_ARRAY) {
			CHECK(depth_of(d, i) <= l->max_depth);
			for (uint32_t c = n->child; c != JSON_NONE;
			     c = d->node[c].next) {
				CHECK(c > i && c < d->n);
				CHECK(d->node[c].parent == i);
				if (n->type == JSON_OBJECT)
					CHECK(json_get(d, i, d->node[c].key) == c);
				count++;
			}
			CHECK(count == n->count);
		}
	}
}

static bool same_tree(const struct json_doc *a, uint32_t i,
		      const struct json_doc *b, uint32_t j)
{
	const struct json_node *x = &a->node[i], *y = &b->node[j];
	uint32_t c, e;

	if (x->type != y->type || !x->key != !y->key ||
	    (x->key && strcmp(x->key, y->key)))
		return false;
	switch (x->type) {
	case JSON_BOOL:
		return x->b == y->b;
	case JSON_NUMBER:
		return x->is_int == y->is_int &&
		       (x->is_int ? x->i == y->i
				  : (x->d == y->d || (x->d != x->d && y->d != y->d)));
	case JSON_STRING:
		return x->len == y->len && !memcmp(x->str, y->str, x->len);
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (x->count != y->count)
			return false;
		for (c = x->child, e = y->child; c != JSON_NONE;
		     c = a->node[c].next, e = b->node[e].next)
			if (!same_tree(a, c, b, e))
				return false;
		return true;
	default:
		return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_doc d1, d2;
	const struct json_limits *l;
	struct out o = { 0 };
	char err[256];
	char *text;
	int rc;

	if (size < 1 || size > 1 << 16)
		return 0;
	l = &limits[data[0] & 1];
	text = malloc(size);
	CHECK(text);
	memcpy(text, data + 1, size - 1);
	rc = json_parse(&d1, text, size - 1, l, err, sizeof(err));
	if (rc) {
		CHECK(rc == -EINVAL || rc == -ENOMEM);
		CHECK(d1.n == 0 && err[0]);
		free(text);
		return 0;
	}
	check_tree(&d1, l);
	write_node(&o, &d1, 0);
	rc = json_parse(&d2, o.p, o.n, l, err, sizeof(err));
	if (rc)
		fprintf(stderr, "re-parse failed: %s\n%s\n", err, o.p);
	CHECK(rc == 0);
	check_tree(&d2, l);
	CHECK(same_tree(&d1, 0, &d2, 0));
	free(o.p);
	free(text);
	return 0;
}

#ifdef JSON_FUZZ_MAIN
#include "replay.h"

int main(int argc, char **argv)
{
	return fuzz_main(argc, argv, NULL);
}
#endif
