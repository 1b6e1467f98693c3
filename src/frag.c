// SPDX-License-Identifier: MIT
/* frag.c: bounded IPv4 and IPv6 reassembly of the fragments guests send the
 * router. */

/*
 * Theory of operation
 *
 * Datagrams.  A datagram in progress is keyed by (src, dst, protocol, id)
 * for IPv4 (RFC 791 section 3.2) and by (src, dst, id) for IPv6 (RFC 8200
 * section 4.5: the next header may differ between fragments, only the first
 * fragment's counts), the family included, and lives in one of max_datagrams slots allocated in
 * reasm_new().  Free slots form a stack; slots in use hang off a hash table
 * (chained through slot indices, as many buckets as the next power of two)
 * and off an age list in creation order.  A guest chooses every key field,
 * so a chain can be as long as the slots in use: lookups are bounded by
 * max_datagrams, never by anything the guest can grow.
 *
 * Memory.  Fragment data lives in one arena of max_bytes (rounded down),
 * cut into REASM_BLOCK (512-byte) blocks with a free stack.  Each slot maps
 * the datagram's payload, offset by offset, onto blocks: block[i] holds
 * payload bytes [i * 512, (i + 1) * 512), taken from the free stack the
 * first time a fragment writes into it.  We did not give each slot a contiguous
 * 64 KiB buffer (an mmap of max_datagrams * 64 KiB, paying only for touched
 * pages): touched pages stay resident after the datagram is gone, so the
 * memory held would end up max_datagrams * 64 KiB whatever max_bytes says,
 * and ASan cannot see a write running from one slot into the next.  With
 * blocks, max_bytes bounds the memory fragments can occupy, counted in
 * whole blocks (a fragment that only partly fills a block is charged for
 * all of it), and ASan watches the arena as one heap object.  The price is
 * one copy at completion, gathering the blocks behind the first fragment's
 * header into the output buffer; fragmented traffic is rare and the copy is
 * at most 64 KiB.
 *
 * Pieces.  Each slot records the byte ranges received as up to
 * REASM_MAX_PIECES disjoint pieces, sorted by offset and never merged, so
 * that an exact duplicate can be told from an overlap.  128 pieces let a
 * 65535-byte datagram cross a 576-byte MTU path (119 fragments); more
 * fragments drop the datagram as malformed.  RFC 815's hole list is the
 * same information seen from the other side: the datagram is complete when
 * the last fragment (MF clear) has fixed the payload length and the pieces,
 * disjoint and all inside it, add up to that length.
 *
 * What is dropped (each with its counter, see reasm_stats):
 * - A fragment wrong on its own is dropped alone: header too short, not
 *   version 4, IHL below 5, total length field not the packet's length, not
 *   a fragment at all (offset 0 and MF clear), no payload (Linux drops
 *   those too: they carry nothing and only add state), a payload that is
 *   not a multiple of 8 bytes while MF is set (the next fragment could not
 *   start where it ends), or one reaching beyond 65535 - 20 bytes of
 *   payload (too_big).
 * - A fragment that contradicts what the datagram holds drops the whole
 *   datagram: we cannot tell which side lies.  That is IPv6's rule (RFC
 *   5722, RFC 8200 section 4.5), which Linux applies to IPv4 as well since
 *   FragmentSmack (CVE-2018-5391).  Contradictions are: any overlap other
 *   than an exact duplicate (overlaps); a last fragment that ends elsewhere
 *   than an earlier last fragment, or before data already received, or a
 *   fragment with MF set reaching the known end (malformed); data that
 *   does not fit 65535 bytes behind the first fragment's header (too_big);
 *   the piece limit (malformed).
 * - An exact duplicate (same offset, length, MF and payload bytes; the
 *   header may differ) is dropped alone and the datagram goes on
 *   (duplicates): the network may duplicate packets, and RFC 8200 section
 *   4.5 allows this.  A "duplicate" with different bytes is an overlap.
 * - When every slot is in use, or the free blocks cannot hold the
 *   fragment, the new fragment is refused and the datagrams already held
 *   keep their resources (full).  Nothing older is evicted, so a flood of
 *   new datagrams cannot push out ones about to complete.  The other side
 *   of that choice would be that a guest filling every slot with datagrams
 *   it never completes blocks reassembly for everyone for up to
 *   timeout_ns; so one source address may hold at most max_per_source
 *   slots (a quota table keyed by source, quota.h), and a fragment that
 *   would start one more is refused (source_full).  With the router's
 *   defaults (a quarter of the slots, and 64 KiB of blocks per slot) a
 *   source also holds at most a quarter of the blocks.
 *
 * Time.  A datagram is dropped (timeouts) once its first fragment arrived
 * more than timeout_ns ago; later fragments do not extend its life, as in
 * Linux (RFC 791 would raise the timer to each fragment's TTL, which lets a
 * sender keep a datagram alive indefinitely).  The age list is in creation
 * order, so expiry looks only at its head: reasm_input() expires lazily
 * before each fragment, and reasm_expire() lets the caller's timer reclaim
 * memory when no fragment comes.  The clock is the caller's monotonic ns;
 * if it stepped back, a datagram would live until it caught up.
 *
 * Output.  The reassembled datagram gets the header of the fragment at
 * offset 0, options included (RFC 791: later fragments carry only the
 * copied options), with total length set, MF, offset and the reserved bit
 * cleared (DF kept), and the header checksum recomputed.  It is built in one
 * buffer owned by r, valid until the next call.
 *
 * IPv6 (RFC 8200 section 4.5).  The unfragmentable part -- the fixed header
 * and the extension headers before the fragment header, at most
 * REASM_HDR_MAX bytes -- is taken from the fragment at offset 0, as its
 * next header value; the fragment header itself is removed: the datagram
 * comes out with the payload length set and the next header field that
 * pointed at the fragment header set to the first fragment's.  The same
 * rules as above apply, with RFC 8200's numbers: a payload that is not a
 * multiple of 8 bytes with M set, or one reaching beyond a 65535-byte
 * payload length, is dropped.  Atomic fragments (offset 0, M clear: RFC
 * 6946) are the caller's to process as whole packets.  The per-source share
 * is charged to a key the caller chooses (the router: the guest's MAC, as
 * any guest may speak from as many IPv6 addresses as its prefix holds).
 *
 * Costs: per fragment, O(chain) lookup plus O(REASM_MAX_PIECES) range
 * checks plus copying its payload once; no allocation after reasm_new().
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "frag.h"
#include "pkt.h"
#include "quota.h"

#define IP4_HLEN_MIN 20
#define IP4_LEN_MAX 65535
#define IP4_PAYLOAD_MAX (IP4_LEN_MAX - IP4_HLEN_MIN)
#define IP4_DF 0x4000
#define IP4_MF 0x2000
#define IP4_OFFMASK 0x1fff
#define IP6_HLEN 40
#define IP6_PAYLOAD_MAX 65535
#define IP6_LEN_MAX (IP6_HLEN + IP6_PAYLOAD_MAX)
#define REASM_HDR_MAX 256 /* IPv6 unfragmentable part; IPv4 needs 60 */
#define OUT_MAX IP6_LEN_MAX

