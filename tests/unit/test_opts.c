// SPDX-License-Identifier: MIT
/* test_opts.c: unit tests for the QEMU-style option string parser (opts.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "opts.h"

/* Fails at the caller's line and shows the whole message on a mismatch. */
#define assert_substr(hay, needle)                                             \
	do {                                                                   \
		if (!strstr((hay), (needle)))                                  \
			fail_msg("\"%s\" does not contain \"%s\"", (hay),      \
				 (needle));                                    \
	} while (0)

/* Parse s expecting failure; err receives the message. */
#define assert_parse_fails(o, s, implied, err)                                 \
	assert_int_equal(opts_parse((o), (s), (implied), (err), sizeof(err)),  \
			 -EINVAL)

#define assert_parse_ok(o, s, implied, err)                                    \
	do {                                                                   \
		int rc_ = opts_parse((o), (s), (implied), (err), sizeof(err)); \
		if (rc_)                                                       \
			fail_msg("parse of \"%s\" failed: %s", (s), (err));    \
	} while (0)

static struct opts o;

/* ---- parsing: accepted syntax ------------------------------------------ */

static void test_parse_basic(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o,
			"stream,addr.type=inet,addr.host=127.0.0.1,server=on",
			"type", err);
	assert_int_equal(o.n, 4);
	assert_string_equal(o.pair[0].key, "type");
	assert_string_equal(o.pair[0].val, "stream");
	assert_string_equal(o.pair[1].key, "addr.type");
	assert_string_equal(o.pair[1].val, "inet");
	assert_string_equal(o.pair[2].key, "addr.host");
	assert_string_equal(o.pair[2].val, "127.0.0.1");
	assert_string_equal(o.pair[3].key, "server");
	assert_string_equal(o.pair[3].val, "on");
	for (unsigned i = 0; i < o.n; i++)
		assert_false(o.pair[i].used);
}

static void test_parse_single_implied(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "user", "type", err);
	assert_int_equal(o.n, 1);
	assert_string_equal(o.pair[0].key, "type");
	assert_string_equal(o.pair[0].val, "user");
}

static void test_parse_implied_given_explicitly(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "type=stream,id=n0", "type", err);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.pair[0].key, "type");
	assert_string_equal(o.pair[0].val, "stream");
	assert_string_equal(opts_get(&o, "id"), "n0");

	/* An implied key does not have to come first when written out. */
	assert_parse_ok(&o, "id=n0,type=stream", "type", err);
	assert_int_equal(o.n, 2);
	assert_string_equal(opts_get(&o, "type"), "stream");
}

static void test_parse_flags(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	/* A later bare element is a flag: key=on. */
	assert_parse_ok(&o, "stream,server,id=x,reconnect", "type", err);
	assert_int_equal(o.n, 4);
	assert_string_equal(opts_get(&o, "type"), "stream");
	assert_string_equal(opts_get(&o, "server"), "on");
	assert_string_equal(opts_get(&o, "reconnect"), "on");

	/* Without an implied key the first bare element is a flag too. */
	assert_parse_ok(&o, "restrict,ipv6=off", NULL, err);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.pair[0].key, "restrict");
	assert_string_equal(o.pair[0].val, "on");
	assert_string_equal(opts_get(&o, "ipv6"), "off");
}

static void test_parse_comma_escape(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "file,path=a,,b,,,,c,id=x", "type", err);
	assert_int_equal(o.n, 3);
	assert_string_equal(opts_get(&o, "path"), "a,b,,c");
	assert_string_equal(opts_get(&o, "id"), "x");

	/* In the implied value, at the very start and at the very end. */
	assert_parse_ok(&o, ",,lead,k=tail,,", "type", err);
	assert_int_equal(o.n, 2);
	assert_string_equal(opts_get(&o, "type"), ",lead");
	assert_string_equal(opts_get(&o, "k"), "tail,");

	/* ",,," is an escaped comma then a separator. */
	assert_parse_ok(&o, "k=a,,,j=b", NULL, err);
	assert_int_equal(o.n, 2);
	assert_string_equal(opts_get(&o, "k"), "a,");
	assert_string_equal(opts_get(&o, "j"), "b");
}

