// SPDX-License-Identifier: MIT
/* router.c: the user-mode network stack as a port: addressing, ARP, IPv4
 * input and output, the housekeeping timer, -netdev user options. */

/*
 * Theory of operation.
 *
 * The router is a port on a segment, like a VM's NIC.  Frames the segment
 * delivers to it (its "flush") are parsed here: ARP requests for the
 * router's addresses are answered; IPv4 packets addressed to the router's
 * MAC are validated (header, length, checksum, TTL), reassembled if they
 * are fragments, and handed to the TCP, UDP or ICMP translator, which map
 * them onto host sockets (see DESIGN.md: translation, not a second TCP/IP
 * stack).  Frames the router produces are built in an arena of output
 * slots and injected into the segment with seg_input(); the arena is reset
 * once the round's frames are out (router_round_end()).  Inside a flush the
 * injected frames ride along in the same round; from host socket events or
 * the timer, router_flush() ends the round.
 *
 * The router knows guests by the ARP and IP traffic they send (a bounded
 * neighbour table, IP -> MAC); to reach a guest it has not heard from it
 * sends an ARP request and drops the packet (TCP retransmits; a forward
 * retries its SYN).
 *
 * Addresses (QEMU defaults): net 10.0.2.0/24, gateway .2 (its traffic goes
 * to the host's 127.0.0.1 unless host-loopback=off), DNS .3, first DHCP
 * address .15.  restrict=on: guests reach only forwards and the router's
 * own services.
 *
 * Limits: flows (max-flows, and per guest, UDP and half-open TCP shares:
 * flow.h), neighbours (NEIGH_MAX, oldest replaced), fragments (max-frags
 * datagrams, max-frags-per-guest of one source address: frag.h), output
 * slots per round (ARENA_SLOTS).  Each refusal by a limit is counted in
 * st.limit (stats "limits") and logged, rate-limited.  The default
 * max-flows fits the descriptors the process may open (each flow holds
 * one); past that, a host socket that cannot be made refuses its flow
 * (limits.fds) and leaves the others alone, and a forward whose accept()
 * runs out of descriptors rests until the next housekeeping tick rather
 * than spinning on its ready listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csum.h"
#include "flow.h"
#include "frag.h"
#include "netdev.h"
#include "port.h"
#include "router.h"
#include "router_api.h"
#include "seg.h"
#include "smb.h"
#include "tftp.h"

#define NEIGH_PROBE 8
#define TICK_MIN_NS (1 * NS_PER_MS)
#define REASM_DATAGRAMS 64
#define REASM_DATAGRAM_BYTES 65536u	/* fragment memory per slot */
#define REASM_BYTES_MAX (64u << 20)
#define REASM_TIMEOUT_NS (10 * NS_PER_SEC)
#define FLOWS_MIN 16
#define FLOWS_MAX (1u << 22)
#define FDS_RESERVE_DIV 4	/* of RLIMIT_NOFILE, kept for non-flow use */

const char *const rdrop_names[RD_MAX] = {
	[RD_NOT_FOR_US] = "not_for_us",
	[RD_ARP_MALFORMED] = "arp_malformed",
	[RD_IP_MALFORMED] = "ip_malformed",
	[RD_IP_CSUM] = "ip_checksum",
	[RD_IP_TTL] = "ttl_expired",
	[RD_IP_OPTIONS] = "ip_options",
	[RD_FRAG] = "fragment",
	[RD_ETHERTYPE] = "ethertype",
	[RD_L4_MALFORMED] = "l4_malformed",
	[RD_L4_CSUM] = "l4_checksum",
	[RD_PROTO] = "ip_protocol",
	[RD_RESTRICTED] = "restricted",
	[RD_NO_ROUTE] = "no_route",
	[RD_FLOW_FULL] = "flow_table_full",
	[RD_SOCKET] = "host_socket",
	[RD_NO_NEIGH] = "no_neighbour",
	[RD_ARENA] = "no_output_buffer",
	[RD_TCP_OOW] = "tcp_out_of_window",
	[RD_TCP_NO_FLOW] = "tcp_no_connection",
	[RD_UDP_SEND] = "udp_send",
	[RD_ICMP_UNSUPPORTED] = "icmp_unsupported",
	[RD_TOO_BIG] = "too_big",
};
static_assert(ARRAY_SIZE(rdrop_names) == RD_MAX, "a router drop lacks a name");

const char *const limit_names[LIMIT_MAX] = {
	[LIMIT_FLOWS] = "flows",
	[LIMIT_FLOWS_GUEST] = "flows_per_guest",
	[LIMIT_UDP_FLOWS] = "udp_flows",
	[LIMIT_HALF_OPEN] = "tcp_half_open",
	[LIMIT_HALF_OPEN_GUEST] = "tcp_half_open_per_guest",
	[LIMIT_FRAGS] = "frags",
	[LIMIT_FRAGS_GUEST] = "frags_per_guest",
	[LIMIT_TFTP] = "tftp_sessions",
	[LIMIT_TFTP_GUEST] = "tftp_per_guest",
	[LIMIT_LEASES] = "leases",
	[LIMIT_FDS] = "fds",
};
static_assert(ARRAY_SIZE(limit_names) == LIMIT_MAX, "a limit lacks a name");
static_assert((int)LIMIT_FLOWS == (int)FLOW_LIMIT_TOTAL &&
	      (int)LIMIT_FLOWS_GUEST == (int)FLOW_LIMIT_GUEST &&
	      (int)LIMIT_UDP_FLOWS == (int)FLOW_LIMIT_UDP &&
	      (int)LIMIT_HALF_OPEN == (int)FLOW_LIMIT_HALF_OPEN,
	      "flow limits keep flow.h's order");

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static const struct netdev_ops router_nd_ops;

struct router *router_get(struct pb *pb, uint32_t nd)
{
	struct netdev *n;

	if (nd >= pb->max_netdevs)
		return NULL;
	n = &pb->netdevs[nd];
	if (!n->used || n->ops != &router_nd_ops)
		return NULL;
	return n->priv;
}

/* ---- neighbours ---------------------------------------------------------- */

static unsigned neigh_home(uint32_t ip)
{
	return (ntohl(ip) * 2654435761u) % NEIGH_MAX;
}

void router_neigh_learn(struct router *r, uint32_t ip, const uint8_t *mac)
{
	unsigned h = neigh_home(ip), oldest = h;

	if (!router_in_net(r, ip) || router_owns(r, ip) || ip == r->net ||
	    (ip | r->mask) == 0xffffffffu || mac_is_multicast(mac))
		return;
	for (unsigned k = 0; k < NEIGH_PROBE; k++) {
		struct neigh *n = &r->neigh[(h + k) % NEIGH_MAX];

		if (n->ip == ip || !n->ip) {
			n->ip = ip;
			memcpy(n->mac, mac, 6);
			n->seen = pb_now(r->pb);
			return;
		}
		if (n->seen < r->neigh[oldest].seen)
			oldest = (h + k) % NEIGH_MAX;
	}
	r->neigh[oldest].ip = ip;
	memcpy(r->neigh[oldest].mac, mac, 6);
	r->neigh[oldest].seen = pb_now(r->pb);
}

const uint8_t *router_neigh_seen(const struct router *r, uint32_t ip,
				 uint64_t *seen)
{
	unsigned h = neigh_home(ip);

	for (unsigned k = 0; k < NEIGH_PROBE; k++) {
		const struct neigh *n = &r->neigh[(h + k) % NEIGH_MAX];

		if (n->ip == ip) {
			*seen = n->seen;
			return n->mac;
		}
	}
	return NULL;
}

