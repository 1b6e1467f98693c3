/* SPDX-License-Identifier: MIT */
/* router.h: the user-mode network stack (-netdev user), shared by its
 * modules: router.c (addresses, ARP, IPv4, emission), flow.c (the flow
 * table), tcp.c, udp.c, icmp.c and fwd.c (hostfwd/guestfwd). */
#ifndef PB_ROUTER_H
#define PB_ROUTER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dhcp.h"
#include "dhcp6.h"
#include "dns.h"
#include "flow.h"
#include "ip6.h"
#include "pb.h"
#include "pkt.h"

#define IPPROTO_ICMP_ 1
#define ETH_P_IP_ 0x0800
#define ETH_P_ARP_ 0x0806
#define ETH_HDR 14
#define IP4_HDR 20
#define TCP_HDR 20
#define UDP_HDR 8
#define ICMP_HDR 8

#define TICK_SLOW_NS (1 * NS_PER_SEC) /* reassembly expiry, buffer trims */
#define ROUTER_MTU_DEFAULT 1500
#define ROUTER_MTU_MAX 65520
#define NEIGH_MAX 1024
#define HOSTFWD_MAX 64
#define GUESTFWD_MAX 32
#define FLOWS_DEFAULT 16384
#define ARENA_SLOTS 512
#define ACKQ_MAX 1024
#define UDP_BATCH_MAX 64	/* the kernel's UDP_MAX_SEGMENTS, older kernels */

/* Why the router dropped or refused something; names users see. */
enum rdrop {
	RD_NOT_FOR_US,		/* unicast to another MAC (switch flooding) */
	RD_ARP_MALFORMED,
	RD_IP_MALFORMED,	/* header, version, length */
	RD_IP_CSUM,
	RD_IP_TTL,		/* TTL expired (ICMP time exceeded sent) */
	RD_IP_OPTIONS,
	RD_FRAG,		/* fragment dropped by the reassembler */
	RD_ETHERTYPE,		/* not IPv4/ARP */
	RD_L4_MALFORMED,
	RD_L4_CSUM,
	RD_PROTO,		/* IP protocol we do not translate */
	RD_RESTRICTED,		/* restrict=on */
	RD_NO_ROUTE,		/* destination not allowed (martian) */
	RD_FLOW_FULL,		/* flow table full: refused */
	RD_SOCKET,		/* host socket could not be made (EMFILE...) */
	RD_NO_NEIGH,		/* guest MAC unknown, ARP sent */
	RD_ARENA,		/* no output buffer this round */
	RD_TCP_OOW,		/* TCP segment outside the window */
	RD_TCP_NO_FLOW,		/* TCP segment for no connection (RST sent) */
	RD_UDP_SEND,		/* host refused a datagram */
	RD_ICMP_UNSUPPORTED,
	RD_TOO_BIG,		/* larger than the MTU, cannot be fragmented */
	RD_MAX,
};

extern const char *const rdrop_names[RD_MAX];

/*
 * A limit that refused something: each has an option (docs/patchbay.1) and
 * a counter "limits" in the router's stats.  The flow limits come first,
 * in flow.h's order.
 */
enum limit {
	LIMIT_FLOWS,		/* max-flows */
	LIMIT_FLOWS_GUEST,	/* max-flows-per-guest */
	LIMIT_UDP_FLOWS,	/* max-udp-flows */
	LIMIT_HALF_OPEN,	/* max-tcp-half-open */
	LIMIT_HALF_OPEN_GUEST,	/* max-tcp-half-open-per-guest */
	LIMIT_FRAGS,		/* max-frags (slots or buffer bytes) */
	LIMIT_FRAGS_GUEST,	/* max-frags-per-guest */
	LIMIT_TFTP,		/* max-tftp-sessions */
	LIMIT_TFTP_GUEST,	/* max-tftp-per-guest */
	LIMIT_LEASES,		/* max-leases */
	LIMIT_FDS,		/* the process's descriptors (EMFILE, ENFILE) */
	LIMIT_MAX,
};

