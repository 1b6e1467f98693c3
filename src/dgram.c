// SPDX-License-Identifier: MIT
/* dgram.c: datagram peers (-netdev dgram; socket udp=/mcast=/fd=), and the
 * -netdev socket option family, which mixes stream and datagram modes. */

/*
 * Theory of operation.  One datagram is one Ethernet frame, both ways.  The
 * port reads a batch with recvmmsg() into the instance's receive slots and
 * sends a round's frames with one sendmmsg() to the remote address.  A
 * datagram socket has no backpressure we can wait on: what the kernel
 * refuses (EAGAIN, ENOBUFS) is dropped and counted, as on a wire.
 *
 * Multicast: every member, including ourselves, receives what we send
 * (IP_MULTICAST_LOOP must stay on so that other processes on this host see
 * our frames).  We remember the source MACs of frames we sent in a small
 * direct-mapped cache and drop received frames that carry one of them
 * (mcast_loop).  A collision merely lets one echo through, which the switch
 * treats as a station move; it cannot loop, because a switch never sends a
 * frame back out of its ingress port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "netdev.h"
#include "port.h"
#include "seg.h"
#include "sockaddr.h"
#include "stream.h"

#define SENT_MACS 256

struct dgram_port {
	struct saddr remote;		/* len 0: reply to the last sender */
	struct saddr last;
	bool mcast;
	char unlink_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint8_t sent[SENT_MACS][6];
};

static unsigned mac_slot(const uint8_t *mac)
{
	unsigned h = 0;

	for (int i = 0; i < 6; i++)
		h = h * 31 + mac[i];
	return h % SENT_MACS;
}