const uint8_t *router_neigh_lookup(const struct router *r, uint32_t ip)
{
	unsigned h = neigh_home(ip);

	for (unsigned k = 0; k < NEIGH_PROBE; k++) {
		const struct neigh *n = &r->neigh[(h + k) % NEIGH_MAX];

		if (n->ip == ip)
			return n->mac;
	}
	return NULL;
}

/* ---- output ---------------------------------------------------------------- */

/*
 * Never flushes by itself: a caller may hold slots it has not emitted yet,
 * and a flush would hand them out again.  Callers that build many frames
 * call router_make_room() first, while they hold none.
 */
uint8_t *router_alloc(struct router *r)
{
	if (r->arena_used == ARENA_SLOTS) {
		rdrop(r, RD_ARENA);
		return NULL;
	}
	return r->arena + (size_t)r->arena_used++ * r->slot_size;
}

bool router_make_room(struct router *r, unsigned n)
{
	if (ARENA_SLOTS - r->arena_used >= n)
		return true;
	if (r->pb->flush_depth)
		return false;
	/* not inside a round's flush: send what we have, reuse */
	seg_flush(r->pb);
	r->st.arena_flushes++;
	return ARENA_SLOTS - r->arena_used >= n;
}

void router_flush(struct router *r)
{
	if (r->pb->flush_depth == 0)
		seg_flush(r->pb);
}

void router_round_end(struct pb *pb)
{
	for (uint32_t i = 0; i < pb->nrouters; i++) {
		struct router *r = router_get(pb, pb->routers[i]);

		if (r) {
			r->arena_hw = MAX(r->arena_hw, r->arena_used);
			r->arena_touched = MAX(r->arena_touched, r->arena_used);
			r->arena_used = 0;
		}
	}
}

static void router_emit(struct router *r, uint8_t *frame, size_t len)
{
	r->st.frames_out++;
	seg_input_m(r->pb, r->port, frame, len, r->tx_meta);
}

void router_emit_frame(struct router *r, uint8_t *frame, size_t len)
{
	seg_input_m(r->pb, r->port, frame, len, r->tx_meta);
}

uint8_t router_peer_offloads(struct router *r, const uint8_t *mac)
{
	struct pb *pb = r->pb;
	struct segment *s = &pb->segs[r->port->seg];
	struct port *dst = seg_port_of(pb, s, mac);
	uint8_t off = 0xff;

	if (dst)
		return dst->offloads;
	/* flooded: what every other member takes */
	for (uint32_t i = 0; i < s->nmembers; i++) {
		struct port *p = &pb->ports[s->members[i]];

		if (p != r->port)
			off &= p->offloads;
	}
	return off == 0xff ? 0 : off;
}

static void arp_request(struct router *r, uint32_t target)
{
	uint8_t *f = router_alloc(r);

	if (!f)
		return;
	memcpy(f, bcast_mac, 6);
	memcpy(f + 6, r->mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	static const uint8_t arp_hdr[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };

	memcpy(f + 14, arp_hdr, 8);
	memcpy(f + 22, r->mac, 6);
	memcpy(f + 28, &r->gw, 4);
	memset(f + 32, 0, 6);
	memcpy(f + 38, &target, 4);
	router_emit(r, f, 42);
}

static void ip4_header(uint8_t *h, uint8_t tos, uint16_t total, uint16_t id,
		       uint16_t frag, uint8_t proto, uint32_t src, uint32_t dst)
{
	uint16_t c;

	h[0] = 0x45;
	h[1] = tos;
	h[2] = (uint8_t)(total >> 8);
	h[3] = (uint8_t)total;
	h[4] = (uint8_t)(id >> 8);
	h[5] = (uint8_t)id;
	h[6] = (uint8_t)(frag >> 8);
	h[7] = (uint8_t)frag;
	h[8] = 64;
	h[9] = proto;
	h[10] = h[11] = 0;
	memcpy(h + 12, &src, 4);
	memcpy(h + 16, &dst, 4);
	c = csum_fold(csum_add(0, h, IP4_HDR));
	memcpy(h + 10, &c, 2);
}

static int ip4_send(struct router *r, uint8_t *frame, uint8_t proto,
		    uint32_t src, uint32_t dst, size_t l4len, uint8_t tos,
		    const uint8_t *mac);

int router_send_ip4(struct router *r, uint8_t *frame, uint8_t proto,
		    uint32_t src, uint32_t dst, size_t l4len, uint8_t tos)
{
	const uint8_t *mac = router_neigh_lookup(r, dst);

	if (!mac) {
		rdrop(r, RD_NO_NEIGH);
		arp_request(r, dst);
		return -EHOSTUNREACH;
	}
	return ip4_send(r, frame, proto, src, dst, l4len, tos, mac);
}

int router_send_ip4_mac(struct router *r, uint8_t *frame, uint8_t proto,
			uint32_t src, uint32_t dst, size_t l4len,
			const uint8_t *mac)
{
	return ip4_send(r, frame, proto, src, dst, l4len, 0, mac);
}

static int ip4_send(struct router *r, uint8_t *frame, uint8_t proto,
		    uint32_t src, uint32_t dst, size_t l4len, uint8_t tos,
		    const uint8_t *mac)
{
	size_t total = IP4_HDR + l4len;
	uint16_t id = r->ip_id++;

	memcpy(frame, mac, 6);
	memcpy(frame + 6, r->mac, 6);
	frame[12] = 0x08;
	frame[13] = 0x00;
	if (total <= r->mtu || (r->tx_meta && r->tx_meta->gso_type)) {
		/* TCP segments are sized to fit: let the guest's path MTU
		 * discovery see DF, as from a real router. */
		ip4_header(frame + ETH_HDR, tos, (uint16_t)total, id,
			   proto == IPPROTO_TCP ? 0x4000 : 0, proto, src, dst);
		router_emit(r, frame, ETH_HDR + total);
		return 0;
	}
	/* Fragment: every fragment but the last carries a multiple of 8. */
	size_t chunk = (size_t)(r->mtu - IP4_HDR) & ~(size_t)7;
	const uint8_t *payload = frame + ETH_HDR + IP4_HDR;

	for (size_t off = chunk; off < l4len; off += chunk) {
		size_t n = MIN(chunk, l4len - off);
		bool more = off + n < l4len;
		uint8_t *f = router_alloc(r);

		if (!f)
			return -ENOBUFS;
		memcpy(f, frame, ETH_HDR);
		memcpy(f + ETH_HDR + IP4_HDR, payload + off, n);
		ip4_header(f + ETH_HDR, tos, (uint16_t)(IP4_HDR + n), id,
			   (uint16_t)((more ? 0x2000 : 0) | (off / 8)), proto,
			   src, dst);
		router_emit(r, f, ETH_HDR + IP4_HDR + n);
	}
	ip4_header(frame + ETH_HDR, tos, (uint16_t)(IP4_HDR + chunk), id,
		   0x2000, proto, src, dst);
	router_emit(r, frame, ETH_HDR + IP4_HDR + chunk);
	return 0;
}

/* ---- addresses --------------------------------------------------------------- */

bool router_owns(const struct router *r, uint32_t ip)
{
	if (ip == r->gw || ip == r->dns)
		return true;
	for (unsigned i = 0; i < r->nguestfwd; i++)
		if (r->guestfwd[i].ip == ip)
			return true;
	return false;
}

int router_map_dst(struct router *r, uint32_t dst, uint32_t *out)
{
	uint32_t h = ntohl(dst);

	if (r->restricted)
		return -EACCES;
	if (dst == r->gw) {
		if (!r->loopback_map)
			return -ENETUNREACH;
		*out = htonl(INADDR_LOOPBACK);
		return 0;
	}
	/* The rest of our own network is the segment, not the host; and no
	 * guest reaches the host's loopback, broadcast, multicast or
	 * "this network" except through the gateway mapping. */
	if (router_in_net(r, dst) || (h >> 24) == 127 || (h >> 24) == 0 ||
	    IN_MULTICAST(h) || h == INADDR_BROADCAST || (h >> 28) == 0xf)
		return -ENETUNREACH;
	*out = dst;
	return 0;
}

uint32_t router_map_src(struct router *r, uint32_t host_addr)
{
	/* A client on the host's loopback appears as the gateway. */
	if ((ntohl(host_addr) >> 24) == 127)
		return r->gw;
	return host_addr;
}

void router_limit_hit(struct router *r, enum limit which)
{
	r->st.limit[which]++;
	log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_WARN,
	       "router: limit %s reached: refused", limit_names[which]);
}

