// SPDX-License-Identifier: MIT
/* fuzz_frag.c: libFuzzer harness for IPv4 and IPv6 reassembly (frag.c). */

/*
 * The input is a configuration byte and then a sequence of records, each
 * one fragment fed to reasm_input() at a fake clock that advances with
 * every record:
 *
 *   config   bits 0-1: max_datagrams {1, 2, 3, 8}
 *            bits 2-3: max_bytes {1024, 4096, 65536, 262144}
 *            bit 4: IPv6 (reasm_input6): every record is an IPv6
 *                fragment; the key's protocol bit picks the fragment
 *                header's next header instead (not part of an IPv6 key:
 *                keys k and k ^ 2 are one datagram), "options" are a
 *                destination options header of that many 8-byte words in
 *                the unfragmentable part, a raw packet's fragment header
 *                is at 40 + 8 * (op bit 3)
 *   record   op: bits 0-2 key (src, protocol and id variants, so that
 *                datagrams differ in one key field only),
 *                bit 3 MF,
 *                bits 4-5 kind: 0 plain, 1 first header with options,
 *                2 corrupted payload, 3 raw packet,
 *                bits 6-7 clock step {0, 1, 300, 700} ns (timeout 1000);
 *                step 3 also calls reasm_expire()
 *            plain/options/corrupted: be16 flags word (offset in the low
 *                13 bits, option words in the top 3), be16 payload length;
 *                the header is built and the payload is a pattern of
 *                (key, byte position), so that it needs no input bytes
 *            raw: be16 length n, then n bytes fed unchanged
 *
 * After every call: the stats moved by exactly one counter for a drop or a
 * completion, pending and bytes stay under their caps, nothing is held
 * when nothing is pending; a completed datagram has a well-formed header
 * whose total (IPv6: payload) length is its length, belongs to the key of the fragment
 * that completed it and, unless a corrupted or raw packet was fed for that
 * key since its last completion, carries exactly the pattern.  Until the
 * first raw packet, a naive model of the rules (below) must also agree on
 * every return code, the pending count, the bytes held and the whole
 * payload of every completed datagram.  At the end expiry must empty
 * everything.
 *
 * Built with -DFRAG_FUZZ_MAIN it is a plain program instead: "fuzz_frag
 * --seeds DIR" writes the seed corpus, "fuzz_frag FILE..." replays inputs.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frag.h"

#define TIMEOUT 1000
#define NKEYS 8

#ifdef FRAG_FUZZ_MAIN
static bool verbose; /* replay: print each input's stats */
#endif

static const unsigned max_dgrams[4] = {1, 2, 3, 8};
static const size_t max_bytes[4] = {1024, 4096, 65536, 262144};
static const uint64_t steps[4] = {0, 1, 300, 700};

static uint32_t key_src(unsigned k)
{
	return 0x0a00020fu + (k & 1);
}

static uint8_t key_proto(unsigned k)
{
	return k & 2 ? 6 : 17;
}

static uint16_t key_id(unsigned k)
{
	return k & 4 ? 0x0102 : 0x0201;
}

#define DST 0x0a000202u

/* Payload byte pos of key k's datagram, precomputed: memcpy is fast. */
static uint8_t pat[NKEYS][65536];

static void pattern_init(void)
{
	static bool done;

	if (done)
		return;
	for (unsigned k = 0; k < NKEYS; k++)
		for (uint32_t pos = 0; pos < 65536; pos++)
			pat[k][pos] =
			    (uint8_t) (pos * 131 + (pos >> 8) * 7 + k * 29 + 1);
	done = true;
}

static uint16_t csum16(const uint8_t *p, size_t len)
{
	return (uint16_t)~fold(sum16(p, len, 0));
}

/* Build key k's fragment: flags word w, plen payload bytes.  Returns the
 * packet length. */