extern const char *const limit_names[LIMIT_MAX];

struct neigh {
	uint32_t ip;		/* network order; 0 = free */
	uint8_t mac[6];
	uint64_t seen;
};

enum fwd_proto { FWD_TCP, FWD_UDP };

struct hostfwd {
	enum fwd_proto proto;
	struct sockaddr_storage host;	/* where we listen (IPv4 or IPv6) */
	uint32_t guest_ip;		/* network order, unless guest_v6 */
	struct in6_addr guest_ip6;
	bool guest_v6;
	uint16_t guest_port;		/* host order */
	int fd;
	uint32_t conns;
	bool resting;			/* accept() hit EMFILE: not watched */
};

/* flow.hostfwd of a connection whose forward was removed at run time. */
#define HOSTFWD_REMOVED (-2)

enum guestfwd_kind { GFWD_CMD, GFWD_INET, GFWD_UNIX, GFWD_SMB };

struct guestfwd {
	uint32_t ip;		/* network order: address the guest connects to */
	uint16_t port;		/* host order */
	enum guestfwd_kind kind;
	char target[256];	/* command, or unix path */
	struct sockaddr_in inet;
};

struct router_stats {
	uint64_t drops[RD_MAX];
	uint64_t frames_in, frames_out;
	uint64_t tcp_opened, tcp_closed, tcp_refused, tcp_reset;
	uint64_t tcp_linger_reclaimed;	/* lingering flows freed early */
	uint64_t udp_opened, udp_closed, icmp_echo_local, icmp_opened;
	uint64_t udp_gso_sends;		/* system calls that sent datagrams of
					 * one flow together (UDP_SEGMENT) */
	uint64_t udp_gso_datagrams;	/* datagrams they carried */
	uint64_t arena_flushes;
	uint64_t limit[LIMIT_MAX];	/* times each limit refused */
};

struct flow_table;
struct reasm;
struct tftp_server;
struct smb_server;

struct router {
	struct pb *pb;
	uint32_t nd;		/* netdev slot */
	struct port *port;

	/* addressing (network byte order) */
	uint32_t net, mask, gw, dns, dhcp_start;
	uint8_t mac[6];
	uint16_t mtu;
	bool restricted;
	bool ipv4;		/* ipv4=off: an IPv6-only router */
	bool loopback_map;	/* gateway address -> host 127.0.0.1 */
	uint64_t udp_idle_ns;	/* udp-timeout: idle UDP flows end */
	struct in_addr outbound; /* bind address for outbound sockets */

	struct neigh neigh[NEIGH_MAX];

	struct hostfwd hostfwd[HOSTFWD_MAX];
	unsigned nhostfwd;
	struct guestfwd guestfwd[GUESTFWD_MAX];
	unsigned nguestfwd;
	bool fwd_resting;	/* a forward's listener rests (EMFILE) */

	struct flow_table *flows;
	struct reasm *reasm;
	uint32_t frags_max, frags_per_guest;	/* reassembly limits */
	struct dhcp_server dhcp;
	struct dns_config dnscfg;
	struct tftp_server *tftp;	/* tftp=, or NULL */
	struct smb_server *smb;		/* smb=, or NULL */
	struct ip6_state ip6;
	struct dhcp6_server dhcp6;

	/* frames we build in one round: slots of slot_size bytes */
	uint8_t *arena;
	size_t slot_size;
	unsigned arena_used;
	unsigned arena_hw;	/* most slots one round used, this second */
	unsigned arena_touched;	/* slots that may hold pages (see trim) */

	bool rx_csum_ok;	/* the frame being input: ip4_view.csum_ok */
	/* offloads of the frame being emitted (NULL: a plain frame) */
	const struct frame_meta *tx_meta;

	uint64_t iss_key[2];	/* secret of initial sequence numbers */