/* socket()/accept() failed with err: count running out of descriptors. */
static int router_fd_error(struct router *r, int err)
{
	if (err == EMFILE || err == ENFILE)
		router_limit_hit(r, LIMIT_FDS);
	return -err;
}

int router_socket(struct router *r, int type, int proto)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);

	if (fd < 0)
		return router_fd_error(r, errno);
	if (r->outbound.s_addr != htonl(INADDR_ANY)) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_addr = r->outbound };

		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	return fd;
}

int router_socket_af(struct router *r, int af, int type, int proto)
{
	int fd;

	if (af == AF_INET)
		return router_socket(r, type, proto);
	fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
	return fd < 0 ? router_fd_error(r, errno) : fd;
}

int router_map_dst6(struct router *r, const struct in6_addr *dst,
		    struct in6_addr *out)
{
	const uint8_t *a = dst->s6_addr;
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
					    0xff };

	if (r->restricted)
		return -EACCES;
	if (!memcmp(dst, &r->ip6.host, 16)) {
		if (!r->loopback_map)
			return -ENETUNREACH;
		*out = in6addr_loopback;
		return 0;
	}
	/* Only global unicast goes out; never the host's loopback, link or
	 * site scope, unique-local, multicast or IPv4-mapped space, nor our
	 * own prefix (the segment). */
	if ((a[0] & 0xe0) != 0x20 || !memcmp(a, mapped, 12) ||
	    IN6_IS_ADDR_LOOPBACK(dst))
		return -ENETUNREACH;
	*out = *dst;
	return 0;
}

uint32_t flow_pseudo(const struct flow_key *k, uint8_t proto, size_t len)
{
	if (k->v6)
		return ip6_pseudo(&k->rip6, &k->gip6, proto, len);
	return csum_pseudo4(k->rip, k->gip, proto, (uint16_t)len);
}

uint8_t flow_peer_offloads(struct router *r, const struct flow_key *k)
{
	const uint8_t *mac = k->v6 ? ip6_neigh_mac(r, &k->gip6)
				   : router_neigh_lookup(r, k->gip);

	return mac ? router_peer_offloads(r, mac) : 0;
}

int flow_send(struct router *r, const struct flow_key *k, uint8_t *frame,
	      uint8_t proto, size_t l4len)
{
	if (k->v6)
		return ip6_send_l4(r, frame, proto, &k->rip6, &k->gip6, l4len);
	return router_send_ip4(r, frame, proto, k->rip, k->gip, l4len, 0);
}

bool ip_l4_csum_bad(const struct ip4_view *ip, uint8_t proto,
		    const uint8_t *p, size_t len)
{
	if (ip->csum_ok)
		return false;
	uint32_t ph = ip->v6 ? ip6_pseudo(&ip->src6, &ip->dst6, proto, len)
			     : csum_pseudo4(ip->src, ip->dst, proto,
					    (uint16_t)len);

	return csum_bad(csum_fold(csum_add(ph, p, len)));
}

void ip_fill_key(const struct ip4_view *ip, struct flow_key *k)
{
	k->gip = ip->src;
	k->rip = ip->dst;
	k->v6 = ip->v6;
	if (ip->v6) {
		k->gip6 = ip->src6;
		k->rip6 = ip->dst6;
	}
}

bool icmp_to_icmp6(uint8_t type, uint8_t code, uint8_t *type6, uint8_t *code6)
{
	/* unreachable: net -> no route, host -> address, port -> port,
	 * prohibited -> administratively prohibited (RFC 4443 3.1) */
	static const uint8_t unreach6[] = {
		[0] = 0, [1] = 3, [3] = 4, [13] = 1,
	};

	if (type == 3) {
		*type6 = 1;
		*code6 = code < sizeof(unreach6) ? unreach6[code] : 0;
		return true;
	}
	if (type == 11) {
		*type6 = 3;	/* time exceeded, same codes */
		*code6 = code;
		return true;
	}
	return false;
}

void ip_unreach(struct router *r, const struct ip4_view *ip, uint8_t code)
{
	uint8_t t6, c6;

	if (ip->v6 && icmp_to_icmp6(3, code, &t6, &c6))
		ip6_error_raw(r, ip->hdr, ip->len, t6, c6);
	else if (!ip->v6)
		icmp_send_error(r, ip->hdr, ip->len, 3, code);
}

/* ---- flows ----------------------------------------------------------------------- */

struct flow *router_flow_new(struct router *r, const struct flow_key *k,
			     const uint8_t *mac)
{
	enum flow_limit why;
	struct flow *f = flow_alloc(r->flows, k, mac, &why), *old;

	/* Full, or the guest's share is: a connection that is over but
	 * lingers gives way (as TIME-WAIT sockets do under pressure). */
	if (!f && (why == FLOW_LIMIT_TOTAL || why == FLOW_LIMIT_GUEST) &&
	    (old = flow_linger_take(r->flows,
				    why == FLOW_LIMIT_GUEST ? mac : NULL))) {
		tcp_reclaim(r, old);
		f = flow_alloc(r->flows, k, mac, &why);
	}
	if (!f) {
		rdrop(r, RD_FLOW_FULL);
		router_limit_hit(r, (enum limit)why);
	}
	return f;
}

int router_flow_watch(struct router *r, struct flow *f, uint32_t events,
		      bool add)
{
	union ref ref = ref_make(REF_FLOW, flow_index(r->flows, f),
				 r->nd << 16 | f->gen);

	return add ? loop_add(&r->pb->loop, f->fd, events, ref)
		   : loop_mod(&r->pb->loop, f->fd, events, ref);
}

void router_flow_close(struct router *r, struct flow *f)
{
	if (f->fd >= 0 && !f->shared_fd)
		close(f->fd);	/* which takes it out of epoll */
	if (f->hostfwd >= 0 && r->hostfwd[f->hostfwd].conns)
		r->hostfwd[f->hostfwd].conns--;
	flow_free(r->flows, f);
}