/* Blocks covering the largest payload: IPv6's 65535 bytes (IPv4's 65515). */
#define REASM_NBLOCK ((IP6_PAYLOAD_MAX + REASM_BLOCK - 1) / REASM_BLOCK)
#define REASM_MAX_PIECES 128
#define NIL UINT32_MAX

static_assert(IP6_PAYLOAD_MAX <= UINT16_MAX, "piece bounds fit 16 bits");
static_assert(REASM_MAX_PIECES <= UINT16_MAX, "piece count fits 16 bits");

/* The identity of a datagram: src and dst hold an IPv4 address in the
 * IPv4-mapped form (::ffff:a.b.c.d), so the families never meet. */
struct dkey {
	uint8_t src[16], dst[16];
	uint32_t id;
	uint8_t proto; /* IPv4 only; 0 for IPv6 */
	bool v6;
};

/* What frag_parse() / frag_parse6() found in one fragment. */
struct frag {
	struct dkey k;
	uint16_t flags; /* IPv4: flags and offset word as received */
	uint16_t hlen;	/* header (IPv6: unfragmentable part) length */
	uint16_t nh_at; /* IPv6: where the next header naming 44 is */
	uint8_t nh;	/* IPv6: the fragment header's next header */
	bool mf;
	uint32_t off, end;     /* payload bytes [off, end) */
	const uint8_t *hdr;    /* hlen bytes */
	struct cursor payload; /* end - off bytes */
};

