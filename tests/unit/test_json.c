// SPDX-License-Identifier: MIT
/* test_json.c: unit tests for the control socket's JSON parser
 * (src/daemon/json.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/json.h"

/* What the control socket uses for requests, and something roomier. */
static const struct json_limits req = { .max_depth = 2, .max_nodes = 64 };
static const struct json_limits wide = { .max_depth = 16,
					 .max_nodes = 100000,
					 .arrays = true };

static struct json_doc doc;
static char text[1 << 16];
static char err[256];

/* Parse a copy of s (the parser writes into its input). */
static int parse(const char *s, const struct json_limits *lim)
{
	size_t n = strlen(s);

	assert_true(n < sizeof(text));
	memcpy(text, s, n + 1);
	return json_parse(&doc, text, n, lim, err, sizeof(err));
}

#define assert_ok(s, lim)                                                      \
	do {                                                                   \
		if (parse((s), (lim)))                                         \
			fail_msg("parse of '%s' failed: %s", (s), err);        \
	} while (0)

/* Fails with a message containing needle. */
#define assert_rejects(s, lim, needle)                                         \
	do {                                                                   \
		if (parse((s), (lim)) != -EINVAL)                              \
			fail_msg("'%s' was accepted", (s));                    \
		if (!strstr(err, (needle)))                                    \
			fail_msg("'%s': message \"%s\" lacks \"%s\"", (s),     \
				 err, (needle));                               \
		assert_int_equal(doc.n, 0);                                    \
	} while (0)

static const struct json_node *member(uint32_t obj, const char *key)
{
	uint32_t i = json_get(&doc, obj, key);

	if (i == JSON_NONE)
		fail_msg("no member '%s'", key);
	return &doc.node[i];
}

static int teardown(void **state)
{
	(void)state;
	json_free(&doc);
	return 0;
}

/* ---- accepted ------------------------------------------------------------ */

static void test_flat_request(void **state)
{
	const struct json_node *n;

	(void)state;
	assert_ok(" {\"id\": 7, \"cmd\":\"hostfwd-add\",\"netdev\":\"net0\","
		  "\"up\":false,\"x\":null,\"t\":true,\"neg\":-12}\r\n",
		  &req);
	assert_int_equal(doc.node[0].type, JSON_OBJECT);
	assert_int_equal(doc.node[0].count, 7);
	n = member(0, "id");
	assert_int_equal(n->type, JSON_NUMBER);
	assert_true(n->is_int);
	assert_int_equal(n->i, 7);
	n = member(0, "cmd");
	assert_int_equal(n->type, JSON_STRING);
	assert_string_equal(n->str, "hostfwd-add");
	assert_int_equal(n->len, 11);
	assert_int_equal(member(0, "up")->type, JSON_BOOL);
	assert_false(member(0, "up")->b);
	assert_true(member(0, "t")->b);
	assert_int_equal(member(0, "x")->type, JSON_NULL);
	assert_int_equal(member(0, "neg")->i, -12);
	assert_int_equal(json_get(&doc, 0, "nope"), JSON_NONE);
	/* members are in document order */
	assert_string_equal(doc.node[doc.node[0].child].key, "id");
}

static void test_empty_and_nested(void **state)
{
	const struct json_node *o;
	uint32_t oi;

	(void)state;
	assert_ok("{}", &req);
	assert_int_equal(doc.n, 1);
	assert_int_equal(doc.node[0].child, JSON_NONE);
	assert_ok("{\"a\":{\"b\":1,\"c\":\"d\"},\"e\":{}}", &req);
	oi = json_get(&doc, 0, "a");
	o = &doc.node[oi];
	assert_int_equal(o->type, JSON_OBJECT);
	assert_int_equal(o->count, 2);
	assert_int_equal(doc.node[json_get(&doc, oi, "b")].i, 1);
	assert_int_equal(doc.node[json_get(&doc, oi, "b")].parent, oi);
	/* json_get on a non-object */
	assert_int_equal(json_get(&doc, json_get(&doc, oi, "b"), "x"),
			 JSON_NONE);
}

