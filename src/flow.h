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
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "dns.h"

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
	bool peek_off;		/* SO_PEEK_OFF works on this socket */
	bool is_tcp_sock;	/* host side is a TCP socket */
	bool wscale_ok;
	bool wnd_hold;		/* inside a push: compute the window once */
	bool wnd_valid;
	bool refused;		/* in-window data was refused (socket full) */
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
	union {
		struct tcp_conn tcp;	/* IPPROTO_TCP */
		struct dns_flow dns;	/* UDP with is_dns */
	};
};

struct flow_table {
	struct flow *f;
	uint32_t cap;
	uint32_t count;
	uint32_t high;		/* slots [0, high) may be in use */
	uint32_t *bucket;
	uint32_t mask;
	uint32_t free_head;
};

int flow_table_init(struct flow_table *t, uint32_t cap);
void flow_table_fini(struct flow_table *t);
struct flow *flow_lookup(const struct flow_table *t, const struct flow_key *k);
/* A zeroed flow with key k and fd -1 inserted, or NULL if full. */
struct flow *flow_alloc(struct flow_table *t, const struct flow_key *k);
void flow_free(struct flow_table *t, struct flow *f);

static inline uint32_t flow_index(const struct flow_table *t,
				  const struct flow *f)
{
	return (uint32_t)(f - t->f);
}

#endif