static size_t build(uint8_t *pkt, unsigned k, unsigned kind, bool mf,
		    uint16_t w, size_t plen)
{
	size_t hlen = 20 + (kind == 1 ? (size_t) (w >> 13) * 4 : 0);
	uint32_t off = (uint32_t) (w & 0x1fff) * 8;

	if (plen > 65535 - hlen)
		plen = 65535 - hlen;
	pkt[0] = (uint8_t) (0x40 | hlen / 4);
	pkt[1] = 0;
	put16(pkt + 2, (uint32_t) (hlen + plen));
	put16(pkt + 4, key_id(k));
	put16(pkt + 6, (mf ? 0x2000u : 0) | (w & 0x1fff));
	pkt[8] = 64;
	pkt[9] = key_proto(k);
	put16(pkt + 10, 0);
	put16(pkt + 12, key_src(k) >> 16);
	put16(pkt + 14, key_src(k) & 0xffff);
	put16(pkt + 16, DST >> 16);
	put16(pkt + 18, DST & 0xffff);
	memset(pkt + 20, 0x01, hlen - 20); /* NOP options */
	put16(pkt + 10, csum16(pkt, hlen));
	/* off + plen <= 65528 + 65535: the excess is garbage to reasm. */
	if (off + plen <= sizeof(pat[k]))
		memcpy(pkt + hlen, &pat[k][off], plen);
	else
		memset(pkt + hlen, 0xee, plen);
	if (kind == 2 && plen)
		pkt[hlen + plen / 2] ^= 0x5a;
	return hlen + plen;
}

/* IPv6: key k's fragment, the same way.  *fo gets the fragment header's
 * offset. */
static size_t build6(uint8_t *pkt, unsigned k, unsigned kind, bool mf,
		     uint16_t w, size_t plen, size_t *fo)
{
	size_t ext = kind == 1 ? (size_t) (w >> 13) * 8 : 0;
	uint32_t off = (uint32_t) (w & 0x1fff) * 8;
	unsigned kk = k & 5;

	if (plen > 65535 - 8 - ext)
		plen = 65535 - 8 - ext;
	memset(pkt, 0, 48 + ext);
	pkt[0] = 0x60;
	put16(pkt + 4, (uint32_t) (ext + 8 + plen));
	pkt[6] = ext ? 60 : 44;
	pkt[7] = 64;
	pkt[8] = 0xfe;
	pkt[9] = 0xc0;
	pkt[23] = (uint8_t) (0x15 + (k & 1));
	pkt[24] = 0xfe;
	pkt[25] = 0xc0;
	pkt[39] = 2;
	if (ext) {
		pkt[40] = 44;
		pkt[41] = (uint8_t) (ext / 8 - 1);
		pkt[42] = 1; /* PadN */
		pkt[43] = (uint8_t) (ext - 4);
	}
	*fo = 40 + ext;
	pkt[*fo] = key_proto(k);
	put16(pkt + *fo + 2, off | (mf ? 1u : 0u));
	put16(pkt + *fo + 4, 0x1234);
	put16(pkt + *fo + 6, key_id(k));
	if (off + plen <= sizeof(pat[kk]))
		memcpy(pkt + *fo + 8, &pat[kk][off], plen);
	else
		memset(pkt + *fo + 8, 0xee, plen);
	if (kind == 2 && plen)
		pkt[*fo + 8 + plen / 2] ^= 0x5a;
	return *fo + 8 + plen;
}

/* ---- the model: what reasm must do, written the obvious way ---------- */

/*
 * Each key holds at most one datagram, as an unsorted list of pieces with
 * their own MF flag, its bytes in data[key] and the blocks it touched.  It
 * follows the rules of frag.h in the order frag.c documents them; it knows
 * nothing of frag.c's sorted pieces, hash chains, age list or free stacks.
 * A raw packet may belong to any key with any content: after one, the
 * model stands down and only the invariants are checked.
 */
#define M_PIECES 128
#define M_BLOCK 512
#define M_NBLOCK 128

struct mpiece {
	uint32_t off, end;
	bool mf;
};

struct mdg {
	bool used;
	bool last_in;
	uint64_t born;
	uint32_t total, maxend, have;
	unsigned hlen; /* 0: offset 0 not seen yet */
	uint8_t nh;    /* IPv6: offset 0's next header */
	unsigned n;
	struct mpiece p[M_PIECES];
	bool blk[M_NBLOCK];
};

