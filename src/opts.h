/* SPDX-License-Identifier: MIT */
/* opts.h: QEMU-style option strings ("type,key=value,...") and checking. */
#ifndef PB_OPTS_H
#define PB_OPTS_H

/*
 * Syntax (QEMU's QemuOpts): elements separated by ','; a literal ',' inside
 * a value is written ",,".  The first element may lack '=': it is then the
 * value of the implied key (e.g. "type" for -netdev).  A later element
 * without '=' is a flag: "key" means key=on.  Keys are 1-63 characters of
 * [A-Za-z0-9_.-].  A key may appear once unless the schema marks it
 * repeatable.  Every error message names the key and what is accepted.
 *
 * Limits: OPTS_MAX_LEN bytes of input, OPTS_MAX_PAIRS elements.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define OPTS_MAX_LEN 4096
#define OPTS_MAX_PAIRS 48
#define OPTS_ERR_LEN 512

struct opt_pair {
	const char *key;
	const char *val;
	bool used;
};

struct opts {
	char buf[OPTS_MAX_LEN + OPTS_MAX_PAIRS * 3];
	struct opt_pair pair[OPTS_MAX_PAIRS];
	unsigned n;
	const char *what;	/* context for messages, e.g. "netdev stream" */
};

/*
 * Parse s.  implied: name of the key a leading bare element is taken for
 * (NULL: a bare first element is a flag like any other).  Returns 0, or
 * -EINVAL with a message in err.
 */
int opts_parse(struct opts *o, const char *s, const char *implied, char *err,
	       size_t errlen);

/*
 * Reject keys not in allowed (NULL-terminated) and duplicates of keys not in
 * repeatable (NULL-terminated, may be NULL).  what names the thing in
 * messages.
 */
int opts_check(struct opts *o, const char *what, const char *const *allowed,
	       const char *const *repeatable, char *err, size_t errlen);

/* Value of key (first occurrence) or NULL. */
const char *opts_get(const struct opts *o, const char *key);

/* on|off|yes|no|true|false|1|0 -> *out; absent -> def. */
int opts_get_bool(const struct opts *o, const char *key, bool def, bool *out,
		  char *err, size_t errlen);
/* Decimal (or 0x hex) integer within [min, max]; absent -> def. */
int opts_get_uint(const struct opts *o, const char *key, uint64_t min,
		  uint64_t max, uint64_t def, uint64_t *out, char *err,
		  size_t errlen);
/* Value of key, which must be one of choices (NULL-terminated); absent ->
 * def (may be NULL). */
int opts_get_enum(const struct opts *o, const char *key,
		  const char *const *choices, const char *def,
		  const char **out, char *err, size_t errlen);

#endif
