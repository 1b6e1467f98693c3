// SPDX-License-Identifier: MIT
/* stream.c: the stream backend (-netdev stream, socket listen/connect/fd). */

/*
 * Theory of operation.
 *
 * Input: each connection has a receive buffer (STREAM_RXBUF, well above one
 * maximal record) filled by read(); complete records are cut by
 * framer_next() and handed to the segment in place; after seg_flush() the
 * partial tail moves to the front.  An impossible length (0, > FRAME_MAX)
 * means the byte stream is out of step or hostile: the connection is closed
 * with one log line, the other ports never notice.
 *
 * Output: a round's frames go out in one writev() of (header, frame) pairs.
 * What the socket does not take is copied to a bounded output buffer (a
 * partially written record must be completed, or the stream would be out of
 * step); frames that do not fit are dropped and counted (tx_full), as a
 * congested Ethernet port would.  While the buffer is not empty, new frames
 * are appended behind it and EPOLLOUT drains it.
 *
 * Clients: connect is non-blocking; with reconnect-ms a lost or failed
 * connection is retried on a timer, otherwise the netdev stays without a
 * port (an immediate failure at creation is an error, as in QEMU).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "framer.h"
#include "netdev.h"
#include "port.h"
#include "seg.h"
#include "stream.h"

#define STREAM_RXBUF (256 * 1024)
#define STREAM_OUTBUF (512 * 1024)
#define STREAM_READS_PER_EVENT 4
#define ACCEPTS_PER_EVENT 16

static_assert(STREAM_RXBUF >= 2 * (FRAMER_HDR + FRAME_MAX),
	      "receive buffer must hold a maximal record after compaction");
static_assert(STREAM_OUTBUF >= FRAMER_HDR + FRAME_MAX,
	      "output buffer must hold the rest of a maximal record");

struct stream_nd {
	struct saddr addr;
	bool server;
	uint64_t reconnect_ns;
	/* unix socket file we created, to remove at the end */
	char unlink_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
};

struct stream_port {
	size_t rx_len;
	size_t out_off, out_len;
	uint8_t rx[STREAM_RXBUF];
	uint8_t out[STREAM_OUTBUF];
};

static void stream_out_drain(struct pb *pb, struct port *p)
{
	struct stream_port *sp = p->priv;

	while (sp->out_len) {
		ssize_t n = send(p->fd, sp->out + sp->out_off, sp->out_len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				port_kill(pb, p, strerror(errno));
			break;
		}
		sp->out_off += (size_t)n;
		sp->out_len -= (size_t)n;
	}
	if (!sp->out_len)
		sp->out_off = 0;
}

/* Append bytes to the output buffer; the caller checked there is room. */
static void stream_out_put(struct stream_port *sp, const uint8_t *d, size_t n)
{
	if (sp->out_off + sp->out_len + n > STREAM_OUTBUF) {
		memmove(sp->out, sp->out + sp->out_off, sp->out_len);
		sp->out_off = 0;
	}
	memcpy(sp->out + sp->out_off + sp->out_len, d, n);
	sp->out_len += n;
}

static bool stream_out_room(const struct stream_port *sp, size_t n)
{
	return sp->out_len + n <= STREAM_OUTBUF;
}