void router_flow_event(struct pb *pb, uint32_t idx, uint32_t gen,
		       uint32_t events)
{
	struct router *r = router_get(pb, gen >> 16);
	struct flow *f;

	if (!r || idx >= r->flows->cap)
		return;
	f = &r->flows->f[idx];
	if (!f->used || f->gen != (gen & 0xffff))
		return;
	switch (f->k.proto) {
	case IPPROTO_TCP:
		tcp_flow_event(r, f, events);
		break;
	case IPPROTO_UDP:
		udp_flow_event(r, f, events);
		break;
	case IPPROTO_ICMP:
		icmp_flow_event(r, f, events);
		break;
	case IPPROTO_ICMPV6:
		ip6_echo_event(r, f);
		break;
	}
	router_flush(r);
}

void router_dnstcp_event(struct pb *pb, uint32_t idx, uint32_t gen,
			 uint32_t events)
{
	struct router *r = router_get(pb, gen >> 16);

	if (r)
		dns_tcp_event(r, idx, (uint16_t)gen, events);
}

void router_kick_timer(struct router *r, uint64_t delay_ns)
{
	struct loop *l = &r->pb->loop;
	uint64_t at = l->now + delay_ns;

	if (!timer_armed(l, r->timer) || l->timers[r->timer].deadline > at)
		timer_arm(l, r->timer, delay_ns);
}

void router_frag_done(struct router *r, int rc)
{
	if (rc >= 0) {
		/* what is held expires on the slow tick */
		router_kick_timer(r, TICK_SLOW_NS);
		return;
	}
	/* an exact duplicate is harmless (counted there) */
	if (rc != -EEXIST)
		rdrop(r, RD_FRAG);
	if (rc == -ENOSPC)
		router_limit_hit(r, LIMIT_FRAGS);
	else if (rc == -EDQUOT)
		router_limit_hit(r, LIMIT_FRAGS_GUEST);
}

static void hostfwd_wake(struct router *r);

/*
 * Give back memory a burst used: a second of 64 KiB super-segments touches
 * output slots and receive buffers that idle or small-frame traffic never
 * needs again.  Once a second, slots beyond what the busiest round of that
 * second used, and the instance's buffers past their first page, return to
 * the kernel (they fault in again, zeroed, when needed).
 */
static void router_trim(struct router *r)
{
	r->arena_hw = MAX(r->arena_hw, r->arena_used);
	if (r->arena_touched > r->arena_hw) {
		/* from the first page boundary past the slots still in use
		 * (the arena itself starts on one: mmap) */
		size_t a = (size_t)r->arena_hw * r->slot_size;
		size_t e = (size_t)r->arena_touched * r->slot_size;

		a = (a + 4095) & ~(size_t)4095;
		if (e > a)
			madvise(r->arena + a, e - a, MADV_DONTNEED);
		r->arena_touched = r->arena_hw;
	}
	r->arena_hw = 0;
	pb_trim(r->pb);
}

static void router_tick(struct pb *pb, uint32_t nd)
{
	struct router *r = router_get(pb, nd);
	uint64_t now = pb_now(pb);
	uint64_t next = 0;	/* earliest flow deadline */

	if (!r)
		return;
	for (uint32_t i = 0; i < r->flows->high; i++) {
		struct flow *f = &r->flows->f[i];

		if (!f->used)
			continue;
		switch (f->k.proto) {
		case IPPROTO_TCP:
			tcp_timer(r, f, now);
			break;
		case IPPROTO_UDP:
			udp_timer(r, f, now);
			break;
		case IPPROTO_ICMP:
		case IPPROTO_ICMPV6:
			icmp_timer(r, f, now);	/* idle time only */
			break;
		}
		if (f->used && f->deadline && (!next || f->deadline < next))
			next = f->deadline;
	}
	bool trim = now >= r->next_slow;

	if (trim) {
		reasm_expire(r->reasm, now);
		dns_tcp_tick(r, now);
		hostfwd_wake(r);
		r->next_slow = now + TICK_SLOW_NS;
	}
	tftp_timer(r, now);
	uint64_t ra = ip6_tick(r, now);

	tcp_send_acks(r);
	uint64_t dack = tcp_delayed_acks(r, now);

	router_flush(r);
	if (trim)
		router_trim(r);	/* now that no slot is held */
	if (dack)
		router_kick_timer(r, dack > now + TICK_MIN_NS / 10
					     ? dack - now : TICK_MIN_NS / 10);
	/* wake exactly at the next retransmission (or linger) deadline, at
	 * least TICK_MIN_NS from now; idle flows only need the slow sweep */
	if (next)
		router_kick_timer(r, next > now + TICK_MIN_NS ? next - now
							      : TICK_MIN_NS);
	if (r->flows->count || r->fwd_resting)
		router_kick_timer(r, TICK_SLOW_NS);
	if (ra)
		router_kick_timer(r, ra);
}

/* ---- input ------------------------------------------------------------------------ */

static void arp_input(struct router *r, const uint8_t *src_mac,
		      struct cursor c)
{
	const uint8_t *a = cur_pull(&c, 28);
	uint32_t sip, tip;
	uint8_t *f;

	if (!a || a[0] != 0 || a[1] != 1 || a[2] != 8 || a[3] != 0 ||
	    a[4] != 6 || a[5] != 4) {
		rdrop(r, RD_ARP_MALFORMED);
		return;
	}
	memcpy(&sip, a + 14, 4);
	memcpy(&tip, a + 24, 4);
	(void)src_mac;
	/* Learn the sender unless it claims one of our addresses. */
	if (sip)
		router_neigh_learn(r, sip, a + 8);
	if (a[6] != 0 || a[7] != 1 || !router_owns(r, tip))
		return;
	f = router_alloc(r);
	if (!f)
		return;
	memcpy(f, a + 8, 6);
	memcpy(f + 6, r->mac, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	memcpy(f + 14, a, 6);
	f[20] = 0;
	f[21] = 2;
	memcpy(f + 22, r->mac, 6);
	memcpy(f + 28, &tip, 4);
	memcpy(f + 32, a + 8, 6);
	memcpy(f + 38, &sip, 4);
	router_emit(r, f, 42);
}

/* A DHCP/BOOTP request (UDP to port 67, broadcast or to us): serve it. */
static bool dhcp_for_us(struct router *r, const struct ip4_view *ip,
			struct cursor pkt)
{
	const uint8_t *u;
	uint16_t ulen;

