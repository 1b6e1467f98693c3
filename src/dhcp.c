// SPDX-License-Identifier: MIT
/* dhcp.c: the router's DHCP server (RFC 2131/2132) and BOOTP (RFC 951). */

/*
 * Theory of operation.  One lease slot per pool address (dhcpstart up to the
 * end of net=, at most DHCP_POOL_MAX), allocated at start-up; a client is
 * known by its client identifier (option 61) or else its MAC.  A client
 * gets back the address it had before, even after its lease expired or it
 * released it, as long as nobody else took it; a reservation (dhcp-host=)
 * always wins; otherwise the lowest never-used address, then the one that
 * has been free longest.  An address someone else answers ARP for (the
 * router's neighbour table) is skipped.  OFFERs hold an address for
 * OFFER_HOLD_NS; DECLINEd addresses rest for DECLINE_HOLD_NS.  When the pool
 * is exhausted, DISCOVERs go unanswered and REQUESTs get a NAK: counted,
 * never an allocation.  max-leases caps the addresses offered or bound at
 * once, whatever the size of the pool (a guest inventing client
 * identifiers takes at most that many); reservations (dhcp-host=) are
 * never refused.
 *
 * Replies go from the server identifier (the gateway address, as in QEMU)
 * to the client's address when it has one (ciaddr), else to the broadcast
 * address if the client asked for it (flag) or for a NAK, else to the
 * offered address at the client's MAC.  siaddr (next server) is the
 * gateway, which serves TFTP, as QEMU does for PXE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "csum.h"
#include "dhcp.h"
#include "router.h"

#define OFFER_HOLD_NS (30 * NS_PER_SEC)
#define DECLINE_HOLD_NS (600 * NS_PER_SEC)
#define LEASE_DEFAULT 86400
#define BOOTP_VEND 64
#define IP_TAKEN_FRESH_NS (300 * NS_PER_SEC)

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* ---- configuration ------------------------------------------------------------- */

