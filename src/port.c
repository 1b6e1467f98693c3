// SPDX-License-Identifier: MIT
/* port.c: the port table, per-port counters and queued output. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "capture.h"
#include "gso.h"
#include "netdev.h"
#include "port.h"
#include "seg.h"

const char *const drop_reason_names[DROP_REASON_MAX] = {
	[DROP_RUNT] = "runt",
	[DROP_OVERSIZE] = "oversize",
	[DROP_TX_FULL] = "tx_full",
	[DROP_TX_ERROR] = "tx_error",
	[DROP_BAD_LENGTH] = "bad_length",
	[DROP_MCAST_LOOP] = "mcast_loop",
	[DROP_LINK_DOWN] = "link_down",
	[DROP_BAD_VNET_HDR] = "bad_vnet_hdr",
	[DROP_DEFERRED_FULL] = "deferred_full",
	[DROP_BAD_OFFLOAD] = "bad_offload",
};
static_assert(ARRAY_SIZE(drop_reason_names) == DROP_REASON_MAX,
	      "a drop reason lacks a name");

struct port *port_new(struct pb *pb, int netdev, int seg,
		      const struct port_ops *ops, int fd, void *priv)
{
	struct netdev *nd = &pb->netdevs[netdev];
	struct port *p = NULL;
	uint32_t i;

	for (i = 0; i < pb->max_ports; i++) {
		if (!pb->ports[i].used) {
			p = &pb->ports[i];
			break;
		}
	}
	if (!p) {
		errno = ENOSPC;
		return NULL;
	}
	uint32_t gen = p->gen + 1;

	memset(p, 0, sizeof(*p));
	p->used = true;
	p->gen = gen;
	p->netdev = netdev;
	p->seg = seg;
	p->fd = fd;
	p->ops = ops;
	p->priv = priv;
	if (nd->nports == 0 && nd->fd < 0)
		str_copy(p->name, sizeof(p->name), nd->id);
	else
		snprintf(p->name, sizeof(p->name), "%s.%u", nd->id,
			 ++nd->serial);
	if (fd >= 0) {
		int err = loop_add(&pb->loop, fd, EPOLLIN,
				   ref_make(REF_PORT, i, p->gen));

		if (err < 0) {
			p->used = false;
			errno = -err;
			return NULL;
		}
	}
	nd->nports++;
	seg_join(pb, p);
	return p;
}

struct port *port_get(struct pb *pb, uint32_t idx, uint32_t gen)
{
	struct port *p;

	if (idx >= pb->max_ports)
		return NULL;
	p = &pb->ports[idx];
	if (!p->used || p->dead || p->gen != gen)
		return NULL;
	return p;
}

void port_set_events(struct pb *pb, struct port *p, uint32_t events)
{
	if (p->fd >= 0 && !p->dead)
		loop_mod(&pb->loop, p->fd, events,
			 ref_make(REF_PORT, port_index(pb, p), p->gen));
}

void port_kill(struct pb *pb, struct port *p, const char *why)
{
	if (p->dead)
		return;
	log_info(&pb->log, "port %s (%s) closed: %s", p->name, p->ops->type,
		 why);
	p->dead = true;
	p->txn = 0;
	if (p->fd >= 0)
		loop_del(&pb->loop, p->fd);
	pb->reap = true;
}

void port_release(struct pb *pb, struct port *p)
{
	struct netdev *nd = &pb->netdevs[p->netdev];

	if (!p->used)
		return;
	if (p->ops->close)
		p->ops->close(pb, p);
	if (p->fd >= 0) {
		if (!p->dead)
			loop_del(&pb->loop, p->fd);
		close(p->fd);
	}
	seg_leave(pb, p);
	p->used = false;
	p->dead = false;
	p->fd = -1;
	nd->nports--;
	if (nd->ops->port_closed)
		nd->ops->port_closed(pb, nd, p);
	free(p->priv);
	p->priv = NULL;
}

void port_reap(struct pb *pb)
{
	if (!pb->reap)
		return;
	pb->reap = false;
	for (uint32_t i = 0; i < pb->max_ports; i++)
		if (pb->ports[i].used && pb->ports[i].dead)
			port_release(pb, &pb->ports[i]);
}

void port_drop(struct pb *pb, struct port *p, enum drop_reason why)
{
	p->drops[why]++;
	log_rl(&pb->log, &p->rl, pb_now(pb), PB_LOG_DEBUG,
	       "port %s: dropped a frame (%s)", p->name,
	       drop_reason_names[why]);
}

void port_count_tx(struct port *p, uint32_t first, uint32_t n)
{
	for (uint32_t i = first; i < first + n; i++) {
		p->tx_frames++;
		p->tx_bytes += p->txq[i].len;
	}
}

/* Queue as it is (p is live, its link up). */
static void port_txq_add(struct pb *pb, struct port *p, const uint8_t *frame,
			 size_t len, const struct frame_meta *m)
{
	static const struct frame_meta plain;

	if (p->txn == TX_BATCH) {
		p->ops->flush(pb, p);
		p->txn = 0;
		if (p->dead)
			return;
	}
	capture_frame(pb, pb->netdevs[p->netdev].capture, frame, len);
	p->txq[p->txn].p = frame;
	p->txq[p->txn].len = (uint32_t)len;
	p->txq[p->txn].m = m ? *m : plain;
	if (m && (m->flags & FM_NEEDS_CSUM || m->gso_type))
		p->tx_offloaded++;
	p->txn++;
	if (!p->dirty) {
		p->dirty = true;
		pb->dirty[pb->ndirty++] = port_index(pb, p);
	}
}