	int timer;		/* housekeeping tick */
	uint64_t next_slow;	/* next idle/ageing sweep */
	uint16_t ip_id;

	/* flows owing the guest an ACK at the end of this batch */
	uint32_t ackq[ACKQ_MAX];
	unsigned nack;
	/* flows owing an ACK for a request-sized segment, which the answer
	 * may carry; sent at the flow's dack_at otherwise (dack_at here: the
	 * earliest of them, perhaps one no longer owed) */
	uint32_t dackq[ACKQ_MAX];
	unsigned ndack;
	uint64_t dack_at;

	/* guest datagrams of one connected UDP flow, same size, taken in
	 * this round and sent together (udp.c) */
	struct {
		uint32_t flow, gen;
		int fd;
		uint16_t seg;		/* the size of each (the last may be less) */
		uint16_t n;
		size_t total;
		struct iovec iov[UDP_BATCH_MAX];
	} udpq;

	struct router_stats st;
	struct ratelimit rl;
};

/* ---- router.c ---- */

/* The router of netdev slot nd (NULL if that netdev is not a router). */
struct router *router_get(struct pb *pb, uint32_t nd);

/* An output frame buffer of r->slot_size bytes, valid until the end of the
 * current round; NULL if none is left (counted). */
uint8_t *router_alloc(struct router *r);
/* Make sure n slots are free, flushing the round if we are not inside one
 * (call while holding no unemitted slot); false if they are not. */
bool router_make_room(struct router *r, unsigned n);
/* Output slots the largest datagram (65535 bytes) takes when fragmented
 * to r's MTU, IPv4 or IPv6 (whose fragments carry less), plus slack. */
static inline unsigned router_frag_slots(const struct router *r)
{
	return 65535u / (((unsigned)r->mtu - IP6_HDR - 8) & ~7u) + 2;
}

/*
 * Send an IPv4 packet to a guest: frame is a router_alloc() buffer whose
 * L4 header and payload (l4len bytes) start at ETH_HDR + IP4_HDR.  Fills the
 * IPv4 and Ethernet headers; fragments to the MTU if needed.  Returns 0 or
 * a negative code (guest MAC unknown: an ARP request is sent instead).
 */
int router_send_ip4(struct router *r, uint8_t *frame, uint8_t proto,
		    uint32_t src, uint32_t dst, size_t l4len, uint8_t tos);

/* The same to an explicit MAC (broadcast, or a client being configured). */
int router_send_ip4_mac(struct router *r, uint8_t *frame, uint8_t proto,
			uint32_t src, uint32_t dst, size_t l4len,
			const uint8_t *mac);

/* The neighbour table: what a guest address answers as. */
void router_neigh_learn(struct router *r, uint32_t ip, const uint8_t *mac);
const uint8_t *router_neigh_lookup(const struct router *r, uint32_t ip);
/* The same, with when the guest was last heard from (loop clock). */
const uint8_t *router_neigh_seen(const struct router *r, uint32_t ip,
				 uint64_t *seen);

/*
 * Map a destination the guest asked for to the host address to use:
 * returns 0 and fills *out (network order), or a negative code if the
 * destination is refused (restrict, martian).
 */
int router_map_dst(struct router *r, uint32_t dst, uint32_t *out);
/* The reverse: the address a host peer appears as to the guest. */
uint32_t router_map_src(struct router *r, uint32_t host_addr);

static inline void rdrop(struct router *r, enum rdrop why)
{
	r->st.drops[why]++;
}

/* A limit refused something: count it, log it (rate-limited). */
void router_limit_hit(struct router *r, enum limit which);

/* Hand a finished frame (an router_alloc() buffer) to the segment. */
void router_emit_frame(struct router *r, uint8_t *frame, size_t len);
/* What the port(s) behind mac take of offloads (PORT_OFF_*): frames to it
 * may be built as super-segments, checksums left unfinished. */