struct piece {
	uint16_t off, end;
};

struct dgram {
	struct dkey k;
	bool last_in;	/* MF-clear fragment seen: total is known */
	uint16_t hlen;	/* header length of offset 0; 0: not yet */
	uint16_t nh_at; /* IPv6, from offset 0: see struct frag */
	uint8_t nh;
	uint16_t npieces;
	uint32_t total;	       /* payload length, if last_in */
	uint32_t have;	       /* payload bytes held (sum of pieces) */
	uint32_t maxend;       /* highest piece end */
	uint64_t born;	       /* arrival of the first fragment */
	uint32_t hnext;	       /* hash chain; free stack when unused */
	uint32_t quota;	       /* handle of src in reasm.sources */
	uint32_t older, newer; /* age list */
	uint8_t hdr[REASM_HDR_MAX];
	struct piece piece[REASM_MAX_PIECES];
	uint32_t block[REASM_NBLOCK];
};

struct reasm {
	struct dgram *dg;
	uint32_t pending;
	uint32_t free_dg; /* free slot stack, through hnext */
	uint32_t *bucket;
	uint32_t mask;
	uint32_t oldest, newest;

	uint8_t *arena;
	uint32_t *free_blk; /* stack of free block indices */
	uint32_t nblk, nfree;

	struct quota sources; /* slots per source address */
	uint64_t timeout_ns;
	uint8_t *out; /* OUT_MAX bytes */
	struct reasm_stats st;
};

struct reasm *reasm_new(unsigned max_datagrams, unsigned max_per_source,
			size_t max_bytes, uint64_t timeout_ns)
{
	struct reasm *r;
	size_t nblk = max_bytes / REASM_BLOCK;
	uint32_t nb = 1;

	if (max_datagrams == 0 || max_datagrams > REASM_MAX_DATAGRAMS ||
	    max_per_source == 0 || max_per_source > max_datagrams ||
	    nblk == 0 || nblk >= NIL)
		return NULL;
	while (nb < max_datagrams)
		nb <<= 1;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->mask = nb - 1;
	r->nblk = (uint32_t) nblk;
	r->timeout_ns = timeout_ns;
	r->dg = calloc(max_datagrams, sizeof(*r->dg));
	r->bucket = malloc(nb * sizeof(*r->bucket));
	/* calloc: untouched blocks cost no memory until a fragment lands. */
	r->arena = calloc(nblk, REASM_BLOCK);
	r->free_blk = malloc(nblk * sizeof(*r->free_blk));
	r->out = malloc(OUT_MAX);
	if (!r->dg || !r->bucket || !r->arena || !r->free_blk || !r->out ||
	    quota_init(&r->sources, max_datagrams, max_per_source)) {
		reasm_free(r);
		return NULL;
	}

	for (uint32_t i = 0; i < nb; i++)
		r->bucket[i] = NIL;
	for (uint32_t i = 0; i < max_datagrams; i++)
		for (uint32_t k = 0; k < REASM_NBLOCK; k++)
			r->dg[i].block[k] = NIL;
	/* Stacks popping low indices first keep the hot set small. */
	r->free_dg = NIL;
	for (uint32_t i = max_datagrams; i-- > 0;) {
		r->dg[i].hnext = r->free_dg;
		r->free_dg = i;
	}
	for (uint32_t i = 0; i < r->nblk; i++)
		r->free_blk[i] = r->nblk - 1 - i;
	r->nfree = r->nblk;
	r->oldest = r->newest = NIL;
	return r;
}

void reasm_free(struct reasm *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->free_blk);
	free(r->arena);
	free(r->bucket);
	free(r->dg);
	quota_fini(&r->sources);
	free(r);
}

const struct reasm_stats *reasm_stats(const struct reasm *r)
{
	return &r->st;
}

unsigned reasm_pending(const struct reasm *r)
{
	return r->pending;
}