static int parse_mac(const char *s, uint8_t *mac)
{
	unsigned v[6];
	char tail;

	/* NOLINTNEXTLINE(cert-err34-c): %2x cannot overflow; the count is checked */
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* How the value of a known option is written in dhcp-option=CODE,VALUE. */
enum optval { OV_STR, OV_U8, OV_U16, OV_U32, OV_IPS };

static enum optval optval_of(unsigned code)
{
	switch (code) {
	case 1: case 3: case 4: case 5: case 6: case 7: case 28: case 41:
	case 42: case 44: case 45: case 48: case 49: case 65: case 69:
	case 70: case 150:
		return OV_IPS;
	case 19: case 20: case 23: case 27: case 29: case 30: case 31:
	case 34: case 36: case 37: case 39: case 46:
		return OV_U8;
	case 13: case 22: case 26: case 57:
		return OV_U16;
	case 2: case 24: case 35: case 38: case 51: case 58: case 59:
		return OV_U32;
	default:
		return OV_STR;
	}
}

/* "CODE,VALUE": VALUE per the option's type, or hex:AA:BB... for any. */
static int parse_extra(struct dhcp_extra *x, const char *s, char *err,
		       size_t errlen)
{
	char *end;
	long code = strtol(s, &end, 10);
	const char *v;
	size_t n = 0;

	if (end == s || *end != ',' || code < 1 || code > 254) {
		snprintf(err, errlen, "dhcp-option '%s': want CODE,VALUE with CODE 1-254 (write ',,' for the comma)", s);
		return -EINVAL;
	}
	switch (code) {
	case DHCP_OPT_MSG_TYPE: case DHCP_OPT_SERVER_ID: case DHCP_OPT_OVERLOAD:
	case DHCP_OPT_PARAM_LIST: case DHCP_OPT_REQUESTED_IP:
		snprintf(err, errlen, "dhcp-option: option %ld belongs to the protocol itself", code);
		return -EINVAL;
	}
	v = end + 1;
	x->code = (uint8_t)code;
	if (!strncmp(v, "hex:", 4)) {
		for (const char *p = v + 4; *p;) {
			unsigned b;
			int used;

			/* NOLINTNEXTLINE(cert-err34-c): %2x cannot overflow; the count is checked */
			if (n == sizeof(x->val) || sscanf(p, "%2x%n", &b, &used) != 1)
				goto bad;
			x->val[n++] = (uint8_t)b;
			p += used;
			if (*p == ':')
				p++;
			else if (*p)
				goto bad;
		}
	} else {
		switch (optval_of((unsigned)code)) {
		case OV_IPS: {
			char buf[1024];
			char *save = NULL, *tok;

			if (strlen(v) >= sizeof(buf))
				goto bad;
			strcpy(buf, v);
			for (tok = strtok_r(buf, " :;/", &save); tok;
			     tok = strtok_r(NULL, " :;/", &save)) {
				struct in_addr a;

				if (n + 4 > sizeof(x->val) ||
				    inet_pton(AF_INET, tok, &a) != 1)
					goto bad;
				memcpy(x->val + n, &a, 4);
				n += 4;
			}
			break;
		}
		case OV_U8:
		case OV_U16:
		case OV_U32: {
			enum optval t = optval_of((unsigned)code);
			unsigned long long num = strtoull(v, &end, 10);
			size_t w = t == OV_U8 ? 1 : t == OV_U16 ? 2 : 4;

			if (end == v || *end || num >> (8 * w))
				goto bad;
			for (size_t i = 0; i < w; i++)
				x->val[i] = (uint8_t)(num >> (8 * (w - 1 - i)));
			n = w;
			break;
		}
		case OV_STR:
			n = strlen(v);
			if (n > sizeof(x->val))
				goto bad;
			memcpy(x->val, v, n);
			break;
		}
	}
	if (n == 0)
		goto bad;
	x->len = (uint8_t)n;
	return 0;
bad:
	snprintf(err, errlen, "dhcp-option '%s': bad value for option %ld (addresses, a number, text, or hex:AA:BB...)",
		 s, code);
	return -EINVAL;
}

int dhcp_encode_search(const char *const *names, unsigned n, uint8_t *out,
		       size_t size)
{
	size_t len = 0;
	/* offsets of every encoded suffix, to point back to */
	struct {
		const char *s;
		size_t off;
	} seen[128];
	unsigned nseen = 0;

	for (unsigned i = 0; i < n; i++) {
		const char *p = names[i];

		if (!*p || strlen(p) > 253)
			return -EINVAL;
		while (*p) {
			const char *dot = strchr(p, '.');
			size_t l = dot ? (size_t)(dot - p) : strlen(p);
			unsigned k;

			for (k = 0; k < nseen; k++)
				if (!strcasecmp(seen[k].s, p))
					break;
			if (k < nseen) {
				if (len + 2 > size)
					return -ENOSPC;
				out[len++] = (uint8_t)(0xc0 | seen[k].off >> 8);
				out[len++] = (uint8_t)seen[k].off;
				goto next;
			}
			if (l == 0 || l > 63)
				return -EINVAL;
			if (nseen < ARRAY_SIZE(seen) && len < 0x3fff) {
				seen[nseen].s = p;
				seen[nseen++].off = len;
			}
			if (len + 1 + l > size)
				return -ENOSPC;
			out[len++] = (uint8_t)l;
			memcpy(out + len, p, l);
			len += l;
			p += l;
			if (*p == '.')
				p++;
		}
		if (len + 1 > size)
			return -ENOSPC;
		out[len++] = 0;
next:;
	}
	return (int)len;
}

size_t dhcp_search_plain(const struct dhcp_server *d, uint8_t *out,
			 size_t size)
{
	const uint8_t *s = d->search;
	size_t n = d->search_len, o = 0, i = 0;

	/* Names one after another; a name ends with a 0 label or with a
	 * pointer to an earlier suffix, which may itself end with one.
	 * Pointers only go backwards, and the hops are bounded. */
	while (i < n) {
		size_t p = i;
		int hops = 0;

		for (;;) {
			uint8_t l;

			if (p >= n)
				return 0;
			l = s[p];
			if ((l & 0xc0) == 0xc0) {
				size_t to;

				if (p + 1 >= n || ++hops > 32)
					return 0;
				to = (size_t)(l & 0x3f) << 8 | s[p + 1];
				if (to >= p)
					return 0;
				if (p >= i && hops == 1)
					i = p + 2;	/* this name ends here */
				p = to;
				continue;
			}
			if (o + (size_t)l + 1 > size)
				return 0;
			memcpy(out + o, s + p, (size_t)l + 1);
			o += (size_t)l + 1;
			if (l == 0) {
				if (hops == 0)
					i = p + 1;
				break;
			}
			p += (size_t)l + 1;
		}
	}
	return o;
}

static bool name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
			return false;
	return true;
}

