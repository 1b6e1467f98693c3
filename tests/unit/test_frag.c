// SPDX-License-Identifier: MIT
/* test_frag.c: unit tests of IPv4 and IPv6 reassembly (frag.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frag.h"

#define TIMEOUT 1000 /* ns, the injected clock's unit */
#define MAXF 256     /* fragments one test builds at most */

#define A_SRC 0x0a00020fu /* 10.0.2.15 */
#define B_SRC 0x0a000210u /* 10.0.2.16 */
#define DST 0x0a000202u	  /* 10.0.2.2 */
#define PROTO_UDP 17

/* Header fields of a test datagram. */
struct hdr {
	uint32_t src, dst;
	uint16_t id;
	uint8_t proto;
	uint16_t flags;	    /* DF/RF bits to set (MF/offset come apart) */
	const uint8_t *opt; /* options of the first fragment */
	size_t optlen;	    /* multiple of 4, <= 40 */
};

/* Fragments of one datagram, each in its own malloc'd buffer. */
struct frags {
	size_t n;
	uint8_t *pkt[MAXF];
	size_t len[MAXF];
};

/* ---- helpers: an independent IPv4 writer, checksum and fragmenter ---- */

static uint16_t csum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t) (p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t) p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t) ~sum;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t) (p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 8);
	p[1] = (uint8_t) v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

/*
 * Write an IPv4 packet into buf: header of h (with options if opts), the
 * given payload, fragment offset off (bytes, multiple of 8) and MF.
 * Returns its length.
 */
static size_t ip_write(uint8_t *buf, const struct hdr *h, bool opts,
		       uint32_t off, bool mf, const uint8_t *payload,
		       size_t plen)
{
	size_t hlen = 20 + (opts ? h->optlen : 0);
	size_t len = hlen + plen;

	buf[0] = (uint8_t) (0x40 | hlen / 4);
	buf[1] = 0;
	put16(buf + 2, (uint32_t) len);
	put16(buf + 4, h->id);
	put16(buf + 6, h->flags | (mf ? 0x2000u : 0) | off / 8);
	buf[8] = 64;
	buf[9] = h->proto;
	put16(buf + 10, 0);
	put32(buf + 12, h->src);
	put32(buf + 16, h->dst);
	if (opts && h->optlen)
		memcpy(buf + 20, h->opt, h->optlen);
	put16(buf + 10, csum16(buf, hlen, 0));
	if (plen)
		memcpy(buf + hlen, payload, plen);
	return len;
}

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	return p;
}

/* One fragment with explicit offset, MF and payload, appended to fs. */
static void frag_add(struct frags *fs, const struct hdr *h, uint32_t off,
		     bool mf, const uint8_t *payload, size_t plen)
{
	bool first = off == 0;

	assert_true(fs->n < MAXF);
	fs->pkt[fs->n] = xmalloc(60 + plen);
	fs->len[fs->n] =
	    ip_write(fs->pkt[fs->n], h, first, off, mf, payload, plen);
	fs->n++;
}

/*
 * Split a datagram whose payload is payload[0..plen) the way a router does
 * for MTU mtu (RFC 791 section 3.2): the first fragment carries the
 * options, the others only the 20-byte header.
 */
static void fragment(struct frags *fs, const struct hdr *h,
		     const uint8_t *payload, size_t plen, size_t mtu)
{
	size_t pos = 0;

	fs->n = 0;
	while (pos < plen) {
		size_t hlen = 20 + (pos == 0 ? h->optlen : 0);
		size_t n = (mtu - hlen) & ~(size_t) 7;

		if (n >= plen - pos)
			n = plen - pos;
		frag_add(fs, h, (uint32_t) pos, pos + n < plen, payload + pos,
			 n);
		pos += n;
	}
}

static void frags_free(struct frags *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		free(fs->pkt[i]);
	fs->n = 0;
}

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t) xorshift(&seed);
}

/* Each stats drop counter adds up to the drops seen; call at the end. */
static void assert_stats_sane(const struct reasm *r)
{
	const struct reasm_stats *st = reasm_stats(r);

	assert_true(st->completed + st->overlaps + st->too_big + st->full +
			st->source_full +
			st->malformed + st->duplicates <=
		    st->fragments);
}

/* Pools empty: everything completed or expires; then free. */
static void teardown_reasm(struct reasm *r)
{
	assert_stats_sane(r);
	reasm_expire(r, UINT64_MAX);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_bytes(r), 0);
	reasm_free(r);
}

static int feed(struct reasm *r, const struct frags *fs, size_t i, uint64_t now,
		const uint8_t **out, size_t *outlen)
{
	return reasm_input(r, fs->pkt[i], fs->len[i], now, out, outlen);
}

/* Assert out is a well-formed reassembled datagram equal to expect. */
static void assert_datagram(const uint8_t *out, size_t outlen,
			    const uint8_t *expect, size_t len)
{
	size_t hlen;

	assert_non_null(out);
	assert_int_equal(outlen, len);
	assert_int_equal(out[0] >> 4, 4);
	hlen = (size_t) (out[0] & 0x0f) * 4;
	assert_true(hlen >= 20 && hlen <= outlen);
	assert_int_equal(be16(out + 2), outlen);
	assert_int_equal(be16(out + 6) & 0x3fff, 0); /* MF, offset */
	assert_int_equal(csum16(out, hlen, 0), 0);
	assert_memory_equal(out, expect, len);
}

/*
 * Feed fs in the order given (NULL: in order); every fragment but the last
 * is kept, the last completes a datagram that must equal expect.
 */
