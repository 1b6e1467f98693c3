/* SPDX-License-Identifier: MIT */
/* pb.h: the library instance (struct pb) and its fixed tables. */
#ifndef PB_PB_H
#define PB_PB_H

/*
 * One instance owns everything: the loop, fixed-size tables of segments,
 * netdevs (what a -netdev option created: a listener, a client, a TAP...),
 * ports (what is joined to a segment; a stream listener owns one port per
 * accepted connection) and captures.  Tables are allocated in pb_new() and
 * addressed by index; epoll events carry (kind, index, generation).
 *
 * Frame processing happens in rounds: a backend reads a batch of frames,
 * hands each to seg_input(), then calls seg_flush(), which writes each
 * destination port's queued frames in one go.  Queued frames point into the
 * source's buffers, which stay untouched until the flush.  A port that fails
 * is only marked dead during a round and released by port_reap() after it,
 * so no table entry disappears while pointers into it are in use.
 */

#include <stdbool.h>
#include <stdint.h>

#include "fdb.h"
#include "log.h"
#include "loop.h"
#include "opts.h"
#include "patchbay.h"
#include "util.h"

#define PB_ID_MAX 32
#define PB_NAME_MAX 64
#define PB_PEER_MAX 400
#define TX_BATCH 64		/* frames queued per port per round */
#define RX_BATCH 32		/* frames read per backend per round */
#define RX_SLOT (FRAME_MAX_ALIGNED + 64)
#define FRAME_MAX_ALIGNED 65552
#define MAX_CAPTURES 32
#define MAX_ROUTERS 16
#define PB_WATCH_MAX 8

/* Why a frame was dropped; names are what users see in counters. */
enum drop_reason {
	DROP_RUNT,		/* shorter than an Ethernet header */
	DROP_OVERSIZE,		/* longer than FRAME_MAX */
	DROP_TX_FULL,		/* the backend could not take it now */
	DROP_TX_ERROR,		/* the backend refused it (send error) */
	DROP_BAD_LENGTH,	/* stream record with an impossible length */
	DROP_MCAST_LOOP,	/* our own multicast frame looped back */
	DROP_LINK_DOWN,		/* port administratively down */
	DROP_BAD_VNET_HDR,	/* TAP virtio-net header malformed */
	DROP_DEFERRED_FULL,	/* re-entrant send with no free buffer */
	DROP_BAD_OFFLOAD,	/* offload request we cannot carry out */
	DROP_REASON_MAX,
};

extern const char *const drop_reason_names[DROP_REASON_MAX];

enum seg_type { SEG_SWITCH, SEG_HUB };

struct segment {
	bool used;
	enum seg_type type;
	char id[PB_ID_MAX];
	struct fdb fdb;
	int ageing_timer;
	uint32_t *members;	/* port slots, capacity max_ports */
	uint32_t nmembers;
	int capture;		/* capture slot or -1 */
	/* counters */
	uint64_t frames, bytes, flooded, forwarded, filtered;
	struct ratelimit rl;
};

struct port;
struct netdev;

struct port_ops {
	const char *type;
	/* fd events (EPOLLIN/OUT/ERR/HUP) */
	void (*event)(struct pb *pb, struct port *p, uint32_t events);
	/* write out p->txq (all of it: sent, buffered or dropped) */
	void (*flush)(struct pb *pb, struct port *p);
	/* release backend state; the fd is closed by the caller */
	void (*close)(struct pb *pb, struct port *p);
	/* optional: the link went up or down (a TAP shows it as carrier) */
	void (*set_link)(struct pb *pb, struct port *p, bool up);
};

/*
 * Offload state of a frame, beside it on its way across a segment: what a
 * virtio-net header says (the values are virtio's).  A frame may leave its
 * L4 checksum to be finished (FM_NEEDS_CSUM: the field holds the pseudo-
 * header sum, the sum over [csum_start, end) goes at csum_start +
 * csum_offset), and a TCP frame may be a super-segment that stands for
 * gso_size-byte segments (gso_type).  Ports say in port.offloads what they
 * take; for the others port_enqueue() finishes the work in software.
 */
#define FM_NEEDS_CSUM 1		/* VIRTIO_NET_HDR_F_NEEDS_CSUM */
#define FM_DATA_VALID 2		/* VIRTIO_NET_HDR_F_DATA_VALID */
#define FM_GSO_NONE 0
#define FM_GSO_TCPV4 1
#define FM_GSO_TCPV6 4
#define FM_GSO_UDP_L4 5		/* UDP datagrams of gso_size bytes (USO) */
#define FM_GSO_ECN 0x80

