// SPDX-License-Identifier: MIT
/* gso.c: software segmentation and checksum completion. */

/*
 * A TAP with offloads hands us (and takes from us) TCP super-segments of up
 * to 64 KiB whose checksum is left to finish; the router builds them too.
 * A port that cannot take them (a QEMU socket, an embedder, a TAP without
 * vnet_hdr) gets what the kernel would have put on a wire: the super-
 * segment cut at gso_size bytes of payload, every piece with its own IP
 * length and ID, TCP sequence number and checksums; flags that belong to
 * the end of the data (FIN, PSH) only on the last piece, CWR only on the
 * first.  UDP super-datagrams (USO: an application that sends with
 * UDP_SEGMENT behind a TAP that takes them) become the datagrams it wrote,
 * gso_size bytes each (the last may be shorter), each with its own UDP
 * length and checksum.  A frame that only needs its checksum gets it at csum_start +
 * csum_offset, over everything from csum_start (RFC 1071 sum, the field
 * holding the pseudo-header sum as virtio defines it).
 *
 * Everything the request claims is checked against the frame first: a
 * guest controls the header and the frame alike.
 */
#include <errno.h>

#include "csum.h"
#include "gso.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

int gso_plan(const uint8_t *f, size_t len, const struct frame_meta *m,
	     struct gso_plan *pl)
{
	uint8_t t = m->gso_type & (uint8_t)~FM_GSO_ECN;
	size_t l3 = ETH_HLEN_MIN, doff = 8;

	memset(pl, 0, sizeof(*pl));
	if (t == FM_GSO_NONE) {
		if (!(m->flags & FM_NEEDS_CSUM)) {
			pl->nseg = 1;	/* nothing to do: a copy */
			return 0;
		}
		if ((size_t)m->csum_start + m->csum_offset + 2 > len ||
		    m->csum_start < l3)
			return -EINVAL;
		pl->nseg = 1;
		return 0;
	}
	if (len < l3 + 40 || !m->gso_size)
		return -EINVAL;
	if (t == FM_GSO_UDP_L4) {
		/* either family, told by the frame itself */
		pl->udp = true;
		pl->v6 = f[12] == 0x86 && f[13] == 0xdd;
		if (pl->v6 ? f[l3] >> 4 != 6 || f[l3 + 6] != 17
			   : f[12] != 0x08 || f[13] != 0x00 ||
				     f[l3] >> 4 != 4 || (f[l3] & 0xf) < 5 ||
				     f[l3 + 9] != 17)
			return -EINVAL;
		pl->l4off = l3 + (pl->v6 ? 40 : (size_t)(f[l3] & 0xf) * 4);
		if (pl->l4off + 8 > len)
			return -EINVAL;
	} else if (t == FM_GSO_TCPV4) {
		if (f[12] != 0x08 || f[13] != 0x00 || f[l3] >> 4 != 4 ||
		    (f[l3] & 0xf) < 5 || f[l3 + 9] != 6)
			return -EINVAL;
		pl->l4off = l3 + (size_t)(f[l3] & 0xf) * 4;
	} else if (t == FM_GSO_TCPV6) {
		if (f[12] != 0x86 || f[13] != 0xdd || f[l3] >> 4 != 6 ||
		    f[l3 + 6] != 6)
			return -EINVAL;
		pl->v6 = true;
		pl->l4off = l3 + 40;
	} else {
		return -EINVAL;
	}
	if (!pl->udp) {
		if (pl->l4off + 20 > len)
			return -EINVAL;
		doff = (size_t)(f[pl->l4off + 12] >> 4) * 4;
		if (doff < 20 || pl->l4off + doff > len)
			return -EINVAL;
	}
	pl->hdr = pl->l4off + doff;
	pl->payload = len - pl->hdr;
	pl->mss = m->gso_size;
	pl->gso = true;
	pl->nseg = pl->payload ? (unsigned)((pl->payload + pl->mss - 1) / pl->mss)
			       : 1;
	if (pl->nseg > GSO_MAX_SEGS)
		return -EINVAL;
	return 0;
}

/* The pseudo-header sum of the frame's addresses for a TCP or UDP
 * length. */
static uint32_t gso_pseudo(const uint8_t *ip, bool v6, uint8_t proto,
			   size_t l4len)
{
	uint32_t a, b;

	if (v6)
		return csum_pseudo6(ip + 8, ip + 24, proto, (uint32_t)l4len);
	memcpy(&a, ip + 12, 4);
	memcpy(&b, ip + 16, 4);
	return csum_pseudo4(a, b, proto, (uint16_t)l4len);
}

size_t gso_segment(const uint8_t *f, size_t len, const struct frame_meta *m,
		   const struct gso_plan *pl, unsigned i, uint8_t *out)
{
	size_t off, n, tcplen;
	uint8_t *ip = out + ETH_HLEN_MIN, *th;
	uint16_t ck;

	if (!pl->gso) {
		memcpy(out, f, len);
		if (m->flags & FM_NEEDS_CSUM) {
			uint8_t *c = out + m->csum_start + m->csum_offset;

			ck = csum_fold(csum_add(0, out + m->csum_start,
						len - m->csum_start));
			/* UDP sends 0 as all ones (RFC 768) */
			if (!ck && m->csum_offset == 6)
				ck = 0xffff;
			memcpy(c, &ck, 2);
		}
		return len;
	}
	off = (size_t)i * pl->mss;
	n = MIN((size_t)pl->mss, pl->payload - MIN(off, pl->payload));
	memcpy(out, f, pl->hdr);
	memcpy(out + pl->hdr, f + pl->hdr + off, n);
	tcplen = pl->hdr - pl->l4off + n;
	th = out + pl->l4off;
	if (pl->v6) {
		ip[4] = (uint8_t)(tcplen >> 8);
		ip[5] = (uint8_t)tcplen;
	} else {
		size_t tot = pl->hdr - ETH_HLEN_MIN + n;
		uint16_t id = (uint16_t)((ip[4] << 8 | ip[5]) + i);

		ip[2] = (uint8_t)(tot >> 8);
		ip[3] = (uint8_t)tot;
		ip[4] = (uint8_t)(id >> 8);
		ip[5] = (uint8_t)id;
		ip[10] = ip[11] = 0;
		ck = csum_fold(csum_add(0, ip, pl->l4off - ETH_HLEN_MIN));
		memcpy(ip + 10, &ck, 2);
	}
	if (pl->udp) {
		th[4] = (uint8_t)(tcplen >> 8);	/* the UDP length */
		th[5] = (uint8_t)tcplen;
		th[6] = th[7] = 0;
		ck = csum_fold(csum_add(gso_pseudo(ip, pl->v6, 17, tcplen), th,
					tcplen));
		if (!ck)
			ck = 0xffff;	/* 0 means "no checksum" (RFC 768) */
		memcpy(th + 6, &ck, 2);
		return pl->hdr + n;
	}
	put_be32(th + 4, get_be32(th + 4) + (uint32_t)off);
	if (i + 1 < pl->nseg)
		th[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
	if (i > 0)
		th[13] &= (uint8_t)~TCP_CWR;
	th[16] = th[17] = 0;
	ck = csum_fold(csum_add(gso_pseudo(ip, pl->v6, 6, tcplen), th, tcplen));
	memcpy(th + 16, &ck, 2);
	return pl->hdr + n;
}
