// SPDX-License-Identifier: MIT
/* icmp.c: ICMP echo (answered by the router, or through host ping
 * sockets) and ICMP errors sent to guests. */

/*
 * Echo to the router's own addresses is answered here.  Echo to anything
 * else becomes a flow with one host socket: an unprivileged ICMP datagram
 * socket (Linux "ping socket", allowed by net.ipv4.ping_group_range), or a
 * raw socket when that is refused and we may open one.  The kernel picks
 * the echo identifier of a ping socket; replies are rewritten to the
 * guest's identifier.  Idle flows end after ICMP_IDLE_NS.
 *
 * Errors to guests (unreachable, time exceeded) quote the offending
 * packet's header and the start of its payload (RFC 792, RFC 1812 4.3.2.3:
 * as much as fits in 576 bytes), and are never sent about ICMP errors,
 * non-first fragments or broadcasts (RFC 1122 3.2.2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip_icmp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csum.h"
#include "flow.h"
#include "router.h"

#define ICMP_IDLE_NS (10 * NS_PER_SEC)
#define ICMP_ERR_QUOTE (576 - IP4_HDR - ICMP_HDR)

static bool icmp_is_error(uint8_t type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

void icmp_send_error(struct router *r, const uint8_t *orig, size_t len,
		     uint8_t type, uint8_t code)
{
	struct cursor c = cur_init(orig, len);
	const uint8_t *h = cur_peek(&c, IP4_HDR);
	uint32_t osrc, odst, src;
	size_t hlen, q;
	uint8_t *f;
	uint16_t ck;

	if (!h)
		return;
	hlen = (size_t)(h[0] & 0xf) * 4;
	memcpy(&osrc, h + 12, 4);
	memcpy(&odst, h + 16, 4);
	if (hlen < IP4_HDR || len < hlen || ((h[6] << 8 | h[7]) & 0x1fff))
		return;
	if (h[9] == IPPROTO_ICMP) {
		const uint8_t *ic = len >= hlen + 1 ? h + hlen : NULL;

		if (!ic || icmp_is_error(ic[0]))
			return;
	}
	if (!router_in_net(r, osrc) || osrc == r->net ||
	    (osrc | r->mask) == 0xffffffffu)
		return;
	f = router_alloc(r);
	if (!f)
		return;
	/* a port is unreachable at its host; the rest is the router's view */
	src = type == 3 && code == 3 ? odst : r->gw;
	q = MIN(len, (size_t)ICMP_ERR_QUOTE);
	uint8_t *ic = f + ETH_HDR + IP4_HDR;

	ic[0] = type;
	ic[1] = code;
	memset(ic + 2, 0, 6);
	if (type == 3 && code == 4) {
		ic[6] = (uint8_t)(r->mtu >> 8);
		ic[7] = (uint8_t)r->mtu;
	}
	memcpy(ic + ICMP_HDR, orig, q);
	ck = csum_fold(csum_add(0, ic, ICMP_HDR + q));
	memcpy(ic + 2, &ck, 2);
	router_send_ip4(r, f, IPPROTO_ICMP, src, osrc, ICMP_HDR + q, 0);
}

void icmp_send_error_flow(struct router *r, const struct flow *f,
			  const uint8_t *l4, uint8_t type, uint8_t code)
{
	/* Rebuild the header of the guest's packet that failed: its
	 * addresses and ports are the flow's; the rest of the first 8 bytes
	 * of transport header come from the caller. */
	uint8_t orig[IP4_HDR + 8] = { 0x45 };
	uint16_t ck;

	if (f->k.v6) {
		uint8_t o6[40 + 8] = { 0x60 }, t6, c6;

		if (!icmp_to_icmp6(type, code, &t6, &c6))
			return;
		o6[5] = 8;
		o6[6] = f->k.proto;
		o6[7] = 64;
		memcpy(o6 + 8, &f->k.gip6, 16);
		memcpy(o6 + 24, &f->k.rip6, 16);
		memcpy(o6 + 40, l4, 8);
		o6[40] = (uint8_t)(f->k.gport >> 8);
		o6[41] = (uint8_t)f->k.gport;
		o6[42] = (uint8_t)(f->k.rport >> 8);
		o6[43] = (uint8_t)f->k.rport;
		ip6_error_raw(r, o6, sizeof(o6), t6, c6);
		return;
	}
	orig[3] = sizeof(orig);
	orig[8] = 64;
	orig[9] = f->k.proto;
	memcpy(orig + 12, &f->k.gip, 4);
	memcpy(orig + 16, &f->k.rip, 4);
	memcpy(orig + IP4_HDR, l4, 8);
	orig[20] = (uint8_t)(f->k.gport >> 8);
	orig[21] = (uint8_t)f->k.gport;
	orig[22] = (uint8_t)(f->k.rport >> 8);
	orig[23] = (uint8_t)f->k.rport;
	ck = csum_fold(csum_add(0, orig, IP4_HDR));
	memcpy(orig + 10, &ck, 2);
	icmp_send_error(r, orig, sizeof(orig), type, code);
}

