/* SPDX-License-Identifier: MIT */
/* dhcp.h: DHCPv4/BOOTP messages (RFC 2131, 2132, 951) and the server. */
#ifndef PB_DHCP_H
#define PB_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_FIXED 236		/* op .. file */
#define DHCP_MAGIC 0x63825363u
#define DHCP_MIN_LEN 300	/* BOOTP's minimum message (RFC 951) */
#define DHCP_MAX_LEN 1500

#define BOOTREQUEST 1
#define BOOTREPLY 2

enum dhcp_type {
	DHCP_NONE = 0,		/* BOOTP */
	DHCPDISCOVER = 1,
	DHCPOFFER = 2,
	DHCPREQUEST = 3,
	DHCPDECLINE = 4,
	DHCPACK = 5,
	DHCPNAK = 6,
	DHCPRELEASE = 7,
	DHCPINFORM = 8,
};

enum dhcp_opt {
	DHCP_OPT_PAD = 0,
	DHCP_OPT_SUBNET_MASK = 1,
	DHCP_OPT_ROUTER = 3,
	DHCP_OPT_DNS = 6,
	DHCP_OPT_HOSTNAME = 12,
	DHCP_OPT_DOMAIN_NAME = 15,
	DHCP_OPT_MTU = 26,
	DHCP_OPT_BROADCAST = 28,
	DHCP_OPT_REQUESTED_IP = 50,
	DHCP_OPT_LEASE_TIME = 51,
	DHCP_OPT_OVERLOAD = 52,
	DHCP_OPT_MSG_TYPE = 53,
	DHCP_OPT_SERVER_ID = 54,
	DHCP_OPT_PARAM_LIST = 55,
	DHCP_OPT_MAX_SIZE = 57,
	DHCP_OPT_RENEWAL = 58,
	DHCP_OPT_REBINDING = 59,
	DHCP_OPT_CLIENT_ID = 61,
	DHCP_OPT_TFTP_SERVER = 66,
	DHCP_OPT_BOOTFILE = 67,
	DHCP_OPT_FQDN = 81,
	DHCP_OPT_DOMAIN_SEARCH = 119,
	DHCP_OPT_CLASSLESS_ROUTE = 121,
	DHCP_OPT_END = 255,
};

#define DHCP_CLIENT_ID_MAX 64
#define DHCP_NAME_MAX 64

/* A parsed client message; pointers point into the input. */
struct dhcp_msg {
	uint8_t op, htype, hlen;
	uint32_t xid;		/* as on the wire (network order) */
	uint16_t flags;
	uint32_t ciaddr, yiaddr, siaddr, giaddr;	/* network order */
	uint8_t chaddr[16];
	uint8_t type;		/* enum dhcp_type; 0 for BOOTP */
	uint32_t requested_ip;	/* 0 if absent */
	uint32_t server_id;	/* 0 if absent */
	uint8_t client_id[DHCP_CLIENT_ID_MAX];
	uint8_t client_id_len;
	char hostname[DHCP_NAME_MAX];	/* sanitised, "" if none */
	uint16_t max_size;	/* 0 if absent */
	bool has_magic;
};

/*
 * Parse a BOOTREQUEST (the UDP payload).  Options are read from the
 * options field and, if option 52 says so, from the file and sname fields;
 * each TLV is checked (length byte present, value fits); a malformed option
 * area ends the scan but keeps what was read before (clients pad
 * sloppily).  Returns 0, or -EBADMSG if the fixed part is missing, it is not
 * an Ethernet BOOTREQUEST, or option 53 is present but invalid.
 */
int dhcp_parse(const uint8_t *p, size_t len, struct dhcp_msg *m);

/* Turn a client-supplied name into a DNS label ([a-z0-9-], at most 63),
 * "" if nothing usable is left. */
void dhcp_sanitize_name(const uint8_t *in, size_t len, char *out,
			size_t size);

/* ---- the server (dhcp.c), part of the router ---- */

struct router;
struct ip4_view;
struct opts;

#define DHCP_HOSTS_MAX 64
#define DHCP_OPTS_MAX 32
#define DHCP_POOL_MAX 4096
#define DHCP_SEARCH_MAX 1024

enum lease_state { LEASE_FREE, LEASE_OFFERED, LEASE_BOUND, LEASE_DECLINED };

struct dhcp_lease {
	uint8_t state;
	uint8_t cid_len;
	uint8_t mac[6];
	uint8_t cid[DHCP_CLIENT_ID_MAX];
	uint64_t expiry;	/* ns, loop clock */
	char name[DHCP_NAME_MAX];
};

struct dhcp_host {
	uint8_t mac[6];
	uint32_t ip;		/* network order */
	char name[DHCP_NAME_MAX];
};

struct dhcp_extra {
	uint8_t code, len;
	uint8_t val[255];
};

struct dhcp_stats {
	uint64_t discover, offer, request, ack, nak, release, decline, inform,
		bootp, malformed, exhausted;
};

struct dhcp_server {
	bool enabled;
	uint32_t pool_first;	/* host order */
	uint32_t npool;
	uint32_t max_leases;	/* offered or bound at once (max-leases) */
	struct dhcp_lease *lease;	/* npool entries: pool_first + i */
	uint32_t lease_secs;
	char hostname[DHCP_NAME_MAX];
	char domain[256];
	char bootfile[128];
	char tftp_server_name[64];
	uint8_t search[DHCP_SEARCH_MAX];	/* option 119 value, encoded */
	size_t search_len;
	struct dhcp_host host[DHCP_HOSTS_MAX];
	unsigned nhost;
	struct dhcp_extra extra[DHCP_OPTS_MAX];
	unsigned nextra;
	struct dhcp_stats st;
};

/* Read the DHCP keys of -netdev user (hostname, domainname, dnssearch,
 * bootfile, tftp-server-name, dhcp-host, dhcp-option, dhcp, dhcp-lease);
 * errors name the key. */
int dhcp_configure(struct router *r, const struct opts *o, char *err,
		   size_t errlen);
void dhcp_free(struct dhcp_server *d);
/* A UDP datagram to port 67 (payload after the UDP header). */
void dhcp_input(struct router *r, const struct ip4_view *ip,
		const uint8_t *payload, size_t len);
/* Encode domain names (RFC 1035 with compression, as RFC 3397 wants) into
 * out; returns the length or -ENOSPC / -EINVAL. */
int dhcp_encode_search(const char *const *names, unsigned n, uint8_t *out,
		       size_t size);
/* The search list without compression (DHCPv6 and the RA's DNSSL want
 * plain names); returns its length (0 if none or it does not fit). */
size_t dhcp_search_plain(const struct dhcp_server *d, uint8_t *out,
			 size_t size);
/* The name of the lease holding ip ("" if none). */
const char *dhcp_lease_name(const struct router *r, uint32_t ip);

#endif
