// SPDX-License-Identifier: MIT
/* test_tftp.c: unit tests for the TFTP request parser and path cleaning
 * (tftp.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tftp.h"

/* A request from a C string literal with embedded NULs: the literal's own
 * final NUL is not part of the datagram. */
#define PKT(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static struct tftp_req req;

static int parse(const uint8_t *p, size_t len)
{
	return tftp_parse_request(p, len, &req);
}

/* ---- accepted requests ------------------------------------------------- */

static void test_rrq_plain(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1boot/pxelinux.0\0octet\0")), 0);
	assert_int_equal(req.opcode, TFTP_RRQ);
	assert_string_equal(req.filename, "boot/pxelinux.0");
	assert_int_equal(req.mode, TFTP_MODE_OCTET);
	assert_int_equal(req.blksize, 0);
	assert_int_equal(req.windowsize, 0);
	assert_int_equal(req.timeout, 0);
	assert_false(req.tsize);
	assert_int_equal(req.unknown_opts, 0);
}

static void test_wrq_and_modes(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\2f\0NETASCII\0")), 0);
	assert_int_equal(req.opcode, TFTP_WRQ);
	assert_int_equal(req.mode, TFTP_MODE_NETASCII);
	assert_int_equal(parse(PKT("\0\1f\0OcTeT\0")), 0);
	assert_int_equal(req.mode, TFTP_MODE_OCTET);
}

static void test_all_options(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0001468\0tsize\0000\0"
				   "timeout\0003\0windowsize\00016\0")),
			 0);
	assert_int_equal(req.blksize, 1468);
	assert_true(req.tsize);
	assert_int_equal(req.timeout, 3);
	assert_int_equal(req.windowsize, 16);
	assert_int_equal(req.unknown_opts, 0);
}

static void test_option_names_any_case(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0BlkSize\0001024\0TSIZE\0005\0"
				   "WindowSize\0002\0")),
			 0);
	assert_int_equal(req.blksize, 1024);
	assert_true(req.tsize);
	assert_int_equal(req.windowsize, 2);
}

static void test_unknown_options_ignored(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0multicast\0\0rollover\0001\0"
				   "x\0y\0")),
			 0);
	assert_int_equal(req.unknown_opts, 3);
	assert_int_equal(req.blksize, 0);
}

static void test_repeated_option_keeps_first(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\000800\0blksize\0"
				   "1200\0")),
			 0);
	assert_int_equal(req.blksize, 800);
	/* a bad repeated value is not even looked at */
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\000800\0blksize\0"
				   "zz\0")),
			 0);
}

static void test_trailing_nul_padding(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0\0\0\0")), 0);
	assert_int_equal(parse(PKT("\0\1f\0octet\0tsize\0000\0\0garbage")), 0);
	assert_true(req.tsize);
}

/* ---- blksize, timeout, windowsize bounds ---------------------------------- */

static void test_blksize_bounds(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0008\0")), 0);
	assert_int_equal(req.blksize, 8);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\00065464\0")), 0);
	assert_int_equal(req.blksize, 65464);
	/* above the maximum: capped (the server may answer less) */
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\00065465\0")), 0);
	assert_int_equal(req.blksize, TFTP_BLKSIZE_MAX);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0"
				   "99999999999999999999\0")),
			 -EINVAL);	/* 20 digits: beyond 64 bits */
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0"
				   "18446744073709551616\0")),
			 -EINVAL);	/* 2^64 */
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0"
				   "18446744073709551615\0")),
			 0);
	assert_int_equal(req.blksize, TFTP_BLKSIZE_MAX);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\000100000000\0")), 0);
	assert_int_equal(req.blksize, TFTP_BLKSIZE_MAX);
	/* below the minimum, empty, signed, not a number */
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0007\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0000\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0+512\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0-512\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0 512\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0005l2\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0blksize\0000x200\0")), -EINVAL);
}

static void test_timeout_bounds(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0timeout\0001\0")), 0);
	assert_int_equal(req.timeout, 1);
	assert_int_equal(parse(PKT("\0\1f\0octet\0timeout\000255\0")), 0);
	assert_int_equal(req.timeout, 255);
	assert_int_equal(parse(PKT("\0\1f\0octet\0timeout\0000\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0timeout\000256\0")), -EINVAL);
}

