// SPDX-License-Identifier: MIT
/* ip6.c: IPv6 in the router: input, extension headers, ICMPv6 echo and
 * errors, neighbour discovery, router advertisements. */

/*
 * Theory of operation.
 *
 * Addresses (QEMU's defaults): prefix fec0::/64 (ipv6-prefix=,
 * ipv6-prefixlen=), the router at prefix::2 (ipv6-host=), DNS at prefix::3
 * (ipv6-dns=), and a link-local address made from the router's MAC
 * (EUI-64), from which it advertises.  Guests configure themselves with
 * SLAAC from our router advertisements (prefix with the A flag, MTU, RDNSS
 * and DNSSL, RFC 8106), sent at start-up, every RA_INTERVAL_NS and in
 * answer to a router solicitation (at most one per RA_MIN_GAP_NS; the rest
 * are counted).
 *
 * Neighbour discovery (RFC 4861): we answer solicitations for our own
 * addresses only, never for a guest's; a duplicate address detection probe
 * for one of ours is defended with an advertisement to all nodes.  Every NDP
 * message is validated (hop limit 255, code 0, lengths, no zero-length
 * option: the classic infinite loop) before anything is learnt from it.
 * Guests are learnt from their traffic into a small table (oldest
 * replaced); to reach an unknown guest we send a neighbour solicitation.
 *
 * Extension headers (RFC 8200 4): hop-by-hop only first, options walked
 * with the action bits of unknown options honoured, routing headers with
 * segments left answered with a parameter problem, at most IP6_EXT_MAX
 * headers.  Fragments (RFC 8200 4.5) are reassembled by frag.c, in the same
 * bounded table as IPv4's (max-frags, and max-frags-per-guest charged to the
 * sender's MAC); the whole datagram then goes through this input again
 * (a fragment header inside it is dropped: no nesting).  An atomic fragment
 * (offset 0, M clear) is processed as the packet it carries (RFC 6946).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csum.h"
#include "dhcp6.h"
#include "frag.h"
#include "ip6.h"
#include "router.h"

#define NH_HOPOPTS 0
#define NH_ROUTING 43
#define NH_FRAGMENT 44
#define NH_ICMPV6 58
#define NH_NONE 59
#define NH_DSTOPTS 60

#define ICMP6_DST_UNREACH 1
#define ICMP6_PARAM_PROB 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ND_ROUTER_SOLICIT 133
#define ND_ROUTER_ADVERT 134
#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136

#define ND_OPT_SLLA 1
#define ND_OPT_TLLA 2
#define ND_OPT_PREFIX 3
#define ND_OPT_MTU 5
#define ND_OPT_RDNSS 25
#define ND_OPT_DNSSL 31

#define RA_INTERVAL_NS (200 * NS_PER_SEC)
#define RA_INITIAL_GAP_NS (2 * NS_PER_SEC)
#define RA_INITIAL_COUNT 3
#define RA_MIN_GAP_NS (NS_PER_SEC / 2)
#define ROUTER_LIFETIME 1800
#define RDNSS_LIFETIME 1800
#define PREFIX_VALID 86400
#define PREFIX_PREFERRED 14400
#define ICMP6_ERR_MAX 1232	/* an error fits the IPv6 minimum MTU */

static const struct in6_addr all_nodes = { { { 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0,
					       0, 0, 0, 0, 0, 1 } } };

static const struct in6_addr all_dhcp = { { { 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0,
					      0, 0, 0, 1, 0, 2 } } };

/* ---- extension headers (pure) --------------------------------------------------- */

/* Options of a hop-by-hop or destination options header (RFC 8200 4.2);
 * hdr is the extension header, hoff its offset from the fixed header. */
static int ip6_walk_opts(const uint8_t *hdr, size_t hlen, size_t hoff,
			 size_t *off, uint8_t *code, bool *icmp,
			 bool dst_multicast)
{
	struct cursor o = cur_init(hdr + 2, hlen - 2);

	while (o.rem) {
		const uint8_t *at = o.p;
		uint8_t type, len;

		if (!cur_u8(&o, &type))
			return -EBADMSG;
		if (type == 0)
			continue;	/* Pad1 */
		if (!cur_u8(&o, &len) || !cur_pull(&o, len))
			return -EBADMSG;
		if (type == 1)
			continue;	/* PadN */
		switch (type >> 6) {
		case 0:
			continue;	/* skip over it */
		case 1:
			return -EBADMSG;	/* discard silently */
		case 2:
			*icmp = true;
			break;
		case 3:
			*icmp = !dst_multicast;
			break;
		}
		*code = 2;
		*off = hoff + (size_t)(at - hdr);
		return -EPROTO;
	}
	return 0;
}