static void feed_all(struct reasm *r, const struct frags *fs,
		     const size_t *order, const uint8_t *expect, size_t len)
{
	const uint8_t *out;
	size_t outlen;

	for (size_t k = 0; k < fs->n; k++) {
		size_t i = order ? order[k] : k;
		int rc = feed(r, fs, i, k, &out, &outlen);

		if (k + 1 < fs->n) {
			assert_int_equal(rc, 0);
			assert_null(out);
		} else {
			assert_int_equal(rc, 1);
			assert_datagram(out, outlen, expect, len);
		}
	}
}

/* A UDP datagram with a valid checksum: IP header + 8 + dlen bytes. */
static size_t udp_datagram(uint8_t *buf, const struct hdr *h, size_t dlen,
			   uint32_t seed)
{
	uint8_t *udp = xmalloc(8 + dlen);
	uint8_t ph[12];
	size_t len;

	put16(udp, 40000);
	put16(udp + 2, 53);
	put16(udp + 4, (uint32_t) (8 + dlen));
	put16(udp + 6, 0);
	fill(udp + 8, dlen, seed);
	put32(ph, h->src);
	put32(ph + 4, h->dst);
	ph[8] = 0;
	ph[9] = PROTO_UDP;
	put16(ph + 10, (uint32_t) (8 + dlen));
	{
		uint32_t sum = (uint32_t) (uint16_t) ~csum16(ph, 12, 0);

		put16(udp + 6, csum16(udp, 8 + dlen, sum));
	}
	len = ip_write(buf, h, true, 0, false, udp, 8 + dlen);
	free(udp);
	return len;
}

/* The UDP checksum of a whole IPv4 datagram verifies. */
static void assert_udp_csum(const uint8_t *dg, size_t len)
{
	size_t hlen = (size_t) (dg[0] & 0x0f) * 4;
	uint8_t ph[12];
	uint32_t sum;

	memcpy(ph, dg + 12, 8);
	ph[8] = 0;
	ph[9] = dg[9];
	put16(ph + 10, (uint32_t) (len - hlen));
	sum = (uint32_t) (uint16_t) ~csum16(ph, 12, 0);
	assert_int_equal(csum16(dg + hlen, len - hlen, sum), 0);
}

static const struct hdr hdr_a = {
    .src = A_SRC,
    .dst = DST,
    .id = 0x1234,
    .proto = PROTO_UDP,
};

/* ---- tests ------------------------------------------------------------ */

static void test_new_limits(void **state)
{
	struct reasm *r;

	(void) state;
	assert_null(reasm_new(0, 0, 1 << 20, TIMEOUT));
	assert_null(reasm_new(REASM_MAX_DATAGRAMS + 1, REASM_MAX_DATAGRAMS + 1, 1 << 20, TIMEOUT));
	assert_null(reasm_new(4, 4, REASM_BLOCK - 1, TIMEOUT));
	assert_null(reasm_new(4, 4, 0, TIMEOUT));
	assert_null(reasm_new(4, 0, 1 << 20, TIMEOUT));
	assert_null(reasm_new(4, 5, 1 << 20, TIMEOUT));
	reasm_free(NULL);
	r = reasm_new(1, 1, REASM_BLOCK, TIMEOUT);
	assert_non_null(r);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_bytes(r), 0);
	teardown_reasm(r);
}

/* In order, reverse and shuffled orders, UDP checksum intact. */
static void test_orders(void **state)
{
	static uint8_t dg[65535];
	struct frags fs = {0};
	size_t order[MAXF] = {0}, len;
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);

	(void) state;
	assert_non_null(r);
	len = udp_datagram(dg, &hdr_a, 3001, 1);
	fragment(&fs, &hdr_a, dg + 20, len - 20, 1500);
	assert_int_equal(fs.n, 3);

	feed_all(r, &fs, NULL, dg, len);
	assert_udp_csum(dg, len);

	for (size_t k = 0; k < fs.n; k++)
		order[k] = fs.n - 1 - k;
	feed_all(r, &fs, order, dg, len);

	/* Smaller MTU, many pieces, shuffled with fixed seeds. */
	frags_free(&fs);
	len = udp_datagram(dg, &hdr_a, 20000, 2);
	fragment(&fs, &hdr_a, dg + 20, len - 20, 576);
	for (uint32_t seed = 1; seed <= 20; seed++) {
		uint32_t s = seed;

		for (size_t k = 0; k < fs.n; k++)
			order[k] = k;
		for (size_t k = fs.n - 1; k > 0; k--) {
			size_t j = xorshift(&s) % (k + 1), t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
		feed_all(r, &fs, order, dg, len);
	}
	assert_int_equal(reasm_stats(r)->completed, 22);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_bytes(r), 0);
	frags_free(&fs);
	teardown_reasm(r);
}

/* The first fragment's options survive; later fragments had none. */
static void test_first_options(void **state)
{
	static const uint8_t opt[12] = {
	    0x94, 0x04, 0x00, 0x00,	     /* router alert (copied) */
	    0x07, 0x07, 0x04, 0,    0, 0, 0, /* record route (not copied) */
	    0x00,			     /* end of options */
	};
	static uint8_t dg[65535];
	struct hdr h = hdr_a;
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	size_t len;

	(void) state;
	assert_non_null(r);
	h.opt = opt;
	h.optlen = sizeof(opt);
	len = udp_datagram(dg, &h, 5000, 3);
	assert_int_equal(dg[0] & 0x0f, 8);
	fragment(&fs, &h, dg + 32, len - 32, 576);
	assert_int_equal(fs.pkt[0][0] & 0x0f, 8);
	assert_int_equal(fs.pkt[1][0] & 0x0f, 5);
	feed_all(r, &fs, NULL, dg, len);

	/* Options arriving last work the same. */
	{
		size_t order[MAXF] = {0};

		for (size_t k = 0; k < fs.n; k++)
			order[k] = (k + 1) % fs.n;
		feed_all(r, &fs, order, dg, len);
	}
	frags_free(&fs);
	teardown_reasm(r);
}