struct model {
	bool valid;
	unsigned maxd, used;
	uint32_t nblk, blk_used;
	uint64_t timeout;
	struct mdg d[NKEYS];
	uint8_t data[NKEYS][65536];
};

static struct model m;
static bool v6; /* this input's family */

static void model_init(unsigned maxd, size_t maxb)
{
	m.valid = true;
	m.maxd = maxd;
	m.used = 0;
	m.nblk = (uint32_t) (maxb / M_BLOCK);
	m.blk_used = 0;
	for (unsigned k = 0; k < NKEYS; k++)
		m.d[k].used = false;
}

static void model_drop(unsigned k)
{
	struct mdg *d = &m.d[k];

	for (unsigned b = 0; b < M_NBLOCK; b++)
		m.blk_used -= d->blk[b];
	d->used = false;
	m.used--;
}

static void model_expire(uint64_t now)
{
	for (unsigned k = 0; k < NKEYS; k++)
		if (m.d[k].used && now > m.d[k].born &&
		    now - m.d[k].born > TIMEOUT)
			model_drop(k);
}

/* The code reasm_input() must return for a fragment of key k; for 1, the
 * datagram is hlen + total bytes with m.data[k] as payload.  IPv6: hlen is
 * the unfragmentable part, nh the fragment header's next header. */
static int model_input(unsigned k, unsigned hlen, uint8_t nh, uint32_t off,
		       bool mf, const uint8_t *payload, uint32_t plen,
		       uint64_t now, unsigned *out_hlen, uint32_t *out_total)
{
	struct mdg *d = &m.d[k];
	uint32_t end = off + plen, need = 0, top;
	unsigned hl;

	model_expire(now);
	if ((!mf && off == 0) || plen == 0 || (mf && plen % 8))
		return -EINVAL;
	if (v6 ? hlen - 40 + end > 65535 : end > 65515)
		return -EMSGSIZE;
	if (!d->used) {
		if (m.used == m.maxd)
			return -ENOSPC;
		memset(d, 0, sizeof(*d));
		d->used = true;
		d->born = now;
		m.used++;
	}
	hl = d->hlen ? d->hlen : off == 0 ? hlen : 0;
	top = end > d->maxend ? end : d->maxend;
	if (hl && hl + top > (v6 ? 65575u : 65535u)) {
		model_drop(k);
		return -EMSGSIZE;
	}
	for (unsigned i = 0; i < d->n; i++) {
		const struct mpiece *p = &d->p[i];

		if (p->end <= off || end <= p->off)
			continue;
		if (p->off == off && p->end == end && p->mf == mf &&
		    !memcmp(&m.data[k][off], payload, plen))
			return -EEXIST;
		model_drop(k);
		return -EBADMSG;
	}
	if ((!mf && ((d->last_in && end != d->total) || d->maxend > end)) ||
	    (mf && d->last_in && end >= d->total)) {
		model_drop(k);
		return -EINVAL;
	}
	if (d->n == M_PIECES) {
		model_drop(k);
		return -E2BIG;
	}
	for (uint32_t b = off / M_BLOCK; b <= (end - 1) / M_BLOCK; b++)
		need += !d->blk[b];
	if (need > m.nblk - m.blk_used) {
		if (d->n == 0)
			model_drop(k);
		return -ENOSPC;
	}
	for (uint32_t b = off / M_BLOCK; b <= (end - 1) / M_BLOCK; b++)
		d->blk[b] = true;
	m.blk_used += need;
	memcpy(&m.data[k][off], payload, plen);
	d->p[d->n++] = (struct mpiece){.off = off, .end = end, .mf = mf};
	d->have += plen;
	d->maxend = top;
	if (!mf) {
		d->last_in = true;
		d->total = end;
	}
	if (off == 0) {
		d->hlen = hlen;
		d->nh = nh;
	}
	if (!d->last_in || d->have != d->total)
		return 0;
	*out_hlen = d->hlen;
	*out_total = d->total;
	model_drop(k);
	return 1;
}