int ip6_walk_ext(struct cursor *c, uint8_t *nh, size_t *off, uint8_t *code,
		 bool *icmp, bool dst_multicast)
{
	size_t nh_field = 6;	/* where the current next-header value was */

	*icmp = false;
	*code = 0;
	for (int n = 0;; n++) {
		const uint8_t *h;
		size_t hlen;

		switch (*nh) {
		case NH_HOPOPTS:
			if (n) {	/* only right after the fixed header */
				*code = 1;
				*icmp = true;
				*off = nh_field;
				return -EPROTO;
			}
			/* fall through */
		case NH_DSTOPTS:
		case NH_ROUTING:
			break;
		default:
			return 0;	/* upper layer, fragment or none */
		}
		if (n == IP6_EXT_MAX)
			return -EBADMSG;
		h = cur_peek(c, 8);
		if (!h)
			return -EBADMSG;
		hlen = ((size_t)h[1] + 1) * 8;
		if (!cur_peek(c, hlen))
			return -EBADMSG;
		if (*nh == NH_ROUTING) {
			/* segments left > 0 with a type we do not process */
			if (h[3] != 0) {
				*code = 0;
				*icmp = true;
				*off += 2;
				return -EPROTO;
			}
		} else {
			int rc = ip6_walk_opts(h, hlen, *off, off, code, icmp,
					       dst_multicast);

			if (rc)
				return rc;
		}
		*nh = h[0];
		nh_field = *off;
		*off += hlen;
		cur_pull(c, hlen);
	}
}

/* ---- helpers ------------------------------------------------------------------------ */

static bool is_multicast(const struct in6_addr *a)
{
	return a->s6_addr[0] == 0xff;
}

static bool is_unspecified(const struct in6_addr *a)
{
	static const struct in6_addr z;

	return !memcmp(a, &z, sizeof(z));
}

static bool is_linklocal(const struct in6_addr *a)
{
	return a->s6_addr[0] == 0xfe && (a->s6_addr[1] & 0xc0) == 0x80;
}

static bool in_prefix(const struct ip6_state *s, const struct in6_addr *a)
{
	unsigned bits = s->prefixlen;

	for (unsigned i = 0; i < 16 && bits; i++) {
		uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if ((a->s6_addr[i] & m) != (s->prefix.s6_addr[i] & m))
			return false;
		bits -= bits >= 8 ? 8 : bits;
	}
	return true;
}

static bool ours(const struct ip6_state *s, const struct in6_addr *a)
{
	return !memcmp(a, &s->ll, 16) || !memcmp(a, &s->host, 16) ||
	       !memcmp(a, &s->dns, 16);
}

/* The solicited-node multicast address of a (RFC 4291 2.7.1). */
static void solicited_node(const struct in6_addr *a, struct in6_addr *out)
{
	static const uint8_t pre[13] = { 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
					 0xff };

	memcpy(out->s6_addr, pre, 13);
	memcpy(out->s6_addr + 13, a->s6_addr + 13, 3);
}

static bool for_us(const struct ip6_state *s, const struct in6_addr *dst)
{
	struct in6_addr sn;

	if (ours(s, dst) || !memcmp(dst, &all_nodes, 16))
		return true;
	if (dst->s6_addr[0] == 0xff && dst->s6_addr[1] == 2 &&
	    dst->s6_addr[15] == 2 && !memcmp(dst->s6_addr + 2, all_nodes.s6_addr + 2, 13))
		return true;	/* ff02::2, all routers */
	if (!memcmp(dst, &all_dhcp, 16))
		return true;
	solicited_node(&s->ll, &sn);
	if (!memcmp(dst, &sn, 16))
		return true;
	solicited_node(&s->host, &sn);
	if (!memcmp(dst, &sn, 16))
		return true;
	solicited_node(&s->dns, &sn);
	return !memcmp(dst, &sn, 16);
}

static void mcast_mac(const struct in6_addr *a, uint8_t *mac)
{
	mac[0] = 0x33;
	mac[1] = 0x33;
	memcpy(mac + 2, a->s6_addr + 12, 4);
}

/* ---- neighbours -------------------------------------------------------------------------- */

static unsigned neigh6_home(const struct in6_addr *a)
{
	uint32_t h;

	memcpy(&h, a->s6_addr + 12, 4);
	return (h * 2654435761u) % NEIGH6_MAX;
}

static void neigh6_learn(struct router *r, const struct in6_addr *ip,
			 const uint8_t *mac)
{
	struct ip6_state *s = &r->ip6;
	unsigned h = neigh6_home(ip), oldest = h;

	if (is_unspecified(ip) || is_multicast(ip) || ours(s, ip) ||
	    mac_is_multicast(mac) || (!is_linklocal(ip) && !in_prefix(s, ip)))
		return;
	for (unsigned k = 0; k < 8; k++) {
		struct neigh6 *n = &s->neigh[(h + k) % NEIGH6_MAX];

		if (!n->used || !memcmp(&n->ip, ip, 16)) {
			n->used = true;
			n->ip = *ip;
			memcpy(n->mac, mac, 6);
			n->seen = pb_now(r->pb);
			return;
		}
		if (n->seen < s->neigh[oldest].seen)
			oldest = (h + k) % NEIGH6_MAX;
	}
	s->neigh[oldest].ip = *ip;
	memcpy(s->neigh[oldest].mac, mac, 6);
	s->neigh[oldest].seen = pb_now(r->pb);
}

static const uint8_t *neigh6_lookup(const struct router *r,
				    const struct in6_addr *ip)
{
	unsigned h = neigh6_home(ip);

	for (unsigned k = 0; k < 8; k++) {
		const struct neigh6 *n = &r->ip6.neigh[(h + k) % NEIGH6_MAX];

		if (n->used && !memcmp(&n->ip, ip, 16))
			return n->mac;
	}
	return NULL;
}

/* ---- output -------------------------------------------------------------------------------- */