static void stream_flush(struct pb *pb, struct port *p)
{
	struct stream_port *sp = p->priv;
	uint8_t hdr[TX_BATCH][FRAMER_HDR];
	struct iovec iov[2 * TX_BATCH];
	uint32_t i = 0;
	size_t done = 0;

	if (!sp->out_len) {
		ssize_t n;

		for (uint32_t k = 0; k < p->txn; k++) {
			put_be32(hdr[k], p->txq[k].len);
			iov[2 * k].iov_base = hdr[k];
			iov[2 * k].iov_len = FRAMER_HDR;
			iov[2 * k + 1].iov_base = (void *)p->txq[k].p;
			iov[2 * k + 1].iov_len = p->txq[k].len;
		}
		struct msghdr mh = { .msg_iov = iov,
				     .msg_iovlen = 2 * p->txn };

		do
			n = sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN) {
			port_kill(pb, p, strerror(errno));
			return;
		}
		done = n < 0 ? 0 : (size_t)n;
		/* Whole records written. */
		for (; i < p->txn && done >= FRAMER_HDR + p->txq[i].len; i++)
			done -= FRAMER_HDR + p->txq[i].len;
		port_count_tx(p, 0, i);
		if (i < p->txn && done) {
			/* The rest of a partly written record must follow;
			 * the buffer is empty, so it fits. */
			uint32_t len = p->txq[i].len;

			if (done < FRAMER_HDR) {
				put_be32(hdr[i], len);
				stream_out_put(sp, hdr[i] + done, FRAMER_HDR - done);
				stream_out_put(sp, p->txq[i].p, len);
			} else {
				stream_out_put(sp, p->txq[i].p + (done - FRAMER_HDR),
					       len - (done - FRAMER_HDR));
			}
			port_count_tx(p, i, 1);
			i++;
		}
	}
	for (; i < p->txn; i++) {
		uint8_t h[FRAMER_HDR];

		if (!stream_out_room(sp, FRAMER_HDR + p->txq[i].len)) {
			port_drop(pb, p, DROP_TX_FULL);
			continue;
		}
		put_be32(h, p->txq[i].len);
		stream_out_put(sp, h, FRAMER_HDR);
		stream_out_put(sp, p->txq[i].p, p->txq[i].len);
		port_count_tx(p, i, 1);
	}
	p->txn = 0;
	if (sp->out_len) {
		stream_out_drain(pb, p);
		port_set_events(pb, p, sp->out_len ? EPOLLIN | EPOLLOUT
						   : EPOLLIN);
	}
}

/* Cut complete records from the receive buffer; false if the peer broke
 * the framing (the port is then dead). */
static bool stream_parse(struct pb *pb, struct port *p)
{
	struct stream_port *sp = p->priv;
	size_t off = 0;
	bool ok = true;

	while (1) {
		const uint8_t *frame;
		uint32_t flen;
		size_t used;
		int r = framer_next(sp->rx + off, sp->rx_len - off, &frame,
				    &flen, &used);

		if (r == 0)
			break;
		if (r < 0) {
			char why[96];

			port_drop(pb, p, DROP_BAD_LENGTH);
			snprintf(why, sizeof(why),
				 "bad record length %u (1-%d): peer out of step",
				 flen, FRAME_MAX);
			log_warn(&pb->log, "port %s: %s", p->name, why);
			port_kill(pb, p, why);
			ok = false;
			break;
		}
		seg_input(pb, p, frame, flen);
		off += used;
	}
	/* Frames queued for other ports point into rx: flush first. */
	seg_flush(pb);
	if (ok && off) {
		memmove(sp->rx, sp->rx + off, sp->rx_len - off);
		sp->rx_len -= off;
	}
	return ok;
}

