/* SPDX-License-Identifier: MIT */
/* gso.h: finishing offloaded frames in software (segmentation, checksums)
 * for ports that cannot take them as they are. */
#ifndef PB_GSO_H
#define PB_GSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pb.h"

/* More segments than this from one frame is a request we refuse: a guest
 * cannot make us write thousands of frames for one. */
#define GSO_MAX_SEGS 1024

/* What gso_plan() found out about a frame. */
struct gso_plan {
	size_t hdr;		/* Ethernet + IP + TCP/UDP headers (GSO) */
	size_t l4off;		/* TCP/UDP header offset (GSO) */
	size_t payload;		/* bytes after hdr (GSO) */
	uint16_t mss;		/* payload per segment (GSO) */
	bool v6, gso, udp;
	unsigned nseg;		/* frames gso_segment() makes (1: checksum) */
};

/* Check the offload request m against frame (len bytes); 0 and a plan, or
 * -EINVAL when it is malformed (a counted drop for the caller). */
int gso_plan(const uint8_t *frame, size_t len, const struct frame_meta *m,
	     struct gso_plan *pl);

/* Write frame number i (0 <= i < pl->nseg) of the plan to out, which has
 * room for len bytes; returns its length. */
size_t gso_segment(const uint8_t *frame, size_t len,
		   const struct frame_meta *m, const struct gso_plan *pl,
		   unsigned i, uint8_t *out);

/* Does a port with offloads (PORT_OFF_*) take a frame with meta m? */
static inline bool gso_port_takes(uint8_t offloads, const struct frame_meta *m)
{
	uint8_t t = m->gso_type & (uint8_t)~FM_GSO_ECN;

	if ((m->flags & FM_NEEDS_CSUM) && !(offloads & PORT_OFF_CSUM))
		return false;
	if (t == FM_GSO_NONE)
		return true;
	if ((m->gso_type & FM_GSO_ECN) && !(offloads & PORT_OFF_ECN))
		return false;
	return (t == FM_GSO_TCPV4 && (offloads & PORT_OFF_TSO4)) ||
	       (t == FM_GSO_TCPV6 && (offloads & PORT_OFF_TSO6)) ||
	       (t == FM_GSO_UDP_L4 && (offloads & PORT_OFF_USO) &&
		!(m->gso_type & FM_GSO_ECN));
}

#endif