size_t reasm_bytes(const struct reasm *r)
{
	return (size_t) (r->nblk - r->nfree) * REASM_BLOCK;
}

/*
 * Read the header of one fragment.  Returns 0, -EINVAL (malformed) or
 * -EMSGSIZE (reaches beyond the largest possible payload).  Every check here
 * concerns the fragment alone; reasm_input() has not looked anything up yet.
 */
static int frag_parse(const uint8_t *pkt, size_t len, struct frag *f)
{
	struct cursor c = cur_init(pkt, len);
	struct cursor h;
	const uint8_t *a;
	uint8_t vihl;
	uint16_t tot, id;
	size_t plen;

	memset(&f->k, 0, sizeof(f->k));
	if (!cur_u8(&c, &vihl) || !cur_pull(&c, 1) || !cur_be16(&c, &tot) ||
	    !cur_be16(&c, &id) || !cur_be16(&c, &f->flags) ||
	    !cur_pull(&c, 1) || !cur_u8(&c, &f->k.proto) || !cur_pull(&c, 2) ||
	    !(a = cur_pull(&c, 8)))
		return -EINVAL;
	f->k.id = id;
	f->k.src[10] = f->k.src[11] = f->k.dst[10] = f->k.dst[11] = 0xff;
	memcpy(&f->k.src[12], a, 4);
	memcpy(&f->k.dst[12], a + 4, 4);
	f->hlen = (uint16_t) ((vihl & 0x0f) * 4);
	if (vihl >> 4 != 4 || f->hlen < IP4_HLEN_MIN || tot != len)
		return -EINVAL;
	if (!cur_pull(&c, f->hlen - IP4_HLEN_MIN)) /* options */
		return -EINVAL;
	h = cur_init(pkt, len);
	f->hdr = cur_pull(&h, f->hlen);
	f->payload = c;
	plen = c.rem;

	f->mf = f->flags & IP4_MF;
	f->off = (uint32_t) (f->flags & IP4_OFFMASK) * 8;
	if (!f->mf && f->off == 0)
		return -EINVAL;
	if (plen == 0 || (f->mf && plen % 8))
		return -EINVAL;
	/* plen < 65536 here (tot is 16 bits), so this cannot wrap. */
	f->end = f->off + (uint32_t) plen;
	if (f->end > IP4_PAYLOAD_MAX)
		return -EMSGSIZE;
	return 0;
}

/*
 * The same for an IPv6 packet (len: fixed header plus payload length) whose
 * fragment header starts at fo, behind the unfragmentable part.
 */
static int frag_parse6(const uint8_t *pkt, size_t len, size_t fo,
		       struct frag *f)
{
	struct cursor c = cur_init(pkt, len);
	const uint8_t *h = cur_pull(&c, IP6_HLEN);
	const uint8_t *fh;
	uint16_t w;
	size_t pos, nh_at = 6, plen;

	memset(&f->k, 0, sizeof(f->k));
	if (!h || h[0] >> 4 != 6 || len - IP6_HLEN != (size_t) (h[4] << 8 | h[5]))
		return -EINVAL;
	if (fo < IP6_HLEN || fo > REASM_HDR_MAX || len < fo + 8)
		return -EINVAL;
	/* the extension headers between must lead exactly to fo */
	for (pos = IP6_HLEN; pos < fo; pos += ((size_t) pkt[pos + 1] + 1) * 8) {
		if (pos + 8 > fo)
			return -EINVAL;
		nh_at = pos;
	}
	if (pos != fo || pkt[nh_at] != 44)
		return -EINVAL;
	fh = pkt + fo;
	f->nh = fh[0];
	w = (uint16_t) (fh[2] << 8 | fh[3]);
	f->k.id = (uint32_t) fh[4] << 24 | (uint32_t) fh[5] << 16 |
		  (uint32_t) fh[6] << 8 | fh[7];
	memcpy(f->k.src, h + 8, 16);
	memcpy(f->k.dst, h + 24, 16);
	f->k.v6 = true;
	f->hlen = (uint16_t) fo;
	f->nh_at = (uint16_t) nh_at;
	f->hdr = pkt;
	cur_pull(&c, fo + 8 - IP6_HLEN);
	f->payload = c;
	plen = c.rem;
	f->flags = 0;
	f->mf = w & 1;
	f->off = (uint32_t) (w >> 3) * 8;
	if (!f->mf && f->off == 0)
		return -EINVAL; /* atomic: not ours (RFC 6946) */
	if (plen == 0 || (f->mf && plen % 8))
		return -EINVAL;
	f->end = f->off + (uint32_t) plen;
	/* the payload length the datagram would get (RFC 8200 4.5) */
	if (fo - IP6_HLEN + f->end > IP6_PAYLOAD_MAX)
		return -EMSGSIZE;
	return 0;
}