static uint16_t icmp6_csum(const struct in6_addr *src,
			   const struct in6_addr *dst, const uint8_t *msg,
			   size_t len)
{
	return csum_fold(csum_add(csum_pseudo6(src, dst, NH_ICMPV6,
					       (uint32_t)len),
				  msg, len));
}

/* Frame with payload (len bytes at ETH_HDR + IP6_HDR) to mac. */
/*
 * Send the datagram in frame (Ethernet and IPv6 headers filled in, len
 * bytes of payload) as fragments that fit the MTU (RFC 8200 4.5): as its
 * source, the router may; a host's datagram for a guest would otherwise
 * be lost.  Every fragment but the last carries a multiple of 8 bytes; the
 * later ones go first, in frames of their own, then the first, moved up in
 * frame behind the fragment header.
 */
static void ip6_fragment_out(struct router *r, uint8_t *frame, size_t len)
{
	size_t chunk = ((size_t)r->mtu - IP6_HDR - 8) & ~(size_t)7;

	/* all of it or nothing: the first fragment goes last */
	if (ARENA_SLOTS - r->arena_used < (len - 1) / chunk) {
		rdrop(r, RD_ARENA);
		return;
	}
	uint8_t *h = frame + ETH_HDR;
	uint8_t *payload = h + IP6_HDR;
	uint8_t nh = h[6];
	uint32_t id = r->ip6.frag_id++;
	uint8_t fh[8];

	fh[0] = nh;
	fh[1] = 0;
	fh[4] = (uint8_t)(id >> 24);
	fh[5] = (uint8_t)(id >> 16);
	fh[6] = (uint8_t)(id >> 8);
	fh[7] = (uint8_t)id;
	h[6] = 44;
	for (size_t off = chunk; off < len; off += chunk) {
		size_t n = MIN(chunk, len - off);
		uint16_t w = (uint16_t)(off | (off + n < len ? 1 : 0));
		uint8_t *f = router_alloc(r);

		if (!f)
			return;	/* counted (arena) */
		memcpy(f, frame, ETH_HDR + IP6_HDR);
		f[ETH_HDR + 4] = (uint8_t)((8 + n) >> 8);
		f[ETH_HDR + 5] = (uint8_t)(8 + n);
		fh[2] = (uint8_t)(w >> 8);
		fh[3] = (uint8_t)w;
		memcpy(f + ETH_HDR + IP6_HDR, fh, 8);
		memcpy(f + ETH_HDR + IP6_HDR + 8, payload + off, n);
		r->st.frames_out++;
		router_emit_frame(r, f, ETH_HDR + IP6_HDR + 8 + n);
	}
	memmove(payload + 8, payload, chunk);
	fh[2] = 0;
	fh[3] = 1;	/* offset 0, more */
	memcpy(payload, fh, 8);
	h[4] = (uint8_t)((8 + chunk) >> 8);
	h[5] = (uint8_t)(8 + chunk);
	r->ip6.st.fragmented++;
	r->st.frames_out++;
	router_emit_frame(r, frame, ETH_HDR + IP6_HDR + 8 + chunk);
}

static void ip6_emit(struct router *r, uint8_t *frame, uint8_t nh,
		     uint8_t hlim, const struct in6_addr *src,
		     const struct in6_addr *dst, size_t len, const uint8_t *mac)
{
	uint8_t *h = frame + ETH_HDR;

	memcpy(frame, mac, 6);
	memcpy(frame + 6, r->mac, 6);
	frame[12] = 0x86;
	frame[13] = 0xdd;
	h[0] = 0x60;
	h[1] = h[2] = h[3] = 0;
	h[4] = (uint8_t)(len >> 8);
	h[5] = (uint8_t)len;
	h[6] = nh;
	h[7] = hlim;
	memcpy(h + 8, src, 16);
	memcpy(h + 24, dst, 16);
	if (IP6_HDR + len > r->mtu && !(r->tx_meta && r->tx_meta->gso_type)) {
		ip6_fragment_out(r, frame, len);
		return;
	}
	r->st.frames_out++;
	router_emit_frame(r, frame, ETH_HDR + IP6_HDR + len);
}

static void ndp_solicit(struct router *r, const struct in6_addr *target)
{
	uint8_t *f = router_alloc(r);
	uint8_t *m, mac[6];
	struct in6_addr dst;
	uint16_t ck;

	if (!f)
		return;
	solicited_node(target, &dst);
	mcast_mac(&dst, mac);
	m = f + ETH_HDR + IP6_HDR;
	memset(m, 0, 32);
	m[0] = ND_NEIGHBOR_SOLICIT;
	memcpy(m + 8, target, 16);
	m[24] = ND_OPT_SLLA;
	m[25] = 1;
	memcpy(m + 26, r->mac, 6);
	ck = icmp6_csum(&r->ip6.ll, &dst, m, 32);
	memcpy(m + 2, &ck, 2);
	ip6_emit(r, f, NH_ICMPV6, 255, &r->ip6.ll, &dst, 32, mac);
}

/* The pseudo-header sum of an upper-layer packet (RFC 8200 8.1). */
uint32_t ip6_pseudo(const struct in6_addr *src, const struct in6_addr *dst,
		    uint8_t nh, size_t len)
{
	return csum_pseudo6(src, dst, nh, (uint32_t)len);
}

const uint8_t *ip6_neigh_mac(const struct router *r, const struct in6_addr *a)
{
	return neigh6_lookup(r, a);
}

/* Where to send a packet for dst: a multicast MAC, or the neighbour's
 * (NULL, with a solicitation sent, if unknown). */
