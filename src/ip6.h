/* SPDX-License-Identifier: MIT */
/* ip6.h: IPv6 in the router: input, extension headers, ICMPv6, neighbour
 * discovery and router advertisements (RFC 8200, 4443, 4861, 4862, 8106). */
#ifndef PB_IP6_H
#define PB_IP6_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkt.h"

#define IP6_HDR 40
#define NEIGH6_MAX 256
#define IP6_EXT_MAX 8		/* extension headers we walk through */

struct neigh6 {
	struct in6_addr ip;
	uint8_t mac[6];
	bool used;
	uint64_t seen;
};

struct ip6_stats {
	uint64_t rx, malformed, ext_dropped, param_problem, no_route, echo,
		rs, ra_sent, ra_limited, ns, na_sent, na, nd_invalid, mld,
		other, fragments, reassembled, fragmented;
};

struct ip6_state {
	bool enabled;
	struct in6_addr prefix, host, dns, ll;
	uint8_t prefixlen;
	struct neigh6 neigh[NEIGH6_MAX];
	uint64_t next_ra;	/* periodic advertisement */
	uint64_t last_ra;	/* rate limit for solicited ones */
	unsigned initial_ras;
	uint32_t frag_id;	/* identification of the next datagram we
				 * fragment */
	struct ip6_stats st;
};

/* A validated IPv6 packet, after extension headers. */
struct ip6_view {
	struct in6_addr src, dst;
	uint8_t proto;		/* upper-layer protocol */
	uint8_t hlim;
	const uint8_t *hdr;	/* fixed header */
	size_t len;		/* header + payload */
	const uint8_t *src_mac;
	struct cursor l4;
	bool reassembled;	/* from fragments: see struct ip4_view */
};

/*
 * Walk the extension headers after a fixed header (pure; for fuzzing).
 * c: the payload after the fixed header; *nh: in the fixed header's next
 * header, out the upper-layer protocol; *off: the offset of the upper-layer
 * header from the fixed header's start.  Returns 0, or -EPROTO with *off
 * at the offending byte and *code the ICMPv6 parameter problem code
 * (0 erroneous field, 1 unrecognised next header, 2 unrecognised option),
 * *icmp telling whether RFC 8200 asks for an ICMP error, or -EBADMSG if
 * truncated / over the limits (silently dropped).  A fragment header stops
 * the walk with *nh = 44 (the caller reassembles).
 */
int ip6_walk_ext(struct cursor *c, uint8_t *nh, size_t *off, uint8_t *code,
		 bool *icmp, bool dst_multicast);

struct router;
struct opts;

int ip6_configure(struct router *r, const struct opts *o, char *err,
		  size_t errlen);
void ip6_input(struct router *r, const uint8_t *src_mac, struct cursor c);
/* Send len payload bytes (at ETH_HDR + IP6_HDR + 8 in a router frame) as
 * one UDP datagram. */
void ip6_send_udp(struct router *r, uint8_t *frame, const struct in6_addr *src,
		  uint16_t sport, const struct in6_addr *dst, uint16_t dport,
		  size_t len);
/* Send an upper-layer packet (at ETH_HDR + IP6_HDR, len bytes, checksum
 * already set) to dst; 0 or -EHOSTUNREACH (neighbour solicited). */
int ip6_send_l4(struct router *r, uint8_t *frame, uint8_t nh,
		const struct in6_addr *src, const struct in6_addr *dst,
		size_t len);
/* The pseudo-header sum of an upper-layer packet (RFC 8200 8.1). */
uint32_t ip6_pseudo(const struct in6_addr *src, const struct in6_addr *dst,
		    uint8_t nh, size_t len);
/* An ICMPv6 error about the IPv6 packet orig (fixed header onwards). */
void ip6_error_raw(struct router *r, const uint8_t *orig, size_t len,
		   uint8_t type, uint8_t code);
/* Echo replies on an ICMPv6 echo flow's ping socket. */
struct flow;
void ip6_echo_event(struct router *r, struct flow *f);
/* Periodic work (router advertisements); returns ns until next wanted. */
uint64_t ip6_tick(struct router *r, uint64_t now);

#endif