static void dgram_event(struct pb *pb, struct port *p, uint32_t events)
{
	struct dgram_port *dp = p->priv;
	struct mmsghdr msg[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_storage from[RX_BATCH];
	int n;

	(void)events;
	memset(msg, 0, sizeof(msg));
	for (int i = 0; i < RX_BATCH; i++) {
		iov[i].iov_base = pb_rx_slot(pb, (unsigned)i);
		iov[i].iov_len = FRAME_MAX + 1;	/* +1: detect oversize */
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
		msg[i].msg_hdr.msg_name = &from[i];
		msg[i].msg_hdr.msg_namelen = sizeof(from[i]);
	}
	n = recvmmsg(p->fd, msg, RX_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		/* ECONNREFUSED: an ICMP error for an earlier send; the peer
		 * may come back, so only count it. */
		if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED)
			port_kill(pb, p, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		const uint8_t *f = iov[i].iov_base;
		size_t len = msg[i].msg_len;

		if (msg[i].msg_hdr.msg_flags & MSG_TRUNC || len > FRAME_MAX) {
			port_drop(pb, p, DROP_OVERSIZE);
			continue;
		}
		if (dp->mcast && len >= ETH_HLEN_MIN &&
		    !memcmp(dp->sent[mac_slot(f + 6)], f + 6, 6)) {
			p->drops[DROP_MCAST_LOOP]++;
			continue;
		}
		if (!dp->remote.len && msg[i].msg_hdr.msg_namelen) {
			memcpy(&dp->last.ss, &from[i],
			       msg[i].msg_hdr.msg_namelen);
			dp->last.len = msg[i].msg_hdr.msg_namelen;
		}
		seg_input(pb, p, f, len);
	}
	seg_flush(pb);
}

static void dgram_flush(struct pb *pb, struct port *p)
{
	struct dgram_port *dp = p->priv;
	const struct saddr *to = dp->remote.len ? &dp->remote : &dp->last;
	struct mmsghdr msg[TX_BATCH];
	struct iovec iov[TX_BATCH];
	uint32_t sent = 0;

	if (!to->len) {
		/* nobody to send to yet (fd= or unconnected, no peer seen) */
		for (uint32_t i = 0; i < p->txn; i++)
			port_drop(pb, p, DROP_TX_ERROR);
		p->txn = 0;
		return;
	}
	memset(msg, 0, sizeof(msg[0]) * p->txn);
	for (uint32_t i = 0; i < p->txn; i++) {
		iov[i].iov_base = (void *)p->txq[i].p;
		iov[i].iov_len = p->txq[i].len;
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
		if (to->len != (socklen_t)-1) {
			msg[i].msg_hdr.msg_name = (void *)&to->ss;
			msg[i].msg_hdr.msg_namelen = to->len;
		}
		if (dp->mcast && p->txq[i].len >= ETH_HLEN_MIN)
			memcpy(dp->sent[mac_slot(p->txq[i].p + 6)],
			       p->txq[i].p + 6, 6);
	}
	while (sent < p->txn) {
		int n = sendmmsg(p->fd, msg + sent, p->txn - sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* this frame is lost; try the rest */
			port_drop(pb, p, errno == EAGAIN || errno == ENOBUFS
						 ? DROP_TX_FULL
						 : DROP_TX_ERROR);
			sent++;
			continue;
		}
		port_count_tx(p, sent, (uint32_t)n);
		sent += (uint32_t)n;
	}
	p->txn = 0;
}

static void dgram_close(struct pb *pb, struct port *p)
{
	struct dgram_port *dp = p->priv;

	(void)pb;
	if (dp->unlink_path[0])
		unlink(dp->unlink_path);
}

static const struct port_ops dgram_port_ops = {
	.type = "dgram",
	.event = dgram_event,
	.flush = dgram_flush,
	.close = dgram_close,
};

static const struct netdev_ops dgram_nd_ops = {
	.type = "dgram",
};

struct dgram_cfg {
	struct saddr local, remote;
	bool has_local, has_remote;
	bool mcast;
	struct in_addr mcast_if;	/* INADDR_ANY: default */
	int fd;				/* >= 0: adopt */
};

static int dgram_setup(struct pb *pb, struct netdev *nd,
		       const struct dgram_cfg *c)
{
	struct dgram_port *dp = calloc(1, sizeof(*dp));
	char lname[160] = "", rname[160] = "";
	int fd = c->fd, one = 1, rc;
	struct port *p;

	if (!dp)
		return pb__err(pb, -ENOMEM, "out of memory");
	if (c->has_remote) {
		dp->remote = c->remote;
		saddr_str((const struct sockaddr *)&c->remote.ss, c->remote.len,
			  rname, sizeof(rname));
	}
	if (c->has_local)
		saddr_str((const struct sockaddr *)&c->local.ss, c->local.len,
			  lname, sizeof(lname));
	dp->mcast = c->mcast;
	if (fd < 0) {
		int fam = c->has_local ? c->local.ss.ss_family
				       : c->remote.ss.ss_family;

		fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto fail_errno;
		if (c->mcast) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				   sizeof(one));
		}
		if (c->has_local) {
			if (c->local.ss.ss_family == AF_UNIX) {
				const struct sockaddr_un *un =
					(const struct sockaddr_un *)&c->local.ss;
				struct stat st;

				/* a stale socket file from an earlier run */
				if (un->sun_path[0] &&
				    lstat(un->sun_path, &st) == 0 &&
				    S_ISSOCK(st.st_mode))
					unlink(un->sun_path);
				if (un->sun_path[0])
					str_copy(dp->unlink_path,
						 sizeof(dp->unlink_path),
						 un->sun_path);
			}
			if (bind(fd, (const struct sockaddr *)&c->local.ss,
				 c->local.len) < 0)
				goto fail_errno;
		}
		if (c->mcast) {
			const struct sockaddr_in *g =
				(const struct sockaddr_in *)&c->remote.ss;
			struct ip_mreq mr = { .imr_multiaddr = g->sin_addr,
					      .imr_interface = c->mcast_if };
			unsigned char ttl = 1, loop = 1;

			if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr,
				       sizeof(mr)) < 0)
				goto fail_errno;
			setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop,
				   sizeof(loop));
			setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl,
				   sizeof(ttl));
			if (c->mcast_if.s_addr != htonl(INADDR_ANY) &&
			    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF,
				       &c->mcast_if, sizeof(c->mcast_if)) < 0)
				goto fail_errno;
		}
	} else {
		int fl = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (!c->has_remote) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);

			/* a connected socket needs no address per send */
			if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
				dp->remote.len = (socklen_t)-1;
		}
	}
	nd->ops = &dgram_nd_ops;
	p = port_new(pb, (int)netdev_index(pb, nd), nd->seg, &dgram_port_ops,
		     fd, dp);
	if (!p) {
		rc = pb__err(pb, -ENOSPC, "netdev %s: too many ports", nd->id);
		goto fail;
	}
	snprintf(p->peer, sizeof(p->peer), "%s%s%s%s", c->mcast ? "mcast " : "",
		 lname, *lname && *rname ? " -> " : "", rname);
	log_info(&pb->log, "netdev %s: datagrams %s", nd->id, p->peer);
	return 0;