static void test_parse_values(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	/* Only the first '=' splits; a value may be empty. */
	assert_parse_ok(&o, "k=a=b,e=,x==", NULL, err);
	assert_int_equal(o.n, 3);
	assert_string_equal(opts_get(&o, "k"), "a=b");
	assert_string_equal(opts_get(&o, "e"), "");
	assert_string_equal(opts_get(&o, "x"), "=");
	/* Values are not checked like keys. */
	assert_parse_ok(&o, "k=sp ace!/:@[]", NULL, err);
	assert_string_equal(opts_get(&o, "k"), "sp ace!/:@[]");
	/* An explicit implied key may have an empty value. */
	assert_parse_ok(&o, "type=", "type", err);
	assert_string_equal(opts_get(&o, "type"), "");
}

static void test_parse_key_chars_and_length(void **state)
{
	char err[OPTS_ERR_LEN] = "";
	char s[128];

	(void) state;
	assert_parse_ok(&o, "t,azAZ09_.-=1", "type", err);
	assert_string_equal(opts_get(&o, "azAZ09_.-"), "1");

	/* 63 characters is the longest key. */
	memset(s, 'k', 63);
	strcpy(s + 63, "=v");
	assert_parse_ok(&o, s, NULL, err);
	assert_int_equal(strlen(o.pair[0].key), 63);
	assert_string_equal(o.pair[0].val, "v");
}

static void test_parse_limits_ok(void **state)
{
	char err[OPTS_ERR_LEN] = "";
	static char s[OPTS_MAX_LEN + 1];
	size_t off = 0;

	(void) state;
	/* Exactly OPTS_MAX_LEN bytes. */
	memset(s, 'v', OPTS_MAX_LEN);
	memcpy(s, "k=", 2);
	s[OPTS_MAX_LEN] = '\0';
	assert_parse_ok(&o, s, NULL, err);
	assert_int_equal(o.n, 1);
	assert_int_equal(strlen(o.pair[0].val), OPTS_MAX_LEN - 2);

	/* Exactly OPTS_MAX_PAIRS elements. */
	for (int i = 0; i < OPTS_MAX_PAIRS; i++)
		off += (size_t) snprintf(s + off, sizeof(s) - off, "%sk%d=%d",
					 i ? "," : "", i, i);
	assert_parse_ok(&o, s, NULL, err);
	assert_int_equal(o.n, OPTS_MAX_PAIRS);
	assert_string_equal(opts_get(&o, "k47"), "47");

	/* The longest input made (almost) only of escapes. */
	for (int i = 0; i < OPTS_MAX_LEN; i++)
		s[i] = ',';
	s[0] = 'k';
	s[1] = '=';
	s[OPTS_MAX_LEN - 2] = 'y';
	s[OPTS_MAX_LEN - 1] = 'z';
	s[OPTS_MAX_LEN] = '\0';
	assert_parse_ok(&o, s, NULL, err);
	assert_int_equal(o.n, 1);
	assert_int_equal(strlen(o.pair[0].val), (OPTS_MAX_LEN - 4) / 2 + 2);
	assert_string_equal(o.pair[0].val + (OPTS_MAX_LEN - 4) / 2, "yz");
}

static void test_parse_resets(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "a,b=1,c=2,d", "type", err);
	assert_int_equal(o.n, 4);
	assert_parse_ok(&o, "z", "type", err);
	assert_int_equal(o.n, 1);
	assert_null(opts_get(&o, "b"));
	assert_string_equal(opts_get(&o, "type"), "z");
}

/* ---- parsing: every error path ----------------------------------------- */

static void test_parse_empty(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_fails(&o, "", "type", err);
	assert_substr(err, "empty option string");
	assert_parse_fails(&o, "", NULL, err);
	assert_substr(err, "empty option string");
}

static void test_parse_too_long(void **state)
{
	char err[OPTS_ERR_LEN] = "";
	static char s[OPTS_MAX_LEN + 2];

	(void) state;
	memset(s, 'v', OPTS_MAX_LEN + 1);
	memcpy(s, "k=", 2);
	s[OPTS_MAX_LEN + 1] = '\0';
	assert_parse_fails(&o, s, NULL, err);
	assert_substr(err, "too long");
	assert_substr(err, "4097");
	assert_substr(err, "4096");
}

