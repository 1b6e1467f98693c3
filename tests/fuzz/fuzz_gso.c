// SPDX-License-Identifier: MIT
/* fuzz_gso.c: libFuzzer harness for software segmentation (gso.c). */

/*
 * The input is a 10-byte offload request (flags, gso_type, then hdr_len,
 * gso_size, csum_start, csum_offset as big-endian 16-bit words) and the
 * frame it comes with: what a guest writes to a TAP with vnet_hdr.
 *
 * gso_plan() must refuse or accept without reading past the frame; for an
 * accepted plan every piece gso_segment() writes must fit the room the
 * caller reserves for it (port_enqueue_soft: hdr + gso_size for a
 * super-segment, the frame's length otherwise), the pieces of a super-
 * segment must carry the whole payload once, in order, each with a TCP (or,
 * USO, UDP) checksum that verifies and, for UDP, its own length, and an IPv4 piece's header checksum and total
 * length must be right.  ASan watches every copy.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "csum.h"
#include "gso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_meta m;
	struct gso_plan pl;
	size_t len, total = 0;
	uint8_t *frame, *out;

	if (size < 10 || size - 10 > FRAME_MAX)
		return 0;
	m.flags = data[0];
	m.gso_type = data[1];
	m.hdr_len = get16(data + 2);
	m.gso_size = get16(data + 4);
	m.csum_start = get16(data + 6);
	m.csum_offset = get16(data + 8);
	len = size - 10;
	/* exact-size copies, so that ASan sees any read past the frame */
	frame = malloc(len ? len : 1);
	if (!frame)
		return 0;
	memcpy(frame, data + 10, len);
	if (gso_plan(frame, len, &m, &pl) < 0) {
		free(frame);
		return 0;
	}
	if (pl.nseg < 1 || pl.nseg > GSO_MAX_SEGS)
		abort();
	for (unsigned i = 0; i < pl.nseg; i++) {
		size_t room = pl.gso ? pl.hdr + pl.mss : len, n;

		out = malloc(room);
		if (!out)
			abort();
		n = gso_segment(frame, len, &m, &pl, i, out);
		if (n > room || n < pl.hdr)
			abort();
		if (pl.gso) {
			size_t tcplen = n - pl.l4off;
			const uint8_t *ip = out + ETH_HLEN_MIN;
			uint8_t proto = pl.udp ? 17 : 6;
			uint32_t ph;

			if (memcmp(out + pl.hdr, frame + pl.hdr + total,
				   n - pl.hdr))
				abort();
			total += n - pl.hdr;
			if (pl.v6) {
				ph = csum_pseudo6(ip + 8, ip + 24, proto,
						  (uint32_t)tcplen);
			} else {
				if (get16(ip + 2) != n - ETH_HLEN_MIN ||
				    csum_fold(csum_add(0, ip, pl.l4off - ETH_HLEN_MIN)))
					abort();
				uint32_t a, b;

				memcpy(&a, ip + 12, 4);
				memcpy(&b, ip + 16, 4);
				ph = csum_pseudo4(a, b, proto, (uint16_t)tcplen);
			}
			if (csum_fold(csum_add(ph, out + pl.l4off, tcplen)))
				abort();
			if (pl.udp && get16(out + pl.l4off + 4) != tcplen)
				abort();
		}
		free(out);
	}
	if (pl.gso && total != pl.payload)
		abort();
	free(frame);
	return 0;
}
