/* SPDX-License-Identifier: MIT */
/* flow.h: the router's fixed-capacity flow table (TCP, UDP, ICMP echo). */
#ifndef PB_FLOW_H
#define PB_FLOW_H

/*
 * A flow is one guest conversation translated onto one host socket.  It is
 * keyed by what the guest sees: (protocol, guest address and port, remote
 * address and port); for ICMP echo the guest port is the echo identifier.
 * Slots are allocated once (capacity fixed at start-up) and addressed by
 * index; a generation number tells a reused slot from its predecessor in
 * epoll references.  Chained hashing over a power-of-two bucket array, free
 * slots on a LIFO list (recently freed, cache-warm slots are reused first,
 * and the high-water mark that housekeeping scans stays low).  When the
 * table is full, flow_alloc() fails and the caller refuses the new flow.
 *
 * Limits (struct flow_limits): besides the capacity, no guest may hold more
 * than per_guest flows, UDP flows together no more than udp, and TCP
 * connections a guest opened that have not completed their handshake
 * (host connect() pending, or our SYN-ACK not yet acknowledged) no more
 * than half_open, one guest a quarter of that (half_open_per_guest).  A guest is known by the Ethernet source address of the
 * frame that opened the flow: one key for all its IPv4 and IPv6 addresses,
 * counted in a quota table that cannot hold more keys than the flow table
 * holds flows.  A guest that forges source MACs escapes its share (as one
 * forging addresses would), never the capacity.  Flows opened from the host
 * side (forwards) are charged to no guest.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "dns.h"
#include "quota.h"

#define FLOW_NONE UINT32_MAX

struct flow_key {
	uint32_t gip;		/* guest address, network order (IPv4) */
	uint32_t rip;		/* remote address as the guest sees it */
	uint16_t gport;		/* host order; ICMP: echo id */
	uint16_t rport;
	uint8_t proto;
	uint8_t v6;		/* an IPv6 flow: gip6/rip6, gip/rip are 0 */
	struct in6_addr gip6, rip6;
};

enum tcp_state {
	TS_CLOSED = 0,
	TS_CONNECTING,		/* guest SYN seen, host connect() pending */
	TS_SYN_RCVD,		/* SYN-ACK sent to the guest */
	TS_SYN_SENT,		/* inbound: SYN sent to the guest */
	TS_ESTABLISHED,
	TS_LINGER,		/* both sides closed; absorb retransmissions */
};

struct tcp_conn {
	uint8_t state;
	bool guest_fin;		/* guest sent FIN: host write side shut */
	bool host_eof;		/* host read side at EOF */
	bool fin_sent;		/* our FIN is in snd_nxt */
	bool fin_acked;
	bool ack_pending;	/* an ACK is owed to the guest this round */
	bool want_out;		/* waiting for the socket to drain */
	bool peek_off;		/* SO_PEEK_OFF works on this socket (TCP: as
				 * far as we know; tried with the first use) */
	bool peek_set;		/* the socket's peek offset is on (off, a
				 * peek starts at the head of the queue) */
	bool readable;		/* the socket may hold data not yet peeked
				 * (its EPOLLIN is edge-triggered) */
	bool host_rdhup;	/* the host peer shut down writing: end of
				 * file follows the data in the queue */
	bool is_tcp_sock;	/* host side is a TCP socket */
	bool nodelay;		/* TCP_NODELAY is set on it */
	bool wscale_ok;
	bool wnd_hold;		/* inside a push: compute the window once */
	bool wnd_valid;
	bool refused;		/* in-window data was refused (socket full) */
	bool delack;		/* an ACK is owed, at dack_at (delayed) */
	bool dack_queued;	/* on r->dackq (which may outlive delack) */
	bool gap;		/* we dropped data beyond a gap: ACK the
				 * repair at once */
	uint8_t snd_shift;	/* guest's window scale */
	uint8_t rcv_shift;	/* ours */
	uint8_t retries;
	uint8_t dupacks;
	uint16_t mss;		/* largest segment we send the guest */
	uint32_t iss;
	uint32_t snd_una, snd_nxt;
	uint32_t snd_max;	/* highest sequence sent (snd_nxt rewinds) */
	uint32_t fin_seq;	/* sequence of our FIN, once host_eof */
	uint32_t snd_wnd;	/* guest's window, scaled */
	uint32_t rcv_nxt;
	uint32_t rcv_adv;	/* right edge of the window we advertised */
	uint32_t rto_ms;
	uint32_t events;	/* epoll events currently requested */
	uint32_t gap_end;	/* with gap: the end of what we dropped */
	uint32_t wnd_est;	/* free send-buffer room, as last measured
				 * less what was written since */
	uint32_t wnd_meas;	/* that measurement */
	uint64_t wnd_at;	/* when it was taken (0: never) */
	uint64_t dack_at;	/* with delack: when the ACK goes alone */
};

