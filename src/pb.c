// SPDX-License-Identifier: MIT
/* pb.c: the public API: instance life cycle, dispatch, callback ports,
 * statistics. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "capture.h"
#include "jsonw.h"
#include "list.h"
#include "netdev.h"
#include "port.h"
#include "router_api.h"
#include "seg.h"

#define DEFAULT_MAX_PORTS 1024
#define DEFAULT_MAX_SEGS 64
#define EVENTS_PER_DISPATCH 64

int pb__err(struct pb *pb, int err, const char *fmt, ...)
{
	char tmp[sizeof(pb->errmsg)];
	va_list ap;

	/* fmt may use pb->errmsg itself as an argument: format aside. */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(pb->errmsg, tmp, sizeof(tmp));
	return err;
}

const char *pb_strerror(int err)
{
	if (err == 0)
		return "success";
	return strerror(err < 0 ? -err : err);
}

const char *pb_errmsg(const pb_t *pb)
{
	return pb->errmsg;
}

/* Large buffers that are touched only when used: mmap keeps them out of
 * the resident set until then. */
static void *lazy_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

#define RXBUF_SIZE ((size_t)RX_BATCH * RX_SLOT)

void pb_trim(struct pb *pb)
{
	/* (between rounds nothing in them is live; refaulting the first
	 * pages of the receive slots costs a few faults a second) */
	madvise(pb->rxbuf, RXBUF_SIZE, MADV_DONTNEED);
	madvise(pb->gsobuf, GSOBUF_SIZE, MADV_DONTNEED);
}
#define DEFBUF_SIZE ((size_t)2 * DEFERRED_MAX * FRAME_MAX_ALIGNED)

/* Free what pb_new() allocated before the loop (each may be missing). */
static void pb_free_tables(struct pb *pb)
{
	if (pb->rxbuf)
		munmap(pb->rxbuf, RXBUF_SIZE);
	if (pb->defbuf)
		munmap(pb->defbuf, DEFBUF_SIZE);
	if (pb->gsobuf)
		munmap(pb->gsobuf, GSOBUF_SIZE);
	free(pb->ports);
	free(pb->netdevs);
	free(pb->segs);
	free(pb->dirty);
	free(pb);
}

int pb_new(const struct pb_config *cfg, pb_t **out)
{
	struct pb *pb;
	int err;

	*out = NULL;
	if (!cfg || cfg->version < 1)
		return -EINVAL;
	pb = calloc(1, sizeof(*pb));
	if (!pb)
		return -ENOMEM;
	pb->log.level = cfg->log_level;
	pb->log.fn = cfg->log_fn;
	pb->log.opaque = cfg->log_opaque;
	pb->max_ports = cfg->max_ports ? cfg->max_ports : DEFAULT_MAX_PORTS;
	pb->max_segs = cfg->max_segments ? cfg->max_segments : DEFAULT_MAX_SEGS;
	pb->max_netdevs = pb->max_ports;
	pb->ports = calloc(pb->max_ports, sizeof(*pb->ports));
	pb->netdevs = calloc(pb->max_netdevs, sizeof(*pb->netdevs));
	pb->segs = calloc(pb->max_segs, sizeof(*pb->segs));
	pb->dirty = calloc(pb->max_ports, sizeof(*pb->dirty));
	pb->rxbuf = lazy_alloc(RXBUF_SIZE);
	pb->defbuf = lazy_alloc(DEFBUF_SIZE);
	pb->gsobuf = lazy_alloc(GSOBUF_SIZE);
	err = -ENOMEM;
	if (!pb->ports || !pb->netdevs || !pb->segs || !pb->dirty ||
	    !pb->rxbuf || !pb->defbuf || !pb->gsobuf)
		goto fail;
	for (int i = 0; i < MAX_CAPTURES; i++)
		pb->caps[i].fd = -1;
	for (int i = 0; i < PB_WATCH_MAX; i++)
		pb->watch[i].fd = -1;
	/* timers: one per segment, one per netdev, captures, spare */
	err = loop_init(&pb->loop, pb->max_segs + pb->max_netdevs + 8);
	if (err)
		goto fail;
	err = capture_init(pb);
	if (err)
		goto fail_loop;
	*out = pb;
	return 0;
fail_loop:
	loop_fini(&pb->loop);
fail:
	pb_free_tables(pb);
	return err;
}

