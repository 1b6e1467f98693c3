// SPDX-License-Identifier: MIT
/* test_gso.c: unit tests of software segmentation and checksum completion
 * (gso.c), and of port_enqueue() doing it for a port without offloads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csum.h"
#include "gso.h"
#include "port.h"
#include "seg.h"

#define PAYLOAD 5000
#define MSS 1448
#define SEQ0 0xfffff000u	/* wraps within the test */

static uint8_t frame[ETH_HLEN_MIN + 40 + 20 + PAYLOAD];
static uint8_t out[2048];

/* A fresh frame with Ethernet and IP headers (10.0.2.15 -> 10.0.2.2 or
 * fe..1 -> fe..2) for l4len bytes of protocol proto; returns the
 * pseudo-header sum. */
static uint32_t put_ip(bool v6, uint8_t proto, size_t l4len, uint16_t id)
{
	uint8_t *ip = frame + ETH_HLEN_MIN;
	uint16_t ck;

	memset(frame, 0, sizeof(frame));
	frame[12] = v6 ? 0x86 : 0x08;
	frame[13] = v6 ? 0xdd : 0x00;
	if (v6) {
		ip[0] = 0x60;
		ip[4] = (uint8_t)(l4len >> 8);
		ip[5] = (uint8_t)l4len;
		ip[6] = proto;
		ip[7] = 64;
		ip[8] = 0xfe;
		ip[23] = 1;
		ip[24] = 0xfe;
		ip[39] = 2;
		return csum_pseudo6(ip + 8, ip + 24, proto, (uint32_t)l4len);
	}
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + l4len) >> 8);
	ip[3] = (uint8_t)(20 + l4len);
	ip[4] = (uint8_t)(id >> 8);
	ip[5] = (uint8_t)id;
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, "\x0a\x00\x02\x0f\x0a\x00\x02\x02", 8);
	ck = csum_fold(csum_add(0, ip, 20));
	memcpy(ip + 10, &ck, 2);
	return csum_pseudo4(0x0f02000a, 0x0202000a, proto, (uint16_t)l4len);
}

/* A TCP super-segment as a TAP with offloads hands it over: lengths of the
 * whole, checksum field holding the pseudo-header sum. */
static size_t build(bool v6, uint8_t flags, struct frame_meta *m)
{
	size_t l3 = v6 ? 40 : 20, l4 = ETH_HLEN_MIN + l3;
	uint8_t *th = frame + l4;
	size_t tcplen = 20 + PAYLOAD;
	uint32_t ph;
	uint16_t ck;

	ph = put_ip(v6, 6, tcplen, 0x12ff);	/* IDs wrap too */
	th[0] = 0x12;
	th[1] = 0x34;
	th[3] = 80;
	put_be32(th + 4, SEQ0);
	th[12] = 5 << 4;
	th[13] = flags;
	th[14] = 0xff;
	for (size_t i = 0; i < PAYLOAD; i++)
		th[20 + i] = (uint8_t)(i * 7 + i / 251);
	ck = (uint16_t)~csum_fold(ph);
	memcpy(th + 16, &ck, 2);
	memset(m, 0, sizeof(*m));
	m->flags = FM_NEEDS_CSUM;
	m->gso_type = v6 ? FM_GSO_TCPV6 : FM_GSO_TCPV4;
	m->gso_size = MSS;
	m->csum_start = (uint16_t)l4;
	m->csum_offset = 16;
	m->hdr_len = (uint16_t)(l4 + 20);
	return l4 + tcplen;
}

/* Segments must be what the kernel would have sent: valid checksums,
 * lengths, IDs and sequence numbers, the payload in order, FIN/PSH on the
 * last piece only, CWR on the first only. */
static void check_segments(bool v6)
{
	struct frame_meta m;
	size_t len = build(v6, 0x80 | 0x10 | 0x08 | 0x01, &m), l3 = v6 ? 40 : 20;
	size_t l4 = ETH_HLEN_MIN + l3, got = 0;
	struct gso_plan pl;

	assert_int_equal(gso_plan(frame, len, &m, &pl), 0);
	assert_int_equal(pl.nseg, (PAYLOAD + MSS - 1) / MSS);
	assert_int_equal(pl.hdr, l4 + 20);
	for (unsigned i = 0; i < pl.nseg; i++) {
		size_t n = gso_segment(frame, len, &m, &pl, i, out);
		size_t plen = n - l4 - 20;
		uint8_t *ip = out + ETH_HLEN_MIN, *th = out + l4;
		uint32_t ph;

		assert_int_equal(plen, MIN((size_t)MSS, PAYLOAD - got));
		if (v6) {
			assert_int_equal(ip[4] << 8 | ip[5], 20 + plen);
			ph = csum_pseudo6(ip + 8, ip + 24, 6,
					  (uint32_t)(20 + plen));
		} else {
			assert_int_equal(ip[2] << 8 | ip[3], 40 + plen);
			assert_int_equal(ip[4] << 8 | ip[5],
					 (uint16_t)(0x12ff + i));
			assert_int_equal(csum_fold(csum_add(0, ip, 20)), 0);
			ph = csum_pseudo4(0x0f02000a, 0x0202000a, 6,
					  (uint16_t)(20 + plen));
		}
		assert_int_equal(csum_fold(csum_add(ph, th, 20 + plen)), 0);
		assert_int_equal(get_be32(th + 4), SEQ0 + (uint32_t)got);
		assert_int_equal(!!(th[13] & 0x01), i + 1 == pl.nseg);
		assert_int_equal(!!(th[13] & 0x08), i + 1 == pl.nseg);
		assert_int_equal(!!(th[13] & 0x80), i == 0);
		assert_true(th[13] & 0x10);
		assert_memory_equal(th + 20, frame + l4 + 20 + got, plen);
		got += plen;
	}
	assert_int_equal(got, PAYLOAD);
}

