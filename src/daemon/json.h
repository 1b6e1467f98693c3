/* SPDX-License-Identifier: MIT */
/* json.h: a small, bounded JSON parser for control requests and replies. */
#ifndef PB_DAEMON_JSON_H
#define PB_DAEMON_JSON_H

/*
 * One JSON object (RFC 8259) per call, parsed into a flat array of nodes
 * linked by index: node 0 is the root object; every container lists its
 * children through first-child / next-sibling indices.  Strings are decoded
 * in place in the caller's buffer (an escaped form is never shorter than
 * its decoded bytes) and NUL-terminated there, so node strings point into
 * that buffer and live as long as it does.
 *
 * Hostile input is expected.  Limits (struct json_limits) bound nesting
 * depth (hence recursion) and the number of values; arrays can be refused
 * altogether (control requests are flat objects, perhaps with one nested
 * object).  Also refused, each with a message naming the byte offset and
 * the problem: anything but an object at the top, trailing bytes, duplicate
 * keys, more than JSON_MEMBERS_MAX members in one object, keys longer than
 * JSON_KEY_MAX, raw control characters and invalid UTF-8 in strings,
 * unknown escapes, lone surrogates and \u0000 (strings are C strings),
 * numbers not in JSON's grammar or longer than JSON_NUMBER_MAX characters.
 * Accepted escapes: \" \\ \/ \b \f \n \r \t \uXXXX (with surrogate pairs).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_NONE UINT32_MAX
#define JSON_KEY_MAX 256
#define JSON_MEMBERS_MAX 1024
#define JSON_NUMBER_MAX 40

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_OBJECT,
	JSON_ARRAY,
};

struct json_node {
	enum json_type type;
	bool b;			/* JSON_BOOL */
	bool is_int;		/* JSON_NUMBER: an integer that fits i */
	int64_t i;
	double d;		/* JSON_NUMBER, always set */
	const char *key;	/* member of an object: its key, else NULL */
	const char *str;	/* JSON_STRING: len bytes + NUL, no NUL inside */
	size_t len;
	uint32_t parent;	/* JSON_NONE for the root */
	uint32_t child;		/* containers: first child or JSON_NONE */
	uint32_t next;		/* next sibling or JSON_NONE */
	uint32_t count;		/* containers: number of children */
};

struct json_limits {
	unsigned max_depth;	/* 1: flat object; 2: one nested level... */
	unsigned max_nodes;	/* values in all, the root included */
	bool arrays;		/* accept arrays */
};

struct json_doc {
	struct json_node *node;
	uint32_t n, cap;
};

/*
 * Parse text[0..len), which must be one JSON object with optional white
 * space around it; text is modified (strings are decoded in place).
 * Returns 0, or -EINVAL (syntax or limits) / -ENOMEM with a message in err.
 * d must be zeroed or previously used with json_parse(); free it with
 * json_free().  On failure d holds no nodes.
 */
int json_parse(struct json_doc *d, char *text, size_t len,
	       const struct json_limits *lim, char *err, size_t errlen);
void json_free(struct json_doc *d);

/* The member of object node obj named key, or JSON_NONE. */
uint32_t json_get(const struct json_doc *d, uint32_t obj, const char *key);

#endif