void pb_free(pb_t *pb)
{
	if (!pb)
		return;
	netdev_del_all(pb);
	capture_del_all(pb);
	seg_free_all(pb);
	loop_fini(&pb->loop);
	pb_free_tables(pb);
}

int pb_fd(const pb_t *pb)
{
	return pb->loop.epfd;
}

int pb_watch_fd(pb_t *pb, int fd, uint32_t events, pb_fd_fn fn, void *opaque)
{
	struct pb_watch *w = NULL;
	int rc;

	if (fd < 0 || !fn)
		return -EINVAL;
	for (int i = 0; i < PB_WATCH_MAX; i++) {
		if (pb->watch[i].fd == fd) {
			w = &pb->watch[i];
			w->fn = fn;
			w->opaque = opaque;
			return loop_mod(&pb->loop, fd, events,
					ref_make(REF_WATCH, (uint32_t)i, w->gen));
		}
		if (!w && pb->watch[i].fd < 0)
			w = &pb->watch[i];
	}
	if (!w)
		return -ENOSPC;
	w->gen++;
	rc = loop_add(&pb->loop, fd, events,
		      ref_make(REF_WATCH, (uint32_t)(w - pb->watch), w->gen));
	if (rc < 0)
		return rc;
	w->fd = fd;
	w->fn = fn;
	w->opaque = opaque;
	return 0;
}

void pb_unwatch_fd(pb_t *pb, int fd)
{
	for (int i = 0; i < PB_WATCH_MAX; i++) {
		if (pb->watch[i].fd == fd) {
			loop_del(&pb->loop, fd);
			pb->watch[i].fd = -1;
			pb->watch[i].gen++;
		}
	}
}

int pb_dispatch(pb_t *pb)
{
	return pb_wait(pb, 0);
}