int dhcp_configure(struct router *r, const struct opts *o, char *err,
		   size_t errlen)
{
	struct dhcp_server *d = &r->dhcp;
	const char *search[64];
	unsigned nsearch = 0;
	uint64_t lease, max_leases;
	uint32_t first, last;
	const char *v;
	int rc;

	rc = opts_get_bool(o, "dhcp", true, &d->enabled, err, errlen);
	if (!rc)
		rc = opts_get_uint(o, "dhcp-lease", 60, 0x7fffffff, LEASE_DEFAULT,
				   &lease, err, errlen);
	if (!rc)
		rc = opts_get_uint(o, "max-leases", 1, DHCP_POOL_MAX,
				   DHCP_POOL_MAX, &max_leases, err, errlen);
	if (rc)
		return rc;
	d->lease_secs = (uint32_t)lease;
	if ((v = opts_get(o, "hostname")) && !name_ok(v, sizeof(d->hostname)))
		goto bad_name;
	if (v)
		str_copy(d->hostname, sizeof(d->hostname), v);
	if ((v = opts_get(o, "domainname")) && !name_ok(v, sizeof(d->domain)))
		goto bad_name;
	if (v)
		str_copy(d->domain, sizeof(d->domain), v);
	if ((v = opts_get(o, "bootfile"))) {
		if (strlen(v) >= sizeof(d->bootfile)) {
			snprintf(err, errlen, "bootfile: at most %zu characters",
				 sizeof(d->bootfile) - 1);
			return -EINVAL;
		}
		str_copy(d->bootfile, sizeof(d->bootfile), v);
	}
	if ((v = opts_get(o, "tftp-server-name"))) {
		if (strlen(v) >= sizeof(d->tftp_server_name)) {
			snprintf(err, errlen, "tftp-server-name: at most %zu characters",
				 sizeof(d->tftp_server_name) - 1);
			return -EINVAL;
		}
		str_copy(d->tftp_server_name, sizeof(d->tftp_server_name), v);
	}
	for (unsigned i = 0; i < o->n; i++) {
		const struct opt_pair *p = &o->pair[i];

		if (!strcmp(p->key, "dnssearch")) {
			if (nsearch == ARRAY_SIZE(search) ||
			    !name_ok(p->val, 254)) {
				v = p->val;
				goto bad_name;
			}
			search[nsearch++] = p->val;
		} else if (!strcmp(p->key, "dhcp-option")) {
			if (d->nextra == DHCP_OPTS_MAX) {
				snprintf(err, errlen, "dhcp-option: at most %d", DHCP_OPTS_MAX);
				return -ENOSPC;
			}
			rc = parse_extra(&d->extra[d->nextra], p->val, err, errlen);
			if (rc)
				return rc;
			d->nextra++;
		} else if (!strcmp(p->key, "dhcp-host")) {
			struct dhcp_host *h = &d->host[d->nhost];
			char buf[160];
			char *ip, *name;
			struct in_addr a;

			if (d->nhost == DHCP_HOSTS_MAX || strlen(p->val) >= sizeof(buf))
				goto bad_host;
			strcpy(buf, p->val);
			ip = strchr(buf, ',');
			if (!ip)
				goto bad_host;
			*ip++ = '\0';
			name = strchr(ip, ',');
			if (name)
				*name++ = '\0';
			if (parse_mac(buf, h->mac) || inet_pton(AF_INET, ip, &a) != 1 ||
			    !router_in_net(r, a.s_addr) || router_owns(r, a.s_addr))
				goto bad_host;
			if (name && !name_ok(name, sizeof(h->name)))
				goto bad_host;
			h->ip = a.s_addr;
			if (name)
				dhcp_sanitize_name((const uint8_t *)name, strlen(name),
						   h->name, sizeof(h->name));
			d->nhost++;
			continue;
bad_host:
			snprintf(err, errlen, "dhcp-host '%s': want MAC,,IP[,,NAME] with IP inside net= (at most %d)",
				 p->val, DHCP_HOSTS_MAX);
			return -EINVAL;
		}
	}
	if (nsearch) {
		rc = dhcp_encode_search(search, nsearch, d->search,
					sizeof(d->search));
		if (rc < 0) {
			snprintf(err, errlen, "dnssearch: the list is too long (%d bytes at most encoded)",
				 DHCP_SEARCH_MAX);
			return rc;
		}
		d->search_len = (size_t)rc;
	}
	first = ntohl(r->dhcp_start);
	last = ntohl(r->net | ~r->mask) - 1;
	d->pool_first = first;
	d->npool = MIN(last - first + 1, (uint32_t)DHCP_POOL_MAX);
	d->max_leases = MIN((uint32_t)max_leases, d->npool);
	d->lease = calloc(d->npool, sizeof(*d->lease));
	if (!d->lease) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
bad_name:
	snprintf(err, errlen, "'%s' is not a host or domain name", v);
	return -EINVAL;
}