/* DF survives, the reserved bit does not; a later fragment's header does
 * not replace the first one's. */
static void test_header_flags(void **state)
{
	uint8_t p1[16], p2[13];
	struct hdr h = hdr_a;
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(p1, sizeof(p1), 4);
	fill(p2, sizeof(p2), 5);
	h.flags = 0x4000 | 0x8000;
	frag_add(&fs, &h, 0, true, p1, sizeof(p1));
	h.flags = 0;
	frag_add(&fs, &h, 16, false, p2, sizeof(p2));
	fs.pkt[1][8] = 7; /* another TTL in the last fragment */
	put16(fs.pkt[1] + 10, 0);
	put16(fs.pkt[1] + 10, csum16(fs.pkt[1], 20, 0));

	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 1);
	assert_int_equal(outlen, 20 + 29);
	assert_int_equal(be16(out + 6), 0x4000);
	assert_int_equal(out[8], 64);
	assert_int_equal(be16(out + 2), 49);
	assert_int_equal(csum16(out, 20, 0), 0);
	assert_memory_equal(out + 20, p1, 16);
	assert_memory_equal(out + 36, p2, 13);
	frags_free(&fs);
	teardown_reasm(r);
}

/* Any overlap that is not an exact duplicate drops the whole datagram. */
static void test_overlap(void **state)
{
	/* {off, len} of a second fragment against a first one at [16, 48). */
	static const uint32_t cases[][2] = {
	    {8, 16}, {40, 16}, {16, 16}, {24, 8}, {8, 48}, {16, 40}, {40, 8},
	};
	uint8_t buf[64];
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 6);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct frags fs = {0};

		frag_add(&fs, &hdr_a, 16, true, buf, 32);
		frag_add(&fs, &hdr_a, cases[i][0], true, buf, cases[i][1]);
		frag_add(&fs, &hdr_a, 0, true, buf, 16);
		frag_add(&fs, &hdr_a, 48, false, buf, 5);
		assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
		assert_int_equal(reasm_pending(r), 1);
		assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), -EBADMSG);
		assert_int_equal(reasm_stats(r)->overlaps, i + 1);
		assert_int_equal(reasm_pending(r), 0);
		assert_int_equal(reasm_bytes(r), 0);
		/* The rest starts over and cannot complete. */
		assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), 0);
		assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), 0);
		assert_int_equal(reasm_pending(r), 1);
		reasm_expire(r, UINT64_MAX);
		frags_free(&fs);
	}

	/* Adjacent is not overlapping. */
	{
		struct frags fs = {0};

		frag_add(&fs, &hdr_a, 16, true, buf + 16, 32);
		frag_add(&fs, &hdr_a, 48, false, buf + 48, 5);
		frag_add(&fs, &hdr_a, 0, true, buf, 16);
		assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
		assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 0);
		assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), 1);
		assert_int_equal(outlen, 20 + 53);
		assert_memory_equal(out + 20, buf, 53);
		frags_free(&fs);
	}
	teardown_reasm(r);
}

/*
 * An exact duplicate (offset, length, MF, bytes) is dropped alone; one
 * with other bytes or another MF is an overlap.
 */
static void test_duplicate(void **state)
{
	uint8_t buf[64], other[64];
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen, held;

	(void) state;
	fill(buf, sizeof(buf), 7);
	memcpy(other, buf, sizeof(other));
	other[20] ^= 1;
	frag_add(&fs, &hdr_a, 0, true, buf, 16);	 /* 0 */
	frag_add(&fs, &hdr_a, 16, true, buf + 16, 16);	 /* 1 */
	frag_add(&fs, &hdr_a, 32, false, buf + 32, 9);	 /* 2 */
	frag_add(&fs, &hdr_a, 16, true, other + 16, 16); /* 3 */
	frag_add(&fs, &hdr_a, 32, true, buf + 32, 8);	 /* 4 */
	frag_add(&fs, &hdr_a, 16, false, buf + 16, 16);	 /* 5 */

	/* Exact duplicates of the first, a middle and the last fragment. */
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), -EEXIST);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), -EEXIST);
	held = reasm_bytes(r);
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), -EEXIST);
	assert_int_equal(reasm_stats(r)->duplicates, 3);
	assert_int_equal(reasm_pending(r), 1);
	assert_int_equal(reasm_bytes(r), held);
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 1);
	assert_int_equal(outlen, 20 + 41);
	assert_memory_equal(out + 20, buf, 41);

	/* Same range, different bytes. */
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), -EBADMSG);
	assert_int_equal(reasm_pending(r), 0);

	/* Same range, last fragment turned into a middle one. */
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), -EBADMSG);
	assert_int_equal(reasm_pending(r), 0);

	/* Same range, middle fragment turned into the last one. */
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 5, 0, &out, &outlen), -EBADMSG);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_stats(r)->overlaps, 3);
	frags_free(&fs);
	teardown_reasm(r);
}

/* A fragment bad on its own is dropped alone: the datagram goes on. */
static void test_bad_lengths(void **state)
{
	uint8_t buf[64];
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 8);
	frag_add(&fs, &hdr_a, 0, true, buf, 16);	/* 0 */
	frag_add(&fs, &hdr_a, 16, true, buf + 16, 13);	/* 1: not 8k */
	frag_add(&fs, &hdr_a, 16, true, buf, 0);	/* 2: empty */
	frag_add(&fs, &hdr_a, 24, false, buf, 0);	/* 3: empty */
	frag_add(&fs, &hdr_a, 16, false, buf + 16, 13); /* 4: last */

	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), -EINVAL);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), -EINVAL);
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), -EINVAL);
	assert_int_equal(reasm_stats(r)->malformed, 3);
	assert_int_equal(reasm_pending(r), 1);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), 1);
	assert_int_equal(outlen, 20 + 29);
	assert_memory_equal(out + 20, buf, 29);
	frags_free(&fs);
	teardown_reasm(r);
}