static void stream_event(struct pb *pb, struct port *p, uint32_t events)
{
	struct stream_port *sp = p->priv;

	if (events & EPOLLOUT) {
		stream_out_drain(pb, p);
		if (!sp->out_len && !p->dead)
			port_set_events(pb, p, EPOLLIN);
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	for (int k = 0; k < STREAM_READS_PER_EVENT && !p->dead; k++) {
		ssize_t n = read(p->fd, sp->rx + sp->rx_len,
				 STREAM_RXBUF - sp->rx_len);

		if (n == 0) {
			if (sp->rx_len)
				log_warn(&pb->log, "port %s: peer closed inside a record (%zu bytes left)",
					 p->name, sp->rx_len);
			port_kill(pb, p, "peer closed the connection");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				port_kill(pb, p, strerror(errno));
			return;
		}
		sp->rx_len += (size_t)n;
		if (!stream_parse(pb, p))
			return;
	}
}

static const struct port_ops stream_port_ops = {
	.type = "stream",
	.event = stream_event,
	.flush = stream_flush,
};

static void stream_tune(int fd)
{
	int one = 1;
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Make a connected socket a port of nd; closes fd on failure. */
static int stream_add_conn(struct pb *pb, struct netdev *nd, int fd)
{
	struct stream_port *sp;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct port *p;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	sp = malloc(sizeof(*sp));
	if (!sp)
		goto fail;
	sp->rx_len = sp->out_off = sp->out_len = 0;
	p = port_new(pb, (int)netdev_index(pb, nd), nd->seg, &stream_port_ops,
		     fd, sp);
	if (!p) {
		free(sp);
		goto fail;
	}
	stream_tune(fd);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		saddr_str((struct sockaddr *)&ss, len, p->peer, sizeof(p->peer));
	log_info(&pb->log, "port %s: connected (%s)", p->name,
		 *p->peer ? p->peer : "fd");
	return 0;
fail:
	log_warn(&pb->log, "netdev %s: cannot add a connection: %s", nd->id,
		 strerror(errno));
	close(fd);
	return -1;
}

static void stream_accept(struct pb *pb, struct netdev *nd, uint32_t events)
{
	(void)events;
	for (int k = 0; k < ACCEPTS_PER_EVENT; k++) {
		int fd = accept4(nd->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn(&pb->log, "netdev %s: accept: %s",
					 nd->id, strerror(errno));
			return;
		}
		stream_add_conn(pb, nd, fd);
	}
}

static void stream_nd_close(struct pb *pb, struct netdev *nd)
{
	struct stream_nd *s = nd->priv;
	struct stat st;

	(void)pb;
	/* Remove our socket file, unless someone replaced it meanwhile. */
	if (s && s->unlink_path[0] && stat(s->unlink_path, &st) == 0 &&
	    st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->unlink_path);
}

static const struct netdev_ops stream_server_ops = {
	.type = "stream",
	.event = stream_accept,
	.close = stream_nd_close,
};

/* A unix path that exists: remove it if it is a socket nobody listens on. */
static int stream_clear_stale(struct pb *pb, struct netdev *nd,
			      const struct saddr *a)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&a->ss;
	struct stat st;
	int fd, rc;

	if (un->sun_path[0] == '\0' || lstat(un->sun_path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return pb__err(pb, -EEXIST, "netdev %s: %s exists and is not a socket",
			       nd->id, un->sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pb__err(pb, -errno, "netdev %s: socket: %s", nd->id,
			       strerror(errno));
	rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	close(fd);
	if (rc == 0)
		return pb__err(pb, -EADDRINUSE, "netdev %s: %s is in use by another server",
			       nd->id, un->sun_path);
	unlink(un->sun_path);
	return 0;
}

int stream_listen(struct pb *pb, struct netdev *nd, const struct saddr *a)
{
	struct stream_nd *s = calloc(1, sizeof(*s));
	char name[160];
	int fd = -1, one = 1, err;

	if (!s)
		return pb__err(pb, -ENOMEM, "out of memory");
	s->addr = *a;
	s->server = true;
	saddr_str((const struct sockaddr *)&a->ss, a->len, name, sizeof(name));
	if (a->ss.ss_family == AF_UNIX) {
		err = stream_clear_stale(pb, nd, a);
		if (err)
			goto fail;
	}
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto fail_errno;
	if (a->ss.ss_family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail_errno;
	if (a->ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *un =
			(const struct sockaddr_un *)&a->ss;
		struct stat st;

		if (un->sun_path[0] && stat(un->sun_path, &st) == 0) {
			str_copy(s->unlink_path, sizeof(s->unlink_path),
				 un->sun_path);
			s->dev = st.st_dev;
			s->ino = st.st_ino;
		}
	}
	if (listen(fd, 128) < 0)
		goto fail_errno;
	nd->priv = s;
	nd->ops = &stream_server_ops;
	nd->fd = fd;
	err = netdev_watch(pb, nd, fd, EPOLLIN);
	if (err) {
		nd->fd = -1;
		errno = -err;
		goto fail_errno;
	}
	log_info(&pb->log, "netdev %s: listening on %s", nd->id, name);
	return 0;
fail_errno:
	err = pb__err(pb, -errno, "netdev %s: cannot listen on %s: %s", nd->id,
		      name, strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	stream_nd_close(pb, &(struct netdev){ .priv = s });
	nd->priv = NULL;
	nd->ops = NULL;
	free(s);
	return err;
}

static void stream_client_event(struct pb *pb, struct netdev *nd,
				uint32_t events);
static void stream_client_timer(struct pb *pb, struct netdev *nd);
static void stream_client_port_closed(struct pb *pb, struct netdev *nd,
				      struct port *p);

static const struct netdev_ops stream_client_ops = {
	.type = "stream",
	.event = stream_client_event,
	.timer = stream_client_timer,
	.port_closed = stream_client_port_closed,
};

static void stream_retry_later(struct pb *pb, struct netdev *nd)
{
	struct stream_nd *s = nd->priv;

	if (s->reconnect_ns)
		timer_arm(&pb->loop, nd->timer, s->reconnect_ns);
}

/* Start a connection attempt; 0 if connected or in progress. */
static int stream_try_connect(struct pb *pb, struct netdev *nd)
{
	struct stream_nd *s = nd->priv;
	int fd, rc;

	fd = socket(s->addr.ss.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)&s->addr.ss, s->addr.len);
	if (rc == 0)
		return stream_add_conn(pb, nd, fd) ? -ENOSPC : 0;
	if (errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	nd->fd = fd;
	rc = netdev_watch(pb, nd, fd, EPOLLOUT);
	if (rc) {
		close(fd);
		nd->fd = -1;
	}
	return rc;
}

static void stream_client_event(struct pb *pb, struct netdev *nd,
				uint32_t events)
{
	int fd = nd->fd, soerr = 0;
	socklen_t len = sizeof(soerr);

	(void)events;
	loop_del(&pb->loop, fd);
	nd->fd = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr) {
		close(fd);
		log_rl(&pb->log, &pb->segs[nd->seg].rl, pb_now(pb), PB_LOG_WARN,
		       "netdev %s: connect failed: %s%s", nd->id,
		       strerror(soerr),
		       ((struct stream_nd *)nd->priv)->reconnect_ns
			       ? " (will retry)"
			       : "");
		stream_retry_later(pb, nd);
		return;
	}
	stream_add_conn(pb, nd, fd);
}

static void stream_client_timer(struct pb *pb, struct netdev *nd)
{
	int rc;

	if (nd->nports || nd->fd >= 0)
		return;
	rc = stream_try_connect(pb, nd);
	if (rc < 0) {
		log_rl(&pb->log, &pb->segs[nd->seg].rl, pb_now(pb),
		       PB_LOG_WARN, "netdev %s: connect failed: %s (will retry)",
		       nd->id, strerror(-rc));
		stream_retry_later(pb, nd);
	}
}

static void stream_client_port_closed(struct pb *pb, struct netdev *nd,
				      struct port *p)
{
	(void)p;
	stream_retry_later(pb, nd);
}

static void nd_timer_cb(struct pb *pb, uint32_t idx)
{
	struct netdev *nd = &pb->netdevs[idx];

	if (nd->used && nd->ops && nd->ops->timer)
		nd->ops->timer(pb, nd);
}

int stream_connect(struct pb *pb, struct netdev *nd, const struct saddr *a,
		   uint64_t reconnect_ms)
{
	struct stream_nd *s = calloc(1, sizeof(*s));
	char name[160];
	int rc;

	if (!s)
		return pb__err(pb, -ENOMEM, "out of memory");
	s->addr = *a;
	s->reconnect_ns = reconnect_ms * NS_PER_MS;
	nd->priv = s;
	nd->ops = &stream_client_ops;
	saddr_str((const struct sockaddr *)&a->ss, a->len, name, sizeof(name));
	if (s->reconnect_ns) {
		rc = timer_new(&pb->loop, nd_timer_cb, netdev_index(pb, nd));
		if (rc < 0)
			goto fail;
		nd->timer = rc;
	}
	rc = stream_try_connect(pb, nd);
	if (rc < 0 && !s->reconnect_ns)
		goto fail;
	if (rc < 0) {
		log_warn(&pb->log, "netdev %s: connect to %s failed: %s (will retry every %llu ms)",
			 nd->id, name, strerror(-rc),
			 (unsigned long long)reconnect_ms);
		stream_retry_later(pb, nd);
	}
	return 0;
fail:
	timer_free(&pb->loop, nd->timer);
	nd->timer = -1;
	free(s);
	nd->priv = NULL;
	nd->ops = NULL;
	return pb__err(pb, rc, "netdev %s: cannot connect to %s: %s", nd->id,
		       name, strerror(-rc));
}

int stream_adopt(struct pb *pb, struct netdev *nd, int fd)
{
	int type = 0, acc = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM)
		return pb__err(pb, -EINVAL, "netdev %s: fd %d is not a stream socket",
			       nd->id, fd);
	len = sizeof(acc);
	getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len);
	if (acc) {
		struct stream_nd *s = calloc(1, sizeof(*s));
		int fl = fcntl(fd, F_GETFL);

		if (!s)
			return pb__err(pb, -ENOMEM, "out of memory");
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		s->server = true;
		nd->priv = s;
		nd->ops = &stream_server_ops;
		nd->fd = fd;
		return netdev_watch(pb, nd, fd, EPOLLIN);
	}
	nd->ops = &stream_client_ops;
	nd->priv = calloc(1, sizeof(struct stream_nd));
	if (!nd->priv)
		return pb__err(pb, -ENOMEM, "out of memory");
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (stream_add_conn(pb, nd, fd))
		return pb__err(pb, -ENOSPC, "netdev %s: cannot add the connection",
			       nd->id);
	return 0;
}

/* ---- -netdev stream ------------------------------------------------------ */

static const char *const stream_keys[] = {
	"type", "id", "segment", "server", "addr.type", "addr.host",
	"addr.port", "addr.path", "addr.str", "addr.abstract", "reconnect-ms",
	"reconnect", NULL,
};

static int stream_create(struct pb *pb, struct netdev *nd,
			 const struct opts *o)
{
	static const char *const types[] = { "inet", "unix", "fd", NULL };
	char *err = pb->errmsg;
	size_t errlen = sizeof(pb->errmsg);
	const char *type;
	bool server, abstract;
	uint64_t rms, rs;
	struct saddr a;
	int rc;

	if ((rc = opts_get_bool(o, "server", false, &server, err, errlen)) ||
	    (rc = opts_get_enum(o, "addr.type", types, NULL, &type, err,
				errlen)) ||
	    (rc = opts_get_bool(o, "addr.abstract", false, &abstract, err,
				errlen)) ||
	    (rc = opts_get_uint(o, "reconnect-ms", 0, 86400000, 0, &rms, err,
				errlen)) ||
	    (rc = opts_get_uint(o, "reconnect", 0, 86400, 0, &rs, err, errlen)))
		return rc;
	if (!type)
		return pb__err(pb, -EINVAL, "%s: 'addr.type' is required (inet, unix or fd)",
			       o->what);
	if (!rms)
		rms = rs * 1000;
	if (server && rms)
		return pb__err(pb, -EINVAL, "%s: 'reconnect-ms' is only for server=off",
			       o->what);
	if (!strcmp(type, "fd")) {
		const char *s = opts_get(o, "addr.str");
		int fd;

		if (!s)
			return pb__err(pb, -EINVAL, "%s: addr.type=fd needs 'addr.str' (the fd number)",
				       o->what);
		fd = saddr_fd(s, err, errlen);
		if (fd < 0)
			return pb__err(pb, fd, "%s: addr.str: %s", o->what, err);
		return stream_adopt(pb, nd, fd);
	}
	if (!strcmp(type, "unix")) {
		const char *path = opts_get(o, "addr.path");

		if (!path)
			return pb__err(pb, -EINVAL, "%s: addr.type=unix needs 'addr.path'",
				       o->what);
		rc = saddr_unix(&a, path, abstract, err, errlen);
	} else {
		const char *host = opts_get(o, "addr.host");
		const char *port = opts_get(o, "addr.port");

		if (!port)
			return pb__err(pb, -EINVAL, "%s: addr.type=inet needs 'addr.port'",
				       o->what);
		rc = saddr_inet(&a, host, port, server, err, errlen);
	}
	if (rc)
		return pb__err(pb, rc, "%s: %s", o->what, err);
	return server ? stream_listen(pb, nd, &a)
		      : stream_connect(pb, nd, &a, rms);
}

const struct backend backend_stream = {
	.type = "stream",
	.keys = stream_keys,
	.create = stream_create,
};
