/* SPDX-License-Identifier: MIT */
/* frag.h: bounded IPv4 and IPv6 reassembly (RFC 791, RFC 815 hole logic,
 * RFC 8200 section 4.5). */
#ifndef PB_FRAG_H
#define PB_FRAG_H

/*
 * Hostile guests send overlapping, tiny, never-completed and oversized
 * fragments: every resource here is capped.  At most max_datagrams
 * datagrams are in progress at once, holding at most max_bytes of payload
 * in total; a datagram not completed within timeout_ns is dropped; a
 * datagram longer than 65535 bytes, a fragment that overlaps data already
 * received with different length boundaries (RFC 5722 spirit: any overlap is
 * dropped, with the whole datagram), or one arriving when the caps are
 * reached is dropped and counted.  Memory is allocated once in
 * reasm_new().  An exact duplicate (same offset, length, MF and bytes) is
 * dropped alone and counted in duplicates (RFC 8200 section 4.5 allows
 * this); the datagram it belongs to goes on.  frag.c explains the rest.
 */

#include <stddef.h>
#include <stdint.h>

/*
 * fragments counts every reasm_input() call; each call that returns a
 * negative code adds one to exactly one of overlaps, too_big, full,
 * source_full, malformed or duplicates; timeouts counts datagrams (not fragments).
 */
struct reasm_stats {
	uint64_t fragments, completed, timeouts, overlaps, too_big, full,
		source_full, malformed, duplicates;
};

struct reasm;

#define REASM_MAX_DATAGRAMS 65536u
#define REASM_BLOCK 512u	/* unit of fragment memory (see frag.c) */

/*
 * Returns NULL on allocation failure or unusable limits (max_datagrams 0 or
 * above REASM_MAX_DATAGRAMS, max_per_source 0 or above max_datagrams,
 * max_bytes below one REASM_BLOCK).
 */
struct reasm *reasm_new(unsigned max_datagrams, unsigned max_per_source,
			size_t max_bytes, uint64_t timeout_ns);
void reasm_free(struct reasm *r);

/*
 * Feed one IPv4 packet that is a fragment (MF set or offset != 0): pkt is
 * the IP header (already validated: version, IHL, header checksum) plus
 * payload, len its total length (already trimmed to the header's total
 * length).  Returns 0 if kept (datagram incomplete), 1 if this completed a
 * datagram: *out then points to the whole datagram (the first fragment's
 * header with total length, MF, offset and checksum fixed up, followed by
 * the payload), valid until the next call on r; or a negative errno-style
 * code if dropped (counted in stats):
 *   -EINVAL    malformed fragment, or one contradicting the datagram's last
 *              fragment (malformed; the latter drops the datagram too)
 *   -E2BIG     too many fragments for one datagram (malformed; datagram
 *              dropped)
 *   -EMSGSIZE  the datagram would exceed 65535 bytes (too_big; dropped
 *              with the datagram if the excess shows only against data
 *              already held)
 *   -EBADMSG   overlaps data already received (overlaps; datagram dropped)
 *   -EEXIST    exact duplicate (duplicates; datagram kept)
 *   -ENOSPC    datagram slots or bytes exhausted (full; datagram kept)
 *   -EDQUOT    the source holds max_per_source datagrams already and this
 *              fragment would start another (source_full)
 */
int reasm_input(struct reasm *r, const uint8_t *pkt, size_t len, uint64_t now,
		const uint8_t **out, size_t *outlen);
/*
 * The same for an IPv6 fragment: pkt is the fixed header plus payload (len
 * already trimmed to its payload length), fo the offset of the fragment
 * header (behind the unfragmentable part, at most 256 bytes), who/wholen
 * the key the datagram is charged to for max_per_source (at most 16 bytes;
 * the router passes the sender's MAC).  The whole datagram comes out
 * without the fragment header: the offset-0 fragment's unfragmentable part
 * with the payload length set and the next header that named the fragment
 * header replaced by the fragment header's own.  An atomic fragment (offset
 * 0, M clear) is malformed here: RFC 6946 has the caller process it as it
 * is.  Same return codes and counters as reasm_input().
 */
int reasm_input6(struct reasm *r, const uint8_t *pkt, size_t len, size_t fo,
		 const void *who, size_t wholen, uint64_t now,
		 const uint8_t **out, size_t *outlen);
/* Drop datagrams older than the timeout. */
void reasm_expire(struct reasm *r, uint64_t now);
const struct reasm_stats *reasm_stats(const struct reasm *r);
/* Datagrams in progress (for tests: must be 0 after expiry). */
unsigned reasm_pending(const struct reasm *r);
/* Bytes of fragment data held, in whole REASM_BLOCKs; <= max_bytes. */
size_t reasm_bytes(const struct reasm *r);

#endif