/* p cannot take the frame's offloads: finish them here (segments and
 * checksums into pb->gsobuf), queue the results, and send them before the
 * buffer is reused. */
static void port_enqueue_soft(struct pb *pb, struct port *p,
			      const uint8_t *frame, size_t len,
			      const struct frame_meta *m)
{
	struct gso_plan pl;
	size_t used = 0;

	if (gso_plan(frame, len, m, &pl) < 0) {
		port_drop(pb, p, DROP_BAD_OFFLOAD);
		return;
	}
	for (unsigned i = 0; i < pl.nseg && !p->dead; i++) {
		size_t room = pl.gso ? pl.hdr + pl.mss : len;

		if (used + room > GSOBUF_SIZE) {
			p->ops->flush(pb, p);
			p->txn = 0;
			used = 0;
		}
		size_t n = gso_segment(frame, len, m, &pl, i, pb->gsobuf + used);

		port_txq_add(pb, p, pb->gsobuf + used, n, NULL);
		p->tx_soft++;
		used += (n + 63) & ~(size_t)63;
	}
	if (p->txn && !p->dead)
		p->ops->flush(pb, p);
	p->txn = 0;
}

void port_enqueue(struct pb *pb, struct port *p, const uint8_t *frame,
		  size_t len, const struct frame_meta *m)
{
	if (p->dead)
		return;
	if (p->link_down) {
		port_drop(pb, p, DROP_LINK_DOWN);
		return;
	}
	if (m && (m->flags & FM_NEEDS_CSUM || m->gso_type) &&
	    !gso_port_takes(p->offloads, m))
		port_enqueue_soft(pb, p, frame, len, m);
	else
		port_txq_add(pb, p, frame, len, m);
}

int pb_port_set_link(pb_t *pb, const char *name, int up)
{
	pb->errmsg[0] = '\0';
	if (!name)
		return pb__err(pb, -EINVAL, "link: no port name");
	for (uint32_t i = 0; i < pb->max_ports; i++) {
		struct port *p = &pb->ports[i];

		if (!p->used || p->dead || strcmp(p->name, name))
			continue;
		if (p->link_down != !up)
			log_info(&pb->log, "port %s: link %s", p->name,
				 up ? "up" : "down");
		p->link_down = !up;
		if (p->ops->set_link)
			p->ops->set_link(pb, p, up);
		return 0;
	}
	if (netdev_find(pb, name) >= 0)
		return pb__err(pb, -ENOENT, "link: netdev '%s' has no port of that name (a listener's ports are %s.1, %s.2, ...)",
			       name, name, name);
	return pb__err(pb, -ENOENT, "link: no port '%s'", name);
}