static uint32_t word_at(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, 4);
	return w;
}

static uint32_t key_hash(const struct reasm *r, const struct dkey *k)
{
	uint32_t h = k->id * 0x9e3779b1u;

	for (unsigned i = 0; i < 16; i += 4) {
		h = (h ^ word_at(&k->src[i])) * 0x85ebca77u;
		h = (h ^ word_at(&k->dst[i])) * 0xc2b2ae3du;
	}
	h = (h ^ ((uint32_t) k->proto << 1 | k->v6)) * 0x9e3779b1u;
	return (h ^ (h >> 16)) & r->mask;
}

static bool key_eq(const struct dkey *a, const struct dkey *b)
{
	return a->id == b->id && a->proto == b->proto && a->v6 == b->v6 &&
	       !memcmp(a->src, b->src, 16) && !memcmp(a->dst, b->dst, 16);
}

static struct dgram *dgram_find(const struct reasm *r, const struct frag *f)
{
	uint32_t i = r->bucket[key_hash(r, &f->k)];

	while (i != NIL) {
		struct dgram *d = &r->dg[i];

		if (key_eq(&d->k, &f->k))
			return d;
		i = d->hnext;
	}
	return NULL;
}

/* A fresh slot for f's datagram; NULL with *err -ENOSPC if every slot is
 * in use, -EDQUOT if f's source holds its share of them. */
static struct dgram *dgram_new(struct reasm *r, const struct frag *f,
			       const void *who, size_t wholen, uint64_t now,
			       int *err)
{
	uint32_t i = r->free_dg, b, q;
	struct dgram *d;

	*err = -ENOSPC;
	if (i == NIL)
		return NULL;
	*err = -EDQUOT;
	q = quota_take(&r->sources, who, wholen);
	if (q == QUOTA_NONE)
		return NULL;
	d = &r->dg[i];
	r->free_dg = d->hnext;
	d->quota = q;

	d->k = f->k;
	d->last_in = false;
	d->hlen = 0;
	d->npieces = 0;
	d->total = d->have = d->maxend = 0;
	d->born = now;

	b = key_hash(r, &f->k);
	d->hnext = r->bucket[b];
	r->bucket[b] = i;

	d->older = r->newest;
	d->newer = NIL;
	if (r->newest != NIL)
		r->dg[r->newest].newer = i;
	else
		r->oldest = i;
	r->newest = i;
	r->pending++;
	return d;
}

/* Return d's blocks and slot; a free slot's block map is all NIL. */
static void dgram_free(struct reasm *r, struct dgram *d)
{
	uint32_t i = (uint32_t) (d - r->dg);
	uint32_t *pp = &r->bucket[key_hash(r, &d->k)];

	/* No piece reaches past maxend, so no block either. */
	for (uint32_t k = 0; k * REASM_BLOCK < d->maxend; k++) {
		if (d->block[k] != NIL) {
			r->free_blk[r->nfree++] = d->block[k];
			d->block[k] = NIL;
		}
	}

	while (*pp != i)
		pp = &r->dg[*pp].hnext;
	*pp = d->hnext;

	if (d->older != NIL)
		r->dg[d->older].newer = d->newer;
	else
		r->oldest = d->newer;
	if (d->newer != NIL)
		r->dg[d->newer].older = d->older;
	else
		r->newest = d->older;

	quota_put(&r->sources, d->quota);
	d->hnext = r->free_dg;
	r->free_dg = i;
	r->pending--;
}

static bool dgram_expired(const struct reasm *r, const struct dgram *d,
			  uint64_t now)
{
	return now > d->born && now - d->born > r->timeout_ns;
}