void dhcp_free(struct dhcp_server *d)
{
	free(d->lease);
	d->lease = NULL;
}

/* ---- leases ---------------------------------------------------------------------- */

static uint32_t lease_ip(const struct dhcp_server *d, const struct dhcp_lease *l)
{
	return htonl(d->pool_first + (uint32_t)(l - d->lease));
}

static struct dhcp_lease *lease_at(struct dhcp_server *d, uint32_t ip)
{
	uint32_t h = ntohl(ip);

	if (h < d->pool_first || h - d->pool_first >= d->npool)
		return NULL;
	return &d->lease[h - d->pool_first];
}

static bool lease_is(const struct dhcp_lease *l, const struct dhcp_msg *m)
{
	if (m->client_id_len)
		return l->cid_len == m->client_id_len &&
		       !memcmp(l->cid, m->client_id, m->client_id_len);
	return !l->cid_len && !memcmp(l->mac, m->chaddr, 6) &&
	       (l->mac[0] | l->mac[1] | l->mac[2] | l->mac[3] | l->mac[4] |
		l->mac[5]);
}

static bool lease_free(const struct dhcp_lease *l, uint64_t now)
{
	return l->state == LEASE_FREE ||
	       (l->state != LEASE_FREE && l->expiry <= now);
}

static const struct dhcp_host *host_of(const struct dhcp_server *d,
				       const uint8_t *mac)
{
	for (unsigned i = 0; i < d->nhost; i++)
		if (!memcmp(d->host[i].mac, mac, 6))
			return &d->host[i];
	return NULL;
}

static bool reserved(const struct dhcp_server *d, uint32_t ip)
{
	for (unsigned i = 0; i < d->nhost; i++)
		if (d->host[i].ip == ip)
			return true;
	return false;
}

/* Is ip answered for by the router itself (dhcpstart= may put the gateway
 * or DNS address in the pool) or by a guest other than mac (a static
 * address)? */
static bool ip_taken(const struct router *r, uint32_t ip, const uint8_t *mac,
		     const struct dhcp_lease *l)
{
	uint64_t now = pb_now(r->pb), seen = 0, since;
	const uint8_t *m = router_neigh_seen(r, ip, &seen);

	if (router_owns(r, ip))
		return true;
	if (!m || !memcmp(m, mac, 6))
		return false;
	/* Only a guest heard from since the address was last leased (or,
	 * for one never leased, lately) holds it: the neighbour table
	 * remembers old lease holders too. */
	since = now > IP_TAKEN_FRESH_NS ? now - IP_TAKEN_FRESH_NS : 0;
	if (l && l->expiry && l->expiry != UINT64_MAX && l->expiry > since)
		since = l->expiry;
	return seen >= since;
}

/* Addresses offered or bound now (reservations are not in the pool). */
static uint32_t leases_active(const struct dhcp_server *d, uint64_t now)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < d->npool; i++)
		n += !lease_free(&d->lease[i], now) &&
		     d->lease[i].state != LEASE_DECLINED;
	return n;
}

/* The lease (slot) this client should have, or NULL (pool exhausted).
 * *ip_out is set also for reservations outside the pool (slot NULL then,
 * with ok=true). */