/* ---- checks ------------------------------------------------------------ */

/* Which key a datagram has, or -1. */
static int key_of(const uint8_t *dg)
{
	for (unsigned k = 0; k < NKEYS; k++)
		if (get32(dg + 12) == key_src(k) && get32(dg + 16) == DST &&
		    dg[9] == key_proto(k) && get16(dg + 4) == key_id(k))
			return (int) k;
	return -1;
}

/* The invariants of every completed datagram. */
static void check_output(const uint8_t *out, size_t outlen, int key,
			 const bool *tainted)
{
	size_t hlen;
	int k;

	CHECK(out != NULL);
	if (v6) {
		CHECK(outlen > 40 && outlen <= 65575);
		CHECK(out[0] >> 4 == 6 && get16(out + 4) == outlen - 40);
		CHECK(key < 0 || out[23] == 0x15 + (key & 1));
		k = key < 0 ? -1 : key & 5;
		if (k < 0 || tainted[k])
			return; /* a raw packet may have given its header */
		hlen = 40;
		if (out[6] == 60)
			hlen += ((size_t) out[41] + 1) * 8;
		CHECK(hlen < outlen);
		CHECK(out[hlen == 40 ? 6 : 40] == 6 ||
		      out[hlen == 40 ? 6 : 40] == 17);
		CHECK(!memcmp(out + hlen, pat[k], outlen - hlen));
		return;
	}
	CHECK(outlen >= 20 && outlen <= 65535);
	CHECK(out[0] >> 4 == 4);
	hlen = (size_t) (out[0] & 0x0f) * 4;
	CHECK(hlen >= 20 && hlen < outlen);
	CHECK(get16(out + 2) == outlen);       /* length = header's total */
	CHECK((get16(out + 6) & 0xbfff) == 0); /* no MF, offset, RF */
	CHECK(csum16(out, hlen) == 0);
	k = key_of(out);
	if (key >= 0)
		CHECK(k == key);
	if (k >= 0 && !tainted[k])
		CHECK(!memcmp(out + hlen, pat[k], outlen - hlen));
}

/* Feed one packet, check what the call did; returns its code. */
static int input(struct reasm *r, const uint8_t *pkt, size_t len, size_t fo,
		 uint64_t now, int key, bool *tainted, unsigned maxd,
		 size_t maxb, const uint8_t **out, size_t *outlen)
{
	struct reasm_stats a = *reasm_stats(r), b;
	uint64_t drops;
	uint8_t who = len > 23 ? pkt[23] : 0; /* IPv6: one "MAC" per source */
	int rc = v6 ? reasm_input6(r, pkt, len, fo, &who, 1, now, out, outlen)
		    : reasm_input(r, pkt, len, now, out, outlen);

	b = *reasm_stats(r);
	CHECK(b.fragments == a.fragments + 1);
	CHECK(b.timeouts >= a.timeouts);
	drops = (b.overlaps - a.overlaps) + (b.too_big - a.too_big) +
		(b.full - a.full) + (b.malformed - a.malformed) +
		(b.duplicates - a.duplicates);
	CHECK(drops == (rc < 0));
	CHECK(b.completed - a.completed == (rc == 1));
	if (rc != 1)
		CHECK(*out == NULL && *outlen == 0);
	switch (rc) {
	case 0:
		break;
	case 1:
		check_output(*out, *outlen, key, tainted);
		/* That datagram is gone: its key starts clean. */
		if (v6 && key >= 0)
			tainted[key & 5] = false;
		else if (!v6 && key_of(*out) >= 0)
			tainted[key_of(*out)] = false;
		break;
	case -EINVAL:
	case -E2BIG:
		CHECK(b.malformed == a.malformed + 1);
		break;
	case -EMSGSIZE:
		CHECK(b.too_big == a.too_big + 1);
		break;
	case -EBADMSG:
		CHECK(b.overlaps == a.overlaps + 1);
		break;
	case -EEXIST:
		CHECK(b.duplicates == a.duplicates + 1);
		break;
	case -ENOSPC:
		CHECK(b.full == a.full + 1);
		break;
	default:
		CHECK(!"unexpected return code");
	}
	CHECK(reasm_pending(r) <= maxd);
	CHECK(reasm_bytes(r) <= maxb);
	CHECK(reasm_pending(r) > 0 || reasm_bytes(r) == 0);
	return rc;
}

