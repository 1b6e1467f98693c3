// SPDX-License-Identifier: MIT
/* test_ndp.c: ICMPv6, neighbour discovery and router advertisements of the
 * router, driven through a callback port with crafted frames. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netdev.h"
#include "patchbay.h"
#include "pb.h"
#include "router.h"

#define MAX_RX 64

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0, 0x66, 0, 1 };
/* fe80::5054:ff:fe66:1 */
static const uint8_t guest_ll[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
				      0x50, 0x54, 0, 0xff, 0xfe, 0x66, 0, 1 };
static const uint8_t all_routers[16] = { 0xff, 2, [15] = 2 };

struct lab {
	pb_t *pb;
	int port;
	struct router *r;
	uint64_t now;
	uint8_t rx[MAX_RX][2048];
	size_t rxlen[MAX_RX];
	unsigned nrx;
};

static void lab_rx(void *opaque, const void *frame, size_t len)
{
	struct lab *l = opaque;

	if (l->nrx < MAX_RX && len <= sizeof(l->rx[0])) {
		memcpy(l->rx[l->nrx], frame, len);
		l->rxlen[l->nrx++] = len;
	}
}

static uint64_t lab_clock(void *opaque)
{
	return ((struct lab *)opaque)->now;
}

static void lab_log(void *opaque, enum pb_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)msg;
}

static struct lab *lab_open(const char *extra)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_ERR, .log_fn = lab_log,
				 .max_ports = 8, .max_segments = 2 };
	struct lab *l = calloc(1, sizeof(*l));
	char spec[256];
	int nd;

	assert_non_null(l);
	assert_int_equal(pb_new(&cfg, &l->pb), 0);
	l->now = 1000 * NS_PER_SEC;
	l->pb->loop.clock = lab_clock;
	l->pb->loop.clock_opaque = l;
	assert_int_equal(pb_segment_add(l->pb, "switch,id=s"), 0);
	snprintf(spec, sizeof(spec), "user,id=u,dns-upstream=127.0.0.1:9%s", extra);
	assert_int_equal(pb_netdev_add(l->pb, spec), 0);
	l->port = pb_callback_port_add(l->pb, "c", "s", lab_rx, l);
	assert_true(l->port >= 0);
	nd = netdev_find(l->pb, "u");
	l->r = router_get(l->pb, (uint32_t)nd);
	assert_non_null(l->r);
	return l;
}

static void lab_close(struct lab *l)
{
	pb_free(l->pb);
	free(l);
}