static struct dhcp_lease *lease_choose(struct router *r,
				       const struct dhcp_msg *m,
				       uint32_t *ip_out, bool *ok)
{
	struct dhcp_server *d = &r->dhcp;
	uint64_t now = pb_now(r->pb);
	const struct dhcp_host *h = host_of(d, m->chaddr);
	struct dhcp_lease *best = NULL;

	*ok = false;
	if (h) {
		*ip_out = h->ip;
		*ok = true;
		return lease_at(d, h->ip);
	}
	/* what this client had */
	for (uint32_t i = 0; i < d->npool; i++) {
		struct dhcp_lease *l = &d->lease[i];

		if (lease_is(l, m) && l->state != LEASE_DECLINED &&
		    !reserved(d, lease_ip(d, l))) {
			best = l;
			goto found;
		}
	}
	/* what it asks for, if free */
	if (m->requested_ip) {
		struct dhcp_lease *l = lease_at(d, m->requested_ip);

		if (l && lease_free(l, now) && l->state != LEASE_DECLINED &&
		    !reserved(d, m->requested_ip) &&
		    !ip_taken(r, m->requested_ip, m->chaddr, l)) {
			best = l;
			goto found;
		}
	}
	/* never used, lowest first; else free the longest */
	for (uint32_t i = 0; i < d->npool; i++) {
		struct dhcp_lease *l = &d->lease[i];
		uint32_t ip = lease_ip(d, l);

		if (!lease_free(l, now) || reserved(d, ip) ||
		    ip_taken(r, ip, m->chaddr, l) ||
		    (l->state == LEASE_DECLINED && l->expiry > now))
			continue;
		if (l->state == LEASE_FREE && !l->expiry && !l->cid_len &&
		    !(l->mac[0] | l->mac[1] | l->mac[2] | l->mac[3] | l->mac[4] |
		      l->mac[5])) {
			best = l;
			break;
		}
		if (!best || l->expiry < best->expiry)
			best = l;
	}
	if (!best)
		return NULL;
found:
	/* a client keeps what it holds; anything else is a new address */
	if ((!lease_is(best, m) || lease_free(best, now)) &&
	    leases_active(d, now) >= d->max_leases) {
		router_limit_hit(r, LIMIT_LEASES);
		return NULL;
	}
	*ip_out = lease_ip(d, best);
	*ok = true;
	return best;
}

static void lease_bind(struct dhcp_lease *l, const struct dhcp_msg *m,
		       uint8_t state, uint64_t expiry)
{
	if (!l)
		return;
	if (!lease_is(l, m))
		l->name[0] = '\0';
	l->state = state;
	l->expiry = expiry;
	memcpy(l->mac, m->chaddr, 6);
	l->cid_len = m->client_id_len;
	memcpy(l->cid, m->client_id, m->client_id_len);
	if (m->hostname[0])
		str_copy(l->name, sizeof(l->name), m->hostname);
}

const char *dhcp_lease_name(const struct router *r, uint32_t ip)
{
	const struct dhcp_server *d = &r->dhcp;
	uint32_t h = ntohl(ip);

	if (h < d->pool_first || h - d->pool_first >= d->npool)
		return "";
	return d->lease[h - d->pool_first].state == LEASE_BOUND
		       ? d->lease[h - d->pool_first].name
		       : "";
}

/* ---- replies ---------------------------------------------------------------------- */

struct dhcp_out {
	uint8_t *p;
	size_t len, max;
};

static void put_opt(struct dhcp_out *o, uint8_t code, const void *v, size_t n)
{
	/* long values continue in further instances (RFC 3396) */
	const uint8_t *b = v;

	do {
		size_t k = MIN(n, (size_t)255);

		if (o->len + 2 + k + 1 > o->max)
			return;	/* keep room for the END option */
		o->p[o->len++] = code;
		o->p[o->len++] = (uint8_t)k;
		memcpy(o->p + o->len, b, k);
		o->len += k;
		b += k;
		n -= k;
	} while (n);
}

static void put_u32(struct dhcp_out *o, uint8_t code, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	put_opt(o, code, b, 4);
}

static bool extra_has(const struct dhcp_server *d, uint8_t code)
{
	for (unsigned i = 0; i < d->nextra; i++)
		if (d->extra[i].code == code)
			return true;
	return false;
}

