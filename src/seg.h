/* SPDX-License-Identifier: MIT */
/* seg.h: segments (hub, learning switch): where frames are forwarded. */
#ifndef PB_SEG_H
#define PB_SEG_H

/*
 * A hub sends every frame to every other port of the segment (QEMU hubport
 * semantics).  A switch learns source MACs into its FDB, sends known unicast
 * to exactly one port and floods unknown unicast, broadcast and multicast.
 * Neither ever sends a frame back out of the port it came in on; a switch
 * drops (filters) a unicast frame whose destination sits on the ingress
 * port.
 */

#include "pb.h"

/* "switch,id=NAME[,fdb-size=N][,ageing=S]" or "hub,id=NAME". */
int seg_add(struct pb *pb, const char *spec);
void seg_free_all(struct pb *pb);
/* Slot of the segment with this id, or -1. */
int seg_find(const struct pb *pb, const char *id);

void seg_join(struct pb *pb, struct port *p);
void seg_leave(struct pb *pb, struct port *p);

/* The live port a switch has learnt mac on, or NULL (unknown, or a hub). */
struct port *seg_port_of(struct pb *pb, struct segment *s, const uint8_t *mac);

/* One frame from port src into its segment (during a round). */
void seg_input(struct pb *pb, struct port *src, const uint8_t *frame,
	       size_t len);
/* The same with the frame's offload state (NULL: none). */
void seg_input_m(struct pb *pb, struct port *src, const uint8_t *frame,
		 size_t len, const struct frame_meta *m);
/* End of a batch: flush every port that has queued frames. */
void seg_flush(struct pb *pb);

#endif