static const uint8_t *ip6_dst_mac(struct router *r, const struct in6_addr *dst,
				  uint8_t *buf)
{
	const uint8_t *mac;

	if (is_multicast(dst)) {
		mcast_mac(dst, buf);
		return buf;
	}
	mac = neigh6_lookup(r, dst);
	if (!mac) {
		rdrop(r, RD_NO_NEIGH);
		ndp_solicit(r, dst);
	}
	return mac;
}

void ip6_send_udp(struct router *r, uint8_t *frame, const struct in6_addr *src,
		  uint16_t sport, const struct in6_addr *dst, uint16_t dport,
		  size_t len)
{
	uint8_t mm[6];
	size_t ulen = UDP_HDR + len;
	const uint8_t *mac = ip6_dst_mac(r, dst, mm);

	if (!mac)
		return;
	udp_fill(frame + ETH_HDR + IP6_HDR, sport, dport, ulen,
		 ip6_pseudo(src, dst, IPPROTO_UDP, ulen));
	ip6_emit(r, frame, IPPROTO_UDP, 255, src, dst, ulen, mac);
}

int ip6_send_l4(struct router *r, uint8_t *frame, uint8_t nh,
		const struct in6_addr *src, const struct in6_addr *dst,
		size_t len)
{
	uint8_t mm[6];
	const uint8_t *mac = ip6_dst_mac(r, dst, mm);

	if (!mac)
		return -EHOSTUNREACH;
	ip6_emit(r, frame, nh, 64, src, dst, len, mac);
	return 0;
}

/* ICMPv6 message m (len bytes, checksum field zero) from src to dst. */
static void icmp6_send(struct router *r, uint8_t *f, const struct in6_addr *src,
		       const struct in6_addr *dst, size_t len, uint8_t hlim)
{
	uint8_t *m = f + ETH_HDR + IP6_HDR;
	uint8_t mm[6];
	const uint8_t *mac = ip6_dst_mac(r, dst, mm);
	uint16_t ck;

	if (!mac)
		return;
	m[2] = m[3] = 0;
	ck = icmp6_csum(src, dst, m, len);
	memcpy(m + 2, &ck, 2);
	ip6_emit(r, f, NH_ICMPV6, hlim, src, dst, len, mac);
}

static void icmp6_error(struct router *r, const struct ip6_view *ip,
			uint8_t type, uint8_t code, uint32_t param)
{
	/* within the link's MTU too, when it is below IPv6's minimum */
	size_t q = MIN(ip->len, MIN((size_t)ICMP6_ERR_MAX, (size_t)r->mtu) -
					IP6_HDR - 8);
	uint8_t *f;

	/* never about multicast (except what RFC 4443 2.4 allows, which we
	 * do not need), errors, or from the unspecified address */
	if (is_multicast(&ip->dst) && type != ICMP6_PARAM_PROB)
		return;
	if (is_unspecified(&ip->src) || is_multicast(&ip->src))
		return;
	f = router_alloc(r);
	if (!f)
		return;
	uint8_t *m = f + ETH_HDR + IP6_HDR;

	m[0] = type;
	m[1] = code;
	m[2] = m[3] = 0;
	put_be32(m + 4, param);
	memcpy(m + 8, ip->hdr, q);
	icmp6_send(r, f, ours(&r->ip6, &ip->dst) ? &ip->dst : &r->ip6.ll,
		   &ip->src, 8 + q, 64);
}

void ip6_error_raw(struct router *r, const uint8_t *orig, size_t len,
		   uint8_t type, uint8_t code)
{
	struct ip6_view ip;

	if (len < IP6_HDR)
		return;
	memset(&ip, 0, sizeof(ip));
	memcpy(&ip.src, orig + 8, 16);
	memcpy(&ip.dst, orig + 24, 16);
	ip.hdr = orig;
	ip.len = len;
	icmp6_error(r, &ip, type, code, 0);
}

/* Append the DNSSL option for the configured search domains. */
static size_t put_dnssl(struct router *r, uint8_t *o)
{
	/* DNSSL wants uncompressed names */
	uint8_t names[DHCP_SEARCH_MAX * 4];
	size_t out = dhcp_search_plain(&r->dhcp, names, sizeof(names)), len;

	if (!out)
		return 0;
	len = (8 + out + 7) & ~(size_t)7;
	if (len > 255 * 8)
		return 0;
	memset(o, 0, len);
	o[0] = ND_OPT_DNSSL;
	o[1] = (uint8_t)(len / 8);
	put_be32(o + 4, RDNSS_LIFETIME);
	memcpy(o + 8, names, out);
	return len;
}