static void test_parse_too_many(void **state)
{
	char err[OPTS_ERR_LEN] = "";
	static char s[OPTS_MAX_LEN + 1];
	size_t off = 0;

	(void) state;
	for (int i = 0; i < OPTS_MAX_PAIRS + 1; i++)
		off += (size_t) snprintf(s + off, sizeof(s) - off, "%sk%d",
					 i ? "," : "", i);
	assert_parse_fails(&o, s, "type", err);
	assert_substr(err, "too many options");
	assert_substr(err, "48");

	/* Many tiny elements, far more than the limit, stay in bounds. */
	off = 0;
	while (off + 2 < OPTS_MAX_LEN) {
		s[off++] = 'a';
		s[off++] = ',';
	}
	s[off++] = 'a';
	s[off] = '\0';
	assert_parse_fails(&o, s, NULL, err);
	assert_substr(err, "too many options");
}

static void test_parse_empty_key(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_fails(&o, "stream,=x", "type", err);
	assert_substr(err, "empty key");
	assert_substr(err, "stream,=x");

	assert_parse_fails(&o, "=x", "type", err);
	assert_substr(err, "empty key");

	/* A leading ',' without an implied key is an empty flag name. */
	assert_parse_fails(&o, ",a=1", NULL, err);
	assert_substr(err, "empty key");
}

static void test_parse_bad_key_chars(void **state)
{
	static const char *const bad[] = {
	    "t,sp ace=1", "t,k!=1",   "t,k/x=1",      "t,k:x",
	    "t,k@x=1",	  "t,k\tx=1", "t,\xc3\xa9=1",
	};
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_parse_fails(&o, bad[i], "type", err);
		assert_substr(err, "bad character in key");
	}
	assert_parse_fails(&o, "t,sp ace=1", "type", err);
	assert_substr(err, "'sp ace'");

	/* An escaped comma in a flag ends up in the key. */
	assert_parse_fails(&o, "t,a,,b", "type", err);
	assert_substr(err, "bad character in key 'a,b'");

	/* Without an implied key, a bare first element is a key. */
	assert_parse_fails(&o, "a b", NULL, err);
	assert_substr(err, "bad character in key 'a b'");
}

static void test_parse_key_too_long(void **state)
{
	char err[OPTS_ERR_LEN] = "";
	char s[128];

	(void) state;
	memset(s, 'k', 64);
	strcpy(s + 64, "=v");
	assert_parse_fails(&o, s, NULL, err);
	assert_substr(err, "key too long");
	assert_substr(err, "'kkkkkkkkkkkkkkkkkkkk...'");

	/* The same as a flag. */
	s[0] = 't';
	s[1] = ',';
	memset(s + 2, 'f', 64);
	s[66] = '\0';
	assert_parse_fails(&o, s, "type", err);
	assert_substr(err, "key too long");
}

static void test_parse_trailing_comma(void **state)
{
	static const char *const bad[] = {"a,", "a=1,b=2,", "a,,,", "a,b,"};
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_parse_fails(&o, bad[i], "type", err);
		assert_substr(err, "trailing ','");
		assert_substr(err, bad[i]);
	}
	/* Without an implied key ("a,,," would be a bad flag name). */
	assert_parse_fails(&o, "a,", NULL, err);
	assert_substr(err, "trailing ',' in 'a,'");
	assert_parse_fails(&o, "k=1,,,", NULL, err);
	assert_substr(err, "trailing ','");
	/* ",," at the end is an escaped comma, not a trailing one. */
	assert_parse_ok(&o, "a,,", "type", err);
	assert_string_equal(opts_get(&o, "type"), "a,");
}

static void test_parse_missing_implied(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_fails(&o, ",id=x", "type", err);
	assert_substr(err, "missing type");
	assert_parse_fails(&o, ",", "model", err);
	assert_substr(err, "missing model");
}