/* reasm and the model hold the same. */
static void check_model(const struct reasm *r)
{
	if (!m.valid)
		return;
	CHECK(reasm_pending(r) == m.used);
	CHECK(reasm_bytes(r) == (size_t) m.blk_used * M_BLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[65535 + 40];
	bool tainted[NKEYS] = {false};
	struct reasm *r;
	unsigned maxd;
	size_t maxb, pos = 1;
	uint64_t now = 0;

	if (size < 1)
		return 0;
	pattern_init();
	maxd = max_dgrams[data[0] & 3];
	maxb = max_bytes[data[0] >> 2 & 3];
	v6 = data[0] & 16;
	r = reasm_new(maxd, maxd, maxb, TIMEOUT);
	CHECK(r != NULL);
	model_init(maxd, maxb);

	while (pos < size) {
		uint8_t op = data[pos++];
		unsigned k = op & 7, kind = op >> 4 & 3, step = op >> 6;
		unsigned hlen, want_hlen = 0, mk;
		size_t fo = 0;
		uint32_t want_total = 0;
		const uint8_t *out;
		size_t len, outlen;
		int rc, want;
		uint16_t w;

		now += steps[step];
		if (step == 3) {
			reasm_expire(r, now);
			model_expire(now);
			check_model(r);
		}
		if (size - pos < 4)
			break;
		if (kind == 3) {
			len = (size_t) get16(data + pos);
			pos += 2;
			if (len > size - pos)
				len = size - pos;
			/* A copy, so that ASan sees reads past its end. */
			memcpy(pkt, data + pos, len);
			pos += len;
			for (unsigned i = 0; i < NKEYS; i++)
				tainted[i] = true;
			m.valid = false;
			input(r, pkt, len, 40 + (op & 8), now, -1, tainted,
			      maxd, maxb, &out, &outlen);
			continue;
		}
		w = get16(data + pos);
		/* IPv6 keys ignore the protocol bit */
		mk = v6 ? k & 5 : k;
		if (v6)
			len = build6(pkt, k, kind, op & 8, w,
				     get16(data + pos + 2), &fo);
		else
			len = build(pkt, k, kind, op & 8, w,
				    get16(data + pos + 2));
		pos += 4;
		if (kind == 2)
			tainted[mk] = true;
		rc = input(r, pkt, len, fo, now, (int) k, tainted, maxd, maxb,
			   &out, &outlen);
		if (!m.valid)
			continue;
		hlen = v6 ? (unsigned) fo + 8 : (pkt[0] & 0x0f) * 4u;
		want = model_input(mk, v6 ? (unsigned) fo : hlen, pkt[fo],
				   (w & 0x1fffu) * 8, op & 8, pkt + hlen,
				   (uint32_t) (len - hlen), now, &want_hlen,
				   &want_total);
		CHECK(rc == want);
		if (rc == 1) {
			CHECK(outlen == want_hlen + want_total);
			if (v6)
				CHECK(out[want_hlen == 40 ? 6 : 40] ==
				      m.d[mk].nh);
			else
				CHECK((out[0] & 0x0f) * 4u == want_hlen);
			CHECK(!memcmp(out + want_hlen, m.data[mk], want_total));
		}
		check_model(r);
	}

	reasm_expire(r, now + TIMEOUT + 1);
#ifdef FRAG_FUZZ_MAIN
	if (verbose) {
		const struct reasm_stats *st = reasm_stats(r);

		printf("fragments %llu completed %llu timeouts %llu "
		       "overlaps %llu too_big %llu full %llu malformed %llu "
		       "duplicates %llu\n",
		       (unsigned long long) st->fragments,
		       (unsigned long long) st->completed,
		       (unsigned long long) st->timeouts,
		       (unsigned long long) st->overlaps,
		       (unsigned long long) st->too_big,
		       (unsigned long long) st->full,
		       (unsigned long long) st->malformed,
		       (unsigned long long) st->duplicates);
	}
#endif
	CHECK(reasm_pending(r) == 0);
	CHECK(reasm_bytes(r) == 0);
	reasm_free(r);
	return 0;
}

#ifdef FRAG_FUZZ_MAIN
/* ---- seed corpus and replay ------------------------------------------- */

struct seed {
	uint8_t b[8192];
	size_t n;
};

static void s_u8(struct seed *s, unsigned v)
{
	CHECK(s->n < sizeof(s->b));
	s->b[s->n++] = (uint8_t) v;
}

static void s_be16(struct seed *s, unsigned v)
{
	s_u8(s, v >> 8 & 0xff);
	s_u8(s, v & 0xff);
}

/* One synthetic fragment: payload bytes [off, off + len). */
static void s_frag(struct seed *s, unsigned k, unsigned kind, unsigned step,
		   unsigned off, unsigned len, bool mf, unsigned optwords)
{
	s_u8(s, k | (mf ? 8 : 0) | kind << 4 | step << 6);
	s_be16(s, optwords << 13 | off / 8);
	s_be16(s, len);
}

static void s_raw(struct seed *s, unsigned step, const uint8_t *p, size_t n)
{
	s_u8(s, 3 << 4 | step << 6);
	s_be16(s, (unsigned) n);
	for (size_t i = 0; i < n; i++)
		s_u8(s, p[i]);
}

static void s_write(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(s->b, 1, s->n, f) == s->n);
	CHECK(fclose(f) == 0);
	/* A seed must itself pass. */
	LLVMFuzzerTestOneInput(s->b, s->n);
}