static uint16_t sum_fold(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* An ICMPv6 frame from the guest; msg has its checksum field zero. */
static size_t icmp6_frame(uint8_t *f, const uint8_t *dst_mac,
			  const uint8_t *src, const uint8_t *dst, uint8_t hlim,
			  const uint8_t *msg, size_t mlen)
{
	uint32_t ph = 0;
	uint16_t ck;

	memcpy(f, dst_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	f[12] = 0x86;
	f[13] = 0xdd;
	memset(f + 14, 0, 40);
	f[14] = 0x60;
	f[18] = (uint8_t)(mlen >> 8);
	f[19] = (uint8_t)mlen;
	f[20] = 58;
	f[21] = hlim;
	memcpy(f + 22, src, 16);
	memcpy(f + 38, dst, 16);
	memcpy(f + 54, msg, mlen);
	ph = sum_fold(f + 22, 32, 0) + 58 + (uint32_t)mlen;
	ck = (uint16_t)~sum_fold(f + 54, mlen, ph);
	f[56] = (uint8_t)(ck >> 8);
	f[57] = (uint8_t)ck;
	return 54 + mlen;
}

static void send_frame(struct lab *l, const uint8_t *f, size_t len)
{
	assert_int_equal(pb_port_send(l->pb, l->port, f, len), 0);
}

/* The frames of ICMPv6 type t the router sent since the last reset. */
static int find_icmp6(struct lab *l, uint8_t t)
{
	for (unsigned i = 0; i < l->nrx; i++)
		if (l->rxlen[i] >= 58 && l->rx[i][12] == 0x86 &&
		    l->rx[i][13] == 0xdd && l->rx[i][20] == 58 &&
		    l->rx[i][54] == t)
			return (int)i;
	return -1;
}

/* An output frame's ICMPv6 checksum is right. */
static void assert_csum(struct lab *l, int i)
{
	const uint8_t *f = l->rx[i];
	size_t plen = (size_t)(f[18] << 8 | f[19]);
	uint32_t ph = sum_fold(f + 22, 32, 0) + 58 + (uint32_t)plen;

	assert_int_equal(sum_fold(f + 54, plen, ph), 0xffff);
}

static const struct ip6_stats *st(struct lab *l)
{
	return &l->r->ip6.st;
}

static void test_rs_gets_ra_with_options(void **state)
{
	struct lab *l = lab_open(",dnssearch=lab.test");
	uint8_t rs[16] = { 133, 0, 0, 0, 0, 0, 0, 0, 1, 1 };
	uint8_t f[256];
	int i;

	(void)state;
	memcpy(rs + 10, guest_mac, 6);
	l->now += 10 * NS_PER_SEC;	/* well after any start-up RA */
	l->nrx = 0;
	send_frame(l, f, icmp6_frame(f, (const uint8_t *)"\x33\x33\0\0\0\x02",
				     guest_ll, all_routers, 255, rs, sizeof(rs)));
	i = find_icmp6(l, 134);
	assert_true(i >= 0);
	assert_csum(l, i);
	assert_int_equal(l->rx[i][21], 255);	/* hop limit of NDP */
	/* walk the options: SLLA, MTU, prefix, RDNSS, DNSSL */
	unsigned seen = 0;
	const uint8_t *o = l->rx[i] + 54 + 16;
	size_t left = l->rxlen[i] - 54 - 16;

	while (left >= 8) {
		size_t ol = (size_t)o[1] * 8;

		assert_true(ol >= 8 && ol <= left);
		seen |= 1u << o[0];
		if (o[0] == 3) {
			assert_int_equal(o[2], 64);
			assert_int_equal(o[3] & 0xc0, 0xc0);
			assert_int_equal(o[16], 0xfe);
			assert_int_equal(o[17], 0xc0);
		}
		o += ol;
		left -= ol;
	}
	assert_int_equal(left, 0);
	assert_true(seen & (1u << 1));
	assert_true(seen & (1u << 3));
	assert_true(seen & (1u << 5));
	assert_true(seen & (1u << 25));
	assert_true(seen & (1u << 31));
	lab_close(l);
}

static void test_ns_for_router_and_not_for_guest(void **state)
{
	struct lab *l = lab_open("");
	uint8_t ns[32] = { 135 };
	uint8_t f[256];
	uint8_t host[16] = { 0xfe, 0xc0, [15] = 2 };
	uint8_t other[16] = { 0xfe, 0xc0, [15] = 0x77 };
	uint8_t snm[16] = { 0xff, 2, [11] = 1, [12] = 0xff, [15] = 2 };
	int i;

	(void)state;
	memcpy(ns + 8, host, 16);
	ns[24] = 1;
	ns[25] = 1;
	memcpy(ns + 26, guest_mac, 6);
	l->nrx = 0;
	send_frame(l, f, icmp6_frame(f, (const uint8_t *)"\x33\x33\xff\0\0\x02",
				     guest_ll, snm, 255, ns, sizeof(ns)));
	i = find_icmp6(l, 136);
	assert_true(i >= 0);
	assert_csum(l, i);
	assert_int_equal(l->rx[i][54 + 4] & 0xe0, 0xe0);	/* R, S, O */
	assert_memory_equal(l->rx[i] + 54 + 8, host, 16);
	/* a guest's address: no answer, ever */
	memcpy(ns + 8, other, 16);
	snm[15] = 0x77;
	l->nrx = 0;
	send_frame(l, f, icmp6_frame(f, (const uint8_t *)"\x33\x33\xff\0\0\x77",
				     guest_ll, snm, 255, ns, sizeof(ns)));
	assert_int_equal(find_icmp6(l, 136), -1);
	lab_close(l);
}

static void test_malformed_ndp_counted(void **state)
{
	struct lab *l = lab_open("");
	uint8_t ns[40] = { 135 };
	uint8_t f[256];
	uint8_t host[16] = { 0xfe, 0xc0, [15] = 2 };
	uint8_t snm[16] = { 0xff, 2, [11] = 1, [12] = 0xff, [15] = 2 };
	const uint8_t *mm = (const uint8_t *)"\x33\x33\xff\0\0\x02";
	uint64_t bad;

	(void)state;
	memcpy(ns + 8, host, 16);
	bad = st(l)->nd_invalid;
	/* a zero-length option: the classic endless loop */
	ns[24] = 1;
	ns[25] = 0;
	send_frame(l, f, icmp6_frame(f, mm, guest_ll, snm, 255, ns, 32));
	/* an option running past the end */
	ns[25] = 3;
	send_frame(l, f, icmp6_frame(f, mm, guest_ll, snm, 255, ns, 32));
	/* a hop limit that says it was routed */
	ns[25] = 1;
	send_frame(l, f, icmp6_frame(f, mm, guest_ll, snm, 64, ns, 32));
	/* too short for the target */
	send_frame(l, f, icmp6_frame(f, mm, guest_ll, snm, 255, ns, 16));
	assert_int_equal(st(l)->nd_invalid - bad, 4);
	/* a DAD probe (unspecified source) with an SLLA option is invalid */
	static const uint8_t unspec[16];

	send_frame(l, f, icmp6_frame(f, mm, unspec, snm, 255, ns, 32));
	assert_int_equal(st(l)->nd_invalid - bad, 5);
	/* a bad checksum */
	size_t n = icmp6_frame(f, mm, guest_ll, snm, 255, ns, 32);
	uint64_t m = st(l)->malformed;

	f[56] ^= 0xff;
	send_frame(l, f, n);
	assert_int_equal(st(l)->malformed - m, 1);
	lab_close(l);
}

static void test_echo_and_dad_defence(void **state)
{
	struct lab *l = lab_open("");
	uint8_t echo[12] = { 128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'b', '6', '!' };
	uint8_t f[256];
	uint8_t host[16] = { 0xfe, 0xc0, [15] = 2 };
	static const uint8_t unspec[16];
	uint8_t snm[16] = { 0xff, 2, [11] = 1, [12] = 0xff, [15] = 2 };
	uint8_t ns[24] = { 135 };
	int i;

	(void)state;
	l->nrx = 0;
	send_frame(l, f, icmp6_frame(f, (const uint8_t *)"\x52\x55\x0a\0\x02\x02",
				     guest_ll, host, 64, echo, sizeof(echo)));
	i = find_icmp6(l, 129);
	assert_true(i >= 0);
	assert_csum(l, i);
	assert_memory_equal(l->rx[i] + 54 + 4, echo + 4, sizeof(echo) - 4);
	/* someone probing one of our addresses (DAD): defended to all nodes */
	memcpy(ns + 8, host, 16);
	l->nrx = 0;
	send_frame(l, f, icmp6_frame(f, (const uint8_t *)"\x33\x33\xff\0\0\x02",
				     unspec, snm, 255, ns, sizeof(ns)));
	i = find_icmp6(l, 136);
	assert_true(i >= 0);
	assert_int_equal(l->rx[i][38], 0xff);	/* to ff02::1 */
	assert_int_equal(l->rx[i][54 + 4] & 0x40, 0);	/* not "solicited" */
	lab_close(l);
}

static void test_rs_flood_limited(void **state)
{
	struct lab *l = lab_open("");
	uint8_t rs[8] = { 133 };
	uint8_t f[128];
	uint64_t sent;

	(void)state;
	l->now += 10 * NS_PER_SEC;
	sent = st(l)->ra_sent;
	for (int k = 0; k < 200; k++)
		send_frame(l, f, icmp6_frame(f, (const uint8_t *)"\x33\x33\0\0\0\x02",
					     guest_ll, all_routers, 255, rs, sizeof(rs)));
	assert_int_equal(st(l)->rs, 200);
	assert_true(st(l)->ra_sent - sent <= 1);
	assert_true(st(l)->ra_limited >= 199);
	lab_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rs_gets_ra_with_options),
		cmocka_unit_test(test_ns_for_router_and_not_for_guest),
		cmocka_unit_test(test_malformed_ndp_counted),
		cmocka_unit_test(test_echo_and_dad_defence),
		cmocka_unit_test(test_rs_flood_limited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