static void test_windowsize_bounds(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0windowsize\0001\0")), 0);
	assert_int_equal(req.windowsize, 1);
	assert_int_equal(parse(PKT("\0\1f\0octet\0windowsize\00065535\0")), 0);
	assert_int_equal(req.windowsize, TFTP_WINDOW_MAX);
	assert_int_equal(parse(PKT("\0\1f\0octet\0windowsize\0000\0")), -EINVAL);
	assert_int_equal(parse(PKT("\0\1f\0octet\0windowsize\00065536\0")),
			 -EINVAL);
}

static void test_tsize_value(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1f\0octet\0tsize\00012345678901\0")), 0);
	assert_true(req.tsize);
	assert_int_equal(parse(PKT("\0\1f\0octet\0tsize\0abc\0")), -EINVAL);
}

/* ---- malformed requests ---------------------------------------------------- */

static void test_too_short(void **state)
{
	(void)state;
	assert_int_equal(parse(NULL, 0), -EBADMSG);
	assert_int_equal(parse(PKT("\0")), -EBADMSG);
	assert_int_equal(parse(PKT("\0\1")), -EBADMSG);
}

static void test_unknown_opcodes(void **state)
{
	static const uint8_t ops[] = { 0, 3, 4, 5, 6, 7, 255 };

	(void)state;
	for (size_t i = 0; i < sizeof(ops); i++) {
		uint8_t p[] = { 0, ops[i], 'f', 0, 'o', 'c', 't', 'e', 't', 0 };

		assert_int_equal(parse(p, sizeof(p)), -EOPNOTSUPP);
	}
	assert_int_equal(parse(PKT("\1\1f\0octet\0")), -EOPNOTSUPP);
}

static void test_missing_nuls(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1file")), -EBADMSG);
	assert_int_equal(parse(PKT("\0\1file\0octet")), -EBADMSG);
	assert_int_equal(parse(PKT("\0\1file\0octet\0blksize")), -EBADMSG);
	assert_int_equal(parse(PKT("\0\1file\0octet\0blksize\0")), -EBADMSG);
	assert_int_equal(parse(PKT("\0\1file\0octet\0blksize\0001024")),
			 -EBADMSG);
	assert_int_equal(parse(PKT("\0\1file\0octet\0blksize\0001024\0tsize")),
			 -EBADMSG);
}

static void test_empty_name_and_bad_modes(void **state)
{
	(void)state;
	assert_int_equal(parse(PKT("\0\1\0octet\0")), -EBADMSG);
	assert_int_equal(parse(PKT("\0\1f\0\0")), -EPROTONOSUPPORT);
	assert_int_equal(parse(PKT("\0\1f\0mail\0")), -EPROTONOSUPPORT);
	assert_int_equal(parse(PKT("\0\1f\0binary\0")), -EPROTONOSUPPORT);
	assert_int_equal(parse(PKT("\0\1f\0octets\0")), -EPROTONOSUPPORT);
	assert_int_equal(parse(PKT("\0\1f\0octe\0")), -EPROTONOSUPPORT);
}

static void test_name_length(void **state)
{
	uint8_t p[TFTP_NAME_MAX + 16];
	size_t n;

	(void)state;
	/* the longest name that fits, then one byte more */
	for (int extra = 0; extra < 2; extra++) {
		n = 0;
		p[n++] = 0;
		p[n++] = 1;
		memset(p + n, 'a', TFTP_NAME_MAX - 1 + (size_t)extra);
		n += TFTP_NAME_MAX - 1 + (size_t)extra;
		p[n++] = 0;
		memcpy(p + n, "octet", 6);
		n += 6;
		assert_int_equal(parse(p, n), extra ? -ENAMETOOLONG : 0);
		if (!extra)
			assert_int_equal(strlen(req.filename),
					 TFTP_NAME_MAX - 1);
	}
}

static void test_name_with_bytes_kept(void **state)
{
	(void)state;
	/* the parser keeps names as sent; cleaning is tftp_clean_path's */
	assert_int_equal(parse(PKT("\0\1../x\\y\xff\0octet\0")), 0);
	assert_string_equal(req.filename, "../x\\y\xff");
}