static void dhcp_reply(struct router *r, const struct dhcp_msg *m,
		       uint8_t type, uint32_t yiaddr, const char *name)
{
	struct dhcp_server *d = &r->dhcp;
	uint8_t *frame = router_alloc(r);
	uint8_t *u, *b;
	struct dhcp_out o;
	uint32_t dst;
	const uint8_t *dmac;
	uint16_t ulen, ck;
	size_t max = m->max_size > DHCP_MIN_LEN ? m->max_size : 576;

	if (!frame)
		return;
	max = MIN(max, (size_t)r->mtu) - IP4_HDR - UDP_HDR;
	max = MIN(max, (size_t)DHCP_MAX_LEN);
	u = frame + ETH_HDR + IP4_HDR;
	b = u + UDP_HDR;
	memset(b, 0, DHCP_FIXED + 4);
	b[0] = BOOTREPLY;
	b[1] = 1;
	b[2] = 6;
	memcpy(b + 4, &m->xid, 4);
	b[10] = (uint8_t)(m->flags >> 8);
	b[11] = (uint8_t)m->flags;
	if (type == DHCPACK || type == DHCPINFORM)
		memcpy(b + 12, &m->ciaddr, 4);
	memcpy(b + 16, &yiaddr, 4);
	if (type != DHCPNAK)
		memcpy(b + 20, &r->gw, 4);	/* next server: TFTP */
	memcpy(b + 24, &m->giaddr, 4);
	memcpy(b + 28, m->chaddr, 16);
	if (type != DHCPNAK && d->tftp_server_name[0])
		memcpy(b + 44, d->tftp_server_name, strlen(d->tftp_server_name));
	if (type != DHCPNAK && d->bootfile[0])
		memcpy(b + 108, d->bootfile, strlen(d->bootfile));
	o.p = b;
	o.len = DHCP_FIXED;
	o.max = type == DHCP_NONE ? DHCP_FIXED + BOOTP_VEND : max;
	if (m->has_magic) {
		put_be32(b + DHCP_FIXED, DHCP_MAGIC);
		o.len += 4;
	}
	if (type != DHCP_NONE) {
		uint8_t t = type == DHCPINFORM ? DHCPACK : type;

		put_opt(&o, DHCP_OPT_MSG_TYPE, &t, 1);
		put_opt(&o, DHCP_OPT_SERVER_ID, &r->gw, 4);
	}
	if (type == DHCPOFFER || type == DHCPACK) {
		put_u32(&o, DHCP_OPT_LEASE_TIME, d->lease_secs);
		put_u32(&o, DHCP_OPT_RENEWAL, d->lease_secs / 2);
		put_u32(&o, DHCP_OPT_REBINDING, d->lease_secs / 8 * 7);
	}
	if (type != DHCPNAK && m->has_magic) {
		uint32_t bc = r->net | ~r->mask;

		put_opt(&o, DHCP_OPT_SUBNET_MASK, &r->mask, 4);
		if (!r->restricted) {
			put_opt(&o, DHCP_OPT_ROUTER, &r->gw, 4);
			put_opt(&o, DHCP_OPT_DNS, &r->dns, 4);
		}
		put_opt(&o, DHCP_OPT_BROADCAST, &bc, 4);
		if (r->mtu != 1500 && !extra_has(d, DHCP_OPT_MTU)) {
			uint8_t mtu[2] = { (uint8_t)(r->mtu >> 8), (uint8_t)r->mtu };

			put_opt(&o, DHCP_OPT_MTU, mtu, 2);
		}
		if (name && *name)
			put_opt(&o, DHCP_OPT_HOSTNAME, name, strlen(name));
		if (d->domain[0])
			put_opt(&o, DHCP_OPT_DOMAIN_NAME, d->domain,
				strlen(d->domain));
		if (d->tftp_server_name[0])
			put_opt(&o, DHCP_OPT_TFTP_SERVER, d->tftp_server_name,
				strlen(d->tftp_server_name));
		if (d->bootfile[0])
			put_opt(&o, DHCP_OPT_BOOTFILE, d->bootfile,
				strlen(d->bootfile));
		if (d->search_len)
			put_opt(&o, DHCP_OPT_DOMAIN_SEARCH, d->search,
				d->search_len);
		for (unsigned i = 0; i < d->nextra; i++)
			put_opt(&o, d->extra[i].code, d->extra[i].val,
				d->extra[i].len);
	}
	if (m->has_magic && o.len < o.max)
		b[o.len++] = DHCP_OPT_END;
	if (o.len < DHCP_MIN_LEN) {
		memset(b + o.len, 0, DHCP_MIN_LEN - o.len);
		o.len = DHCP_MIN_LEN;
	}
	/* where the reply goes (RFC 2131 4.1) */
	if (type == DHCPNAK || (!m->ciaddr && (m->flags & 0x8000))) {
		dst = htonl(INADDR_BROADCAST);
		dmac = bcast;
	} else if (m->ciaddr) {
		dst = m->ciaddr;
		dmac = m->chaddr;
	} else {
		dst = yiaddr;
		dmac = m->chaddr;
	}
	ulen = (uint16_t)(UDP_HDR + o.len);
	u[0] = 0;
	u[1] = 67;
	u[2] = 0;
	u[3] = 68;
	u[4] = (uint8_t)(ulen >> 8);
	u[5] = (uint8_t)ulen;
	u[6] = u[7] = 0;
	ck = csum_fold(csum_add(csum_pseudo4(r->gw, dst, IPPROTO_UDP, ulen), u,
				ulen));
	if (!ck)
		ck = 0xffff;
	memcpy(u + 6, &ck, 2);
	router_send_ip4_mac(r, frame, IPPROTO_UDP, r->gw, dst, ulen, dmac);
}