	cur_pull(&pkt, ip->hlen);
	u = cur_peek(&pkt, UDP_HDR);
	if (!u || u[2] != 0 || u[3] != 67)
		return false;
	if (ip->dst != htonl(INADDR_BROADCAST) && !router_owns(r, ip->dst) &&
	    ip->dst != (r->net | ~r->mask))
		return false;
	ulen = (uint16_t)(u[4] << 8 | u[5]);
	if (ulen < UDP_HDR || !cur_trim(&pkt, ulen)) {
		rdrop(r, RD_L4_MALFORMED);
		return true;
	}
	cur_pull(&pkt, UDP_HDR);
	dhcp_input(r, ip, pkt.p, pkt.rem);
	return true;
}

static void ip4_input(struct router *r, const uint8_t *src_mac,
		      const uint8_t *dst_mac, struct cursor c)
{
	struct cursor h = c;
	const uint8_t *hdr = cur_peek(&c, IP4_HDR);
	const uint8_t *whole = NULL;
	struct ip4_view ip;
	uint16_t total, frag;
	size_t hlen;

	if (!hdr || hdr[0] >> 4 != 4) {
		rdrop(r, RD_IP_MALFORMED);
		return;
	}
	hlen = (size_t)(hdr[0] & 0xf) * 4;
	total = (uint16_t)(hdr[2] << 8 | hdr[3]);
	if (hlen < IP4_HDR || total < hlen || !cur_trim(&h, total) ||
	    !cur_peek(&h, hlen)) {
		rdrop(r, RD_IP_MALFORMED);
		return;
	}
	if (csum_bad(csum_fold(csum_add(0, hdr, hlen)))) {
		rdrop(r, RD_IP_CSUM);
		return;
	}
	memset(&ip, 0, sizeof(ip));
	memcpy(&ip.src, hdr + 12, 4);
	memcpy(&ip.dst, hdr + 16, 4);
	ip.proto = hdr[9];
	ip.ttl = hdr[8];
	ip.tos = hdr[1];
	ip.hdr = hdr;
	ip.hlen = hlen;
	ip.len = total;
	ip.src_mac = src_mac;
	ip.csum_ok = r->rx_csum_ok;
	router_neigh_learn(r, ip.src, src_mac);
	/* A guest may only speak from an address of the segment (or 0.0.0.0
	 * for DHCP); anything else is spoofed. */
	if (ip.src != 0 && !router_in_net(r, ip.src)) {
		rdrop(r, RD_NO_ROUTE);
		return;
	}
	frag = (uint16_t)(hdr[6] << 8 | hdr[7]);
	if (ip.proto == IPPROTO_UDP && !(frag & 0x3fff) && dhcp_for_us(r, &ip, h))
		return;
	if (!memcmp(dst_mac, bcast_mac, 6) || mac_is_multicast(dst_mac)) {
		rdrop(r, RD_NOT_FOR_US);
		return;
	}
	if (frag & 0x3fff) {
		size_t wlen;
		int rc = reasm_input(r->reasm, hdr, total, pb_now(r->pb),
				     &whole, &wlen);

		router_frag_done(r, rc);
		if (rc <= 0)
			return;
		/* whole has the first fragment's header, fixed up */
		hdr = whole;
		hlen = (size_t)(hdr[0] & 0xf) * 4;
		ip.ttl = hdr[8];
		ip.tos = hdr[1];
		ip.hdr = hdr;
		ip.hlen = hlen;
		ip.len = wlen;
		ip.reassembled = true;
		h = cur_init(whole, wlen);
	}
	cur_pull(&h, hlen);
	ip.l4 = h;
	if (!router_owns(r, ip.dst) && ip.ttl <= 1) {
		rdrop(r, RD_IP_TTL);
		icmp_send_error(r, hdr, ip.len, 11, 0);
		return;
	}
	switch (ip.proto) {
	case IPPROTO_TCP:
		tcp_input(r, &ip);
		break;
	case IPPROTO_UDP:
		udp_input(r, &ip);
		break;
	case IPPROTO_ICMP:
		icmp_input(r, &ip);
		break;
	default:
		rdrop(r, RD_PROTO);
		icmp_send_error(r, hdr, ip.len, 3, 2);
		break;
	}
}

static void router_input(struct router *r, const uint8_t *frame, size_t len)
{
	struct cursor c = cur_init(frame, len);
	struct eth_view eth;

	r->st.frames_in++;
	if (!eth_parse(&c, &eth))
		return;
	if (memcmp(eth.dst, r->mac, 6) && !mac_is_multicast(eth.dst)) {
		rdrop(r, RD_NOT_FOR_US);
		return;
	}
	if (!r->ipv4 && (eth.type == ETH_P_ARP_ || eth.type == ETH_P_IP_))
		rdrop(r, RD_ETHERTYPE);	/* ipv4=off */ /* NOLINT(bugprone-branch-clone): counted like unknown types */
	else if (eth.type == ETH_P_ARP_)
		arp_input(r, eth.src, c);
	else if (eth.type == ETH_P_IP_)
		ip4_input(r, eth.src, eth.dst, c);
	else if (eth.type == 0x86dd)
		ip6_input(r, eth.src, c);
	else
		rdrop(r, RD_ETHERTYPE);
}

/* The segment delivers frames to the router: its port "flush". */
static void router_port_flush(struct pb *pb, struct port *p)
{
	struct router *r = router_get(pb, (uint32_t)p->netdev);

	for (uint32_t i = 0; i < p->txn; i++) {
		/* a TAP's TCP super-segments and unfinished checksums come
		 * as they are (the router port takes every offload) */
		r->rx_csum_ok = p->txq[i].m.flags & (FM_NEEDS_CSUM | FM_DATA_VALID);
		router_input(r, p->txq[i].p, p->txq[i].len);
	}
	r->rx_csum_ok = false;
	udp_send_batch(r);	/* (its datagrams are in these frames) */
	port_count_tx(p, 0, p->txn);
	p->txn = 0;
	tcp_send_acks(r);
}

static const struct port_ops router_port_ops = {
	.type = "router",
	.flush = router_port_flush,
};

/* ---- set-up ------------------------------------------------------------------------ */

static void router_close(struct pb *pb, struct netdev *nd)
{
	struct router *r = nd->priv;

	if (!r)
		return;
	fwd_stop(r);
	if (r->flows) {
		for (uint32_t i = 0; i < r->flows->high; i++)
			if (r->flows->f[i].used)
				router_flow_close(r, &r->flows->f[i]);
		flow_table_fini(r->flows);
		free(r->flows);
	}
	reasm_free(r->reasm);
	dhcp_free(&r->dhcp);
	tftp_free(r);
	smb_free(r);
	dns_free(r);
	if (r->arena)
		munmap(r->arena, (size_t)ARENA_SLOTS * r->slot_size);
	timer_free(&pb->loop, r->timer);
	for (uint32_t i = 0; i < pb->nrouters; i++) {
		if (pb->routers[i] == r->nd) {
			pb->routers[i] = pb->routers[--pb->nrouters];
			break;
		}
	}
	/* nd->priv (r) is freed by the netdev code */
}

static const struct netdev_ops router_nd_ops = {
	.type = "user",
	.close = router_close,
};

/* Out of descriptors: stop watching the listener (its clients wait in
 * the kernel's queue) until the next tick tries again. */
static void hostfwd_rest(struct router *r, uint32_t idx, int err)
{
	struct hostfwd *h = &r->hostfwd[idx];

	router_fd_error(r, err);
	if (loop_mod(&r->pb->loop, h->fd, 0,
		     ref_make(REF_HOSTFWD, idx, r->nd)) == 0)
		h->resting = r->fwd_resting = true;
	router_kick_timer(r, TICK_SLOW_NS);
}

static void hostfwd_wake(struct router *r)
{
	r->fwd_resting = false;
	for (uint32_t i = 0; i < r->nhostfwd; i++) {
		struct hostfwd *h = &r->hostfwd[i];

		if (h->resting && h->fd >= 0 &&
		    loop_mod(&r->pb->loop, h->fd, EPOLLIN,
			     ref_make(REF_HOSTFWD, i, r->nd)) == 0)
			h->resting = false;
		r->fwd_resting |= h->resting;
	}
}

void router_hostfwd_event(struct pb *pb, uint32_t idx, uint32_t gen,
			  uint32_t events)
{
	struct router *r = router_get(pb, gen);

	(void)events;
	if (!r || idx >= r->nhostfwd || r->hostfwd[idx].fd < 0)
		return;
	if (r->hostfwd[idx].proto == FWD_UDP) {
		udp_hostfwd_event(r, (int)idx);
	} else {
		for (int k = 0; k < 16; k++) {
			struct sockaddr_storage client;
			socklen_t len = sizeof(client);
			int fd = accept4(r->hostfwd[idx].fd,
					 (struct sockaddr *)&client, &len,
					 SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0) {
				if (errno == EMFILE || errno == ENFILE)
					hostfwd_rest(r, idx, errno);
				break;
			}
			tcp_inbound(r, fd, &client, (int)idx);
		}
	}
	router_flush(r);
}

/* Parse "A.B.C.D[/N]" or "A.B.C.D/M.M.M.M" (QEMU's net=). */
static int parse_net(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[64];
	char *slash;
	struct in_addr a;
	uint32_t m = 0xffffff00u;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = '\0';
		if (strchr(slash, '.')) {
			struct in_addr ma;

			if (inet_pton(AF_INET, slash, &ma) != 1)
				return -EINVAL;
			m = ntohl(ma.s_addr);
			if (m & (~m >> 1))
				return -EINVAL;	/* not contiguous */
		} else {
			char *end;
			long n = strtol(slash, &end, 10);

			if (*end || n < 8 || n > 30)
				return -EINVAL;
			m = (uint32_t)(0xffffffffull << (32 - n));
		}
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	if (m < 0xff000000u || (~m) < 3)
		return -EINVAL;
	*net = a.s_addr & htonl(m);
	*mask = htonl(m);
	return 0;
}

static int parse_host_in_net(struct router *r, const struct opts *o,
			     const char *key, uint32_t def_host, uint32_t *out)
{
	const char *v = opts_get(o, key);
	struct in_addr a;

	if (!v) {
		*out = r->net | htonl(def_host);
		return 0;
	}
	if (inet_pton(AF_INET, v, &a) != 1 || !router_in_net(r, a.s_addr) ||
	    a.s_addr == r->net || (a.s_addr | r->mask) == 0xffffffffu)
		return pb__err(r->pb, -EINVAL,
			       "%s: '%s' must be an address inside net=, not '%s'",
			       o->what, key, v);
	*out = a.s_addr;
	return 0;
}

static const char *const user_keys[] = {
	"type", "id", "segment", "net", "host", "dns", "dhcpstart",
	"restrict", "ipv4", "hostfwd", "guestfwd", "mtu", "host-loopback",
	"outbound-addr", "max-flows", "max-flows-per-guest", "max-udp-flows",
	"max-tcp-half-open", "max-tcp-half-open-per-guest", "max-frags", "max-frags-per-guest",
	"max-tftp-sessions", "max-tftp-per-guest", "max-leases", "hostname", "domainname", "dnssearch",
	"bootfile", "tftp-server-name", "dhcp-host", "dhcp-option", "dhcp",
	"dhcp-lease", "dns-upstream", "dns-resolv-conf", "ipv6", "ipv6-prefix",
	"ipv6-prefixlen", "ipv6-host", "ipv6-dns", "tftp", "smb",
	"smbserver", "udp-timeout", NULL,
};

static const char *const user_repeatable[] = {
	"hostfwd", "guestfwd", "dnssearch", "dhcp-host", "dhcp-option",
	"dns-upstream", NULL,
};

/* Default max-flows: FLOWS_DEFAULT, or fewer if the descriptors the
 * process may open would run out first (each flow holds one; a quarter is
 * kept for ports, files and the rest). */
static uint64_t flows_default(void)
{
	struct rlimit rl;
	uint64_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return FLOWS_DEFAULT;
	n = rl.rlim_cur - rl.rlim_cur / FDS_RESERVE_DIV;
	return MAX(MIN(n, (uint64_t)FLOWS_DEFAULT), (uint64_t)FLOWS_MIN);
}

/* The table limits: max-flows and its shares, max-frags and its share. */
static int parse_limits(struct router *r, const struct opts *o,
			struct flow_limits *fl, char *err, size_t errlen)
{
	uint64_t max, guest, udp, half, half_guest, frags, frags_guest;
	int rc;

