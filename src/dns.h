/* SPDX-License-Identifier: MIT */
/* dns.h: the router's DNS forwarder and local names (RFC 1035). */
#ifndef PB_DNS_H
#define PB_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HDR 12
#define DNS_NAME_MAX 256
#define DNS_UPSTREAM_MAX 8
#define DNS_PENDING 8		/* outstanding queries per guest socket */
#define DNS_TCP_MAX 32		/* DNS-over-TCP sessions at once */
#define DNS_TCP_PER_GUEST 8	/* of one guest (MAC) */

/* A parsed question (the only one of a query). */
struct dns_q {
	uint16_t id;
	uint16_t flags;
	char name[DNS_NAME_MAX];	/* lower case, dotted, no final dot */
	uint16_t qtype, qclass;
	size_t qend;		/* offset just past the question */
};

/*
 * Parse a query: header, exactly one question, an uncompressed name of
 * labels 1-63 bytes, at most 255 in all.  Returns 0 or -EBADMSG.  Any
 * records after the question (EDNS OPT) are left alone.
 */
int dns_parse_query(const uint8_t *p, size_t len, struct dns_q *q);

/* One outstanding query of a guest, forwarded upstream under our ID. */
struct dns_pending {
	uint16_t guest_id;
	uint16_t our_id;
	uint32_t qhash;		/* of the question section */
	uint64_t sent;		/* ns */
};

struct dns_flow {
	struct dns_pending q[DNS_PENDING];
	uint8_t upstream;	/* index the socket is connected to */
	uint32_t gen;		/* of the upstream list it was connected for */
};

struct dns_stats {
	uint64_t queries, local, forwarded, answers, malformed, mismatched,
		timeouts, no_upstream, tcp_sessions, tcp_limited;
};

struct dns_tcp;

struct dns_config {
	struct sockaddr_in up[DNS_UPSTREAM_MAX];
	unsigned nup;
	unsigned current;	/* the upstream new queries go to */
	uint32_t gen;		/* bumped when the list changes */
	bool explicit_up;	/* dns-upstream= given: no resolv.conf */
	char resolv_path[256];
	/* the directory of resolv.conf's real path, opened at configuration:
	 * the re-read still works after the daemon's sandbox has hidden the
	 * file system (resolv_dir_open false: by path) */
	int resolv_dirfd;
	bool resolv_dir_open;
	char resolv_base[256];
	int64_t resolv_mtime;	/* ns, -1: never read */
	uint64_t resolv_checked;
	struct dns_tcp *tcp[DNS_TCP_MAX];	/* sessions (NULL: free) */
	uint16_t tcp_gen;
	struct dns_stats st;
};

struct router;
struct flow;
struct ip4_view;
struct opts;

int dns_configure(struct router *r, const struct opts *o, char *err,
		  size_t errlen);
/* Release what dns_configure() opened. */
void dns_free(struct router *r);
/* A UDP query from a guest to the DNS address. */
void dns_udp_input(struct router *r, const struct ip4_view *ip,
		   uint16_t sport, const uint8_t *p, size_t len);
/* An answer on a DNS flow's socket: true if buf now holds the guest's
 * answer (its ID restored), false if it must be dropped. */
bool dns_answer(struct router *r, struct flow *f, uint8_t *buf, size_t len);
/* Expire queries nobody answered; switch to the next upstream. */
void dns_timer(struct router *r, struct flow *f, uint64_t now);
/* The flow's upstream failed (ICMP error): move on to the next one. */
void dns_upstream_failed(struct router *r, struct flow *f);
/*
 * A guest's TCP connection to the DNS address: a session that answers local
 * names itself and relays other queries to the upstream over TCP.  Returns
 * the flow's end of a connected stream socket pair (the session keeps the
 * other), or -EBUSY over DNS_TCP_MAX / DNS_TCP_PER_GUEST, or -errno.
 */
int dns_tcp_open(struct router *r, const uint8_t *mac);
void dns_tcp_event(struct router *r, uint32_t idx, uint16_t gen,
		   uint32_t events);
/* Close sessions idle too long (called about once a second). */
void dns_tcp_tick(struct router *r, uint64_t now);
/*
 * Reassembly of length-prefixed DNS messages from a byte stream (RFC 1035
 * 4.2.2), pure for fuzzing: feed n bytes of p into msg, which holds *have
 * bytes of the message being read (its 2-byte length first).  Returns the
 * bytes taken; *done when msg holds a whole message (2 + length bytes),
 * then the caller handles it and sets *have = 0.  A length of 0 or above
 * max gives -EMSGSIZE.
 */
int dns_tcp_take(uint8_t *msg, size_t *have, size_t max, const uint8_t *p,
		 size_t n, bool *done);

#endif
