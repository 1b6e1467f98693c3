// SPDX-License-Identifier: MIT
/* udp.c: UDP flows between guests and host sockets, and UDP forwards. */

/*
 * One flow per guest (address, port) and destination (address, port), each
 * with a host socket connect()ed to the mapped destination, so the kernel
 * filters replies for us and reports ICMP errors on it (IP_RECVERR), which
 * become ICMP errors to the guest.  Datagrams up to 65507 bytes pass both
 * ways: guests' fragments are reassembled before we get here, and what we
 * send a guest is fragmented to its MTU by router_send_ip4() (IPv6: by
 * ip6.c).  The guest's TTL (less one hop) is applied to the host socket,
 * so traceroute works.
 *
 * UDP forwards (hostfwd=udp:...) share their listening socket: each host
 * client is a flow whose replies go out with sendto().  Flows end after
 * udp-timeout (r->udp_idle_ns) without traffic in either direction.
 *
 * A guest that sends fast sends runs of equal-sized datagrams on one flow:
 * the datagrams of a run that arrive in one round (r->udpq, pointing into
 * the round's frames) leave with one sendmsg() and UDP_SEGMENT, which the
 * kernel cuts back into the same datagrams after one trip down its stack
 * (generic segmentation offload; Linux 4.18).  Where it says no (a path MTU
 * below the size, an old kernel) they go one by one, as they came.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csum.h"
#include "flow.h"
#include "router.h"
#include "sockaddr.h"
#include "tftp.h"

#define UDP_BATCH 32
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define UDP_GSO_TOTAL 65000	/* bytes per batch (one IP datagram's worth) */

void udp_fill(uint8_t *u, uint16_t sport, uint16_t dport, size_t ulen,
	      uint32_t pseudo)
{
	uint16_t ck;

	u[0] = (uint8_t)(sport >> 8);
	u[1] = (uint8_t)sport;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)(ulen >> 8);
	u[5] = (uint8_t)ulen;
	u[6] = u[7] = 0;
	ck = csum_fold(csum_add(pseudo, u, ulen));
	if (ck == 0)
		ck = 0xffff;	/* 0 means "no checksum" (RFC 768) */
	memcpy(u + 6, &ck, 2);
}

void udp_send_to_guest(struct router *r, uint8_t *frame, uint32_t src,
			 uint16_t sport, uint32_t dst, uint16_t dport,
			 size_t len)
{
	uint16_t ulen = (uint16_t)(UDP_HDR + len);

	udp_fill(frame + ETH_HDR + IP4_HDR, sport, dport, ulen,
		 csum_pseudo4(src, dst, IPPROTO_UDP, ulen));
	router_send_ip4(r, frame, IPPROTO_UDP, src, dst, ulen, 0);
}

void udp_send_flow(struct router *r, const struct flow_key *k, uint8_t *frame,
		   size_t len)
{
	uint16_t ulen = (uint16_t)(UDP_HDR + len);

	if (!k->v6) {
		udp_send_to_guest(r, frame, k->rip, k->rport, k->gip, k->gport,
				  len);
		return;
	}
	udp_fill(frame + flow_l4off(k), k->rport, k->gport, ulen,
		 flow_pseudo(k, IPPROTO_UDP, ulen));
	flow_send(r, k, frame, IPPROTO_UDP, ulen);
}

/* Port unreachable for flow f: its host socket said ECONNREFUSED (IPv6
 * sockets have no error queue here; batched datagrams have no IP header
 * left to quote, the flow's addresses and ports stand for it). */
static void udp_unreach(struct router *r, struct flow *f)
{
	uint8_t l4[8] = { 0 };

	l4[5] = UDP_HDR;	/* UDP length; no checksum */
	icmp_send_error_flow(r, f, l4, 3, 3);
}

/* Send what r->udpq holds (at the end of a round, or before anything else
 * goes out on that socket). */