/* Headers the caller should have caught are still refused. */
static void test_malformed_headers(void **state)
{
	uint8_t buf[16], pkt[128];
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen, len;
	uint64_t n = 0;

	(void) state;
	fill(buf, sizeof(buf), 9);
	len = ip_write(pkt, &hdr_a, false, 8, true, buf, 16);

	assert_int_equal(reasm_input(r, NULL, 0, 0, &out, &outlen), -EINVAL);
	n++;
	for (size_t l = 0; l < len; l++) {
		/* Every truncation breaks the total length or the header. */
		assert_int_equal(reasm_input(r, pkt, l, 0, &out, &outlen),
				 -EINVAL);
		n++;
	}
	pkt[0] = 0x65; /* IPv6 */
	assert_int_equal(reasm_input(r, pkt, len, 0, &out, &outlen), -EINVAL);
	pkt[0] = 0x44; /* IHL 4 */
	assert_int_equal(reasm_input(r, pkt, len, 0, &out, &outlen), -EINVAL);
	pkt[0] = 0x4f; /* IHL 15: 60 > 36 bytes */
	assert_int_equal(reasm_input(r, pkt, len, 0, &out, &outlen), -EINVAL);
	pkt[0] = 0x45;
	put16(pkt + 2, (uint32_t) len + 1); /* claims more than given */
	assert_int_equal(reasm_input(r, pkt, len, 0, &out, &outlen), -EINVAL);
	put16(pkt + 2, (uint32_t) len - 8); /* claims less: not trimmed */
	assert_int_equal(reasm_input(r, pkt, len, 0, &out, &outlen), -EINVAL);
	n += 5;

	/* Offset 0 and MF clear: not a fragment. */
	len = ip_write(pkt, &hdr_a, false, 0, false, buf, 16);
	assert_int_equal(reasm_input(r, pkt, len, 0, &out, &outlen), -EINVAL);
	n++;
	assert_int_equal(reasm_stats(r)->malformed, n);
	assert_int_equal(reasm_stats(r)->fragments, n);
	assert_int_equal(reasm_pending(r), 0);
	teardown_reasm(r);
}

/* The last fragment fixes the end; contradicting it drops the datagram. */
static void test_last_conflicts(void **state)
{
	uint8_t buf[64];
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 10);
	frag_add(&fs, &hdr_a, 32, false, buf, 8); /* 0: ends at 40 */
	frag_add(&fs, &hdr_a, 48, false, buf, 8); /* 1: ends at 56 */
	frag_add(&fs, &hdr_a, 40, true, buf, 8);  /* 2: MF to 48 > 40 */
	frag_add(&fs, &hdr_a, 8, false, buf, 8);  /* 3: ends at 16 */
	frag_add(&fs, &hdr_a, 32, true, buf, 8);  /* 4: MF at the end */

	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), -EINVAL);
	assert_int_equal(reasm_pending(r), 0);

	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), -EINVAL);
	assert_int_equal(reasm_pending(r), 0);

	/* A last fragment before data already held. */
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 1);
	reasm_expire(r, UINT64_MAX);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), -EINVAL);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_stats(r)->malformed, 3);
	frags_free(&fs);
	teardown_reasm(r);
}

/* Nothing past 65535 bytes: alone, or against the first header. */
static void test_too_big(void **state)
{
	static uint8_t buf[2048];
	static const uint8_t opt[4] = {0x01, 0x01, 0x01, 0x00};
	struct hdr h = hdr_a;
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 11);
	h.opt = opt;
	h.optlen = sizeof(opt);
	/* 65515 payload bytes behind 20 are fine; 65520 are not. */
	frag_add(&fs, &h, 8184 * 8, false, buf, 43); /* 0: to 65515 */
	frag_add(&fs, &h, 8184 * 8, false, buf, 48); /* 1: to 65520 */
	frag_add(&fs, &h, 8191 * 8, true, buf, 8);   /* 2: to 65536 */
	frag_add(&fs, &h, 0, true, buf, 8);	     /* 3: 24-byte hdr */
	frag_add(&fs, &h, 8183 * 8, false, buf, 48); /* 4: to 65512 */

	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), -EMSGSIZE);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), -EMSGSIZE);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 1);
	/* 24 + 65515 > 65535: the first header shows it is too big. */
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), -EMSGSIZE);
	assert_int_equal(reasm_pending(r), 0);
	/* The other way round: the first header, then the data. */
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), -EMSGSIZE);
	assert_int_equal(reasm_pending(r), 0);
	/* 24 + 65512 = 65536 still too big; see test_udp_max for 65535. */
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), -EMSGSIZE);
	assert_int_equal(reasm_stats(r)->too_big, 5);
	frags_free(&fs);
	teardown_reasm(r);
}

/* 128 fragments (the piece limit) still complete. */
static void test_many_pieces(void **state)
{
	static uint8_t buf[128 * 8], dg[20 + sizeof(buf)];
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	size_t len;

	(void) state;
	fill(buf, sizeof(buf), 12);
	len = ip_write(dg, &hdr_a, true, 0, false, buf, sizeof(buf));
	for (uint32_t i = 0; i < 128; i++)
		frag_add(&fs, &hdr_a, i * 8, i < 127, buf + i * 8, 8);
	feed_all(r, &fs, NULL, dg, len);
	frags_free(&fs);
	teardown_reasm(r);
}

/* The 129th piece drops the datagram. */
static void test_too_many_pieces_drop(void **state)
{
	static uint8_t buf[129 * 8];
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 13);
	for (uint32_t i = 0; i < 129; i++)
		frag_add(&fs, &hdr_a, i * 8, true, buf + i * 8, 8);
	for (size_t i = 0; i < 128; i++)
		assert_int_equal(feed(r, &fs, i, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 128, 0, &out, &outlen), -E2BIG);
	assert_int_equal(reasm_stats(r)->malformed, 1);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_bytes(r), 0);
	frags_free(&fs);
	teardown_reasm(r);
}