static void ra_send(struct router *r, const struct in6_addr *to)
{
	struct ip6_state *s = &r->ip6;
	uint8_t *f = router_alloc(r);
	uint8_t *m;
	size_t n;

	if (!f)
		return;
	m = f + ETH_HDR + IP6_HDR;
	memset(m, 0, 16);
	m[0] = ND_ROUTER_ADVERT;
	m[4] = 64;		/* cur hop limit */
	m[5] = 0x40;		/* O: other configuration by DHCPv6 */
	m[6] = (uint8_t)(ROUTER_LIFETIME >> 8);
	m[7] = (uint8_t)ROUTER_LIFETIME;
	n = 16;
	m[n] = ND_OPT_SLLA;
	m[n + 1] = 1;
	memcpy(m + n + 2, r->mac, 6);
	n += 8;
	memset(m + n, 0, 8);
	m[n] = ND_OPT_MTU;
	m[n + 1] = 1;
	put_be32(m + n + 4, r->mtu);
	n += 8;
	memset(m + n, 0, 32);
	m[n] = ND_OPT_PREFIX;
	m[n + 1] = 4;
	m[n + 2] = s->prefixlen;
	m[n + 3] = 0xc0;	/* on-link, autonomous */
	put_be32(m + n + 4, PREFIX_VALID);
	put_be32(m + n + 8, PREFIX_PREFERRED);
	memcpy(m + n + 16, &s->prefix, 16);
	n += 32;
	if (!r->restricted) {
		memset(m + n, 0, 24);
		m[n] = ND_OPT_RDNSS;
		m[n + 1] = 3;
		put_be32(m + n + 4, RDNSS_LIFETIME);
		memcpy(m + n + 8, &s->dns, 16);
		n += 24;
		n += put_dnssl(r, m + n);
	}
	s->st.ra_sent++;
	s->last_ra = pb_now(r->pb);
	icmp6_send(r, f, &s->ll, to, n, 255);
}

/* ---- input ------------------------------------------------------------------------------------ */

/* Walk NDP options (after the fixed part); the SLLA/TLLA one is returned.
 * false: malformed (zero length, overrun) -> drop the message. */
static bool nd_options(struct cursor o, uint8_t want, const uint8_t **lla)
{
	*lla = NULL;
	while (o.rem) {
		const uint8_t *h = cur_peek(&o, 2);
		size_t len;

		if (!h || h[1] == 0)
			return false;
		len = (size_t)h[1] * 8;
		if (!cur_pull(&o, len))
			return false;
		if (h[0] == want && len == 8)
			*lla = h + 2;
	}
	return true;
}

static void icmp6_input(struct router *r, const struct ip6_view *ip)
{
	struct ip6_state *s = &r->ip6;
	struct cursor c = ip->l4;
	const uint8_t *m = cur_peek(&c, 4);
	const uint8_t *lla;

	if (!m || (!r->rx_csum_ok &&
		   csum_bad(icmp6_csum(&ip->src, &ip->dst, c.p, c.rem)))) {
		s->st.malformed++;
		return;
	}
	/* RFC 6980: neighbour discovery never comes in fragments */
	if (ip->reassembled && m[0] >= ND_ROUTER_SOLICIT && m[0] <= 137) {
		s->st.nd_invalid++;
		return;
	}
	switch (m[0]) {
	case ICMP6_ECHO_REQUEST: {
		uint8_t *f;

		/* (a reply over the MTU goes out in fragments) */
		if (!ours(s, &ip->dst) || c.rem < 8) {
			s->st.other++;
			return;
		}
		if (c.rem > (size_t)r->mtu - IP6_HDR &&
		    !router_make_room(r, router_frag_slots(r)))
			return;
		f = router_alloc(r);
		if (!f)
			return;
		memcpy(f + ETH_HDR + IP6_HDR, c.p, c.rem);
		f[ETH_HDR + IP6_HDR] = ICMP6_ECHO_REPLY;
		s->st.echo++;
		icmp6_send(r, f, &ip->dst, &ip->src, c.rem, 64);
		return;
	}
	case ND_ROUTER_SOLICIT:
		if (ip->hlim != 255 || m[1] != 0 || c.rem < 8 ||
		    !nd_options(cur_init(c.p + 8, c.rem - 8), ND_OPT_SLLA, &lla) ||
		    (lla && is_unspecified(&ip->src))) {
			s->st.nd_invalid++;
			return;
		}
		s->st.rs++;
		if (lla)
			neigh6_learn(r, &ip->src, lla);
		if (s->last_ra && pb_now(r->pb) - s->last_ra < RA_MIN_GAP_NS) {
			/* too soon after the last one: answer a little later
			 * (RFC 4861 6.2.6), once for all who asked meanwhile */
			s->st.ra_limited++;
			if (s->next_ra > s->last_ra + RA_MIN_GAP_NS) {
				s->next_ra = s->last_ra + RA_MIN_GAP_NS;
				router_kick_timer(r, s->next_ra - pb_now(r->pb));
			}
			return;
		}
		ra_send(r, &all_nodes);
		return;
	case ND_NEIGHBOR_SOLICIT: {
		struct in6_addr target;
		bool dad = is_unspecified(&ip->src);
		uint8_t *f, *a;

		if (ip->hlim != 255 || m[1] != 0 || c.rem < 24 ||
		    !nd_options(cur_init(c.p + 24, c.rem - 24), ND_OPT_SLLA, &lla) ||
		    (dad && lla)) {
			s->st.nd_invalid++;
			return;
		}
		memcpy(&target, c.p + 8, 16);
		if (is_multicast(&target)) {
			s->st.nd_invalid++;
			return;
		}
		s->st.ns++;
		if (lla)
			neigh6_learn(r, &ip->src, lla);
		if (!ours(s, &target))
			return;	/* never answer for a guest's address */
		f = router_alloc(r);
		if (!f)
			return;
		a = f + ETH_HDR + IP6_HDR;
		memset(a, 0, 32);
		a[0] = ND_NEIGHBOR_ADVERT;
		/* router, solicited (not for DAD), override */
		a[4] = (uint8_t)(0x80 | (dad ? 0 : 0x40) | 0x20);
		memcpy(a + 8, &target, 16);
		a[24] = ND_OPT_TLLA;
		a[25] = 1;
		memcpy(a + 26, r->mac, 6);
		s->st.na_sent++;
		if (!dad && !lla && !neigh6_lookup(r, &ip->src))
			neigh6_learn(r, &ip->src, ip->src_mac);
		icmp6_send(r, f, &target, dad ? &all_nodes : &ip->src, 32, 255);
		return;
	}
	case ND_NEIGHBOR_ADVERT: {
		struct in6_addr target;

		if (ip->hlim != 255 || m[1] != 0 || c.rem < 24 ||
		    !nd_options(cur_init(c.p + 24, c.rem - 24), ND_OPT_TLLA, &lla)) {
			s->st.nd_invalid++;
			return;
		}
		memcpy(&target, c.p + 8, 16);
		s->st.na++;
		if (lla && !ours(s, &target))
			neigh6_learn(r, &target, lla);
		return;
	}
	case 130: case 131: case 132: case 143:
		s->st.mld++;
		return;
	default:
		s->st.other++;
		return;
	}
}

