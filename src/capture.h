/* SPDX-License-Identifier: MIT */
/* capture.h: pcap capture of a netdev's ports or of a whole segment. */
#ifndef PB_CAPTURE_H
#define PB_CAPTURE_H

/*
 * QEMU's filter-dump, as a tap on the data path: each captured frame is
 * appended as a whole pcap record (libpcap format 2.4, LINKTYPE_ETHERNET,
 * microsecond timestamps) to a per-capture buffer, written out when the
 * buffer fills and at most 100 ms after the last frame.  Only whole records
 * are written, so a reader (tshark -r, Wireshark) sees a valid file at any
 * moment.  A write error stops the capture, not the traffic.
 */

#include "pb.h"

/* Set up the shared flush timer (once per instance). */
int capture_init(struct pb *pb);
int capture_add(struct pb *pb, const char *spec);
int capture_del(struct pb *pb, const char *id);
void capture_del_all(struct pb *pb);
/* Record one frame in capture slot c (c < 0: nothing). */
void capture_frame(struct pb *pb, int c, const uint8_t *frame, size_t len);
/* Drop the capture of a netdev or segment that goes away. */
void capture_detach(struct pb *pb, int c);

#endif
