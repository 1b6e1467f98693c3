/* SPDX-License-Identifier: MIT */
/* dhcp6.h: the router's DHCPv6 server (RFC 8415): stateless information
 * and IA_NA address leases, with rapid commit. */
#ifndef PB_DHCP6_H
#define PB_DHCP6_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP6_SOLICIT 1
#define DHCP6_ADVERTISE 2
#define DHCP6_REQUEST 3
#define DHCP6_CONFIRM 4
#define DHCP6_RENEW 5
#define DHCP6_REBIND 6
#define DHCP6_REPLY 7
#define DHCP6_RELEASE 8
#define DHCP6_DECLINE 9
#define DHCP6_INFORMATION_REQUEST 11

#define D6O_CLIENTID 1
#define D6O_SERVERID 2
#define D6O_IA_NA 3
#define D6O_IAADDR 5
#define D6O_ORO 6
#define D6O_ELAPSED_TIME 8
#define D6O_STATUS_CODE 13
#define D6O_RAPID_COMMIT 14
#define D6O_DNS_SERVERS 23
#define D6O_DOMAIN_LIST 24

#define DHCP6_DUID_MAX 130	/* RFC 8415 11.1: at most 128 + type */
#define DHCP6_LEASES 256

/* A parsed client message (pure parser, fuzzed). */
struct dhcp6_msg {
	uint8_t type;
	uint8_t xid[3];
	uint8_t duid[DHCP6_DUID_MAX];
	uint16_t duid_len;	/* 0: no client id */
	bool has_server_id;
	uint8_t server_id[DHCP6_DUID_MAX];
	uint16_t server_id_len;
	bool has_ia_na;
	uint32_t iaid;
	bool rapid_commit;
};

/* Returns 0 or -EBADMSG (truncated header or option, duplicate client id,
 * oversized DUID). */
int dhcp6_parse(const uint8_t *p, size_t len, struct dhcp6_msg *m);

struct dhcp6_lease {
	bool used;
	uint8_t duid[DHCP6_DUID_MAX];
	uint16_t duid_len;
	uint32_t iaid;
	uint64_t expiry;
};

struct dhcp6_stats {
	uint64_t solicit, advertise, request, renew, rebind, confirm, release,
		decline, inform, reply, malformed, exhausted;
};

struct dhcp6_server {
	struct dhcp6_lease lease[DHCP6_LEASES];	/* prefix::1:0 + index */
	struct dhcp6_stats st;
};

struct router;
struct ip6_view;

/* A UDP datagram to port 547 (payload after the UDP header). */
void dhcp6_input(struct router *r, const struct ip6_view *ip, uint16_t sport,
		 const uint8_t *p, size_t len);

#endif
