// SPDX-License-Identifier: MIT
/* test_ip6.c: IPv6 extension header walking and the DHCPv6 parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dhcp6.h"
#include "ip6.h"

static int walk(const uint8_t *p, size_t n, uint8_t nh, uint8_t *out_nh,
		size_t *off, uint8_t *code, bool *icmp)
{
	struct cursor c = cur_init(p, n);

	*off = 40;
	*out_nh = nh;
	return ip6_walk_ext(&c, out_nh, off, code, icmp, false);
}

static void test_no_ext(void **state)
{
	uint8_t nh, code;
	size_t off;
	bool icmp;
	const uint8_t tcp[20] = { 0 };

	(void)state;
	assert_int_equal(walk(tcp, sizeof(tcp), 6, &nh, &off, &code, &icmp), 0);
	assert_int_equal(nh, 6);
	assert_int_equal(off, 40);
}

static void test_hbh_padn_then_dstopts(void **state)
{
	/* HBH (next DSTOPTS) with PadN, DSTOPTS (next UDP) with Pad1s */
	const uint8_t p[] = { 60, 0, 1, 4, 0, 0, 0, 0,
			      17, 0, 0, 0, 0, 0, 0, 0, 0xaa };
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	assert_int_equal(walk(p, sizeof(p), 0, &nh, &off, &code, &icmp), 0);
	assert_int_equal(nh, 17);
	assert_int_equal(off, 56);
}

static void test_unknown_option_actions(void **state)
{
	uint8_t p[8] = { 17, 0, 0, 4, 0, 0, 0, 0 };
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	p[2] = 0x05;	/* 00: skip */
	assert_int_equal(walk(p, 8, 60, &nh, &off, &code, &icmp), 0);
	p[2] = 0x45;	/* 01: discard silently */
	assert_int_equal(walk(p, 8, 60, &nh, &off, &code, &icmp), -EBADMSG);
	p[2] = 0x85;	/* 10: discard + ICMP, pointer at the option */
	assert_int_equal(walk(p, 8, 60, &nh, &off, &code, &icmp), -EPROTO);
	assert_true(icmp);
	assert_int_equal(code, 2);
	assert_int_equal(off, 42);
}

static void test_hbh_not_first(void **state)
{
	const uint8_t p[] = { 0, 0, 1, 4, 0, 0, 0, 0, 6, 0, 1, 4, 0, 0, 0, 0 };
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	assert_int_equal(walk(p, sizeof(p), 60, &nh, &off, &code, &icmp), -EPROTO);
	assert_int_equal(code, 1);
}

static void test_routing_segments_left(void **state)
{
	const uint8_t p[] = { 6, 0, 4, 1, 0, 0, 0, 0 };
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	assert_int_equal(walk(p, sizeof(p), 43, &nh, &off, &code, &icmp), -EPROTO);
	assert_int_equal(code, 0);
	assert_int_equal(off, 42);
}

static void test_truncated_and_chain_limit(void **state)
{
	uint8_t p[8 * 12];
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	/* a header that claims more than there is */
	const uint8_t t[] = { 6, 3, 1, 4, 0, 0, 0, 0 };

	assert_int_equal(walk(t, sizeof(t), 60, &nh, &off, &code, &icmp), -EBADMSG);
	assert_int_equal(walk(t, 4, 60, &nh, &off, &code, &icmp), -EBADMSG);
	/* a long chain of destination options */
	for (int i = 0; i < 12; i++) {
		memset(p + 8 * i, 0, 8);
		p[8 * i] = 60;
		p[8 * i + 2] = 1;
		p[8 * i + 3] = 4;
	}
	assert_int_equal(walk(p, sizeof(p), 60, &nh, &off, &code, &icmp), -EBADMSG);
}

static void test_option_overrun(void **state)
{
	/* PadN claiming 10 bytes inside an 8-byte header */
	const uint8_t p[] = { 6, 0, 1, 10, 0, 0, 0, 0 };
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	assert_int_equal(walk(p, sizeof(p), 60, &nh, &off, &code, &icmp), -EBADMSG);
}

static void test_fragment_stops(void **state)
{
	const uint8_t p[] = { 17, 0, 0, 0, 0, 0, 0, 1 };
	uint8_t nh, code;
	size_t off;
	bool icmp;

	(void)state;
	assert_int_equal(walk(p, sizeof(p), 44, &nh, &off, &code, &icmp), 0);
	assert_int_equal(nh, 44);
}

static void test_dhcp6_parse(void **state)
{
	const uint8_t solicit[] = {
		1, 0xaa, 0xbb, 0xcc,
		0, 1, 0, 10, 0, 3, 0, 1, 1, 2, 3, 4, 5, 6,	/* client id */
		0, 3, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, /* IA_NA */
		0, 14, 0, 0,					/* rapid commit */
		0, 8, 0, 2, 0, 0,				/* elapsed */
	};
	struct dhcp6_msg m;

	(void)state;
	assert_int_equal(dhcp6_parse(solicit, sizeof(solicit), &m), 0);
	assert_int_equal(m.type, 1);
	assert_int_equal(m.duid_len, 10);
	assert_true(m.has_ia_na);
	assert_int_equal(m.iaid, 7);
	assert_true(m.rapid_commit);
	/* truncated option */
	assert_int_equal(dhcp6_parse(solicit, sizeof(solicit) - 1, &m), -EBADMSG);
	/* header only */
	assert_int_equal(dhcp6_parse(solicit, 4, &m), 0);
	assert_int_equal(dhcp6_parse(solicit, 3, &m), -EBADMSG);
}

static void test_dhcp6_bad_ids(void **state)
{
	uint8_t two_ids[] = { 1, 0, 0, 0, 0, 1, 0, 2, 0, 1, 0, 1, 0, 2, 0, 1 };
	uint8_t short_ia[] = { 1, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 1 };
	uint8_t big[4 + 4 + 200];
	struct dhcp6_msg m;

	(void)state;
	assert_int_equal(dhcp6_parse(two_ids, sizeof(two_ids), &m), -EBADMSG);
	assert_int_equal(dhcp6_parse(short_ia, sizeof(short_ia), &m), -EBADMSG);
	memset(big, 0, sizeof(big));
	big[0] = 1;
	big[5] = 1;	/* client id */
	big[6] = 0;
	big[7] = 200;	/* longer than a DUID may be */
	assert_int_equal(dhcp6_parse(big, sizeof(big), &m), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_ext),
		cmocka_unit_test(test_hbh_padn_then_dstopts),
		cmocka_unit_test(test_unknown_option_actions),
		cmocka_unit_test(test_hbh_not_first),
		cmocka_unit_test(test_routing_segments_left),
		cmocka_unit_test(test_truncated_and_chain_limit),
		cmocka_unit_test(test_option_overrun),
		cmocka_unit_test(test_fragment_stops),
		cmocka_unit_test(test_dhcp6_parse),
		cmocka_unit_test(test_dhcp6_bad_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
