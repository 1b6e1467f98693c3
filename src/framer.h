/* SPDX-License-Identifier: MIT */
/* framer.h: QEMU's stream/socket record format (4-byte BE length + frame). */
#ifndef PB_FRAMER_H
#define PB_FRAMER_H

/*
 * A stream peer (QEMU -netdev stream or socket listen/connect) sends records:
 * a 4-byte big-endian length, then exactly that many bytes of Ethernet frame
 * (no FCS, no virtio header).  A length of 0 or above FRAME_MAX cannot be a
 * frame: the peer is broken or hostile and is disconnected.
 */

#include <stddef.h>
#include <stdint.h>

#define FRAMER_HDR 4

/*
 * Look at buf[0..len) for the next record.  Returns 1 with frame and flen set
 * and *consumed = header + frame bytes; 0 if more bytes are needed; -EPROTO
 * if the length field is 0 or larger than FRAME_MAX (*flen holds it).
 */
int framer_next(const uint8_t *buf, size_t len, const uint8_t **frame,
		uint32_t *flen, size_t *consumed);

#endif