void reasm_expire(struct reasm *r, uint64_t now)
{
	while (r->oldest != NIL && dgram_expired(r, &r->dg[r->oldest], now)) {
		r->st.timeouts++;
		dgram_free(r, &r->dg[r->oldest]);
	}
}

static uint8_t *block_at(const struct reasm *r, uint32_t blk)
{
	return r->arena + (size_t) blk * REASM_BLOCK;
}

/*
 * Walk f's payload block by block: compare it with what d holds (dup) or
 * copy it into d's blocks, allocating the missing ones (the caller checked
 * there are enough).  Returns false if a comparison found a difference.
 */
static bool dgram_walk(struct reasm *r, struct dgram *d, const struct frag *f,
		       bool copy)
{
	struct cursor c = f->payload;
	uint32_t pos = f->off;

	while (pos < f->end) {
		uint32_t k = pos / REASM_BLOCK, in = pos % REASM_BLOCK;
		uint32_t n = REASM_BLOCK - in;
		const uint8_t *src;

		if (n > f->end - pos)
			n = f->end - pos;
		src = cur_pull(&c, n);
		if (!src)
			return false;
		if (copy) {
			if (d->block[k] == NIL)
				d->block[k] = r->free_blk[--r->nfree];
			memcpy(block_at(r, d->block[k]) + in, src, n);
		} else if (d->block[k] == NIL ||
			   memcmp(block_at(r, d->block[k]) + in, src, n)) {
			return false;
		}
		pos += n;
	}
	return true;
}

static uint32_t blocks_needed(const struct dgram *d, const struct frag *f)
{
	uint32_t n = 0;

	for (uint32_t k = f->off / REASM_BLOCK; k <= (f->end - 1) / REASM_BLOCK;
	     k++)
		n += d->block[k] == NIL;
	return n;
}

/*
 * Check f against what d holds.  Returns 0 (store it), -EEXIST (exact
 * duplicate: drop the fragment only), or the code of a contradiction that
 * drops the datagram: -EMSGSIZE, -EBADMSG, -EINVAL, -E2BIG.  *at is where
 * the new piece goes in d->piece.
 */
static int dgram_check(struct reasm *r, struct dgram *d, const struct frag *f,
		       unsigned *at)
{
	unsigned hlen = d->hlen ? d->hlen : f->off == 0 ? f->hlen : 0;
	unsigned i;

	if (hlen && hlen + (f->end > d->maxend ? f->end : d->maxend) >
			    (d->k.v6 ? IP6_LEN_MAX : IP4_LEN_MAX))
		return -EMSGSIZE;

	for (i = 0; i < d->npieces && d->piece[i].end <= f->off; i++)
		;
	*at = i;
	if (i < d->npieces && d->piece[i].off < f->end) {
		const struct piece *p = &d->piece[i];
		bool p_last = d->last_in && p->end == d->total;

		if (p->off != f->off || p->end != f->end || p_last == f->mf ||
		    !dgram_walk(r, d, f, false))
			return -EBADMSG;
		return -EEXIST;
	}

	if (!f->mf) {
		if ((d->last_in && f->end != d->total) || d->maxend > f->end)
			return -EINVAL;
	} else if (d->last_in && f->end >= d->total) {
		return -EINVAL;
	}
	if (d->npieces == REASM_MAX_PIECES)
		return -E2BIG;
	return 0;
}

/* Record f, whose payload is already in d's blocks, as piece number at. */
static void dgram_add(struct dgram *d, const struct frag *f, unsigned at)
{
	memmove(&d->piece[at + 1], &d->piece[at],
		(d->npieces - at) * sizeof(d->piece[0]));
	d->piece[at].off = (uint16_t) f->off;
	d->piece[at].end = (uint16_t) f->end;
	d->npieces++;
	d->have += f->end - f->off;
	if (f->end > d->maxend)
		d->maxend = f->end;
	if (!f->mf) {
		d->last_in = true;
		d->total = f->end;
	}
	if (f->off == 0) {
		memcpy(d->hdr, f->hdr, f->hlen);
		d->hlen = f->hlen;
		d->nh = f->nh;
		d->nh_at = f->nh_at;
	}
}