uint8_t router_peer_offloads(struct router *r, const uint8_t *mac);
/* The same for the guest of a flow (0 if its MAC is not known). */
uint8_t flow_peer_offloads(struct router *r, const struct flow_key *k);
/* The MAC of an IPv6 neighbour we know, or NULL. */
const uint8_t *ip6_neigh_mac(const struct router *r, const struct in6_addr *a);

/* Flush what was built so far if we are not inside a round's flush. */
void router_flush(struct router *r);

/* Arm the housekeeping timer to fire within delay_ns at the latest. */
void router_kick_timer(struct router *r, uint64_t delay_ns);
/* After reasm_input() / reasm_input6() returned rc: count a drop and the
 * limit it hit, or have what is held expire on the slow tick. */
void router_frag_done(struct router *r, int rc);

/* Build an ICMP error (type, code) about the IPv4 packet orig (its header
 * and at least 8 bytes) back to its sender. */
void icmp_send_error(struct router *r, const uint8_t *orig, size_t len,
		     uint8_t type, uint8_t code);

#endif

/* ---- shared by the protocol modules ---- */

struct flow;

/* A validated IPv4 (or, with v6, IPv6) packet from a guest. */
struct ip4_view {
	uint32_t src, dst;	/* network order; 0 for IPv6 */
	bool v6;
	struct in6_addr src6, dst6;
	uint8_t proto, ttl, tos;
	const uint8_t *hdr;	/* IP header start (for ICMP errors) */
	size_t hlen;		/* header length */
	size_t len;		/* total length (header + payload) */
	const uint8_t *src_mac;
	bool csum_ok;		/* the sender left the L4 checksum to us
				 * (offload) or vouched for it */
	bool reassembled;	/* from fragments: in a buffer the next
				 * datagram's fragments may reuse */
	struct cursor l4;	/* payload */
};

void tcp_input(struct router *r, const struct ip4_view *ip);
void tcp_flow_event(struct router *r, struct flow *f, uint32_t events);
/* Housekeeping; returns the flow's next deadline (0: none). */
void tcp_timer(struct router *r, struct flow *f, uint64_t now);
/* End of a batch of guest frames: send the ACKs owed. */
void tcp_send_acks(struct router *r);
/* Delayed ACKs that are due (from the router's timer); the time of the
 * next, or 0. */
uint64_t tcp_delayed_acks(struct router *r, uint64_t now);
/* Free a lingering connection early: its slot is wanted. */
void tcp_reclaim(struct router *r, struct flow *f);
/* A host client connected to TCP forward h. */
void tcp_inbound(struct router *r, int fd,
		 const struct sockaddr_storage *client, int hidx);
/* The guest-side key of a forwarded client (addresses and family). */
void fwd_client_key(const struct router *r, const struct hostfwd *h,
		    const struct sockaddr_storage *client, struct flow_key *k);

void udp_input(struct router *r, const struct ip4_view *ip);
void udp_send_batch(struct router *r);
/* Write a UDP header at u (the payload follows it) with its checksum over
 * pseudo (the pseudo-header sum) and the ulen bytes of header and data. */
void udp_fill(uint8_t *u, uint16_t sport, uint16_t dport, size_t ulen,
	      uint32_t pseudo);
/* Send len payload bytes (after the UDP header, at flow_l4off() + 8) to
 * flow k's guest from its remote end. */
void udp_send_flow(struct router *r, const struct flow_key *k, uint8_t *frame,
		   size_t len);
/* Send len payload bytes (already at their place after the UDP header in a
 * router frame) to a guest as one UDP datagram. */
void udp_send_to_guest(struct router *r, uint8_t *frame, uint32_t src,
		       uint16_t sport, uint32_t dst, uint16_t dport,
		       size_t len);
void udp_flow_event(struct router *r, struct flow *f, uint32_t events);
void udp_hostfwd_event(struct router *r, int hidx);
void udp_timer(struct router *r, struct flow *f, uint64_t now);