/* Slots: the datagram over max_datagrams is refused, the others go on. */
static void test_cap_datagrams(void **state)
{
	uint8_t buf[32];
	struct frags fs = {0};
	struct reasm *r = reasm_new(2, 2, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 14);
	for (uint16_t id = 1; id <= 3; id++) {
		struct hdr h = hdr_a;

		h.id = id;
		frag_add(&fs, &h, 0, true, buf, 16);
		frag_add(&fs, &h, 16, false, buf + 16, 4);
	}
	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), -ENOSPC);
	assert_int_equal(feed(r, &fs, 5, 0, &out, &outlen), -ENOSPC);
	assert_int_equal(reasm_stats(r)->full, 2);
	assert_int_equal(reasm_pending(r), 2);
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 1);
	assert_int_equal(be16(out + 4), 1);
	/* A slot is free again. */
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 5, 0, &out, &outlen), 1);
	assert_int_equal(be16(out + 4), 3);
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), 1);
	assert_int_equal(be16(out + 4), 2);
	assert_memory_equal(out + 20, buf, 20);
	frags_free(&fs);
	teardown_reasm(r);
}

/*
 * Per source: a source holding max_per_source datagrams cannot start
 * another (-EDQUOT, source_full), while another source still can; the
 * datagrams already held go on, and once one completes or times out its
 * source may start a new one.
 */
static void test_cap_per_source(void **state)
{
	uint8_t buf[32];
	struct frags fa = {0}, fb = {0};
	struct reasm *r = reasm_new(4, 2, 1 << 20, TIMEOUT);
	struct hdr hb = hdr_a;
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 3);
	for (uint16_t id = 1; id <= 4; id++) {
		struct hdr h = hdr_a;

		h.id = id;
		frag_add(&fa, &h, 0, true, buf, 16);
		frag_add(&fa, &h, 16, false, buf + 16, 4);
	}
	hb.src = B_SRC;
	frag_add(&fb, &hb, 0, true, buf, 16);
	frag_add(&fb, &hb, 16, false, buf + 16, 4);

	assert_int_equal(feed(r, &fa, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fa, 2, 0, &out, &outlen), 0);
	/* A's third and fourth datagrams: over its share, free slots or not */
	assert_int_equal(feed(r, &fa, 4, 0, &out, &outlen), -EDQUOT);
	assert_int_equal(feed(r, &fa, 7, 0, &out, &outlen), -EDQUOT);
	assert_int_equal(reasm_stats(r)->source_full, 2);
	assert_int_equal(reasm_stats(r)->full, 0);
	assert_int_equal(reasm_pending(r), 2);
	/* B is not held back by A */
	assert_int_equal(feed(r, &fb, 0, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fb, 1, 0, &out, &outlen), 1);
	/* A completes one: room for another of A's */
	assert_int_equal(feed(r, &fa, 1, 0, &out, &outlen), 1);
	assert_int_equal(be16(out + 4), 1);
	assert_int_equal(feed(r, &fa, 4, 0, &out, &outlen), 0);
	assert_int_equal(feed(r, &fa, 6, 0, &out, &outlen), -EDQUOT);
	/* expiry gives A's slots back */
	reasm_expire(r, 2 * TIMEOUT + 1);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(feed(r, &fa, 6, 2 * TIMEOUT + 2, &out, &outlen), 0);
	assert_int_equal(feed(r, &fa, 7, 2 * TIMEOUT + 2, &out, &outlen), 1);
	assert_int_equal(be16(out + 4), 4);
	reasm_expire(r, 5 * TIMEOUT);
	assert_int_equal(reasm_pending(r), 0);
	frags_free(&fa);
	frags_free(&fb);
	teardown_reasm(r);
}

/* Bytes: a fragment that does not fit is refused; nothing older goes. */
static void test_cap_bytes(void **state)
{
	static uint8_t buf[3000];
	struct hdr hb = hdr_a;
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 6 * REASM_BLOCK + 100, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 15);
	hb.src = B_SRC;
	frag_add(&fs, &hdr_a, 0, true, buf, 1480); /* 0: A, 3 blocks */
	frag_add(&fs, &hb, 0, true, buf, 1480);	   /* 1: B, 3 blocks */
	frag_add(&fs, &hdr_a, 1480, true, buf + 1480, 1480); /* 2: A +3 */
	frag_add(&fs, &hdr_a, 1480, false, buf + 1480, 20);  /* 3: A +0 */
	hb.id = 99;
	frag_add(&fs, &hb, 0, true, buf, 8); /* 4: C */

	assert_int_equal(feed(r, &fs, 0, 0, &out, &outlen), 0);
	assert_int_equal(reasm_bytes(r), 3 * REASM_BLOCK);
	assert_int_equal(feed(r, &fs, 1, 0, &out, &outlen), 0);
	assert_int_equal(reasm_bytes(r), 6 * REASM_BLOCK);
	assert_int_equal(feed(r, &fs, 2, 0, &out, &outlen), -ENOSPC);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), -ENOSPC);
	assert_int_equal(reasm_stats(r)->full, 2);
	assert_int_equal(reasm_pending(r), 2);
	assert_true(reasm_bytes(r) <= 6 * REASM_BLOCK + 100);
	/* A's last fragment lands in a block A already has. */
	assert_int_equal(feed(r, &fs, 3, 0, &out, &outlen), 1);
	assert_int_equal(outlen, 1520);
	assert_memory_equal(out + 20, buf, 1500);
	assert_int_equal(reasm_bytes(r), 3 * REASM_BLOCK);
	assert_int_equal(feed(r, &fs, 4, 0, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 2);
	frags_free(&fs);
	teardown_reasm(r);
}