void udp_send_batch(struct router *r)
{
	struct flow *f = r->udpq.flow < r->flows->cap
				 ? &r->flows->f[r->udpq.flow] : NULL;
	unsigned n = r->udpq.n;
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = r->udpq.iov, .msg_iovlen = n };
	unsigned failed = 0;

	r->udpq.n = 0;
	if (!n || !f || !f->used || f->gen != r->udpq.gen ||
	    f->fd != r->udpq.fd)
		return;
	if (n > 1 && !f->udp_nogso) {
		msg_put_cmsg(&mh, u.buf, sizeof(u.buf), IPPROTO_UDP, UDP_SEGMENT,
			     &r->udpq.seg, sizeof(uint16_t));
		if (sendmsg(f->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
			r->st.udp_gso_sends++;
			r->st.udp_gso_datagrams += n;
			return;
		}
		if (errno != EINVAL && errno != EIO && errno != ENOPROTOOPT &&
		    errno != EOPNOTSUPP && errno != EMSGSIZE) {
			failed = n;	/* (EAGAIN, ECONNREFUSED...): all lost */
			goto out;
		}
		f->udp_nogso = true;	/* this path cannot: one by one */
	}
	for (unsigned i = 0; i < n; i++)
		if (send(f->fd, r->udpq.iov[i].iov_base, r->udpq.iov[i].iov_len,
			 MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			failed++;
out:
	if (!failed)
		return;
	r->st.drops[RD_UDP_SEND] += failed;
	if (errno == ECONNREFUSED)
		udp_unreach(r, f);
}

/* Send r->udpq now if it holds datagrams of flow f. */
static void udp_send_batch_of(struct router *r, const struct flow *f)
{
	if (r->udpq.n && r->udpq.fd == f->fd)
		udp_send_batch(r);
}

/* Take a datagram for flow f into r->udpq (the pointer: it must stay
 * valid until the round's end); false if it must go now. */
static bool udp_batch_add(struct router *r, struct flow *f, const uint8_t *p,
			  size_t len)
{
	uint32_t idx = flow_index(r->flows, f);

	if (r->udpq.n && (r->udpq.flow != idx || r->udpq.gen != f->gen ||
			  r->udpq.n == UDP_BATCH_MAX || len > r->udpq.seg ||
			  r->udpq.total + len > UDP_GSO_TOTAL ||
			  r->udpq.iov[r->udpq.n - 1].iov_len < r->udpq.seg))
		udp_send_batch(r);
	/* only what fits the guest's own link: a larger datagram may need
	 * fragments on the host's path, which segments of it may not have */
	if (!len || len > (size_t)r->mtu - IP4_HDR - UDP_HDR || f->udp_nogso)
		return false;
	if (!r->udpq.n) {
		r->udpq.flow = idx;
		r->udpq.gen = f->gen;
		r->udpq.fd = f->fd;
		r->udpq.seg = (uint16_t)len;
		r->udpq.total = 0;
	}
	r->udpq.iov[r->udpq.n].iov_base = (void *)p;
	r->udpq.iov[r->udpq.n].iov_len = len;
	r->udpq.n++;
	r->udpq.total += len;
	return true;
}

static int udp_open(struct router *r, struct flow *f,
		    const struct sockaddr_storage *ss)
{
	int one = 1, fd = router_socket_af(r, ss->ss_family, SOCK_DGRAM, 0);
	socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						  : sizeof(struct sockaddr_in);

	if (fd < 0)
		return fd;
	if (ss->ss_family == AF_INET)
		setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	f->fd = fd;
	f->ttl = 64;
	return router_flow_watch(r, f, EPOLLIN, true);
}

void udp_input(struct router *r, const struct ip4_view *ip)
{
	struct cursor c = ip->l4;
	const uint8_t *u = cur_peek(&c, UDP_HDR);
	struct flow_key k;
	struct flow *f;
	struct sockaddr_storage ss = { 0 };
	uint16_t ulen, ck;
	ssize_t n;
	int rc;

	if (!u) {
		rdrop(r, RD_L4_MALFORMED);
		return;
	}
	ulen = (uint16_t)(u[4] << 8 | u[5]);
	if (ulen < UDP_HDR || !cur_trim(&c, ulen)) {
		rdrop(r, RD_L4_MALFORMED);
		return;
	}
	memcpy(&ck, u + 6, 2);
	/* IPv6 makes the UDP checksum mandatory (RFC 8200 8.1) */
	if ((ck || ip->v6) && ip_l4_csum_bad(ip, IPPROTO_UDP, c.p, c.rem)) {
		rdrop(r, RD_L4_CSUM);
		return;
	}
	memset(&k, 0, sizeof(k));
	k.proto = IPPROTO_UDP;
	ip_fill_key(ip, &k);
	k.gport = (uint16_t)(u[0] << 8 | u[1]);
	k.rport = (uint16_t)(u[2] << 8 | u[3]);
	cur_pull(&c, UDP_HDR);
	if (k.rport == 53 && (ip->v6 ? !memcmp(&ip->dst6, &r->ip6.dns, 16)
				     : ip->dst == r->dns)) {
		dns_udp_input(r, ip, k.gport, c.p, c.rem);
		return;
	}
	if (!ip->v6 && ip->dst == r->gw &&
	    tftp_udp_input(r, ip, k.gport, k.rport, c.p, c.rem))
		return;
	f = flow_lookup(r->flows, &k);
	if (!f) {
		/* no other UDP service on the router's own addresses */
		if (!ip->v6 && router_owns(r, ip->dst) && ip->dst != r->gw) {
			rdrop(r, RD_NO_ROUTE);
			ip_unreach(r, ip, 3);
			return;
		}
		if (ip->v6) {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;

			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons(k.rport);
			rc = router_map_dst6(r, &ip->dst6, &a6->sin6_addr);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			a->sin_family = AF_INET;
			a->sin_port = htons(k.rport);
			rc = router_map_dst(r, ip->dst, &a->sin_addr.s_addr);
		}
		if (rc) {
			rdrop(r, rc == -EACCES ? RD_RESTRICTED : RD_NO_ROUTE);
			ip_unreach(r, ip, rc == -EACCES ? 13 : 0);
			return;
		}
		f = router_flow_new(r, &k, ip->src_mac);
		if (!f) {
			ip_unreach(r, ip, 1);
			return;
		}
		rc = udp_open(r, f, &ss);
		if (rc) {
			router_flow_close(r, f);
			rdrop(r, RD_SOCKET);
			ip_unreach(r, ip, 1);
			return;
		}
		r->st.udp_opened++;
		router_kick_timer(r, NS_PER_SEC);
	}
	f->last_active = pb_now(r->pb);
	if (!f->shared_fd && !ip->v6 && ip->ttl > 1 && f->ttl != ip->ttl - 1) {
		int ttl = ip->ttl - 1;

		udp_send_batch_of(r, f);	/* those go with the old TTL */
		if (setsockopt(f->fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) == 0)
			f->ttl = (uint8_t)ttl;
	}
	if (!f->shared_fd && !ip->reassembled && udp_batch_add(r, f, c.p, c.rem))
		return;
	udp_send_batch_of(r, f);	/* what came before goes first */
	if (f->shared_fd)
		n = sendto(f->fd, c.p, c.rem, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&f->peer,
			   f->peer.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							 : sizeof(struct sockaddr_in));
	else
		n = send(f->fd, c.p, c.rem, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0) {
		rdrop(r, RD_UDP_SEND);
		if (errno == ECONNREFUSED)
			ip_unreach(r, ip, 3);
	}
}

/* Drain the error queue: each ICMP error the kernel saw about a datagram
 * we sent becomes an ICMP error to the guest about its datagram. */
static void udp_errors(struct router *r, struct flow *f)
{
	for (int k = 0; k < 8; k++) {
		char cbuf[256];
		uint8_t dummy[1];
		struct iovec iov = { .iov_base = dummy, .iov_len = 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;

		if (recvmsg(f->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			struct sock_extended_err ee;
			uint8_t l4[8] = { 0 };

			if (cm->cmsg_level != IPPROTO_IP ||
			    cm->cmsg_type != IP_RECVERR)
				continue;
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			if (ee.ee_origin != SO_EE_ORIGIN_ICMP)
				continue;
			l4[5] = UDP_HDR;	/* UDP length; no checksum */
			icmp_send_error_flow(r, f, l4, ee.ee_type, ee.ee_code);
		}
	}
}

void udp_flow_event(struct router *r, struct flow *f, uint32_t events)
{
	struct mmsghdr msg[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	uint8_t *fr[UDP_BATCH];
	int nslots = 0, n;

	if (events & EPOLLERR) {
		if (f->is_dns) {
			/* not the guest's business: try the next server; read
			 * the pending error, or epoll reports it forever */
			int err = 0;
			socklen_t len = sizeof(err);

			getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err)
				dns_upstream_failed(r, f);
		} else if (f->k.v6) {
			/* no error queue on IPv6 sockets: the pending error */
			int err = 0;
			socklen_t len = sizeof(err);

			getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == ECONNREFUSED)
				udp_unreach(r, f);
		} else {
			udp_errors(r, f);
		}
	}
	if (!(events & EPOLLIN))
		return;
	/* a fragmented 64 KiB datagram takes up to 45 slots: room for a few */
	router_make_room(r, 4 * router_frag_slots(r));
	memset(msg, 0, sizeof(msg));
	for (; nslots < UDP_BATCH; nslots++) {
		fr[nslots] = router_alloc(r);
		if (!fr[nslots])
			break;
		iov[nslots].iov_base = fr[nslots] + flow_l4off(&f->k) + UDP_HDR;
		iov[nslots].iov_len = 65535 - IP4_HDR - UDP_HDR;
		msg[nslots].msg_hdr.msg_iov = &iov[nslots];
		msg[nslots].msg_hdr.msg_iovlen = 1;
	}
	n = nslots ? recvmmsg(f->fd, msg, (unsigned)nslots, MSG_DONTWAIT, NULL)
		   : 0;
	if (n < 0) {
		if (errno == ECONNREFUSED && f->is_dns)
			dns_upstream_failed(r, f);
		else if (errno == ECONNREFUSED && f->k.v6)
			udp_unreach(r, f);
		else if (errno == ECONNREFUSED)
			udp_errors(r, f);
		n = 0;
	}
	n = MIN(n, nslots);	/* as recvmmsg() promises (for the analyzer) */
	/* Give back the slots we did not fill (they are the last ones). */
	r->arena_used -= (unsigned)(nslots - n);
	if (n > 0)
		f->last_active = pb_now(r->pb);
	for (int i = 0; i < n; i++) {
		if (f->is_dns &&
		    !dns_answer(r, f, fr[i] + flow_l4off(&f->k) + UDP_HDR,
				msg[i].msg_len))
			continue;
		udp_send_flow(r, &f->k, fr[i], msg[i].msg_len);
	}
}

void udp_hostfwd_event(struct router *r, int hidx)
{
	struct hostfwd *h = &r->hostfwd[hidx];

	for (int k = 0; k < UDP_BATCH; k++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		size_t off = ETH_HDR + (h->guest_v6 ? 40 : IP4_HDR) + UDP_HDR;
		struct flow_key key;
		struct flow *f;
		uint8_t *fr;
		ssize_t n;

		router_make_room(r, router_frag_slots(r));
		fr = router_alloc(r);
		if (!fr)
			return;
		n = recvfrom(h->fd, fr + off, 65535 - 40 - UDP_HDR, MSG_DONTWAIT,
			     (struct sockaddr *)&from, &flen);
		if (n < 0) {
			r->arena_used--;
			return;
		}
		memset(&key, 0, sizeof(key));
		key.proto = IPPROTO_UDP;
		fwd_client_key(r, h, &from, &key);
		f = flow_lookup(r->flows, &key);
		if (!f) {
			f = router_flow_new(r, &key, NULL);
			if (!f) {
				r->arena_used--;
				continue;
			}
			f->fd = h->fd;
			f->shared_fd = true;
			f->peer = from;
			f->hostfwd = hidx;
			h->conns++;
			r->st.udp_opened++;
			router_kick_timer(r, NS_PER_SEC);
		}
		f->last_active = pb_now(r->pb);
		udp_send_flow(r, &key, fr, (size_t)n);
	}
}

void udp_timer(struct router *r, struct flow *f, uint64_t now)
{
	if (f->is_dns)
		dns_timer(r, f, now);
	if (now - f->last_active > r->udp_idle_ns) {
		r->st.udp_closed++;
		router_flow_close(r, f);
	}
}