fail_errno:
	rc = pb__err(pb, -errno, "netdev %s: datagram socket %s%s%s: %s",
		     nd->id, lname, *lname && *rname ? " -> " : "", rname,
		     strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	if (dp->unlink_path[0])
		unlink(dp->unlink_path);
	free(dp);
	nd->ops = NULL;
	return rc;
}

/* ---- -netdev dgram ------------------------------------------------------- */

static const char *const dgram_keys[] = {
	"type", "id", "segment",
	"local.type", "local.host", "local.port", "local.path", "local.str",
	"local.abstract",
	"remote.type", "remote.host", "remote.port", "remote.path",
	"remote.abstract", NULL,
};

/* Parse prefix.type/host/port/path into a; *fd set for type=fd. */
static int dgram_addr(struct pb *pb, const struct opts *o, const char *pre,
		      bool passive, struct saddr *a, bool *has, int *fd)
{
	static const char *const types[] = { "inet", "unix", "fd", NULL };
	char key[32], *err = pb->errmsg;
	size_t errlen = sizeof(pb->errmsg);
	const char *type;
	bool abstract;
	int rc;

	*has = false;
	snprintf(key, sizeof(key), "%s.type", pre);
	rc = opts_get_enum(o, key, types, NULL, &type, err, errlen);
	if (rc)
		return rc;
	if (!type)
		return 0;
	if (!strcmp(type, "fd")) {
		const char *s;

		snprintf(key, sizeof(key), "%s.str", pre);
		s = opts_get(o, key);
		if (!s || !fd)
			return pb__err(pb, -EINVAL, "%s: %s.type=fd needs %s.str (only for local)",
				       o->what, pre, pre);
		*fd = saddr_fd(s, err, errlen);
		return *fd < 0 ? pb__err(pb, *fd, "%s: %s: %s", o->what, key, err)
			       : 0;
	}
	if (!strcmp(type, "unix")) {
		snprintf(key, sizeof(key), "%s.abstract", pre);
		rc = opts_get_bool(o, key, false, &abstract, err, errlen);
		if (rc)
			return rc;
		snprintf(key, sizeof(key), "%s.path", pre);
		if (!opts_get(o, key))
			return pb__err(pb, -EINVAL, "%s: %s.type=unix needs '%s'",
				       o->what, pre, key);
		rc = saddr_unix(a, opts_get(o, key), abstract, err, errlen);
	} else {
		char hkey[32];

		snprintf(key, sizeof(key), "%s.port", pre);
		snprintf(hkey, sizeof(hkey), "%s.host", pre);
		if (!opts_get(o, key))
			return pb__err(pb, -EINVAL, "%s: %s.type=inet needs '%s'",
				       o->what, pre, key);
		rc = saddr_inet(a, opts_get(o, hkey), opts_get(o, key), passive,
				err, errlen);
		/* getaddrinfo was asked for a stream socket's address; the
		 * address itself is the same for datagrams. */
	}
	if (rc)
		return pb__err(pb, rc, "%s: %s: %s", o->what, pre, err);
	*has = true;
	return 0;
}

static bool is_mcast(const struct saddr *a)
{
	if (a->ss.ss_family == AF_INET)
		return IN_MULTICAST(
			ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr));
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_MULTICAST(
			&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return false;
}

static int dgram_create(struct pb *pb, struct netdev *nd,
			const struct opts *o)
{
	struct dgram_cfg c = { .fd = -1 };
	int rc;

	rc = dgram_addr(pb, o, "local", true, &c.local, &c.has_local, &c.fd);
	if (!rc)
		rc = dgram_addr(pb, o, "remote", false, &c.remote,
				&c.has_remote, NULL);
	if (rc)
		return rc;
	if (c.fd < 0 && !c.has_local && !c.has_remote)
		return pb__err(pb, -EINVAL, "%s: give local.* and/or remote.* (or local.type=fd)",
			       o->what);
	if (c.has_remote && is_mcast(&c.remote)) {
		if (c.remote.ss.ss_family != AF_INET)
			return pb__err(pb, -ENOTSUP, "%s: IPv6 multicast is not supported yet",
				       o->what);
		c.mcast = true;
		if (c.has_local) {
			/* local.host names the interface to join on */
			const struct sockaddr_in *l =
				(const struct sockaddr_in *)&c.local.ss;

			c.mcast_if = l->sin_addr;
		}
		/* bind the group's port on the group address */
		c.local = c.remote;
		c.has_local = true;
	}
	if (c.has_local && c.has_remote &&
	    c.local.ss.ss_family != c.remote.ss.ss_family)
		return pb__err(pb, -EINVAL, "%s: local and remote must be the same address family",
			       o->what);
	return dgram_setup(pb, nd, &c);
}