/* An MTU-split datagram of plen payload bytes, fed in order or reversed. */
static void s_split(struct seed *s, unsigned k, unsigned plen, unsigned chunk,
		    bool reverse, unsigned optwords)
{
	unsigned n = (plen + chunk - 1) / chunk;

	for (unsigned j = 0; j < n; j++) {
		unsigned i = reverse ? n - 1 - j : j;
		unsigned off = i * chunk;
		unsigned len = off + chunk < plen ? chunk : plen - off;

		s_frag(s, k, i == 0 && optwords ? 1 : 0, 1, off, len,
		       off + len < plen, i == 0 ? optwords : 0);
	}
}

static void write_seeds(const char *dir)
{
	static uint8_t pkt[65535];
	struct seed s;

	s.n = 0;
	s_u8(&s, 3 | 3 << 2);
	s_split(&s, 0, 3000, 1480, false, 0);
	s_write(dir, "inorder", &s);

	s.n = 0;
	s_u8(&s, 3 | 3 << 2);
	s_split(&s, 1, 5000, 552, true, 3);
	s_write(dir, "reverse-options", &s);

	s.n = 0;
	s_u8(&s, 3 | 2 << 2);
	s_split(&s, 2, 65515, 1480, false, 0);
	s_write(dir, "udp-max", &s);

	s.n = 0;
	s_u8(&s, 3 | 3 << 2);
	s_frag(&s, 0, 0, 0, 0, 16, true, 0);
	s_frag(&s, 0, 0, 0, 0, 16, true, 0);  /* duplicate */
	s_frag(&s, 0, 0, 0, 16, 9, false, 0); /* completes */
	s_frag(&s, 1, 0, 0, 0, 16, true, 0);
	s_frag(&s, 1, 0, 0, 8, 16, true, 0); /* overlap */
	s_frag(&s, 4, 0, 0, 0, 16, true, 0);
	s_frag(&s, 4, 2, 0, 0, 16, true, 0); /* different bytes */
	s_frag(&s, 5, 0, 0, 0, 8, true, 0);
	s_frag(&s, 5, 0, 0, 8, 13, true, 0);	  /* not a multiple of 8 */
	s_frag(&s, 5, 0, 0, 65472, 48, false, 0); /* too big */
	s_frag(&s, 5, 0, 0, 32, 8, false, 0);
	s_frag(&s, 5, 0, 0, 40, 8, false, 0); /* another end */
	s_write(dir, "overlap-dup", &s);

	/* Three datagrams interleaved complete; two more time out. */
	s.n = 0;
	s_u8(&s, 2 | 2 << 2);
	for (unsigned i = 0; i < 4; i++)
		for (unsigned k = 0; k < 3; k++)
			s_frag(&s, k, 0, 1, i * 256, 256, i < 3, 0);
	s_frag(&s, 3, 0, 1, 0, 256, true, 0);
	s_frag(&s, 4, 0, 3, 0, 256, true, 0);
	s_frag(&s, 5, 0, 3, 0, 256, true, 0);  /* expires 3 */
	s_frag(&s, 3, 0, 3, 256, 8, false, 0); /* too late */
	s_write(dir, "interleave-timeout", &s);

	s.n = 0;
	s_u8(&s, 0);
	s_frag(&s, 0, 0, 1, 0, 600, true, 0);
	s_frag(&s, 1, 0, 1, 0, 600, true, 0);	 /* no slot */
	s_frag(&s, 0, 0, 1, 600, 600, false, 0); /* no bytes */
	s_write(dir, "caps", &s);

	s.n = 0;
	s_u8(&s, 3 | 3 << 2);
	s_raw(&s, 1, pkt, build(pkt, 6, 0, true, 0, 64));
	s_raw(&s, 1, pkt, build(pkt, 6, 0, false, 8, 30));
	s_write(dir, "raw", &s);

	/* Fits behind 20 bytes of header, not behind the first's 32. */
	s.n = 0;
	s_u8(&s, 3 | 3 << 2);
	s_frag(&s, 0, 0, 1, 65472, 43, false, 0);
	s_frag(&s, 0, 1, 1, 0, 64, true, 3);
	s_frag(&s, 1, 1, 1, 0, 64, true, 3);
	s_frag(&s, 1, 0, 1, 65472, 43, false, 0);
	pkt[0] = 0x4f; /* IHL 15, 20 bytes */
	put16(pkt + 2, 20);
	s_raw(&s, 1, pkt, 20);
	s_write(dir, "too-big-options", &s);

	s.n = 0;
	s_u8(&s, 3 | 3 << 2);
	for (unsigned i = 0; i < 129; i++)
		s_frag(&s, 7, 0, 0, i * 8, 8, true, 0);
	s_write(dir, "many-pieces", &s);

	/* IPv6: in order; reversed behind a destination options header with
	 * the next header differing (keys 1 and 3 are one datagram); the
	 * largest payload; a fragment reaching beyond it behind 16 bytes of
	 * extension header */
	s.n = 0;
	s_u8(&s, 16 | 3 | 3 << 2);
	s_split(&s, 0, 3000, 1448, false, 0);
	s_write(dir, "ipv6-inorder", &s);

	s.n = 0;
	s_u8(&s, 16 | 3 | 3 << 2);
	s_frag(&s, 3, 0, 1, 1448, 500, false, 0);
	s_frag(&s, 1, 1, 1, 0, 1448, true, 2);
	s_write(dir, "ipv6-options-nh", &s);

	s.n = 0;
	s_u8(&s, 16 | 3 | 2 << 2);
	s_split(&s, 2, 65535, 1448, false, 0);
	s_write(dir, "ipv6-max", &s);

	s.n = 0;
	s_u8(&s, 16 | 3 | 3 << 2);
	s_frag(&s, 4, 1, 1, 0, 64, true, 2);
	s_frag(&s, 4, 0, 1, 65472, 63, false, 0);
	s_raw(&s, 1, pkt, 48);
	s_write(dir, "ipv6-too-big-options", &s);
}

#include "replay.h"

int main(int argc, char **argv)
{
	verbose = true;
	return fuzz_main(argc, argv, write_seeds);
}
#endif