/* Build the whole datagram of complete d in r->out; returns its length. */
static size_t dgram_emit(struct reasm *r, const struct dgram *d)
{
	uint8_t *o = r->out;
	size_t len = d->hlen + d->total;

	memcpy(o, d->hdr, d->hlen);
	if (d->k.v6) {
		size_t plen = len - IP6_HLEN;

		o[4] = (uint8_t) (plen >> 8);
		o[5] = (uint8_t) plen;
		o[d->nh_at] = d->nh;
	} else {
		uint16_t flags =
			(uint16_t) (d->hdr[6] << 8 | d->hdr[7]) & IP4_DF;
		uint16_t sum;

		o[2] = (uint8_t) (len >> 8);
		o[3] = (uint8_t) len;
		o[6] = (uint8_t) (flags >> 8);
		o[7] = (uint8_t) flags;
		o[10] = o[11] = 0;
		sum = csum_fold(csum_add(0, o, d->hlen));
		memcpy(&o[10], &sum, 2);
	}

	for (uint32_t pos = 0; pos < d->total; pos += REASM_BLOCK) {
		uint32_t k = pos / REASM_BLOCK;
		uint32_t n = d->total - pos;

		if (n > REASM_BLOCK)
			n = REASM_BLOCK;
		/* Complete means covered: every block was written. */
		assert(d->block[k] != NIL);
		memcpy(o + d->hlen + pos, block_at(r, d->block[k]), n);
	}
	return len;
}

static int drop(uint64_t *counter, int err)
{
	(*counter)++;
	return err;
}

/* The common part of reasm_input() and reasm_input6(): f as parsed (err
 * its parse result), charged to who if it starts a datagram. */
static int reasm_frag(struct reasm *r, struct frag *f, int err,
		      const void *who, size_t wholen, uint64_t now,
		      const uint8_t **out, size_t *outlen)
{
	struct dgram *d;
	unsigned at;

	if (err == -EMSGSIZE)
		return drop(&r->st.too_big, err);
	if (err)
		return drop(&r->st.malformed, err);

	d = dgram_find(r, f);
	if (!d) {
		d = dgram_new(r, f, who, wholen, now, &err);
		if (!d)
			return drop(err == -EDQUOT ? &r->st.source_full
						   : &r->st.full, err);
	}

	err = dgram_check(r, d, f, &at);
	switch (err) {
	case 0:
		break;
	case -EEXIST:
		return drop(&r->st.duplicates, err);
	case -EBADMSG:
		dgram_free(r, d);
		return drop(&r->st.overlaps, err);
	case -EMSGSIZE:
		dgram_free(r, d);
		return drop(&r->st.too_big, err);
	default:
		dgram_free(r, d);
		return drop(&r->st.malformed, err);
	}

	if (blocks_needed(d, f) > r->nfree) {
		if (d->npieces == 0)
			dgram_free(r, d);
		return drop(&r->st.full, -ENOSPC);
	}
	dgram_walk(r, d, f, true);
	dgram_add(d, f, at);

	if (!d->last_in || d->have != d->total || !d->hlen)
		return 0;
	*out = r->out;
	*outlen = dgram_emit(r, d);
	dgram_free(r, d);
	r->st.completed++;
	return 1;
}

int reasm_input(struct reasm *r, const uint8_t *pkt, size_t len, uint64_t now,
		const uint8_t **out, size_t *outlen)
{
	struct frag f;
	int err;

	*out = NULL;
	*outlen = 0;
	r->st.fragments++;
	reasm_expire(r, now);
	err = frag_parse(pkt, len, &f);
	return reasm_frag(r, &f, err, f.k.src, sizeof(f.k.src), now, out,
			  outlen);
}

int reasm_input6(struct reasm *r, const uint8_t *pkt, size_t len, size_t fo,
		 const void *who, size_t wholen, uint64_t now,
		 const uint8_t **out, size_t *outlen)
{
	struct frag f;
	int err;

	*out = NULL;
	*outlen = 0;
	r->st.fragments++;
	reasm_expire(r, now);
	err = frag_parse6(pkt, len, fo, &f);
	return reasm_frag(r, &f, err, who, wholen, now, out, outlen);
}