static void test_segment_v4(void **state)
{
	(void)state;
	check_segments(false);
}

static void test_segment_v6(void **state)
{
	(void)state;
	check_segments(true);
}

/* A UDP datagram whose checksum was left to finish: computed in place. */
static void test_checksum_only_udp(void **state)
{
	struct frame_meta m = { .flags = FM_NEEDS_CSUM, .csum_start = 34,
				.csum_offset = 6 };
	uint8_t *ip = frame + 14, *u = frame + 34;
	struct gso_plan pl;
	uint16_t ck;
	size_t len = 14 + 20 + 8 + 100;

	(void)state;
	memset(frame, 0, sizeof(frame));
	frame[12] = 0x08;
	ip[0] = 0x45;
	ip[9] = 17;
	memcpy(ip + 12, "\x0a\x00\x02\x0f\x0a\x00\x02\x02", 8);
	u[5] = 108;
	for (int i = 0; i < 100; i++)
		u[8 + i] = (uint8_t)i;
	ck = (uint16_t)~csum_fold(csum_pseudo4(0x0f02000a, 0x0202000a, 17, 108));
	memcpy(u + 6, &ck, 2);
	assert_int_equal(gso_plan(frame, len, &m, &pl), 0);
	assert_int_equal(pl.nseg, 1);
	assert_int_equal(gso_segment(frame, len, &m, &pl, 0, out), len);
	assert_int_equal(csum_fold(csum_add(csum_pseudo4(0x0f02000a, 0x0202000a,
							 17, 108),
					    out + 34, 108)), 0);
}

/* A UDP super-datagram (USO) as a TAP hands it over: the datagrams an
 * application wrote with UDP_SEGMENT, 1000 bytes each but the last, under
 * one set of headers; it comes out as those datagrams, each with its own
 * IP length (and ID), UDP length and checksum. */
static void check_udp_segments(bool v6)
{
	size_t l3 = v6 ? 40 : 20, l4 = ETH_HLEN_MIN + l3, got = 0;
	size_t ulen = 8 + 3500, len = l4 + ulen;
	uint8_t *ip = frame + ETH_HLEN_MIN, *u = frame + l4;
	struct frame_meta m = { .flags = FM_NEEDS_CSUM,
				.gso_type = FM_GSO_UDP_L4, .gso_size = 1000,
				.csum_start = (uint16_t)l4, .csum_offset = 6 };
	struct gso_plan pl;
	uint16_t ck;

	uint32_t ph0 = put_ip(v6, 17, ulen, 7);

	u[0] = 0x9c;
	u[3] = 53;
	u[4] = (uint8_t)(ulen >> 8);
	u[5] = (uint8_t)ulen;
	for (size_t i = 0; i < ulen - 8; i++)
		u[8 + i] = (uint8_t)(i * 13 + i / 253);
	ck = (uint16_t)~csum_fold(ph0);
	memcpy(u + 6, &ck, 2);

	assert_int_equal(gso_plan(frame, len, &m, &pl), 0);
	assert_int_equal(pl.nseg, 4);
	assert_int_equal(pl.hdr, l4 + 8);
	for (unsigned i = 0; i < pl.nseg; i++) {
		size_t n = gso_segment(frame, len, &m, &pl, i, out);
		size_t plen = n - l4 - 8;
		uint8_t *oip = out + ETH_HLEN_MIN, *ou = out + l4;
		uint32_t ph;

		assert_int_equal(plen, MIN((size_t)1000, 3500 - got));
		assert_int_equal(ou[4] << 8 | ou[5], 8 + plen);
		assert_int_equal(ou[0] << 8 | ou[1], 0x9c00);
		if (v6) {
			assert_int_equal(oip[4] << 8 | oip[5], 8 + plen);
			ph = csum_pseudo6(oip + 8, oip + 24, 17,
					  (uint32_t)(8 + plen));
		} else {
			assert_int_equal(oip[2] << 8 | oip[3], 28 + plen);
			assert_int_equal(oip[4] << 8 | oip[5], 7 + i);
			assert_int_equal(csum_fold(csum_add(0, oip, 20)), 0);
			ph = csum_pseudo4(0x0f02000a, 0x0202000a, 17,
					  (uint16_t)(8 + plen));
		}
		assert_int_equal(csum_fold(csum_add(ph, ou, 8 + plen)), 0);
		assert_memory_equal(ou + 8, frame + l4 + 8 + got, plen);
		got += plen;
	}
	assert_int_equal(got, 3500);
	/* the family in the frame must be UDP's */
	ip[v6 ? 6 : 9] = 6;
	assert_int_equal(gso_plan(frame, len, &m, &pl), -EINVAL);
	/* and a port takes it only if it says USO */
	assert_false(gso_port_takes(PORT_OFF_CSUM | PORT_OFF_TSO4 |
				    PORT_OFF_TSO6, &m));
	assert_true(gso_port_takes(PORT_OFF_CSUM | PORT_OFF_USO, &m));
}