/* Datagrams live timeout_ns from their first fragment, no longer. */
static void test_timeout(void **state)
{
	uint8_t buf[16];
	struct hdr hb = hdr_a, hc = hdr_a;
	struct frags fs = {0};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	fill(buf, sizeof(buf), 16);
	hb.id = 2;
	hc.id = 3;
	frag_add(&fs, &hdr_a, 0, true, buf, 8);	  /* 0 */
	frag_add(&fs, &hdr_a, 8, true, buf, 8);	  /* 1 */
	frag_add(&fs, &hb, 0, true, buf, 8);	  /* 2 */
	frag_add(&fs, &hc, 0, true, buf, 8);	  /* 3 */
	frag_add(&fs, &hdr_a, 16, false, buf, 3); /* 4 */

	assert_int_equal(feed(r, &fs, 0, 100, &out, &outlen), 0);
	assert_int_equal(feed(r, &fs, 2, 600, &out, &outlen), 0);
	/* A later fragment does not extend A's life. */
	assert_int_equal(feed(r, &fs, 1, 1000, &out, &outlen), 0);
	reasm_expire(r, 100 + TIMEOUT);
	assert_int_equal(reasm_pending(r), 2);
	reasm_expire(r, 100 + TIMEOUT + 1);
	assert_int_equal(reasm_pending(r), 1);
	assert_int_equal(reasm_stats(r)->timeouts, 1);
	/* Lazily, on input: B goes, C comes. */
	assert_int_equal(feed(r, &fs, 3, 600 + TIMEOUT + 1, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 1);
	assert_int_equal(reasm_stats(r)->timeouts, 2);
	/* A's last fragment now starts a new A, which never completes. */
	assert_int_equal(feed(r, &fs, 4, 2000, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 2);
	reasm_expire(r, 2000 + TIMEOUT + 1);
	assert_int_equal(reasm_pending(r), 0);
	assert_int_equal(reasm_bytes(r), 0);
	assert_int_equal(reasm_stats(r)->timeouts, 4);
	assert_int_equal(reasm_stats(r)->completed, 0);
	frags_free(&fs);
	teardown_reasm(r);
}

/* Same id, datagrams differing only in src (or dst, or protocol). */
static void test_interleaved_keys(void **state)
{
	static uint8_t dg[4][8192];
	struct frags fs[4] = {{0}};
	size_t len[4], done = 0;
	struct reasm *r = reasm_new(4, 4, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;

	(void) state;
	for (int k = 0; k < 4; k++) {
		struct hdr h = hdr_a;

		if (k == 1)
			h.src = B_SRC;
		if (k == 2)
			h.dst = DST + 1;
		if (k == 3)
			h.proto = 6;
		len[k] = udp_datagram(dg[k], &h, 4000 + (size_t) k * 8,
				      20 + (uint32_t) k);
		fragment(&fs[k], &h, dg[k] + 20, len[k] - 20, 1000);
	}
	for (size_t i = 0; i < fs[0].n; i++) {
		for (int k = 0; k < 4; k++) {
			int rc = feed(r, &fs[k], i, i, &out, &outlen);

			if (i + 1 < fs[k].n) {
				assert_int_equal(rc, 0);
				continue;
			}
			assert_int_equal(rc, 1);
			assert_datagram(out, outlen, dg[k], len[k]);
			done++;
		}
	}
	assert_int_equal(done, 4);
	for (int k = 0; k < 4; k++)
		frags_free(&fs[k]);
	teardown_reasm(r);
}

/*
 * Many datagrams at once, completed and expired in shuffled orders: the
 * slot table, its hash chains and the age list stay consistent.
 */
static void test_many_datagrams(void **state)
{
	enum { N = 64 };
	static struct frags fs[N];
	uint8_t buf[24];
	size_t order[N], rank[N];
	struct reasm *r = reasm_new(N, N, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen;
	uint64_t now = 0;
	uint32_t s = 7;

	(void) state;
	for (size_t i = 0; i < N; i++) {
		struct hdr h = hdr_a;

		/* Keys that differ in one field or another. */
		h.id = (uint16_t) (i / 4);
		h.src = A_SRC + (uint32_t) (i % 2);
		h.proto = (uint8_t) (i % 4 < 2 ? PROTO_UDP : 6);
		fill(buf, sizeof(buf), (uint32_t) i + 100);
		frag_add(&fs[i], &h, 0, true, buf, 16);
		frag_add(&fs[i], &h, 16, false, buf + 16, 8);
	}
	for (int round = 0; round < 8; round++) {
		for (size_t k = 0; k < N; k++)
			order[k] = k;
		for (size_t k = N - 1; k > 0; k--) {
			size_t j = xorshift(&s) % (k + 1), t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
		/* First fragments in one order, one tick apart. */
		for (size_t k = 0; k < N; k++) {
			rank[order[k]] = k;
			assert_int_equal(
			    feed(r, &fs[order[k]], 0, now + k, &out, &outlen),
			    0);
		}
		assert_int_equal(reasm_pending(r), N);
		/* Every other round, the older half times out first. */
		if (round % 2) {
			reasm_expire(r, now + TIMEOUT + N / 2);
			assert_int_equal(reasm_pending(r), N / 2);
		}
		/* Last fragments in another order. */
		for (size_t k = N; k-- > 0;) {
			size_t i = (order[k] * 37) % N;
			bool alive = !(round % 2) || rank[i] >= N / 2;
			int rc = feed(r, &fs[i], 1, now + TIMEOUT / 2 + N, &out,
				      &outlen);
			if (!alive) {
				/* Starts a new datagram instead. */
				assert_int_equal(rc, 0);
				continue;
			}
			assert_int_equal(rc, 1);
			assert_int_equal(outlen, 44);
			assert_memory_equal(out + 20, fs[i].pkt[0] + 20, 16);
			assert_memory_equal(out + 36, fs[i].pkt[1] + 20, 8);
			assert_memory_equal(out + 4, fs[i].pkt[0] + 4, 2);
			assert_memory_equal(out + 9, fs[i].pkt[0] + 9, 1);
			assert_memory_equal(out + 12, fs[i].pkt[0] + 12, 8);
		}
		reasm_expire(r, now + 10 * TIMEOUT);
		assert_int_equal(reasm_pending(r), 0);
		assert_int_equal(reasm_bytes(r), 0);
		now += 20 * TIMEOUT;
	}
	for (size_t i = 0; i < N; i++)
		frags_free(&fs[i]);
	teardown_reasm(r);
}

/* The largest UDP datagram, 65507 bytes of data, over a 1500 MTU. */
static void test_udp_max(void **state)
{
	static uint8_t dg[65535];
	struct frags fs = {0};
	size_t order[MAXF] = {0}, len;
	uint32_t s = 42;
	struct reasm *r = reasm_new(4, 4, 65536, TIMEOUT);

	(void) state;
	assert_non_null(r);
	len = udp_datagram(dg, &hdr_a, 65507, 17);
	assert_int_equal(len, 65535);
	fragment(&fs, &hdr_a, dg + 20, len - 20, 1500);
	assert_int_equal(fs.n, 45);
	feed_all(r, &fs, NULL, dg, len);
	assert_udp_csum(dg, len);

	for (size_t k = 0; k < fs.n; k++)
		order[k] = k;
	for (size_t k = fs.n - 1; k > 0; k--) {
		size_t j = xorshift(&s) % (k + 1), t = order[k];

		order[k] = order[j];
		order[j] = t;
	}
	feed_all(r, &fs, order, dg, len);
	assert_int_equal(reasm_stats(r)->completed, 2);
	frags_free(&fs);
	teardown_reasm(r);
}

/* ---- IPv6 ---------------------------------------------------------- */

static const uint8_t mac_a[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
static const uint8_t mac_b[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x57};

/*
 * An IPv6 fragment into buf: fixed header (src ends in src_lo), ext bytes
 * of extension headers (a destination options header of that length, 0:
 * none), the fragment header (next header nh, offset off, M, id) and plen
 * bytes of data.  *fo gets the fragment header's offset.  Returns the length.
 */
static size_t frag6(uint8_t *buf, uint8_t src_lo, size_t ext, uint8_t nh,
		    uint32_t off, bool more, uint32_t id, const uint8_t *data,
		    size_t plen, size_t *fo)
{
	static const uint8_t pfx[8] = {0xfe, 0xc0};
	size_t len = 40 + ext + 8 + plen;

	memset(buf, 0, 48 + ext);
	buf[0] = 0x60;
	put16(buf + 4, (uint32_t) (len - 40));
	buf[6] = ext ? 60 : 44;
	buf[7] = 64;
	memcpy(buf + 8, pfx, 8);
	buf[23] = src_lo;
	memcpy(buf + 24, pfx, 8);
	buf[39] = 2;
	if (ext) {
		buf[40] = 44;
		buf[41] = (uint8_t) (ext / 8 - 1);
		buf[42] = 1; /* PadN over the rest */
		buf[43] = (uint8_t) (ext - 4);
	}
	*fo = 40 + ext;
	buf[*fo] = nh;
	put16(buf + *fo + 2, off | (more ? 1u : 0u));
	put32(buf + *fo + 4, id);
	memcpy(buf + *fo + 8, data, plen);
	return len;
}

static int feed6(struct reasm *r, const uint8_t *pkt, size_t len, size_t fo,
		 const uint8_t *mac, uint64_t now, const uint8_t **out,
		 size_t *outlen)
{
	return reasm_input6(r, pkt, len, fo, mac, 6, now, out, outlen);
}

/* Whole datagrams: in and out of order, the unfragmentable part (with an
 * extension header) from the offset-0 fragment, its next header too. */
static void test_ipv6_whole(void **state)
{
	static uint8_t data[65535], pkt[70000];
	static const size_t orders[3][3] = {{0, 1, 2}, {2, 1, 0}, {1, 2, 0}};
	const size_t cut[4] = {0, 1232, 2464, 3000};
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen, fo, len;

	(void) state;
	fill(data, sizeof(data), 7);
	for (unsigned o = 0; o < 3; o++) {
		for (unsigned k = 0; k < 3; k++) {
			size_t i = orders[o][k];
			size_t ext = o == 1 ? 16 : 0;
			/* later fragments name another next header: ignored */
			uint8_t nh = i == 0 ? 17 : 6;
			int rc;

			len = frag6(pkt, 0x15, i == 0 ? ext : 0, nh,
				    (uint32_t) cut[i], i < 2, 100 + o,
				    data + cut[i], cut[i + 1] - cut[i], &fo);
			rc = feed6(r, pkt, len, fo, mac_a, k, &out, &outlen);
			assert_int_equal(rc, k == 2 ? 1 : 0);
		}
		size_t ext = o == 1 ? 16 : 0;

		assert_int_equal(outlen, 40 + ext + 3000);
		assert_int_equal(out[0], 0x60);
		assert_int_equal(be16(out + 4), ext + 3000);
		if (ext) {
			assert_int_equal(out[6], 60);
			assert_int_equal(out[40], 17); /* was 44 */
			assert_int_equal(out[42], 1);
		} else {
			assert_int_equal(out[6], 17);
		}
		assert_int_equal(out[23], 0x15);
		assert_memory_equal(out + 40 + ext, data, 3000);
	}
	assert_int_equal(reasm_stats(r)->completed, 3);
	assert_int_equal(reasm_pending(r), 0);

	/* the largest payload: 65535 bytes behind the fixed header */
	for (uint32_t off = 0; off < 65535; off += 1448) {
		size_t plen = 65535 - off > 1448 ? 1448 : 65535 - off;
		bool more = off + plen < 65535;
		int rc;

		len = frag6(pkt, 0x16, 0, 17, off, more, 9, data + off, plen,
			    &fo);
		rc = feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen);
		assert_int_equal(rc, more ? 0 : 1);
	}
	assert_int_equal(outlen, 40 + 65535);
	assert_int_equal(be16(out + 4), 65535);
	assert_memory_equal(out + 40, data, 65535);
	teardown_reasm(r);
}

/* Fragments wrong on their own, or contradicting the datagram. */
static void test_ipv6_bad(void **state)
{
	static uint8_t data[2048], pkt[4096];
	struct reasm *r = reasm_new(8, 8, 1 << 20, TIMEOUT);
	const uint8_t *out;
	size_t outlen, fo, len;

	(void) state;
	fill(data, sizeof(data), 9);
	/* atomic (RFC 6946: the caller's), M with a length not 8-aligned,
	 * no data */
	len = frag6(pkt, 0x15, 0, 17, 0, false, 1, data, 64, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen),
			 -EINVAL);
	len = frag6(pkt, 0x15, 0, 17, 0, true, 1, data, 65, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen),
			 -EINVAL);
	len = frag6(pkt, 0x15, 0, 17, 8, false, 1, data, 0, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen),
			 -EINVAL);
	/* fo not where the header chain leads, payload length lying */
	len = frag6(pkt, 0x15, 16, 17, 0, true, 1, data, 64, &fo);
	assert_int_equal(feed6(r, pkt, len, fo - 8, mac_a, 0, &out, &outlen),
			 -EINVAL);
	assert_int_equal(feed6(r, pkt, len, len, mac_a, 0, &out, &outlen),
			 -EINVAL);
	assert_int_equal(feed6(r, pkt, len - 1, fo, mac_a, 0, &out, &outlen),
			 -EINVAL);
	/* beyond a 65535-byte payload length */
	len = frag6(pkt, 0x15, 0, 17, 65520, false, 1, data, 15, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen),
			 0);
	len = frag6(pkt, 0x15, 0, 17, 65528, false, 2, data, 16, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen),
			 -EMSGSIZE);
	assert_int_equal(reasm_stats(r)->malformed, 6);
	assert_int_equal(reasm_stats(r)->too_big, 1);
	/* an overlap drops the datagram */
	len = frag6(pkt, 0x15, 0, 17, 0, true, 3, data, 64, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen), 0);
	len = frag6(pkt, 0x15, 0, 17, 56, false, 3, data + 56, 64, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_a, 0, &out, &outlen),
			 -EBADMSG);
	assert_int_equal(reasm_pending(r), 1); /* id 1's last fragment */
	teardown_reasm(r);
}