static void test_escapes(void **state)
{
	(void)state;
	assert_ok("{\"s\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\"}", &req);
	assert_string_equal(member(0, "s")->str, "q\"b\\s/n\nr\rt\tb\bf\f");
	assert_ok("{\"s\":\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"}", &req);
	assert_string_equal(member(0, "s")->str,
			    "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_int_equal(member(0, "s")->len, 10);
	/* raw UTF-8 passes unchanged */
	assert_ok("{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", &req);
	assert_string_equal(member(0, "s")->str,
			    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* escaped keys */
	assert_ok("{\"\\u0063md\":\"x\"}", &req);
	assert_string_equal(member(0, "cmd")->str, "x");
}

static void test_numbers(void **state)
{
	const struct json_node *n;

	(void)state;
	assert_ok("{\"a\":0,\"b\":-0,\"c\":1.5,\"d\":-2e3,\"e\":1E+2,"
		  "\"f\":9223372036854775807,\"g\":-9223372036854775808,"
		  "\"h\":9223372036854775808,\"i\":0.25e-1}",
		  &req);
	assert_true(member(0, "a")->is_int);
	assert_int_equal(member(0, "b")->i, 0);
	n = member(0, "c");
	assert_false(n->is_int);
	assert_true(n->d == 1.5);
	assert_true(member(0, "d")->d == -2000.0);
	assert_true(member(0, "e")->d == 100.0);
	assert_true(member(0, "f")->is_int);
	assert_true(member(0, "f")->i == INT64_MAX);
	assert_true(member(0, "g")->is_int);
	assert_true(member(0, "g")->i == INT64_MIN);
	assert_false(member(0, "h")->is_int);	/* out of range: not an int */
	assert_true(member(0, "i")->d == 0.025);
}

static void test_arrays_when_allowed(void **state)
{
	uint32_t a;

	(void)state;
	assert_ok("{\"l\":[1,\"x\",{\"k\":[]},[true]],\"m\":[]}", &wide);
	a = json_get(&doc, 0, "l");
	assert_int_equal(doc.node[a].type, JSON_ARRAY);
	assert_int_equal(doc.node[a].count, 4);
	assert_null(doc.node[doc.node[a].child].key);
	assert_int_equal(doc.node[json_get(&doc, 0, "m")].count, 0);
}

/* ---- refused ------------------------------------------------------------- */

static void test_not_an_object(void **state)
{
	(void)state;
	assert_rejects("", &req, "object expected");
	assert_rejects("   ", &req, "object expected");
	assert_rejects("[1]", &wide, "object expected");
	assert_rejects("\"x\"", &req, "object expected");
	assert_rejects("42", &req, "object expected");
	assert_rejects("{} {}", &req, "after the object");
	assert_rejects("{}x", &req, "after the object");
}

static void test_syntax(void **state)
{
	(void)state;
	assert_rejects("{", &req, "member name");
	assert_rejects("{\"a\"}", &req, "':' expected");
	assert_rejects("{\"a\":}", &req, "unexpected character");
	assert_rejects("{\"a\":1,}", &req, "member name");
	assert_rejects("{\"a\":1 \"b\":2}", &req, "',' or '}' expected");
	assert_rejects("{a:1}", &req, "member name");
	assert_rejects("{'a':1}", &req, "member name");
	assert_rejects("{\"a\":tru}", &req, "unexpected character");
	assert_rejects("{\"a\":nul}", &req, "unexpected character");
	assert_rejects("{\"a\":True}", &req, "unexpected character");
	assert_rejects("{\"a\":1}}", &req, "after the object");
	assert_rejects("{\"a\":\"x}", &req, "unterminated string");
	assert_rejects("{\"a\" : 1 ,", &req, "member name");
}

static void test_bad_numbers(void **state)
{
	(void)state;
	assert_rejects("{\"a\":01}", &req, "expected");
	assert_rejects("{\"a\":-}", &req, "bad number");
	assert_rejects("{\"a\":+1}", &req, "unexpected character");
	assert_rejects("{\"a\":1.}", &req, "follow '.'");
	assert_rejects("{\"a\":.5}", &req, "unexpected character");
	assert_rejects("{\"a\":1e}", &req, "exponent");
	assert_rejects("{\"a\":0x10}", &req, "expected");
	assert_rejects("{\"a\":NaN}", &req, "unexpected character");
	assert_rejects("{\"a\":Infinity}", &req, "unexpected character");
	assert_rejects("{\"a\":1111111111111111111111111111111111111111111}",
		       &req, "longer than");
}

static void test_bad_strings(void **state)
{
	(void)state;
	assert_rejects("{\"a\":\"\\x41\"}", &req, "unknown escape");
	assert_rejects("{\"a\":\"\\'\"}", &req, "unknown escape");
	assert_rejects("{\"a\":\"\\u12\"}", &req, "four hex digits");
	assert_rejects("{\"a\":\"\\u12g4\"}", &req, "four hex digits");
	assert_rejects("{\"a\":\"\\u0000\"}", &req, "\\u0000");
	assert_rejects("{\"a\":\"\\udc00\"}", &req, "lone low surrogate");
	assert_rejects("{\"a\":\"\\ud800\"}", &req, "without a low one");
	assert_rejects("{\"a\":\"\\ud800\\u0041\"}", &req, "without a low one");
	assert_rejects("{\"a\":\"tab\there\"}", &req, "control character");
	assert_rejects("{\"a\":\"nl\nhere\"}", &req, "control character");
	assert_rejects("{\"a\":\"\xff\"}", &req, "UTF-8");
	assert_rejects("{\"a\":\"\xc0\xaf\"}", &req, "UTF-8");	/* overlong */
	assert_rejects("{\"a\":\"\xed\xa0\x80\"}", &req, "UTF-8"); /* surrogate */
	assert_rejects("{\"a\":\"\xf4\x90\x80\x80\"}", &req, "UTF-8");
	assert_rejects("{\"a\":\"\xe2\x82\"}", &req, "UTF-8");	/* truncated */
	assert_rejects("{\"a\":\"\\", &req, "unterminated");
}

static void test_raw_nul(void **state)
{
	char s[] = "{\"a\":\"x\0y\"}";

	(void)state;
	assert_int_equal(json_parse(&doc, s, sizeof(s) - 1, &req, err,
				    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "control character 0x00"));
	memcpy(s, "{\"a\":1}\0", 8);
	assert_int_equal(json_parse(&doc, s, 8, &req, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "after the object"));
}

static void test_limits(void **state)
{
	char big[8192];
	size_t o = 0;

	(void)state;
	assert_rejects("{\"a\":[1]}", &req, "arrays are not accepted");
	assert_rejects("{\"a\":{\"b\":{}}}", &req, "nested deeper than 2");
	assert_rejects("{\"a\":1,\"a\":2}", &req, "duplicate member \"a\"");
	assert_rejects("{\"a\":{\"x\":1,\"x\":1}}", &req, "duplicate");
	/* 64 values: the root and 63 members */
	o += (size_t)sprintf(big + o, "{");
	for (int i = 0; i < 63; i++)
		o += (size_t)sprintf(big + o, "%s\"k%d\":%d", i ? "," : "", i, i);
	sprintf(big + o, "}");
	assert_ok(big, &req);
	assert_int_equal(doc.n, 64);
	sprintf(big + o, ",\"one-more\":1}");
	assert_rejects(big, &req, "more than 64 values");
	/* long keys */
	o = (size_t)sprintf(big, "{\"");
	memset(big + o, 'k', JSON_KEY_MAX + 1);
	sprintf(big + o + JSON_KEY_MAX + 1, "\":1}");
	assert_rejects(big, &req, "longer than 256");
	/* deep nesting stays bounded even with a wide limit */
	o = (size_t)sprintf(big, "{\"a\":");
	for (int i = 0; i < 2000; i++)
		big[o++] = '[';
	big[o] = '\0';
	assert_rejects(big, &wide, "nested deeper than 16");
}

static void test_members_max(void **state)
{
	static const struct json_limits lim = { .max_depth = 2,
						.max_nodes = 100000 };
	size_t o = 0;

	(void)state;
	o += (size_t)sprintf(text + o, "{");
	for (int i = 0; i <= JSON_MEMBERS_MAX; i++)
		o += (size_t)sprintf(text + o, "%s\"%d\":0", i ? "," : "", i);
	o += (size_t)sprintf(text + o, "}");
	assert_int_equal(json_parse(&doc, text, o, &lim, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "more than 1024 members"));
}

/* Every proper prefix of a valid document fails cleanly. */
static void test_prefixes(void **state)
{
	static const char full[] =
		"{\"id\":12,\"cmd\":\"capture-start\",\"x\":{\"s\":\"a\\u00e9\\ud83d\\ude00\","
		"\"n\":-1.5e3,\"t\":true,\"f\":false,\"z\":null}}";
	char buf[sizeof(full)];

	(void)state;
	for (size_t n = 0; n < sizeof(full) - 1; n++) {
		memcpy(buf, full, n);
		if (json_parse(&doc, buf, n, &req, err, sizeof(err)) != -EINVAL)
			fail_msg("prefix of %zu bytes accepted", n);
		assert_int_equal(doc.n, 0);
	}
	assert_ok(full, &req);
}

static void test_error_offset_and_small_buffer(void **state)
{
	char small[8];

	(void)state;
	assert_rejects("{\"a\":1,\"b\":x}", &req, "at byte 11:");
	memcpy(text, "{\"a\":x}", 8);
	assert_int_equal(json_parse(&doc, text, 7, &req, small, sizeof(small)),
			 -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	memcpy(text, "{\"a\":x}", 8);
	assert_int_equal(json_parse(&doc, text, 7, &req, small, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_flat_request, teardown),
		cmocka_unit_test_teardown(test_empty_and_nested, teardown),
		cmocka_unit_test_teardown(test_escapes, teardown),
		cmocka_unit_test_teardown(test_numbers, teardown),
		cmocka_unit_test_teardown(test_arrays_when_allowed, teardown),
		cmocka_unit_test_teardown(test_not_an_object, teardown),
		cmocka_unit_test_teardown(test_syntax, teardown),
		cmocka_unit_test_teardown(test_bad_numbers, teardown),
		cmocka_unit_test_teardown(test_bad_strings, teardown),
		cmocka_unit_test_teardown(test_raw_nul, teardown),
		cmocka_unit_test_teardown(test_limits, teardown),
		cmocka_unit_test_teardown(test_members_max, teardown),
		cmocka_unit_test_teardown(test_prefixes, teardown),
		cmocka_unit_test_teardown(test_error_offset_and_small_buffer,
					  teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
