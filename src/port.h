/* SPDX-License-Identifier: MIT */
/* port.h: the port table: creation, counters, queued output, release. */
#ifndef PB_PORT_H
#define PB_PORT_H

#include "pb.h"

/* Take a free port slot, join segment seg.  fd (or -1) is registered for
 * events (EPOLLIN) and owned by the port from now on.  Returns NULL with
 * errno set when the table is full. */
struct port *port_new(struct pb *pb, int netdev, int seg,
		      const struct port_ops *ops, int fd, void *priv);
/* Mark dead: it stops sending and receiving; released after the round. */
void port_kill(struct pb *pb, struct port *p, const char *why);
/* Release every dead port (called between rounds). */
void port_reap(struct pb *pb);
/* Release now (only outside a round: netdev removal, shutdown). */
void port_release(struct pb *pb, struct port *p);

static inline uint32_t port_index(const struct pb *pb, const struct port *p)
{
	return (uint32_t)(p - pb->ports);
}

/* Live port at slot idx with generation gen, or NULL. */
struct port *port_get(struct pb *pb, uint32_t idx, uint32_t gen);

/* Queue frame for output in this round (flushes first if the queue is
 * full).  m (or NULL) is its offload state: what p cannot take is done
 * here in software. */
void port_enqueue(struct pb *pb, struct port *p, const uint8_t *frame,
		  size_t len, const struct frame_meta *m);
/* Count a dropped frame and log it (rate-limited). */
void port_drop(struct pb *pb, struct port *p, enum drop_reason why);

/* Count n frames of the txq as delivered, from index first. */
void port_count_tx(struct port *p, uint32_t first, uint32_t n);

/* Change which epoll events the port's fd waits for. */
void port_set_events(struct pb *pb, struct port *p, uint32_t events);

#endif