/* Keys: the families never mix; IPv6 ids are 32 bits; the share is the
 * caller's key (the MAC), not the source address. */
static void test_ipv6_keys(void **state)
{
	uint8_t data[64], pkt[256];
	struct reasm *r = reasm_new(4, 2, 1 << 20, TIMEOUT);
	struct frags f4 = {0};
	struct hdr h4 = hdr_a;
	const uint8_t *out;
	size_t outlen, fo, len;

	(void) state;
	fill(data, sizeof(data), 11);
	/* IPv4 fragment with id 5 from 10.0.2.15 and an IPv6 one with id 5
	 * whose source ends in the same bytes: two datagrams */
	h4.id = 5;
	frag_add(&f4, &h4, 0, true, data, 16);
	assert_int_equal(feed(r, &f4, 0, 0, &out, &outlen), 0);
	len = frag6(pkt, 0x0f, 0, 17, 16, false, 5, data + 16, 8, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_b, 0, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 2);
	/* ids differing above 16 bits are different datagrams */
	len = frag6(pkt, 0x0f, 0, 17, 0, true, 0x10005, data, 16, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_b, 0, &out, &outlen), 0);
	assert_int_equal(reasm_pending(r), 3);
	/* mac_b holds 2: a third from another source address is refused */
	len = frag6(pkt, 0x44, 0, 17, 0, true, 6, data, 16, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_b, 0, &out, &outlen),
			 -EDQUOT);
	/* id 5's first part completes the IPv6 datagram only */
	len = frag6(pkt, 0x0f, 0, 17, 0, true, 5, data, 16, &fo);
	assert_int_equal(feed6(r, pkt, len, fo, mac_b, 1, &out, &outlen), 1);
	assert_int_equal(outlen, 40 + 24);
	assert_memory_equal(out + 40, data, 24);
	frags_free(&f4);
	teardown_reasm(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_limits),
	    cmocka_unit_test(test_cap_per_source),
	    cmocka_unit_test(test_orders),
	    cmocka_unit_test(test_first_options),
	    cmocka_unit_test(test_header_flags),
	    cmocka_unit_test(test_overlap),
	    cmocka_unit_test(test_duplicate),
	    cmocka_unit_test(test_bad_lengths),
	    cmocka_unit_test(test_malformed_headers),
	    cmocka_unit_test(test_last_conflicts),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_many_pieces),
	    cmocka_unit_test(test_too_many_pieces_drop),
	    cmocka_unit_test(test_cap_datagrams),
	    cmocka_unit_test(test_cap_bytes),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_interleaved_keys),
	    cmocka_unit_test(test_many_datagrams),
	    cmocka_unit_test(test_udp_max),
	    cmocka_unit_test(test_ipv6_whole),
	    cmocka_unit_test(test_ipv6_bad),
	    cmocka_unit_test(test_ipv6_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