void icmp_input(struct router *r, const struct ip4_view *ip);
/* An ICMP error (IPv4 type and code; for an IPv6 flow the ICMPv6
 * equivalent) about flow f's guest packet whose first 8 transport bytes
 * were l4 (ports are filled in from the flow). */
void icmp_send_error_flow(struct router *r, const struct flow *f,
			  const uint8_t *l4, uint8_t type, uint8_t code);
void icmp_flow_event(struct router *r, struct flow *f, uint32_t events);
void icmp_timer(struct router *r, struct flow *f, uint64_t now);

/* ---- family-independent helpers for flows (router.c) ---- */

/* Offset of the transport header in a frame to or from flow f's guest. */
static inline size_t flow_l4off(const struct flow_key *k)
{
	return ETH_HDR + (k->v6 ? 40 : IP4_HDR);
}
/* Checksum pseudo-header of a packet from the remote to the guest. */
uint32_t flow_pseudo(const struct flow_key *k, uint8_t proto, size_t len);
/* Send an L4 packet (header at flow_l4off()) to the flow's guest. */
int flow_send(struct router *r, const struct flow_key *k, uint8_t *frame,
	      uint8_t proto, size_t l4len);
/* Is the transport checksum of a guest packet bad? */
bool ip_l4_csum_bad(const struct ip4_view *ip, uint8_t proto,
		    const uint8_t *p, size_t len);
/* The key fields of a guest packet (addresses, family). */
void ip_fill_key(const struct ip4_view *ip, struct flow_key *k);
/* Destination unreachable (ICMP 3/code, or the ICMPv6 equivalent) about a
 * guest packet. */
void ip_unreach(struct router *r, const struct ip4_view *ip, uint8_t code);
/* The ICMPv6 error for an ICMP (IPv4) type and code; false if none. */
bool icmp_to_icmp6(uint8_t type, uint8_t code, uint8_t *type6, uint8_t *code6);
/* Map an IPv6 destination to the host address to use (cf. router_map_dst). */
int router_map_dst6(struct router *r, const struct in6_addr *dst,
		    struct in6_addr *out);
/* Make a host socket of a family (bound to outbound= for IPv4). */
int router_socket_af(struct router *r, int af, int type, int proto);

/* A new flow opened by the guest at MAC mac (NULL: by the host side), or
 * NULL if a limit refused it (counted in limits and drops; the caller
 * refuses the packet: RST, ICMP error or silence). */
struct flow *router_flow_new(struct router *r, const struct flow_key *k,
			     const uint8_t *mac);
/* Register f's fd for events (or change them). */
int router_flow_watch(struct router *r, struct flow *f, uint32_t events,
		      bool add);
/* Close f's host socket (unless shared) and free the slot. */
void router_flow_close(struct router *r, struct flow *f);
/* Make a host socket of type for an outbound flow (bound to outbound=). */
int router_socket(struct router *r, int type, int proto);

/* Does the router answer for this address (gateway, DNS, guestfwd)? */
bool router_owns(const struct router *r, uint32_t ip);
static inline bool router_in_net(const struct router *r, uint32_t ip)
{
	return (ip & r->mask) == r->net;
}

/* Forwards (fwd.c). */
int fwd_parse_hostfwd(struct router *r, const char *s, char *err,
		      size_t errlen);
int fwd_parse_guestfwd(struct router *r, const char *s, char *err,
		       size_t errlen);
int fwd_start(struct router *r);
void fwd_stop(struct router *r);
/* A forward in option syntax, for listings. */
void fwd_hostfwd_rule(const struct hostfwd *h, char *out, size_t size);
void fwd_guestfwd_rule(const struct guestfwd *g, char *out, size_t size);
/* The guestfwd entry for (ip, port), or NULL. */
const struct guestfwd *fwd_guest_match(const struct router *r, uint32_t ip,
				       uint16_t port);
/* Connect a guestfwd target: a connected (or connecting) stream fd. */
int fwd_guest_connect(struct router *r, const struct guestfwd *g,
		      bool *connected);