const struct backend backend_dgram = {
	.type = "dgram",
	.keys = dgram_keys,
	.create = dgram_create,
};

/* ---- -netdev socket ------------------------------------------------------ */

static const char *const socket_keys[] = {
	"type", "id", "segment", "listen", "connect", "mcast", "udp",
	"localaddr", "fd", NULL,
};

static int socket_create(struct pb *pb, struct netdev *nd,
			 const struct opts *o)
{
	const char *listen_s = opts_get(o, "listen");
	const char *connect_s = opts_get(o, "connect");
	const char *mcast_s = opts_get(o, "mcast");
	const char *udp_s = opts_get(o, "udp");
	const char *fd_s = opts_get(o, "fd");
	const char *local_s = opts_get(o, "localaddr");
	char *err = pb->errmsg;
	size_t errlen = sizeof(pb->errmsg);
	struct dgram_cfg c = { .fd = -1 };
	struct saddr a;
	int modes = !!listen_s + !!connect_s + !!mcast_s + !!udp_s + !!fd_s;
	int rc;

	if (modes != 1)
		return pb__err(pb, -EINVAL, "%s: give exactly one of listen=, connect=, mcast=, udp=, fd=",
			       o->what);
	if (local_s && !mcast_s && !udp_s)
		return pb__err(pb, -EINVAL, "%s: 'localaddr' goes with mcast= or udp=",
			       o->what);
	if (fd_s) {
		int fd = saddr_fd(fd_s, err, errlen), type = 0;
		socklen_t len = sizeof(type);

		if (fd < 0)
			return pb__err(pb, fd, "%s: fd: %s", o->what, err);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
			return pb__err(pb, -ENOTSOCK, "%s: fd %d is not a socket",
				       o->what, fd);
		if (type == SOCK_STREAM)
			return stream_adopt(pb, nd, fd);
		c.fd = fd;
		return dgram_setup(pb, nd, &c);
	}
	if (listen_s || connect_s) {
		rc = saddr_hostport(&a, listen_s ? listen_s : connect_s,
				    !!listen_s, err, errlen);
		if (rc)
			return pb__err(pb, rc, "%s: %s: %s", o->what,
				       listen_s ? "listen" : "connect", err);
		return listen_s ? stream_listen(pb, nd, &a)
				: stream_connect(pb, nd, &a, 0);
	}
	if (mcast_s) {
		rc = saddr_hostport(&c.remote, mcast_s, false, err, errlen);
		if (rc)
			return pb__err(pb, rc, "%s: mcast: %s", o->what, err);
		if (c.remote.ss.ss_family != AF_INET || !is_mcast(&c.remote))
			return pb__err(pb, -EINVAL, "%s: mcast: %s is not an IPv4 multicast address",
				       o->what, mcast_s);
		if (local_s && inet_pton(AF_INET, local_s, &c.mcast_if) != 1)
			return pb__err(pb, -EINVAL, "%s: localaddr: '%s' is not an IPv4 address",
				       o->what, local_s);
		c.has_remote = c.has_local = c.mcast = true;
		c.local = c.remote;
		return dgram_setup(pb, nd, &c);
	}
	/* udp=HOST:PORT,localaddr=HOST:PORT */
	if (!local_s)
		return pb__err(pb, -EINVAL, "%s: udp= needs localaddr=HOST:PORT",
			       o->what);
	rc = saddr_hostport(&c.remote, udp_s, false, err, errlen);
	if (rc)
		return pb__err(pb, rc, "%s: udp: %s", o->what, err);
	rc = saddr_hostport(&c.local, local_s, true, err, errlen);
	if (rc)
		return pb__err(pb, rc, "%s: localaddr: %s", o->what, err);
	c.has_local = c.has_remote = true;
	return dgram_setup(pb, nd, &c);
}

const struct backend backend_socket = {
	.type = "socket",
	.keys = socket_keys,
	.create = socket_create,
};