	if ((rc = opts_get_uint(o, "max-flows", FLOWS_MIN, FLOWS_MAX,
				flows_default(), &max, err, errlen)))
		return rc;
	fl->max = (uint32_t)max;
	flow_limits_default(fl);
	if ((rc = opts_get_uint(o, "max-flows-per-guest", 1, max, fl->per_guest,
				&guest, err, errlen)) ||
	    (rc = opts_get_uint(o, "max-udp-flows", 1, max, fl->udp, &udp, err,
				errlen)) ||
	    (rc = opts_get_uint(o, "max-tcp-half-open", 1, max, fl->half_open,
				&half, err, errlen)) ||
	    (rc = opts_get_uint(o, "max-frags", 1, REASM_MAX_DATAGRAMS,
				REASM_DATAGRAMS, &frags, err, errlen)) ||
	    (rc = opts_get_uint(o, "max-frags-per-guest", 1, frags,
				MAX(frags / 4, 1), &frags_guest, err, errlen)))
		return rc;
	if ((rc = opts_get_uint(o, "max-tcp-half-open-per-guest", 1, half,
				MAX(half / 4, 1), &half_guest, err, errlen)))
		return rc;
	fl->per_guest = (uint32_t)guest;
	fl->udp = (uint32_t)udp;
	fl->half_open = (uint32_t)half;
	fl->half_open_per_guest = (uint32_t)half_guest;
	r->frags_max = (uint32_t)frags;
	r->frags_per_guest = (uint32_t)frags_guest;
	return 0;
}

static int user_create(struct pb *pb, struct netdev *nd, const struct opts *o)
{
	char *err = pb->errmsg;
	size_t errlen = sizeof(pb->errmsg);
	struct router *r;
	struct flow_limits fl = { 0 };
	uint64_t mtu, udp_idle;
	bool ipv4, lb;
	const char *v;
	int rc;

	if (pb->nrouters == MAX_ROUTERS)
		return pb__err(pb, -ENOSPC, "%s: at most %d routers per instance",
			       o->what, MAX_ROUTERS);
	r = calloc(1, sizeof(*r));
	if (!r)
		return pb__err(pb, -ENOMEM, "out of memory");
	r->pb = pb;
	r->nd = netdev_index(pb, nd);
	r->timer = -1;
	for (int i = 0; i < 2; i++)
		r->iss_key[i] = (uint64_t)arc4random() << 32 | arc4random();
	nd->priv = r;
	nd->ops = &router_nd_ops;

	if ((rc = opts_get_bool(o, "ipv4", true, &ipv4, err, errlen)) ||
	    (rc = opts_get_bool(o, "restrict", false, &r->restricted, err,
				errlen)) ||
	    (rc = opts_get_bool(o, "host-loopback", true, &lb, err, errlen)) ||
	    (rc = opts_get_uint(o, "mtu", 576, ROUTER_MTU_MAX,
				ROUTER_MTU_DEFAULT, &mtu, err, errlen)) ||
	    (rc = opts_get_uint(o, "udp-timeout", 1, 86400, 60, &udp_idle, err,
				errlen)) ||
	    (rc = parse_limits(r, o, &fl, err, errlen)))
		goto fail;
	r->udp_idle_ns = udp_idle * NS_PER_SEC;
	r->ipv4 = ipv4;
	r->loopback_map = lb;
	r->mtu = (uint16_t)mtu;
	v = opts_get(o, "net");
	if (parse_net(v ? v : "10.0.2.0/24", &r->net, &r->mask)) {
		rc = pb__err(pb, -EINVAL, "%s: 'net' must be ADDRESS[/PREFIX 8-30] or ADDRESS/MASK, not '%s'",
			     o->what, v);
		goto fail;
	}
	if ((rc = parse_host_in_net(r, o, "host", 2, &r->gw)) ||
	    (rc = parse_host_in_net(r, o, "dns", 3, &r->dns)) ||
	    (rc = parse_host_in_net(r, o, "dhcpstart", 15, &r->dhcp_start)))
		goto fail;
	if (r->gw == r->dns) {
		rc = pb__err(pb, -EINVAL, "%s: 'host' and 'dns' must differ", o->what);
		goto fail;
	}
	v = opts_get(o, "outbound-addr");
	if (v && inet_pton(AF_INET, v, &r->outbound) != 1) {
		rc = pb__err(pb, -EINVAL, "%s: 'outbound-addr' must be an IPv4 address, not '%s'",
			     o->what, v);
		goto fail;
	}
	r->mac[0] = 0x52;
	r->mac[1] = 0x55;
	memcpy(r->mac + 2, &r->gw, 4);
	for (unsigned i = 0; i < o->n; i++) {
		const struct opt_pair *p = &o->pair[i];

		if (!strcmp(p->key, "hostfwd"))
			rc = fwd_parse_hostfwd(r, p->val, err, errlen);
		else if (!strcmp(p->key, "guestfwd"))
			rc = fwd_parse_guestfwd(r, p->val, err, errlen);
		if (rc) {
			rc = pb__err(pb, rc, "%s: %s", o->what, err);
			goto fail;
		}
	}
	rc = dhcp_configure(r, o, err, errlen);
	if (!rc)
		rc = dns_configure(r, o, err, errlen);
	if (!rc)
		rc = tftp_configure(r, o, err, errlen);
	if (!rc)
		rc = smb_configure(r, o, err, errlen);
	if (!rc)
		rc = ip6_configure(r, o, err, errlen);
	if (!rc && !r->ipv4 && !r->ip6.enabled)
		rc = pb__err(pb, -EINVAL, "ipv4=off and ipv6=off leave nothing to route");
	if (rc) {
		/* option getters already name the netdev; the others not */
		if (strncmp(err, o->what, strlen(o->what)))
			rc = pb__err(pb, rc, "%s: %s", o->what, err);
		goto fail;
	}
	r->flows = calloc(1, sizeof(*r->flows));
	if (!r->flows || flow_table_init(r->flows, &fl)) {
		rc = pb__err(pb, -ENOMEM, "%s: cannot allocate %u flows", o->what,
			     fl.max);
		goto fail;
	}
	r->reasm = reasm_new(r->frags_max, r->frags_per_guest,
			     MIN((size_t)r->frags_max * REASM_DATAGRAM_BYTES,
				 (size_t)REASM_BYTES_MAX),
			     REASM_TIMEOUT_NS);
	r->slot_size = (ETH_HDR + 65535 + 63) & ~(size_t)63;
	r->arena = mmap(NULL, (size_t)ARENA_SLOTS * r->slot_size,
			PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->arena == MAP_FAILED)
		r->arena = NULL;
	rc = timer_new(&pb->loop, router_tick, r->nd);
	if (!r->reasm || !r->arena || rc < 0) {
		rc = pb__err(pb, -ENOMEM, "%s: out of memory", o->what);
		goto fail;
	}
	r->timer = rc;
	rc = fwd_start(r);
	if (rc)
		goto fail;
	r->port = port_new(pb, (int)r->nd, nd->seg, &router_port_ops, -1, NULL);
	if (r->port)
		r->port->offloads = PORT_OFF_CSUM | PORT_OFF_TSO4 |
				    PORT_OFF_TSO6 | PORT_OFF_ECN;
	if (!r->port) {
		rc = pb__err(pb, -ENOSPC, "%s: too many ports", o->what);
		goto fail;
	}
	str_copy(r->port->peer, sizeof(r->port->peer), "user-mode router");
	pb->routers[pb->nrouters++] = r->nd;
	if (r->ip6.enabled)
		router_kick_timer(r, 1);	/* the first router advertisement */
	{
		char net[16], gw[16], dns[16];

		inet_ntop(AF_INET, &r->net, net, sizeof(net));
		inet_ntop(AF_INET, &r->gw, gw, sizeof(gw));
		inet_ntop(AF_INET, &r->dns, dns, sizeof(dns));
		log_info(&pb->log, "netdev %s: router on %s/%d, gateway %s%s, dns %s, mtu %u%s",
			 nd->id, net, __builtin_popcount(r->mask), gw,
			 r->loopback_map ? " (host loopback)" : "", dns, r->mtu,
			 r->restricted ? ", restricted" : "");
	}
	return 0;
fail:
	router_close(pb, nd);
	free(r);
	nd->priv = NULL;
	nd->ops = NULL;
	return rc;
}

const struct backend backend_user = {
	.type = "user",
	.keys = user_keys,
	.repeatable = user_repeatable,
	.create = user_create,
};

/* The process's descriptor limit, as far as a uint32 shows it. */
static uint32_t fds_max(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	return (uint32_t)MIN(rl.rlim_cur, (rlim_t)UINT32_MAX);
}

/* "},\"limits\":{...": each limit's value and how often it refused. */
static void router_limits_json(const struct router *r, FILE *f)
{
	const struct flow_limits *fl = &r->flows->lim;
	uint32_t max[LIMIT_MAX] = {
		[LIMIT_FLOWS] = fl->max,
		[LIMIT_FLOWS_GUEST] = fl->per_guest,
		[LIMIT_UDP_FLOWS] = fl->udp,
		[LIMIT_HALF_OPEN] = fl->half_open,
		[LIMIT_HALF_OPEN_GUEST] = fl->half_open_per_guest,
		[LIMIT_FRAGS] = r->frags_max,
		[LIMIT_FRAGS_GUEST] = r->frags_per_guest,
		[LIMIT_TFTP] = tftp_limit(r, false),
		[LIMIT_TFTP_GUEST] = tftp_limit(r, true),
		[LIMIT_LEASES] = r->dhcp.max_leases,
		[LIMIT_FDS] = fds_max(),
	};

	fputs("},\"limits\":{", f);
	for (int i = 0; i < LIMIT_MAX; i++)
		fprintf(f, "%s\"%s\":{\"max\":%u,\"hit\":%llu}", i ? "," : "",
			limit_names[i], max[i],
			(unsigned long long)r->st.limit[i]);
}

void router_stats_json(struct pb *pb, uint32_t nd, void *file)
{
	struct router *r = router_get(pb, nd);
	FILE *f = file;

	if (!r)
		return;
	fprintf(f, ",\"router\":{\"frames_in\":%llu,\"frames_out\":%llu,"
		   "\"flows\":%u,\"flows_max\":%u,\"flows_guests\":%u,"
		   "\"udp_flows\":%u,\"tcp_half_open\":%u,\"tcp_opened\":%llu,"
		   "\"tcp_closed\":%llu,\"tcp_refused\":%llu,\"tcp_reset\":%llu,"
		   "\"tcp_linger_reclaimed\":%llu,\"udp_opened\":%llu,\"udp_closed\":%llu,"
		   "\"udp_gso_sends\":%llu,\"udp_gso_datagrams\":%llu,"
		   "\"icmp_echo_local\":%llu,\"icmp_opened\":%llu,\"drops\":{",
		(unsigned long long)r->st.frames_in,
		(unsigned long long)r->st.frames_out, r->flows->count,
		r->flows->cap, r->flows->guests.keys, r->flows->udp,
		r->flows->half_open, (unsigned long long)r->st.tcp_opened,
		(unsigned long long)r->st.tcp_closed,
		(unsigned long long)r->st.tcp_refused,
		(unsigned long long)r->st.tcp_reset,
		(unsigned long long)r->st.tcp_linger_reclaimed,
		(unsigned long long)r->st.udp_opened,
		(unsigned long long)r->st.udp_closed,
		(unsigned long long)r->st.udp_gso_sends,
		(unsigned long long)r->st.udp_gso_datagrams,
		(unsigned long long)r->st.icmp_echo_local,
		(unsigned long long)r->st.icmp_opened);
	for (int i = 0; i < RD_MAX; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", rdrop_names[i],
			(unsigned long long)r->st.drops[i]);
	router_limits_json(r, f);
	const struct reasm_stats *rs = reasm_stats(r->reasm);

	fprintf(f, "},\"reassembly\":{\"fragments\":%llu,\"completed\":%llu,"
		   "\"timeouts\":%llu,\"overlaps\":%llu,\"too_big\":%llu,"
		   "\"full\":%llu,\"source_full\":%llu,\"malformed\":%llu,"
		   "\"duplicates\":%llu,\"pending\":%u}",
		(unsigned long long)rs->fragments,
		(unsigned long long)rs->completed,
		(unsigned long long)rs->timeouts,
		(unsigned long long)rs->overlaps,
		(unsigned long long)rs->too_big, (unsigned long long)rs->full,
		(unsigned long long)rs->source_full,
		(unsigned long long)rs->malformed,
		(unsigned long long)rs->duplicates, reasm_pending(r->reasm));
	const struct dhcp_stats *ds = &r->dhcp.st;

	fprintf(f, ",\"dhcp\":{\"discover\":%llu,\"offer\":%llu,\"request\":%llu,"
		   "\"ack\":%llu,\"nak\":%llu,\"release\":%llu,\"decline\":%llu,"
		   "\"inform\":%llu,\"bootp\":%llu,\"malformed\":%llu,"
		   "\"exhausted\":%llu,\"leases\":[",
		(unsigned long long)ds->discover, (unsigned long long)ds->offer,
		(unsigned long long)ds->request, (unsigned long long)ds->ack,
		(unsigned long long)ds->nak, (unsigned long long)ds->release,
		(unsigned long long)ds->decline, (unsigned long long)ds->inform,
		(unsigned long long)ds->bootp, (unsigned long long)ds->malformed,
		(unsigned long long)ds->exhausted);
	const char *sep = "";

	for (uint32_t i = 0; i < r->dhcp.npool; i++) {
		const struct dhcp_lease *l = &r->dhcp.lease[i];
		struct in_addr a = { htonl(r->dhcp.pool_first + i) };
		char ip[16];

		if (l->state != LEASE_BOUND)
			continue;
		inet_ntop(AF_INET, &a, ip, sizeof(ip));
		fprintf(f, "%s{\"ip\":\"%s\",\"mac\":\"%02x:%02x:%02x:%02x:%02x:%02x\","
			   "\"name\":\"%s\"}",
			sep, ip, l->mac[0], l->mac[1], l->mac[2], l->mac[3],
			l->mac[4], l->mac[5], l->name);
		sep = ",";
	}
	const struct dhcp6_stats *d6 = &r->dhcp6.st;

	fprintf(f, "]},\"dhcp6\":{\"solicit\":%llu,\"advertise\":%llu,"
		   "\"request\":%llu,\"renew\":%llu,\"rebind\":%llu,"
		   "\"confirm\":%llu,\"release\":%llu,\"decline\":%llu,"
		   "\"inform\":%llu,\"reply\":%llu,\"malformed\":%llu,"
		   "\"exhausted\":%llu",
		(unsigned long long)d6->solicit, (unsigned long long)d6->advertise,
		(unsigned long long)d6->request, (unsigned long long)d6->renew,
		(unsigned long long)d6->rebind, (unsigned long long)d6->confirm,
		(unsigned long long)d6->release, (unsigned long long)d6->decline,
		(unsigned long long)d6->inform, (unsigned long long)d6->reply,
		(unsigned long long)d6->malformed,
		(unsigned long long)d6->exhausted);
	const struct dns_stats *ns = &r->dnscfg.st;

	fprintf(f, "},\"dns\":{\"queries\":%llu,\"local\":%llu,\"forwarded\":%llu,"
		   "\"answers\":%llu,\"malformed\":%llu,\"mismatched\":%llu,"
		   "\"timeouts\":%llu,\"no_upstream\":%llu,\"upstreams\":%u,"
		   "\"tcp_sessions\":%llu,\"tcp_limited\":%llu}",
		(unsigned long long)ns->queries, (unsigned long long)ns->local,
		(unsigned long long)ns->forwarded, (unsigned long long)ns->answers,
		(unsigned long long)ns->malformed,
		(unsigned long long)ns->mismatched,
		(unsigned long long)ns->timeouts,
		(unsigned long long)ns->no_upstream, r->dnscfg.nup,
		(unsigned long long)ns->tcp_sessions,
		(unsigned long long)ns->tcp_limited);
	const struct ip6_stats *s6 = &r->ip6.st;

	fprintf(f, ",\"ipv6\":{\"enabled\":%s,\"rx\":%llu,\"malformed\":%llu,"
		   "\"ext_dropped\":%llu,\"param_problem\":%llu,\"no_route\":%llu,"
		   "\"echo\":%llu,\"rs\":%llu,\"ra_sent\":%llu,\"ra_limited\":%llu,"
		   "\"ns\":%llu,\"na_sent\":%llu,\"na\":%llu,\"nd_invalid\":%llu,"
		   "\"mld\":%llu,\"other\":%llu,\"fragments\":%llu,"
		   "\"reassembled\":%llu,\"fragmented\":%llu}",
		r->ip6.enabled ? "true" : "false", (unsigned long long)s6->rx,
		(unsigned long long)s6->malformed,
		(unsigned long long)s6->ext_dropped,
		(unsigned long long)s6->param_problem,
		(unsigned long long)s6->no_route, (unsigned long long)s6->echo,
		(unsigned long long)s6->rs, (unsigned long long)s6->ra_sent,
		(unsigned long long)s6->ra_limited, (unsigned long long)s6->ns,
		(unsigned long long)s6->na_sent, (unsigned long long)s6->na,
		(unsigned long long)s6->nd_invalid, (unsigned long long)s6->mld,
		(unsigned long long)s6->other,
		(unsigned long long)s6->fragments,
		(unsigned long long)s6->reassembled,
		(unsigned long long)s6->fragmented);
	tftp_stats_json(r, f);
	smb_stats_json(r, f);
	fputc('}', f);
}

int pb_router_info(pb_t *pb, const char *id, struct pb_router_info *out)
{
	int nd = netdev_find(pb, id);
	struct router *r = nd >= 0 ? router_get(pb, (uint32_t)nd) : NULL;

	if (!r)
		return pb__err(pb, -ENOENT, "no router netdev '%s'", id);
	memset(out, 0, sizeof(*out));
	out->net = r->net;
	out->mask = r->mask;
	out->gateway = r->gw;
	out->dns = r->dns;
	out->dhcp_start = r->dhcp_start;
	out->mtu = r->mtu;
	str_copy(out->domain, sizeof(out->domain), r->dhcp.domain);
	return 0;
}
