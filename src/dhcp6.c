// SPDX-License-Identifier: MIT
/* dhcp6.c: DHCPv6 on the router (RFC 8415): information requests and
 * IA_NA leases. */

/*
 * Theory of operation.  The server's DUID is a DUID-LL of the router's MAC.
 * Information-Request gets the DNS server (ipv6-dns) and the search list
 * (dnssearch=).  Addresses (IA_NA) come from a fixed table of DHCP6_LEASES
 * slots inside ipv6-prefix: slot i is prefix::1:i; a client (DUID and IAID)
 * keeps its slot; expired slots are reused.  Solicit with Rapid Commit is
 * answered with a Reply that binds at once; otherwise Advertise, then
 * Request/Renew/Rebind bind or extend.  Release and Decline free the slot.
 * Replies go from our link-local address to the client's address, port
 * 546.  Messages are checked before use: options walked with their lengths,
 * one client id, a server id that must be ours where the RFC requires it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "csum.h"
#include "dhcp6.h"
#include "router.h"

#define PREFERRED 3600
#define VALID 7200
#define STATUS_NOADDRS 2

int dhcp6_parse(const uint8_t *p, size_t len, struct dhcp6_msg *m)
{
	struct cursor c = cur_init(p, len);
	const uint8_t *h = cur_pull(&c, 4);

	memset(m, 0, sizeof(*m));
	if (!h)
		return -EBADMSG;
	m->type = h[0];
	memcpy(m->xid, h + 1, 3);
	while (c.rem) {
		uint16_t code, olen;
		const uint8_t *v;

		if (!cur_be16(&c, &code) || !cur_be16(&c, &olen) ||
		    !(v = cur_pull(&c, olen)))
			return -EBADMSG;
		switch (code) {
		case D6O_CLIENTID:
			if (m->duid_len || olen < 2 || olen > DHCP6_DUID_MAX)
				return -EBADMSG;
			memcpy(m->duid, v, olen);
			m->duid_len = olen;
			break;
		case D6O_SERVERID:
			if (olen < 2 || olen > DHCP6_DUID_MAX)
				return -EBADMSG;
			m->has_server_id = true;
			memcpy(m->server_id, v, olen);
			m->server_id_len = olen;
			break;
		case D6O_IA_NA:
			if (olen < 12)
				return -EBADMSG;
			if (!m->has_ia_na) {
				m->has_ia_na = true;
				m->iaid = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
					  (uint32_t)v[2] << 8 | v[3];
			}
			break;
		case D6O_RAPID_COMMIT:
			m->rapid_commit = true;
			break;
		default:
			break;
		}
	}
	return 0;
}

static size_t our_duid(const struct router *r, uint8_t *out)
{
	out[0] = 0;
	out[1] = 3;	/* DUID-LL */
	out[2] = 0;
	out[3] = 1;	/* Ethernet */
	memcpy(out + 4, r->mac, 6);
	return 10;
}

static void lease_addr(const struct router *r, unsigned i, uint8_t *a)
{
	memcpy(a, &r->ip6.prefix, 16);
	a[13] |= 1;
	a[14] = (uint8_t)(i >> 8);
	a[15] = (uint8_t)i;
}