static void test_parse_err_buffer(void **state)
{
	char small[8];

	(void) state;
	/* No buffer, or no room: still the error code, no write. */
	assert_int_equal(opts_parse(&o, "", "type", NULL, 0), -EINVAL);
	small[0] = 'X';
	assert_int_equal(opts_parse(&o, "", "type", small, 0), -EINVAL);
	assert_int_equal(small[0], 'X');
	/* A short buffer gets a truncated, terminated message. */
	assert_int_equal(opts_parse(&o, "", "type", small, sizeof(small)),
			 -EINVAL);
	assert_string_equal(small, "empty o");
}

/* ---- opts_check ------------------------------------------------------- */

static const char *const stream_keys[] = {"type", "id", "server", "addr.type",
					  NULL};

static void test_check_ok(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "stream,id=n,server,addr.type=inet", "type", err);
	assert_int_equal(opts_check(&o, "netdev stream", stream_keys, NULL, err,
				    sizeof(err)),
			 0);
	assert_string_equal(o.what, "netdev stream");
}

static void test_check_unknown_key(void **state)
{
	static const char *const no_type[] = {"id", NULL};
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "stream,id=n,bogus=1", "type", err);
	assert_int_equal(opts_check(&o, "netdev stream", stream_keys, NULL, err,
				    sizeof(err)),
			 -EINVAL);
	assert_substr(err, "netdev stream");
	assert_substr(err, "unknown key 'bogus'");
	assert_substr(err, "accepted: type, id, server, addr.type");

	/* A flag is a key like any other. */
	assert_parse_ok(&o, "stream,reconnect", "type", err);
	assert_int_equal(opts_check(&o, "netdev stream", stream_keys, NULL, err,
				    sizeof(err)),
			 -EINVAL);
	assert_substr(err, "unknown key 'reconnect'");

	/* The implied key has to be accepted too. */
	assert_parse_ok(&o, "stream,id=n", "type", err);
	assert_int_equal(opts_check(&o, "x", no_type, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_substr(err, "unknown key 'type'");
	assert_substr(err, "accepted: id");
}

static void test_check_unknown_key_long_list(void **state)
{
	static char names[120][24];
	const char *allowed[121];
	char err[OPTS_ERR_LEN] = "";
	size_t len;

	(void) state;
	for (int i = 0; i < 120; i++) {
		snprintf(names[i], sizeof(names[i]), "key%03d", i);
		allowed[i] = names[i];
	}
	allowed[120] = NULL;
	assert_parse_ok(&o, "nope=1", NULL, err);
	assert_int_equal(
	    opts_check(&o, "netdev user", allowed, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_substr(err, "unknown key 'nope'");
	assert_substr(err, "accepted: key000, key001, ");
	/* The list does not fit: it is cut and says so. */
	len = strlen(err);
	assert_true(len < sizeof(err));
	assert_substr(err, "...)");
}

static void test_check_empty_allowed(void **state)
{
	static const char *const none[] = {NULL};
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "a=1", NULL, err);
	assert_int_equal(opts_check(&o, "thing", none, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_substr(err, "thing: unknown key 'a'");
}

static void test_check_duplicates(void **state)
{
	char err[OPTS_ERR_LEN] = "";

	(void) state;
	assert_parse_ok(&o, "stream,id=a,server,id=b", "type", err);
	assert_int_equal(opts_check(&o, "netdev stream", stream_keys, NULL, err,
				    sizeof(err)),
			 -EINVAL);
	assert_substr(err, "netdev stream");
	assert_substr(err, "'id'");
	assert_substr(err, "more than once");

	/* The implied key given again explicitly is a duplicate too. */
	assert_parse_ok(&o, "stream,type=socket", "type", err);
	assert_int_equal(
	    opts_check(&o, "netdev", stream_keys, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_substr(err, "'type' given more than once");

	/* Same value twice is still twice. */
	assert_parse_ok(&o, "stream,server,server", "type", err);
	assert_int_equal(
	    opts_check(&o, "netdev", stream_keys, NULL, err, sizeof(err)),
	    -EINVAL);
	assert_substr(err, "'server' given more than once");
}

static void test_check_repeatable(void **state)
{
	static const char *const user_keys[] = {"type", "hostfwd", "guestfwd",
						"net", NULL};
	static const char *const rep[] = {"hostfwd", "guestfwd", NULL};
	char err[OPTS_ERR_LEN] = "";
	unsigned nfwd = 0;

	(void) state;
	assert_parse_ok(&o,
			"user,hostfwd=tcp::2222-:22,net=10.0.2.0/24,"
			"hostfwd=udp::5353-:53,guestfwd=tcp:10.0.2.100:80-"
			"cmd:x,hostfwd=tcp::8080-:80",
			"type", err);
	assert_int_equal(
	    opts_check(&o, "netdev user", user_keys, rep, err, sizeof(err)), 0);
	for (unsigned i = 0; i < o.n; i++)
		nfwd += !strcmp(o.pair[i].key, "hostfwd");
	assert_int_equal(nfwd, 3);
	/* opts_get returns the first occurrence. */
	assert_string_equal(opts_get(&o, "hostfwd"), "tcp::2222-:22");

	/* Non-repeatable keys are still single next to repeatable ones. */
	assert_parse_ok(&o, "user,hostfwd=a,net=x,hostfwd=b,net=y", "type",
			err);
	assert_int_equal(
	    opts_check(&o, "netdev user", user_keys, rep, err, sizeof(err)),
	    -EINVAL);
	assert_substr(err, "'net' given more than once");
}

/* ---- typed getters ---------------------------------------------------- */

static void parse_checked(const char *s)
{
	static const char *const any[] = {"type", "k", "flag", "empty", NULL};
	char err[OPTS_ERR_LEN] = "";

	assert_parse_ok(&o, s, "type", err);
	assert_int_equal(
	    opts_check(&o, "netdev t", any, NULL, err, sizeof(err)), 0);
}

static void test_get(void **state)
{
	(void) state;
	parse_checked("t,k=1,flag");
	assert_string_equal(opts_get(&o, "type"), "t");
	assert_string_equal(opts_get(&o, "k"), "1");
	assert_string_equal(opts_get(&o, "flag"), "on");
	assert_null(opts_get(&o, "empty"));
	assert_null(opts_get(&o, "K"));
}

static void test_get_bool_good(void **state)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};
	char err[OPTS_ERR_LEN] = "";
	char s[64];
	bool b;

	(void) state;
	for (size_t i = 0; i < 4; i++) {
		snprintf(s, sizeof(s), "t,k=%s", yes[i]);
		parse_checked(s);
		b = false;
		assert_int_equal(
		    opts_get_bool(&o, "k", false, &b, err, sizeof(err)), 0);
		assert_true(b);

		snprintf(s, sizeof(s), "t,k=%s", no[i]);
		parse_checked(s);
		b = true;
		assert_int_equal(
		    opts_get_bool(&o, "k", true, &b, err, sizeof(err)), 0);
		assert_false(b);
	}

	/* A flag is on; an absent key takes the default. */
	parse_checked("t,flag");
	assert_int_equal(opts_get_bool(&o, "flag", false, &b, err, sizeof(err)),
			 0);
	assert_true(b);
	assert_int_equal(opts_get_bool(&o, "k", true, &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(opts_get_bool(&o, "k", false, &b, err, sizeof(err)),
			 0);
	assert_false(b);
}

static void test_get_bool_bad(void **state)
{
	static const char *const bad[] = {"maybe", "", "2", "onn", "of"};
	char err[OPTS_ERR_LEN];
	char s[64];
	bool b;

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "t,k=%s", bad[i]);
		parse_checked(s);
		b = true;
		err[0] = '\0';
		assert_int_equal(
		    opts_get_bool(&o, "k", false, &b, err, sizeof(err)),
		    -EINVAL);
		assert_true(b); /* left alone on error */
		assert_substr(err, "netdev t: 'k' must be on or off");
		snprintf(s, sizeof(s), "not '%s'", bad[i]);
		assert_substr(err, s);
	}
}

static void test_get_uint_good(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
	    {"0", 0},
	    {"42", 42},
	    {"0x2a", 42},
	    {"0X2A", 42},
	    {"0xffffFFFF", 0xffffffffu},
	    {"18446744073709551615", UINT64_MAX},
	    {"0xffffffffffffffff", UINT64_MAX},
	    /* Decimal, as documented: a leading 0 is not octal. */
	    {"010", 10},
	    {"08", 8},
	    {"0009", 9},
	};
	char err[OPTS_ERR_LEN] = "";
	char s[64];
	uint64_t v;

	(void) state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(s, sizeof(s), "t,k=%s", good[i].s);
		parse_checked(s);
		v = 12345;
		if (opts_get_uint(&o, "k", 0, UINT64_MAX, 7, &v, err,
				  sizeof(err)))
			fail_msg("'%s' rejected: %s", good[i].s, err);
		if (v != good[i].v)
			fail_msg("'%s' gave %llu", good[i].s,
				 (unsigned long long) v);
	}

	/* Absent: the default, even outside [min, max]. */
	parse_checked("t");
	assert_int_equal(
	    opts_get_uint(&o, "k", 10, 20, 7, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 7);

	/* Bounds are inclusive. */
	parse_checked("t,k=10");
	assert_int_equal(
	    opts_get_uint(&o, "k", 10, 20, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 10);
	parse_checked("t,k=20");
	assert_int_equal(
	    opts_get_uint(&o, "k", 10, 20, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 20);
	parse_checked("t,k=0x14");
	assert_int_equal(
	    opts_get_uint(&o, "k", 10, 20, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 20);
}

static void test_get_uint_not_a_number(void **state)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "-1",
	    "+1",
	    " 1",
	    "1 ",
	    "1x",
	    "0x",
	    "0xg",
	    "0x 1",
	    "0x-1",
	    "0x+1",
	    "0x0x1",
	    "1.5",
	    "1e3",
	    "on",
	    "18446744073709551616",
	    "0x10000000000000000",
	    "99999999999999999999999",
	};
	char err[OPTS_ERR_LEN];
	char s[64];
	uint64_t v;

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "t,k=%s", bad[i]);
		parse_checked(s);
		v = 12345;
		err[0] = '\0';
		if (opts_get_uint(&o, "k", 0, UINT64_MAX, 0, &v, err,
				  sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted as %llu", bad[i],
				 (unsigned long long) v);
		assert_int_equal(v, 12345);
		assert_substr(err, "netdev t: 'k' must be a number");
		snprintf(s, sizeof(s), "not '%s'", bad[i]);
		assert_substr(err, s);
	}
}

static void test_get_uint_range(void **state)
{
	char err[OPTS_ERR_LEN];
	uint64_t v = 12345;

	(void) state;
	parse_checked("t,k=9");
	assert_int_equal(
	    opts_get_uint(&o, "k", 10, 20, 0, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(v, 12345);
	assert_substr(err, "netdev t: 'k' must be between 10 and 20, not 9");

	parse_checked("t,k=21");
	assert_int_equal(
	    opts_get_uint(&o, "k", 10, 20, 0, &v, err, sizeof(err)), -EINVAL);
	assert_substr(err, "between 10 and 20, not 21");

	/* The message repeats the value as written. */
	parse_checked("t,k=0x100");
	assert_int_equal(
	    opts_get_uint(&o, "k", 1, 255, 0, &v, err, sizeof(err)), -EINVAL);
	assert_substr(err, "between 1 and 255, not 0x100");

	parse_checked("t,k=0");
	assert_int_equal(
	    opts_get_uint(&o, "k", 1, UINT64_MAX, 0, &v, err, sizeof(err)),
	    -EINVAL);
	assert_substr(err, "between 1 and 18446744073709551615, not 0");
}

static const char *const families[] = {"inet", "unix", "fd", NULL};

static void test_get_enum(void **state)
{
	char err[OPTS_ERR_LEN] = "";
	const char *v;
	char s[64];

	(void) state;
	for (int i = 0; families[i]; i++) {
		snprintf(s, sizeof(s), "t,k=%s", families[i]);
		parse_checked(s);
		v = NULL;
		assert_int_equal(opts_get_enum(&o, "k", families, NULL, &v, err,
					       sizeof(err)),
				 0);
		/* The choice itself, which outlives the parsed string. */
		assert_ptr_equal(v, families[i]);
	}

	parse_checked("t");
	v = "x";
	assert_int_equal(
	    opts_get_enum(&o, "k", families, NULL, &v, err, sizeof(err)), 0);
	assert_null(v);
	assert_int_equal(
	    opts_get_enum(&o, "k", families, "unix", &v, err, sizeof(err)), 0);
	assert_string_equal(v, "unix");
}

static void test_get_enum_bad(void **state)
{
	static const char *const bad[] = {"bogus", "", "INET", "inet6", "in"};
	char err[OPTS_ERR_LEN];
	const char *v;
	char s[64];

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "t,k=%s", bad[i]);
		parse_checked(s);
		v = "untouched";
		err[0] = '\0';
		assert_int_equal(opts_get_enum(&o, "k", families, NULL, &v, err,
					       sizeof(err)),
				 -EINVAL);
		assert_string_equal(v, "untouched");
		assert_substr(err,
			      "netdev t: 'k' must be one of inet, unix, fd");
		snprintf(s, sizeof(s), "not '%s'", bad[i]);
		assert_substr(err, s);
	}
}

/*
 * A choice list too long for the message is cut with "...", also when the
 * printed part fills the buffer exactly and more choices follow.
 */
static void test_get_enum_long_list(void **state)
{
	static char names[64][24];
	static char exact[256];
	const char *choices[65];
	const char *two[3];
	char err[OPTS_ERR_LEN];
	const char *v;

	(void) state;
	for (int i = 0; i < 64; i++) {
		snprintf(names[i], sizeof(names[i]), "choice%02d", i);
		choices[i] = names[i];
	}
	choices[64] = NULL;
	parse_checked("t,k=nope");
	assert_int_equal(
	    opts_get_enum(&o, "k", choices, NULL, &v, err, sizeof(err)),
	    -EINVAL);
	assert_substr(err, "must be one of choice00, choice01, ");
	assert_substr(err, "..., not 'nope'");

	/* 255 characters: exactly what the list buffer holds. */
	memset(exact, 'a', 255);
	exact[255] = '\0';
	two[0] = exact;
	two[1] = "b";
	two[2] = NULL;
	assert_int_equal(
	    opts_get_enum(&o, "k", two, NULL, &v, err, sizeof(err)), -EINVAL);
	assert_substr(err, "..., not 'nope'");

	/* A list that fits exactly is not marked as cut. */
	two[1] = NULL;
	assert_int_equal(
	    opts_get_enum(&o, "k", two, NULL, &v, err, sizeof(err)), -EINVAL);
	assert_substr(err, "aaaa, not 'nope'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_basic),
	    cmocka_unit_test(test_parse_single_implied),
	    cmocka_unit_test(test_parse_implied_given_explicitly),
	    cmocka_unit_test(test_parse_flags),
	    cmocka_unit_test(test_parse_comma_escape),
	    cmocka_unit_test(test_parse_values),
	    cmocka_unit_test(test_parse_key_chars_and_length),
	    cmocka_unit_test(test_parse_limits_ok),
	    cmocka_unit_test(test_parse_resets),
	    cmocka_unit_test(test_parse_empty),
	    cmocka_unit_test(test_parse_too_long),
	    cmocka_unit_test(test_parse_too_many),
	    cmocka_unit_test(test_parse_empty_key),
	    cmocka_unit_test(test_parse_bad_key_chars),
	    cmocka_unit_test(test_parse_key_too_long),
	    cmocka_unit_test(test_parse_trailing_comma),
	    cmocka_unit_test(test_parse_missing_implied),
	    cmocka_unit_test(test_parse_err_buffer),
	    cmocka_unit_test(test_check_ok),
	    cmocka_unit_test(test_check_unknown_key),
	    cmocka_unit_test(test_check_unknown_key_long_list),
	    cmocka_unit_test(test_check_empty_allowed),
	    cmocka_unit_test(test_check_duplicates),
	    cmocka_unit_test(test_check_repeatable),
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_get_bool_good),
	    cmocka_unit_test(test_get_bool_bad),
	    cmocka_unit_test(test_get_uint_good),
	    cmocka_unit_test(test_get_uint_not_a_number),
	    cmocka_unit_test(test_get_uint_range),
	    cmocka_unit_test(test_get_enum),
	    cmocka_unit_test(test_get_enum_bad),
	    cmocka_unit_test(test_get_enum_long_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