static void test_error_codes(void **state)
{
	(void)state;
	assert_int_equal(tftp_parse_errcode(-EINVAL), TFTP_EOPTNEG);
	assert_int_equal(tftp_parse_errcode(-ENAMETOOLONG), TFTP_EACCESS);
	assert_int_equal(tftp_parse_errcode(-EBADMSG), TFTP_EBADOP);
	assert_int_equal(tftp_parse_errcode(-EOPNOTSUPP), TFTP_EBADOP);
	assert_int_equal(tftp_parse_errcode(-EPROTONOSUPPORT), TFTP_EBADOP);
}

/* ---- path cleaning ------------------------------------------------------------ */

static void expect_path(const char *in, int rc, const char *out)
{
	char buf[TFTP_NAME_MAX];
	int got = tftp_clean_path(in, buf, sizeof(buf));

	if (got != rc)
		fail_msg("tftp_clean_path(\"%s\") = %d, want %d", in, got, rc);
	if (!rc && strcmp(buf, out))
		fail_msg("tftp_clean_path(\"%s\") = \"%s\", want \"%s\"", in,
			 buf, out);
}

static void test_path_relative_to_root(void **state)
{
	(void)state;
	expect_path("f", 0, "f");
	expect_path("/f", 0, "f");
	expect_path("///a//b/", 0, "a/b");
	expect_path("./a/./b", 0, "a/b");
	expect_path("/boot/pxelinux.cfg/default", 0, "boot/pxelinux.cfg/default");
	expect_path("a..b/..c/c..", 0, "a..b/..c/c..");
	expect_path("...", 0, "...");
	expect_path("a\\..\\b", 0, "a\\..\\b");	/* '\' is just a byte */
}

static void test_path_dotdot_refused(void **state)
{
	(void)state;
	expect_path("..", -EACCES, NULL);
	expect_path("../etc/passwd", -EACCES, NULL);
	expect_path("/../x", -EACCES, NULL);
	expect_path("a/../b", -EACCES, NULL);	/* even if it stays inside */
	expect_path("a/..", -EACCES, NULL);
	expect_path("a//..//", -EACCES, NULL);
}

static void test_path_empty(void **state)
{
	(void)state;
	expect_path("", -ENOENT, NULL);
	expect_path("/", -ENOENT, NULL);
	expect_path("/./", -ENOENT, NULL);
	expect_path(".", -ENOENT, NULL);
}

static void test_path_too_long(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(tftp_clean_path("1234567", out, sizeof(out)), 0);
	assert_int_equal(tftp_clean_path("12345678", out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_int_equal(tftp_clean_path("123/567", out, sizeof(out)), 0);
	assert_int_equal(tftp_clean_path("123/5678", out, sizeof(out)),
			 -ENAMETOOLONG);
	assert_int_equal(tftp_clean_path("x", out, 0), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rrq_plain),
	    cmocka_unit_test(test_wrq_and_modes),
	    cmocka_unit_test(test_all_options),
	    cmocka_unit_test(test_option_names_any_case),
	    cmocka_unit_test(test_unknown_options_ignored),
	    cmocka_unit_test(test_repeated_option_keeps_first),
	    cmocka_unit_test(test_trailing_nul_padding),
	    cmocka_unit_test(test_blksize_bounds),
	    cmocka_unit_test(test_timeout_bounds),
	    cmocka_unit_test(test_windowsize_bounds),
	    cmocka_unit_test(test_tsize_value),
	    cmocka_unit_test(test_too_short),
	    cmocka_unit_test(test_unknown_opcodes),
	    cmocka_unit_test(test_missing_nuls),
	    cmocka_unit_test(test_empty_name_and_bad_modes),
	    cmocka_unit_test(test_name_length),
	    cmocka_unit_test(test_name_with_bytes_kept),
	    cmocka_unit_test(test_error_codes),
	    cmocka_unit_test(test_path_relative_to_root),
	    cmocka_unit_test(test_path_dotdot_refused),
	    cmocka_unit_test(test_path_empty),
	    cmocka_unit_test(test_path_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