int pb_wait(pb_t *pb, int timeout_ms)
{
	struct epoll_event ev[EVENTS_PER_DISPATCH];
	int n;

	n = epoll_wait(pb->loop.epfd, ev, EVENTS_PER_DISPATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	loop_update_now(&pb->loop);
	pb->in_round = true;
	pb->loop.defer_sync = true;
	for (int i = 0; i < n; i++) {
		union ref r = { .u64 = ev[i].data.u64 };

		switch (r.kind) {
		case REF_TIMERFD:
			timer_run(&pb->loop, pb);
			break;
		case REF_PORT: {
			struct port *p = port_get(pb, r.idx, r.gen);

			if (p && p->ops->event)
				p->ops->event(pb, p, ev[i].events);
			break;
		}
		case REF_NETDEV: {
			struct netdev *nd = r.idx < pb->max_netdevs
						    ? &pb->netdevs[r.idx]
						    : NULL;

			if (nd && nd->used && nd->gen == r.gen &&
			    nd->ops->event)
				nd->ops->event(pb, nd, ev[i].events);
			break;
		}
		case REF_FLOW:
			router_flow_event(pb, r.idx, r.gen, ev[i].events);
			break;
		case REF_HOSTFWD:
			router_hostfwd_event(pb, r.idx, r.gen, ev[i].events);
			break;
		case REF_DNSTCP:
			router_dnstcp_event(pb, r.idx, r.gen, ev[i].events);
			break;
		case REF_WATCH:
			if (r.idx < PB_WATCH_MAX && pb->watch[r.idx].fd >= 0 &&
			    pb->watch[r.idx].gen == r.gen)
				pb->watch[r.idx].fn(pb->watch[r.idx].opaque,
						    pb->watch[r.idx].fd,
						    ev[i].events);
			break;
		default:
			break;
		}
		/* Handlers flush their own batches; this catches frames
		 * queued by timers. */
		seg_flush(pb);
		port_reap(pb);
	}
	pb->in_round = false;
	pb->loop.defer_sync = false;
	timer_sync(&pb->loop);
	return 0;
}

int pb_next_timeout(pb_t *pb)
{
	uint64_t next = timer_next(&pb->loop);
	uint64_t now = loop_update_now(&pb->loop);

	if (!next)
		return -1;
	if (next <= now)
		return 0;
	/* round up so that waking early does not spin */
	return (int)MIN((next - now + NS_PER_MS - 1) / NS_PER_MS, 1u << 30);
}

int pb_segment_add(pb_t *pb, const char *spec)
{
	pb->errmsg[0] = '\0';
	return seg_add(pb, spec);
}

int pb_netdev_add(pb_t *pb, const char *spec)
{
	pb->errmsg[0] = '\0';
	loop_update_now(&pb->loop);
	return netdev_add(pb, spec);
}

int pb_netdev_del(pb_t *pb, const char *id)
{
	pb->errmsg[0] = '\0';
	return netdev_del(pb, id);
}

int pb_capture_add(pb_t *pb, const char *spec)
{
	pb->errmsg[0] = '\0';
	return capture_add(pb, spec);
}

int pb_capture_del(pb_t *pb, const char *id)
{
	pb->errmsg[0] = '\0';
	return capture_del(pb, id);
}

/* ---- callback ports: the embedder is the NIC ---------------------------- */

struct cbport {
	pb_rx_fn rx;
	void *opaque;
};

static void cbport_flush(struct pb *pb, struct port *p)
{
	struct cbport *cb = p->priv;

	(void)pb;
	for (uint32_t i = 0; i < p->txn; i++)
		cb->rx(cb->opaque, p->txq[i].p, p->txq[i].len);
	port_count_tx(p, 0, p->txn);
	p->txn = 0;
}

static const struct port_ops cbport_ops = {
	.type = "callback",
	.flush = cbport_flush,
};

static const struct netdev_ops cbnetdev_ops = {
	.type = "callback",
};

int pb_callback_port_add(pb_t *pb, const char *id, const char *segment,
			 pb_rx_fn rx, void *opaque)
{
	struct netdev *nd;
	struct cbport *cb;
	struct port *p;
	int seg;

	pb->errmsg[0] = '\0';
	if (!id || !*id || strlen(id) >= PB_ID_MAX || !rx)
		return pb__err(pb, -EINVAL, "callback port: bad id or no rx callback");
	if (netdev_find(pb, id) >= 0)
		return pb__err(pb, -EEXIST, "callback port: duplicate id '%s'", id);
	seg = netdev_segment(pb, segment);
	if (seg < 0)
		return seg;
	cb = calloc(1, sizeof(*cb));
	if (!cb)
		return pb__err(pb, -ENOMEM, "out of memory");
	cb->rx = rx;
	cb->opaque = opaque;
	nd = netdev_alloc(pb, id, seg, &cbnetdev_ops);
	if (!nd) {
		free(cb);
		return pb__err(pb, -ENOSPC, "callback port %s: too many netdevs", id);
	}
	p = port_new(pb, (int)netdev_index(pb, nd), seg, &cbport_ops, -1, cb);
	if (!p) {
		free(cb);
		nd->used = false;
		return pb__err(pb, -ENOSPC, "callback port %s: too many ports", id);
	}
	return (int)port_index(pb, p);
}

int pb_port_send(pb_t *pb, int port, const void *frame, size_t len)
{
	struct port *p;

	if (port < 0 || (uint32_t)port >= pb->max_ports)
		return -EINVAL;
	p = &pb->ports[port];
	if (!p->used || p->dead || p->ops != &cbport_ops)
		return -EINVAL;
	if (len > FRAME_MAX) {
		port_drop(pb, p, DROP_OVERSIZE);
		return -EMSGSIZE;
	}
	if (pb->in_round) {
		/* Called from an rx callback: copy, feed after the flush. */
		if (pb->ndef == DEFERRED_MAX) {
			port_drop(pb, p, DROP_DEFERRED_FULL);
			return -ENOBUFS;
		}
		struct deferred *d = &pb->def[pb->ndef];

		d->slot = pb->def_half * DEFERRED_MAX + pb->ndef;
		d->port = (uint32_t)port;
		d->gen = p->gen;
		d->len = (uint32_t)len;
		memcpy(pb->defbuf + (size_t)d->slot * FRAME_MAX_ALIGNED, frame,
		       len);
		pb->ndef++;
		return 0;
	}
	loop_update_now(&pb->loop);
	pb->in_round = true;
	seg_input(pb, p, frame, len);
	seg_flush(pb);
	pb->in_round = false;
	port_reap(pb);
	timer_sync(&pb->loop);
	return 0;
}

/* ---- statistics ---------------------------------------------------------- */

int pb_port_stats(pb_t *pb, struct pb_port_stats *out, int max)
{
	int n = 0;

	for (uint32_t i = 0; i < pb->max_ports; i++) {
		const struct port *p = &pb->ports[i];

		if (!p->used || p->dead)
			continue;
		if (n < max) {
			struct pb_port_stats *s = &out[n];

			memset(s, 0, sizeof(*s));
			str_copy(s->name, sizeof(s->name), p->name);
			str_copy(s->netdev, sizeof(s->netdev),
				 pb->netdevs[p->netdev].id);
			str_copy(s->segment, sizeof(s->segment),
				 pb->segs[p->seg].id);
			str_copy(s->type, sizeof(s->type), p->ops->type);
			str_copy(s->peer, sizeof(s->peer), p->peer);
			s->rx_frames = p->rx_frames;
			s->rx_bytes = p->rx_bytes;
			s->tx_frames = p->tx_frames;
			s->tx_bytes = p->tx_bytes;
			for (int d = 0; d < DROP_REASON_MAX; d++)
				s->drops_total += p->drops[d];
		}
		n++;
	}
	return n;
}

int pb_stats_json(pb_t *pb, int fd)
{
	const char *sep = "";
	FILE *f = jsonw_open(fd);

	if (!f)
		return -errno;
	fprintf(f, "{\"version\":1,\"seq\":%llu,\"segments\":[",
		(unsigned long long)++pb->stats_seq);
	list_segments(f, pb);
	fputs("],\"ports\":[", f);
	list_ports(f, pb, true);
	fputs("],\"captures\":[", f);
	sep = "";
	for (int i = 0; i < MAX_CAPTURES; i++) {
		const struct capture *c = &pb->caps[i];

		if (!c->used)
			continue;
		fprintf(f, "%s{\"id\":", sep);
		jsonw_str(f, c->id);
		fputs(",\"file\":", f);
		jsonw_str(f, c->file);
		fprintf(f, ",\"frames\":%llu,\"write_errors\":%llu}",
			(unsigned long long)c->frames,
			(unsigned long long)c->write_errors);
		sep = ",";
	}
	fputs("]}\n", f);
	return jsonw_close(f);
}

void pb_log_stats(pb_t *pb)
{
	for (uint32_t i = 0; i < pb->max_ports; i++) {
		const struct port *p = &pb->ports[i];
		char drops[256] = "";
		size_t off = 0;

		if (!p->used)
			continue;
		for (int d = 0; d < DROP_REASON_MAX; d++) {
			if (p->drops[d] && off < sizeof(drops))
				off += (size_t)snprintf(drops + off, sizeof(drops) - off,
							" %s=%llu", drop_reason_names[d],
							(unsigned long long)p->drops[d]);
		}
		log_info(&pb->log, "port %s: rx %llu frames %llu bytes, tx %llu frames %llu bytes%s%s",
			 p->name, (unsigned long long)p->rx_frames,
			 (unsigned long long)p->rx_bytes,
			 (unsigned long long)p->tx_frames,
			 (unsigned long long)p->tx_bytes, *drops ? ", drops:" : "",
			 drops);
	}
}