static struct dhcp6_lease *lease_find(struct router *r,
				      const struct dhcp6_msg *m, bool alloc)
{
	struct dhcp6_server *d = &r->dhcp6;
	struct dhcp6_lease *free_slot = NULL;
	uint64_t now = pb_now(r->pb);

	for (unsigned i = 0; i < DHCP6_LEASES; i++) {
		struct dhcp6_lease *l = &d->lease[i];

		if (l->used && l->iaid == m->iaid && l->duid_len == m->duid_len &&
		    !memcmp(l->duid, m->duid, m->duid_len))
			return l;
		if (!free_slot && (!l->used || l->expiry < now))
			free_slot = l;
	}
	if (!alloc || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	memcpy(free_slot->duid, m->duid, m->duid_len);
	free_slot->duid_len = m->duid_len;
	free_slot->iaid = m->iaid;
	return free_slot;
}

struct d6out {
	uint8_t *p;
	size_t len, max;
};

static uint8_t *opt(struct d6out *o, uint16_t code, size_t len)
{
	uint8_t *v;

	if (o->len + 4 + len > o->max)
		return NULL;
	o->p[o->len] = (uint8_t)(code >> 8);
	o->p[o->len + 1] = (uint8_t)code;
	o->p[o->len + 2] = (uint8_t)(len >> 8);
	o->p[o->len + 3] = (uint8_t)len;
	v = o->p + o->len + 4;
	o->len += 4 + len;
	return v;
}

static void reply(struct router *r, const struct ip6_view *ip, uint16_t sport,
		  const struct dhcp6_msg *m, uint8_t type,
		  const struct dhcp6_lease *l, bool noaddrs)
{
	struct dhcp6_server *d = &r->dhcp6;
	uint8_t *f = router_alloc(r);
	struct d6out o;
	uint8_t *v;

	if (!f)
		return;
	o.p = f + ETH_HDR + IP6_HDR + UDP_HDR;
	o.len = 4;
	o.max = (size_t)r->mtu - IP6_HDR - UDP_HDR;
	o.p[0] = type;
	memcpy(o.p + 1, m->xid, 3);
	if ((v = opt(&o, D6O_CLIENTID, m->duid_len)))
		memcpy(v, m->duid, m->duid_len);
	if ((v = opt(&o, D6O_SERVERID, 10)))
		our_duid(r, v);
	if (m->rapid_commit && type == DHCP6_REPLY && m->type == DHCP6_SOLICIT)
		opt(&o, D6O_RAPID_COMMIT, 0);
	if (m->has_ia_na && (l || noaddrs)) {
		size_t ialen = 12 + (l ? 4 + 24 : 4 + 2);

		v = opt(&o, D6O_IA_NA, ialen);
		if (v) {
			put_be32(v, m->iaid);
			put_be32(v + 4, l ? PREFERRED / 2 : 0);	/* T1 */
			put_be32(v + 8, l ? PREFERRED / 5 * 4 : 0);	/* T2 */
			if (l) {
				v[12] = 0;
				v[13] = D6O_IAADDR;
				v[14] = 0;
				v[15] = 24;
				lease_addr(r, (unsigned)(l - d->lease), v + 16);
				put_be32(v + 32, PREFERRED);
				put_be32(v + 36, VALID);
			} else {
				v[12] = 0;
				v[13] = D6O_STATUS_CODE;
				v[14] = 0;
				v[15] = 2;
				v[16] = 0;
				v[17] = STATUS_NOADDRS;
			}
		}
	}
	if (!r->restricted && (v = opt(&o, D6O_DNS_SERVERS, 16)))
		memcpy(v, &r->ip6.dns, 16);
	if (r->dhcp.search_len) {
		/* DHCPv6 wants uncompressed names (RFC 8415 10) */
		uint8_t names[DHCP_SEARCH_MAX * 4];
		size_t n = dhcp_search_plain(&r->dhcp, names, sizeof(names));

		if (n && (v = opt(&o, D6O_DOMAIN_LIST, n)))
			memcpy(v, names, n);
	}
	d->st.reply += type == DHCP6_REPLY;
	d->st.advertise += type == DHCP6_ADVERTISE;
	ip6_send_udp(r, f, &r->ip6.ll, 547, &ip->src, sport, o.len);
}

void dhcp6_input(struct router *r, const struct ip6_view *ip, uint16_t sport,
		 const uint8_t *p, size_t len)
{
	struct dhcp6_server *d = &r->dhcp6;
	uint8_t sid[16];
	size_t sidlen = our_duid(r, sid);
	struct dhcp6_lease *l;
	struct dhcp6_msg m;

	if (dhcp6_parse(p, len, &m) < 0 || !m.duid_len) {
		d->st.malformed++;
		return;
	}
	/* a server id, where present, must be ours */
	if (m.has_server_id &&
	    (m.server_id_len != sidlen || memcmp(m.server_id, sid, sidlen)))
		return;
	switch (m.type) {
	case DHCP6_SOLICIT:
		d->st.solicit++;
		if (m.has_server_id)
			return;
		l = m.has_ia_na ? lease_find(r, &m, true) : NULL;
		if (m.has_ia_na && !l)
			d->st.exhausted++;
		if (l)
			l->expiry = pb_now(r->pb) + (m.rapid_commit ? VALID : 60) * NS_PER_SEC;
		reply(r, ip, sport, &m, m.rapid_commit ? DHCP6_REPLY : DHCP6_ADVERTISE,
		      l, m.has_ia_na && !l);
		return;
	case DHCP6_REQUEST:
	case DHCP6_RENEW:
	case DHCP6_REBIND:
		if (m.type == DHCP6_REQUEST)
			d->st.request++;
		else if (m.type == DHCP6_RENEW)
			d->st.renew++;
		else
			d->st.rebind++;
		if ((m.type != DHCP6_REBIND) != m.has_server_id)
			return;	/* Request/Renew need our id, Rebind none */
		l = m.has_ia_na ? lease_find(r, &m, m.type != DHCP6_RENEW) : NULL;
		if (l)
			l->expiry = pb_now(r->pb) + (uint64_t)VALID * NS_PER_SEC;
		reply(r, ip, sport, &m, DHCP6_REPLY, l, m.has_ia_na && !l);
		return;
	case DHCP6_CONFIRM:
		d->st.confirm++;
		reply(r, ip, sport, &m, DHCP6_REPLY, NULL, false);
		return;
	case DHCP6_RELEASE:
	case DHCP6_DECLINE:
		if (m.type == DHCP6_RELEASE)
			d->st.release++;
		else
			d->st.decline++;
		if (!m.has_server_id)
			return;
		l = lease_find(r, &m, false);
		if (l)
			l->used = false;
		reply(r, ip, sport, &m, DHCP6_REPLY, NULL, false);
		return;
	case DHCP6_INFORMATION_REQUEST:
		d->st.inform++;
		m.has_ia_na = false;
		reply(r, ip, sport, &m, DHCP6_REPLY, NULL, false);
		return;
	default:
		d->st.malformed++;
		return;
	}
}