static void icmp_echo_local(struct router *r, const struct ip4_view *ip,
			    struct cursor msg)
{
	uint8_t *f = router_alloc(r);
	uint8_t *ic;
	uint16_t ck;

	if (!f)
		return;
	ic = f + ETH_HDR + IP4_HDR;
	memcpy(ic, msg.p, msg.rem);
	ic[0] = 0;	/* echo reply */
	ic[2] = ic[3] = 0;
	ck = csum_fold(csum_add(0, ic, msg.rem));
	memcpy(ic + 2, &ck, 2);
	r->st.icmp_echo_local++;
	router_send_ip4(r, f, IPPROTO_ICMP, ip->dst, ip->src, msg.rem, ip->tos);
}

static int icmp_open(struct router *r, struct flow *f, uint32_t host)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = host };
	int fd = router_socket(r, SOCK_DGRAM, IPPROTO_ICMP);

	if (fd == -EACCES || fd == -EPERM)
		fd = router_socket(r, SOCK_RAW, IPPROTO_ICMP);
	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	f->fd = fd;
	return router_flow_watch(r, f, EPOLLIN, true);
}

void icmp_input(struct router *r, const struct ip4_view *ip)
{
	struct cursor msg = ip->l4;
	const uint8_t *h = cur_peek(&msg, ICMP_HDR);
	struct flow_key k;
	struct flow *f;
	uint32_t host;
	int rc;

	if (!h) {
		rdrop(r, RD_L4_MALFORMED);
		return;
	}
	if (!ip->csum_ok && csum_bad(csum_fold(csum_add(0, msg.p, msg.rem)))) {
		rdrop(r, RD_L4_CSUM);
		return;
	}
	if (h[0] != 8) {
		rdrop(r, RD_ICMP_UNSUPPORTED);
		return;
	}
	if (router_owns(r, ip->dst)) {
		icmp_echo_local(r, ip, msg);
		return;
	}
	rc = router_map_dst(r, ip->dst, &host);
	if (rc) {
		rdrop(r, rc == -EACCES ? RD_RESTRICTED : RD_NO_ROUTE);
		icmp_send_error(r, ip->hdr, ip->len, 3, rc == -EACCES ? 13 : 0);
		return;
	}
	memset(&k, 0, sizeof(k));
	k.proto = IPPROTO_ICMP;
	k.gip = ip->src;
	k.rip = ip->dst;
	k.gport = (uint16_t)(h[4] << 8 | h[5]);
	f = flow_lookup(r->flows, &k);
	if (!f) {
		f = router_flow_new(r, &k, ip->src_mac);
		if (!f)
			return;
		rc = icmp_open(r, f, host);
		if (rc) {
			router_flow_close(r, f);
			rdrop(r, RD_SOCKET);
			icmp_send_error(r, ip->hdr, ip->len, 3, 1);
			return;
		}
		r->st.icmp_opened++;
		router_kick_timer(r, NS_PER_SEC);
	}
	f->last_active = pb_now(r->pb);
	if (send(f->fd, msg.p, msg.rem, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		rdrop(r, RD_UDP_SEND);
}

void icmp_flow_event(struct router *r, struct flow *f, uint32_t events)
{
	for (int k = 0; k < 16; k++) {
		uint8_t *fr = router_alloc(r);
		uint8_t *ic;
		ssize_t n;
		size_t off = 0;
		uint16_t ck;

		if (!fr)
			return;
		ic = fr + ETH_HDR + IP4_HDR;
		n = recv(f->fd, ic, r->slot_size - ETH_HDR - IP4_HDR,
			 MSG_DONTWAIT);
		if (n < 0) {
			/* the slot was not used: give it back */
			r->arena_used--;
			if (errno != EAGAIN && errno != EINTR)
				(void)events;
			return;
		}
		/* a raw socket delivers the IP header too */
		if (n >= IP4_HDR && (ic[0] >> 4) == 4) {
			off = (size_t)(ic[0] & 0xf) * 4;
			if ((size_t)n < off + ICMP_HDR) {
				r->arena_used--;
				continue;
			}
			memmove(ic, ic + off, (size_t)n - off);
			n -= (ssize_t)off;
		}
		if (n < ICMP_HDR || ic[0] != 0) {
			r->arena_used--;
			continue;
		}
		ic[4] = (uint8_t)(f->k.gport >> 8);
		ic[5] = (uint8_t)f->k.gport;
		ic[2] = ic[3] = 0;
		ck = csum_fold(csum_add(0, ic, (size_t)n));
		memcpy(ic + 2, &ck, 2);
		f->last_active = pb_now(r->pb);
		router_send_ip4(r, fr, IPPROTO_ICMP, f->k.rip, f->k.gip,
				(size_t)n, 0);
	}
}

void icmp_timer(struct router *r, struct flow *f, uint64_t now)
{
	if (now - f->last_active > ICMP_IDLE_NS)
		router_flow_close(r, f);
}