void dhcp_input(struct router *r, const struct ip4_view *ip,
		const uint8_t *payload, size_t len)
{
	struct dhcp_server *d = &r->dhcp;
	uint64_t now = pb_now(r->pb);
	struct dhcp_lease *l;
	struct dhcp_msg m;
	uint32_t addr = 0;
	bool ok;

	(void)ip;
	if (!d->enabled)
		return;
	if (dhcp_parse(payload, len, &m) < 0 || m.giaddr) {
		d->st.malformed++;
		return;
	}
	switch (m.type) {
	case DHCP_NONE:
		/* BOOTP: an address for as long as we run */
		d->st.bootp++;
		l = lease_choose(r, &m, &addr, &ok);
		if (!ok) {
			d->st.exhausted++;
			return;
		}
		lease_bind(l, &m, LEASE_BOUND, UINT64_MAX);
		router_neigh_learn(r, addr, m.chaddr);
		dhcp_reply(r, &m, DHCP_NONE, addr, l ? l->name : "");
		return;
	case DHCPDISCOVER:
		d->st.discover++;
		l = lease_choose(r, &m, &addr, &ok);
		if (!ok) {
			d->st.exhausted++;
			log_rl(&r->pb->log, &r->rl, now, PB_LOG_WARN,
			       "dhcp: address pool exhausted; no offer");
			return;
		}
		if (l && l->state != LEASE_BOUND)
			lease_bind(l, &m, LEASE_OFFERED, now + OFFER_HOLD_NS);
		d->st.offer++;
		dhcp_reply(r, &m, DHCPOFFER, addr,
			   host_of(d, m.chaddr) ? host_of(d, m.chaddr)->name
						: d->hostname);
		return;
	case DHCPREQUEST: {
		uint32_t want = m.requested_ip ? m.requested_ip : m.ciaddr;
		const struct dhcp_host *h = host_of(d, m.chaddr);

		d->st.request++;
		if (m.server_id && m.server_id != r->gw) {
			/* the client chose another server: drop our offer */
			for (uint32_t i = 0; i < d->npool; i++)
				if (d->lease[i].state == LEASE_OFFERED &&
				    lease_is(&d->lease[i], &m))
					d->lease[i].state = LEASE_FREE;
			return;
		}
		l = lease_choose(r, &m, &addr, &ok);
		if (!ok || !want || want != addr ||
		    (l && l->state == LEASE_BOUND && !lease_is(l, &m) &&
		     l->expiry > now)) {
			d->st.nak++;
			dhcp_reply(r, &m, DHCPNAK, 0, NULL);
			return;
		}
		lease_bind(l, &m, LEASE_BOUND, now + (uint64_t)d->lease_secs * NS_PER_SEC);
		if (l && h && h->name[0])
			str_copy(l->name, sizeof(l->name), h->name);
		router_neigh_learn(r, addr, m.chaddr);
		d->st.ack++;
		dhcp_reply(r, &m, DHCPACK, addr, h ? h->name : d->hostname);
		return;
	}
	case DHCPRELEASE:
		d->st.release++;
		l = lease_at(d, m.ciaddr);
		if (l && lease_is(l, &m) && l->state == LEASE_BOUND) {
			l->state = LEASE_FREE;
			l->expiry = now;
		}
		return;
	case DHCPDECLINE:
		d->st.decline++;
		l = lease_at(d, m.requested_ip);
		if (l && lease_is(l, &m)) {
			l->state = LEASE_DECLINED;
			l->expiry = now + DECLINE_HOLD_NS;
			l->cid_len = 0;
			memset(l->mac, 0, 6);
		}
		return;
	case DHCPINFORM:
		d->st.inform++;
		if (m.ciaddr)
			dhcp_reply(r, &m, DHCPINFORM, 0, NULL);
		return;
	default:
		d->st.malformed++;
		return;
	}
}