struct frame_meta {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

/* port.offloads */
#define PORT_OFF_CSUM 1		/* takes FM_NEEDS_CSUM frames */
#define PORT_OFF_TSO4 2		/* takes FM_GSO_TCPV4 */
#define PORT_OFF_TSO6 4		/* takes FM_GSO_TCPV6 */
#define PORT_OFF_ECN 8		/* takes FM_GSO_ECN */
#define PORT_OFF_USO 16		/* takes FM_GSO_UDP_L4 */

struct txq_entry {
	const uint8_t *p;
	uint32_t len;
	struct frame_meta m;
};

struct port {
	bool used;
	bool dead;
	bool dirty;		/* on pb->dirty list */
	bool link_down;
	uint8_t offloads;	/* PORT_OFF_*: what this port takes as is */
	uint32_t gen;
	char name[PB_NAME_MAX];
	char peer[PB_PEER_MAX];
	int netdev;		/* owner slot */
	int seg;
	int fd;
	const struct port_ops *ops;
	void *priv;		/* backend state, allocated at creation */
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t tx_offloaded;	/* queued with offloads left to the backend */
	uint64_t tx_soft;	/* frames made in software for it (gso.c) */
	uint64_t drops[DROP_REASON_MAX];
	uint32_t txn;
	struct txq_entry txq[TX_BATCH];
	struct ratelimit rl;
};

struct netdev_ops {
	const char *type;
	/* fd events on the netdev's own fd (listener, connecting socket) */
	void (*event)(struct pb *pb, struct netdev *nd, uint32_t events);
	/* the netdev's timer fired */
	void (*timer)(struct pb *pb, struct netdev *nd);
	/* one of its ports is being released */
	void (*port_closed)(struct pb *pb, struct netdev *nd, struct port *p);
	/* tear down (ports are already released) */
	void (*close)(struct pb *pb, struct netdev *nd);
};

struct netdev {
	bool used;
	uint32_t gen;
	char id[PB_ID_MAX];
	int seg;
	int fd;			/* listener / connecting socket, or -1 */
	int timer;		/* or -1 */
	int capture;		/* capture slot or -1 */
	uint32_t nports;
	uint32_t serial;	/* for naming accepted connections */
	const struct netdev_ops *ops;
	void *priv;
};

struct capture {
	bool used;
	char id[PB_ID_MAX];
	char file[256];
	int fd;
	uint32_t maxlen;
	int netdev;		/* or -1 */
	int seg;		/* or -1 */
	uint8_t *buf;
	size_t len;
	uint64_t frames, bytes_written, write_errors;
};

struct deferred {
	uint32_t port;
	uint32_t gen;
	uint32_t len;
	uint32_t slot;		/* in defbuf */
};

#define DEFERRED_MAX 64

struct pb {
	struct pb_log log;
	struct loop loop;
	char errmsg[OPTS_ERR_LEN];

	struct segment *segs;
	uint32_t max_segs;
	struct netdev *netdevs;
	uint32_t max_netdevs;
	struct port *ports;
	uint32_t max_ports;
	struct capture caps[MAX_CAPTURES];
	int cap_timer;

	/* one round of frame processing */
	uint8_t *rxbuf;		/* RX_BATCH * RX_SLOT, untouched until used */
	uint32_t *dirty;	/* ports with queued frames */
	uint32_t ndirty;
	bool in_round;
	bool reap;		/* some port is dead */
	uint32_t flush_depth;	/* seg_flush() nesting */

	/* routers (netdev slots), told when a round's frames are out */
	uint32_t routers[MAX_ROUTERS];
	uint32_t nrouters;

	/* pb_port_send() called from inside a round (an rx callback) */
	uint8_t *defbuf;	/* 2 * DEFERRED_MAX * FRAME_MAX_ALIGNED */
	struct deferred def[DEFERRED_MAX];
	uint32_t ndef;
	uint32_t def_half;	/* which half of defbuf new frames use */

	/* frames port_enqueue() segments or checksums for a port without
	 * offloads, sent before the next super-segment reuses it */
	uint8_t *gsobuf;	/* GSOBUF_SIZE */

	/* the embedder's descriptors (pb_watch_fd) */
	struct pb_watch {
		int fd;		/* -1: free */
		uint32_t gen;
		pb_fd_fn fn;
		void *opaque;
	} watch[PB_WATCH_MAX];

	uint64_t stats_seq;
};

#define GSOBUF_SIZE ((size_t)2 * FRAME_MAX_ALIGNED)

/* Record a detailed message for pb_errmsg() and return err. */
int pb__err(struct pb *pb, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Return the pages of buffers that only large frames touch (after a burst;
 * called once a second by routers). */
void pb_trim(struct pb *pb);

static inline uint64_t pb_now(const struct pb *pb)
{
	return pb->loop.now;
}

static inline uint8_t *pb_rx_slot(struct pb *pb, unsigned i)
{
	return pb->rxbuf + (size_t)i * RX_SLOT;
}

#endif