struct flow {
	struct flow_key k;
	bool used;
	bool shared_fd;		/* fd belongs to a hostfwd listener */
	uint8_t ttl;		/* TTL currently set on the host socket */
	uint16_t gen;
	int fd;
	int hostfwd;		/* index of the forward that made it, or -1 */
	struct sockaddr_storage peer; /* shared_fd: where replies go */
	uint64_t deadline;	/* retransmission / linger, 0: none */
	uint64_t last_active;
	uint32_t hnext;
	bool is_dns;		/* UDP flow to the DNS address */
	bool udp_nogso;		/* UDP: UDP_SEGMENT failed on this socket */
	bool half_open;		/* counted in flow_table.half_open */
	uint32_t half_guest;	/* its guest's half_guests handle */
	bool lingering;		/* closed, kept a while (flow_linger_add) */
	uint32_t guest;		/* quota handle of its guest, or QUOTA_NONE */
	union {
		struct tcp_conn tcp;	/* IPPROTO_TCP */
		struct dns_flow dns;	/* UDP with is_dns */
	};
};

struct flow_limits {
	uint32_t max;		/* capacity */
	uint32_t per_guest;	/* flows of one guest (MAC) */
	uint32_t udp;		/* UDP flows */
	uint32_t half_open;	/* guest TCP connections in their handshake */
	uint32_t half_open_per_guest;	/* of one guest */
};

/* Why flow_alloc() refused a flow. */
enum flow_limit {
	FLOW_LIMIT_TOTAL,
	FLOW_LIMIT_GUEST,
	FLOW_LIMIT_UDP,
	FLOW_LIMIT_HALF_OPEN,
	FLOW_LIMIT_MAX,
};

struct flow_table {
	struct flow *f;
	uint32_t cap;
	uint32_t count;
	uint32_t udp;		/* UDP flows in use */
	uint32_t half_open;	/* flows with half_open set */
	struct flow_limits lim;
	struct quota guests;
	struct quota half_guests;	/* half-open connections per guest */
	uint32_t high;		/* slots [0, high) may be in use */
	uint32_t *bucket;
	uint32_t mask;
	uint32_t free_head;
	/* lingering flows, oldest first (slot and generation) */
	struct { uint32_t idx; uint16_t gen; } *lq;
	uint32_t lq_head, lq_len;
};

/* f is over and lingers (to answer a late retransmission): the first to
 * go when the table, or its guest's share, is full. */
void flow_linger_add(struct flow_table *t, struct flow *f);
/* The oldest lingering flow (of the guest with this MAC, if mac) among
 * the first few, or NULL; the caller frees it. */
struct flow *flow_linger_take(struct flow_table *t, const uint8_t *mac);

/* Limits of 0 take their defaults (flow_limits_default()); others must
 * not exceed max.  Returns 0, -EINVAL or -ENOMEM. */
int flow_table_init(struct flow_table *t, const struct flow_limits *lim);
void flow_table_fini(struct flow_table *t);
/* Fill the zero fields of lim from lim->max: a quarter of the table per
 * guest, half of it for UDP and for half-open connections.  Thus no guest
 * alone fills the table, or the half-open allowance. */
void flow_limits_default(struct flow_limits *lim);
struct flow *flow_lookup(const struct flow_table *t, const struct flow_key *k);
/*
 * A zeroed flow with key k and fd -1 inserted, charged to the guest with
 * MAC address mac (NULL: no guest, a flow the host opened).  NULL if a
 * limit refuses it, with the limit in *why.  A TCP flow the guest opens
 * must also pass flow_half_open_room() first.
 */
struct flow *flow_alloc(struct flow_table *t, const struct flow_key *k,
			const uint8_t *mac, enum flow_limit *why);
void flow_free(struct flow_table *t, struct flow *f);
/* Is there room for one more half-open connection? */
static inline bool flow_half_open_room(const struct flow_table *t)
{
	return t->half_open < t->lim.half_open;
}
/* Mark f half-open (on) or done with its handshake (off); false (and not
 * marked) if its guest already has its share of half-open connections. */
bool flow_set_half_open(struct flow_table *t, struct flow *f, bool on);

static inline uint32_t flow_index(const struct flow_table *t,
				  const struct flow *f)
{
	return (uint32_t)(f - t->f);
}

#endif