/* DHCPv6 (UDP to port 547): served; true if it was one. */
static bool ip6_dhcp(struct router *r, const struct ip6_view *ip,
		     struct cursor p)
{
	const uint8_t *u = cur_peek(&p, UDP_HDR);
	uint16_t ulen = u ? (uint16_t)(u[4] << 8 | u[5]) : 0;

	if (!u || u[2] != 2 || u[3] != 0x23)
		return false;
	if (ulen < UDP_HDR || !cur_trim(&p, ulen) ||
	    (!r->rx_csum_ok &&
	     csum_bad(csum_fold(csum_add(ip6_pseudo(&ip->src, &ip->dst,
						   IPPROTO_UDP, ulen),
					p.p, p.rem))))) {
		r->ip6.st.malformed++;
		return true;
	}
	cur_pull(&p, UDP_HDR);
	dhcp6_input(r, ip, (uint16_t)(u[0] << 8 | u[1]), p.p, p.rem);
	return true;
}

/*
 * Echo to an address beyond the router: one flow per (guest, destination,
 * identifier) with an ICMPv6 datagram ("ping") socket; the kernel picks the
 * identifier on the wire, replies get the guest's back.
 */
static void ip6_echo_out(struct router *r, const struct ip6_view *ip)
{
	struct flow_key k = { .proto = IPPROTO_ICMPV6, .v6 = 1 };
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
	const uint8_t *m = cur_peek(&ip->l4, 8);
	struct flow *f;
	int rc;

	if (!m || m[0] != ICMP6_ECHO_REQUEST ||
	    (!r->rx_csum_ok && csum_bad(icmp6_csum(&ip->src, &ip->dst, ip->l4.p, ip->l4.rem)))) {
		r->ip6.st.other++;
		return;
	}
	k.gip6 = ip->src;
	k.rip6 = ip->dst;
	k.gport = (uint16_t)(m[4] << 8 | m[5]);
	f = flow_lookup(r->flows, &k);
	if (!f) {
		rc = router_map_dst6(r, &ip->dst, &a.sin6_addr);
		if (rc) {
			rdrop(r, rc == -EACCES ? RD_RESTRICTED : RD_NO_ROUTE);
			icmp6_error(r, ip, ICMP6_DST_UNREACH, rc == -EACCES ? 1 : 0, 0);
			return;
		}
		f = router_flow_new(r, &k, ip->src_mac);
		if (!f)
			return;
		f->fd = router_socket_af(r, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
		if (f->fd == -EACCES || f->fd == -EPERM)
			f->fd = router_socket_af(r, AF_INET6, SOCK_RAW,
						 IPPROTO_ICMPV6);
		if (f->fd < 0 ||
		    connect(f->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    router_flow_watch(r, f, EPOLLIN, true) < 0) {
			router_flow_close(r, f);
			rdrop(r, RD_SOCKET);
			icmp6_error(r, ip, ICMP6_DST_UNREACH, 0, 0);
			return;
		}
		r->st.icmp_opened++;
		router_kick_timer(r, NS_PER_SEC);
	}
	f->last_active = pb_now(r->pb);
	if (send(f->fd, ip->l4.p, ip->l4.rem, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		rdrop(r, RD_UDP_SEND);
}

void ip6_echo_event(struct router *r, struct flow *f)
{
	for (int k = 0; k < 16; k++) {
		uint8_t *fr;
		uint8_t *m;
		ssize_t n;

		/* a reply over the MTU goes out in fragments */
		if (!router_make_room(r, router_frag_slots(r)))
			return;
		fr = router_alloc(r);
		m = fr + ETH_HDR + IP6_HDR;
		n = recv(f->fd, m, 65535, MSG_DONTWAIT);
		if (n < 8 || m[0] != ICMP6_ECHO_REPLY) {
			r->arena_used--;
			if (n < 0)
				return;
			continue;
		}
		m[4] = (uint8_t)(f->k.gport >> 8);
		m[5] = (uint8_t)f->k.gport;
		f->last_active = pb_now(r->pb);
		icmp6_send(r, fr, &f->k.rip6, &f->k.gip6, (size_t)n, 64);
	}
}

/* TCP or UDP to be translated: hand it to the IPv4 modules' entry points
 * with the IPv6 addresses filled in. */
static void ip6_translate(struct router *r, const struct ip6_view *ip)
{
	struct ip4_view v;

	memset(&v, 0, sizeof(v));
	v.v6 = true;
	v.src6 = ip->src;
	v.dst6 = ip->dst;
	v.proto = ip->proto;
	v.ttl = ip->hlim;
	v.hdr = ip->hdr;
	v.hlen = IP6_HDR;
	v.len = ip->len;
	v.src_mac = ip->src_mac;
	v.csum_ok = r->rx_csum_ok;
	v.l4 = ip->l4;
	v.reassembled = ip->reassembled;
	if (ip->proto == IPPROTO_TCP)
		tcp_input(r, &v);
	else
		udp_input(r, &v);
}

/* A fragment (not atomic) at p, behind the unfragmentable part of ip.
 * Returns true with *whole the datagram it completed. */
static bool ip6_fragment(struct router *r, const struct ip6_view *ip,
			 struct cursor p, struct cursor *whole)
{
	const uint8_t *out;
	size_t wlen;
	int rc = reasm_input6(r->reasm, ip->hdr, ip->len,
			      (size_t)(p.p - ip->hdr), ip->src_mac, 6,
			      pb_now(r->pb), &out, &wlen);

	router_frag_done(r, rc);
	if (rc <= 0)
		return false;
	r->ip6.st.reassembled++;
	*whole = cur_init(out, wlen);
	return true;
}

/* One packet (reassembled: a datagram made whole from fragments).  Returns
 * true with *whole a datagram a fragment completed, to go through here
 * again. */
static bool ip6_input_pkt(struct router *r, const uint8_t *src_mac,
			  struct cursor c, bool reassembled,
			  struct cursor *whole);

void ip6_input(struct router *r, const uint8_t *src_mac, struct cursor c)
{
	struct cursor whole;

	if (ip6_input_pkt(r, src_mac, c, false, &whole))
		ip6_input_pkt(r, src_mac, whole, true, &whole);
}

static bool ip6_input_pkt(struct router *r, const uint8_t *src_mac,
			  struct cursor c, bool reassembled,
			  struct cursor *whole)
{
	struct ip6_state *s = &r->ip6;
	const uint8_t *h = cur_peek(&c, IP6_HDR);
	struct ip6_view ip;
	struct cursor p;
	uint16_t plen;
	uint8_t code;
	size_t off = IP6_HDR;
	bool icmp, local;
	int rc;

	if (!s->enabled) {
		rdrop(r, RD_ETHERTYPE);
		return false;
	}
	if (!reassembled)
		s->st.rx++;
	if (!h || h[0] >> 4 != 6) {
		s->st.malformed++;
		return false;
	}
	plen = (uint16_t)(h[4] << 8 | h[5]);
	if (!cur_trim(&c, IP6_HDR + (size_t)plen)) {
		s->st.malformed++;
		return false;
	}
	memset(&ip, 0, sizeof(ip));
	memcpy(&ip.src, h + 8, 16);
	memcpy(&ip.dst, h + 24, 16);
	ip.hlim = h[7];
	ip.hdr = h;
	ip.len = IP6_HDR + plen;
	ip.src_mac = src_mac;
	ip.proto = h[6];
	ip.reassembled = reassembled;
	if (is_multicast(&ip.src)) {
		s->st.malformed++;
		return false;
	}
	local = for_us(s, &ip.dst);
	if (!local && ip.proto == NH_ICMPV6 && ip.dst.s6_addr[0] == 0xff &&
	    ip.dst.s6_addr[1] == 2 && ip.dst.s6_addr[15] == 0x16) {
		s->st.mld++;	/* MLDv2 reports to ff02::16: nothing to do */
		return false;
	}
	if (!local && (is_multicast(&ip.dst) || is_unspecified(&ip.src) ||
		       (!is_linklocal(&ip.src) && !in_prefix(s, &ip.src)))) {
		s->st.no_route++;	/* not for us to route */
		return false;
	}
	/* learn the sender, except from NDP, which is validated first */
	if (!is_unspecified(&ip.src) &&
	    (ip.proto != NH_ICMPV6 || !(cur_peek(&c, IP6_HDR + 1)) ||
	     c.p[IP6_HDR] < ND_ROUTER_SOLICIT || c.p[IP6_HDR] > 137))
		neigh6_learn(r, &ip.src, src_mac);
	p = c;
	cur_pull(&p, IP6_HDR);
	rc = ip6_walk_ext(&p, &ip.proto, &off, &code, &icmp,
			  is_multicast(&ip.dst));
	if (rc) {
		s->st.ext_dropped++;
		if (rc == -EPROTO && icmp) {
			s->st.param_problem++;
			icmp6_error(r, &ip, ICMP6_PARAM_PROB, code, (uint32_t)off);
		}
		return false;
	}
	if (ip.proto == NH_FRAGMENT) {
		const uint8_t *fh = cur_peek(&p, 8);

		if (!fh || reassembled) {
			s->st.ext_dropped++;
			return false;
		}
		if ((fh[2] << 8 | fh[3]) & 0xfff9) {
			s->st.fragments++;
			return ip6_fragment(r, &ip, p, whole);
		}
		/* atomic: the packet it carries, as it is (RFC 6946) */
		ip.proto = fh[0];
		cur_pull(&p, 8);
	}
	ip.l4 = p;
	if (!local || ((ip.proto == IPPROTO_TCP || ip.proto == IPPROTO_UDP) &&
		       (!memcmp(&ip.dst, &s->host, 16) ||
			!memcmp(&ip.dst, &s->dns, 16)))) {
		/* routed through us, or the host mapping / DNS address */
		if (!local && ip.hlim <= 1) {
			icmp6_error(r, &ip, 3, 0, 0);	/* time exceeded */
			return false;
		}
		if ((ip.proto == IPPROTO_TCP || ip.proto == IPPROTO_UDP) &&
		    !is_linklocal(&ip.dst)) {
			if (!(ip.proto == IPPROTO_UDP && local &&
			      ip6_dhcp(r, &ip, p)))
				ip6_translate(r, &ip);
			return false;
		}
		if (ip.proto == NH_ICMPV6 && !local && !is_linklocal(&ip.dst)) {
			ip6_echo_out(r, &ip);
			return false;
		}
		s->st.no_route++;
		if (!local)
			icmp6_error(r, &ip, ICMP6_DST_UNREACH, 0, 0);
		return false;
	}
	switch (ip.proto) {
	case NH_ICMPV6:
		icmp6_input(r, &ip);
		break;
	case NH_NONE:
		break;
	case IPPROTO_UDP:
		if (ip6_dhcp(r, &ip, p))
			break;
		if (ours(s, &ip.dst))
			icmp6_error(r, &ip, ICMP6_DST_UNREACH, 4, 0);
		s->st.no_route++;
		break;
	default:
		/* nothing else is served at our addresses yet */
		if (ours(s, &ip.dst))
			icmp6_error(r, &ip, ICMP6_DST_UNREACH, 4, 0);
		s->st.no_route++;
		break;
	}
	return false;
}

uint64_t ip6_tick(struct router *r, uint64_t now)
{
	struct ip6_state *s = &r->ip6;

	if (!s->enabled)
		return 0;
	if (now >= s->next_ra) {
		ra_send(r, &all_nodes);
		if (s->initial_ras < RA_INITIAL_COUNT) {
			s->initial_ras++;
			s->next_ra = now + RA_INITIAL_GAP_NS;
		} else {
			s->next_ra = now + RA_INTERVAL_NS;
		}
	}
	return s->next_ra - now;
}

/* ---- configuration -------------------------------------------------------------------------- */

static int parse6(const struct opts *o, const char *key, struct in6_addr *out,
		  char *err, size_t errlen)
{
	const char *v = opts_get(o, key);

	if (!v)
		return 0;
	if (inet_pton(AF_INET6, v, out) != 1) {
		snprintf(err, errlen, "'%s' must be an IPv6 address, not '%s'", key, v);
		return -EINVAL;
	}
	return 1;
}

int ip6_configure(struct router *r, const struct opts *o, char *err,
		  size_t errlen)
{
	struct ip6_state *s = &r->ip6;
	uint64_t plen;
	int rc;

	rc = opts_get_bool(o, "ipv6", true, &s->enabled, err, errlen);
	if (!rc)
		rc = opts_get_uint(o, "ipv6-prefixlen", 8, 64, 64, &plen, err,
				   errlen);
	if (rc)
		return rc;
	s->prefixlen = (uint8_t)plen;
	inet_pton(AF_INET6, "fec0::", &s->prefix);
	if ((rc = parse6(o, "ipv6-prefix", &s->prefix, err, errlen)) < 0)
		return rc;
	/* clear the host bits of the prefix */
	for (unsigned i = 0; i < 16; i++) {
		unsigned lo = i * 8;

		if (lo >= s->prefixlen)
			s->prefix.s6_addr[i] = 0;
		else if (lo + 8 > s->prefixlen)
			s->prefix.s6_addr[i] &= (uint8_t)(0xff << (lo + 8 - s->prefixlen));
	}
	s->host = s->prefix;
	s->host.s6_addr[15] |= 2;
	s->dns = s->prefix;
	s->dns.s6_addr[15] |= 3;
	if ((rc = parse6(o, "ipv6-host", &s->host, err, errlen)) < 0 ||
	    (rc = parse6(o, "ipv6-dns", &s->dns, err, errlen)) < 0)
		return rc;
	if (!in_prefix(s, &s->host) || !in_prefix(s, &s->dns) ||
	    !memcmp(&s->host, &s->dns, 16)) {
		snprintf(err, errlen, "ipv6-host and ipv6-dns must be different addresses inside ipv6-prefix");
		return -EINVAL;
	}
	/* link-local from the MAC, modified EUI-64 (RFC 4291 appendix A) */
	memset(&s->ll, 0, sizeof(s->ll));
	s->ll.s6_addr[0] = 0xfe;
	s->ll.s6_addr[1] = 0x80;
	s->ll.s6_addr[8] = r->mac[0] ^ 2;
	s->ll.s6_addr[9] = r->mac[1];
	s->ll.s6_addr[10] = r->mac[2];
	s->ll.s6_addr[11] = 0xff;
	s->ll.s6_addr[12] = 0xfe;
	s->ll.s6_addr[13] = r->mac[3];
	s->ll.s6_addr[14] = r->mac[4];
	s->ll.s6_addr[15] = r->mac[5];
	s->next_ra = 0;		/* advertise at once */
	s->frag_id = arc4random();
	return 0;
}