static void test_segment_udp_v4(void **state)
{
	(void)state;
	check_udp_segments(false);
}

static void test_segment_udp_v6(void **state)
{
	(void)state;
	check_udp_segments(true);
}

/* Requests that lie about the frame are refused, never followed. */
static void test_malformed(void **state)
{
	struct frame_meta m, bad;
	size_t len = build(false, 0x10, &m);
	struct gso_plan pl;

	(void)state;
	bad = m;
	bad.gso_size = 0;
	assert_int_equal(gso_plan(frame, len, &bad, &pl), -EINVAL);
	bad = m;
	bad.gso_size = 1;	/* 5000 segments: too many */
	assert_int_equal(gso_plan(frame, len, &bad, &pl), -EINVAL);
	bad = m;
	bad.gso_type = FM_GSO_TCPV6;	/* an IPv4 frame */
	assert_int_equal(gso_plan(frame, len, &bad, &pl), -EINVAL);
	bad = m;
	bad.gso_type = 3;	/* UFO: never offered */
	assert_int_equal(gso_plan(frame, len, &bad, &pl), -EINVAL);
	assert_int_equal(gso_plan(frame, 14 + 20 + 10, &m, &pl), -EINVAL);
	frame[14 + 20 + 12] = 0xf0;	/* doff 60 runs past a short frame */
	assert_int_equal(gso_plan(frame, 14 + 20 + 40, &m, &pl), -EINVAL);
	frame[14 + 20 + 12] = 0x40;	/* doff 16 < 20 */
	assert_int_equal(gso_plan(frame, len, &m, &pl), -EINVAL);
	bad = (struct frame_meta){ .flags = FM_NEEDS_CSUM, .csum_start = 60,
				   .csum_offset = 16 };
	assert_int_equal(gso_plan(frame, 70, &bad, &pl), -EINVAL);
	bad.csum_start = 4;	/* inside the Ethernet header */
	assert_int_equal(gso_plan(frame, 70, &bad, &pl), -EINVAL);
}

/* Through a segment: a callback port (no offloads) gets plain, checksummed
 * frames of at most MSS payload; the super-segment never reaches it. */
static size_t rx_count, rx_bytes, rx_max;
static bool rx_bad;

static void rx(void *opaque, const void *f, size_t len)
{
	const uint8_t *b = f;

	(void)opaque;
	rx_count++;
	rx_bytes += len - 54;
	rx_max = MAX(rx_max, len);
	if (csum_fold(csum_add(csum_pseudo4(0x0f02000a, 0x0202000a, 6,
					    (uint16_t)(len - 34)),
			       b + 34, len - 34)))
		rx_bad = true;
}

static void test_port_without_offloads(void **state)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_ERR, .max_ports = 4,
				 .max_segments = 1 };
	struct frame_meta m;
	struct pb *pb;
	size_t len = build(false, 0x18, &m);
	int a, b;

	(void)state;
	assert_int_equal(pb_new(&cfg, &pb), 0);
	assert_int_equal(pb_segment_add(pb, "hub,id=h"), 0);
	a = pb_callback_port_add(pb, "a", "h", rx, NULL);
	b = pb_callback_port_add(pb, "b", "h", rx, NULL);
	assert_true(a >= 0 && b >= 0);
	pb->in_round = true;
	seg_input_m(pb, &pb->ports[a], frame, len, &m);
	seg_flush(pb);
	pb->in_round = false;
	assert_int_equal(rx_count, (PAYLOAD + MSS - 1) / MSS);
	assert_int_equal(rx_bytes, PAYLOAD);
	assert_int_equal(rx_max, 54 + MSS);
	assert_false(rx_bad);
	/* a lie is a counted drop at the port that could not take it */
	m.gso_size = 0;
	pb->in_round = true;
	seg_input_m(pb, &pb->ports[a], frame, len, &m);
	seg_flush(pb);
	pb->in_round = false;
	assert_int_equal(pb->ports[b].drops[DROP_BAD_OFFLOAD], 1);
	pb_free(pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_v4),
		cmocka_unit_test(test_segment_v6),
		cmocka_unit_test(test_checksum_only_udp),
		cmocka_unit_test(test_segment_udp_v4),
		cmocka_unit_test(test_segment_udp_v6),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_port_without_offloads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
