// SPDX-License-Identifier: MIT
/* dns.c: DNS at the router's DNS address: local names, and forwarding to
 * upstream resolvers over UDP (TCP rides on the TCP translation). */

/*
 * Theory of operation.
 *
 * A guest's UDP socket that talks to the DNS address is a UDP flow like any
 * other, except that its host socket is connected to an upstream resolver
 * (dns-upstream=, or the nameservers of the host's resolv.conf, re-read when
 * it changes) instead of the address the guest named.  Each query goes
 * upstream under a fresh random ID from that socket's random source port;
 * an answer is accepted only from the upstream the socket is connected to
 * (the kernel filters), for an ID we sent and with the same question
 * section, and goes back to the guest with its own ID.  A query left
 * unanswered for DNS_TIMEOUT_NS, or an ICMP error from the upstream, moves
 * every query to the next upstream (the choice is router-wide, so a new
 * guest socket does not try the dead one first): the guest's resolver
 * retries, and that retry goes to the next server.  A
 * truncated answer is relayed as it is; the guest's resolver then asks over
 * TCP, which is translated to a TCP connection to the current upstream.
 *
 * Local names, answered here without asking anyone: every DHCP client that
 * sent a host name, as NAME and NAME.DOMAIN (domainname=), and the host as
 * host.patchbay.internal (the gateway address).  Other names under
 * patchbay.internal get NXDOMAIN; they never leak upstream.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns.h"
#include "flow.h"
#include "router.h"

#define DNS_TIMEOUT_NS (2 * NS_PER_SEC)
#define RESOLV_RECHECK_NS (1 * NS_PER_SEC)
#define LOCAL_TTL 60
#define LOCAL_ZONE "patchbay.internal"
#define HOST_NAME "host." LOCAL_ZONE
#define QUERY_MAX 4096

int dns_parse_query(const uint8_t *p, size_t len, struct dns_q *q)
{
	struct cursor c = cur_init(p, len);
	uint16_t qd, an, ns, ar;
	size_t n = 0;

	memset(q, 0, sizeof(*q));
	if (!cur_be16(&c, &q->id) || !cur_be16(&c, &q->flags) ||
	    !cur_be16(&c, &qd) || !cur_be16(&c, &an) || !cur_be16(&c, &ns) ||
	    !cur_be16(&c, &ar))
		return -EBADMSG;
	if (qd != 1)
		return -EBADMSG;
	for (;;) {
		uint8_t l;
		const uint8_t *lab;

		if (!cur_u8(&c, &l))
			return -EBADMSG;
		if (l == 0)
			break;
		/* no compression in a question we parse; labels 1-63 */
		if (l > 63 || !(lab = cur_pull(&c, l)) || n + l + 1 >= DNS_NAME_MAX)
			return -EBADMSG;
		if (n)
			q->name[n++] = '.';
		for (unsigned i = 0; i < l; i++) {
			uint8_t ch = lab[i];

			if (ch >= 'A' && ch <= 'Z')
				ch = (uint8_t)(ch - 'A' + 'a');
			/* keep the name printable and unambiguous */
			q->name[n++] = (char)((ch > 32 && ch < 127 && ch != '.') ? ch
										 : '?');
		}
	}
	q->name[n] = '\0';
	if (!cur_be16(&c, &q->qtype) || !cur_be16(&c, &q->qclass))
		return -EBADMSG;
	q->qend = len - c.rem;
	return 0;
}

static uint32_t hash_bytes(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- configuration and upstreams --------------------------------------------------- */

static int add_upstream(struct dns_config *d, const char *s, char *err,
			size_t errlen)
{
	char host[64];
	const char *colon = strchr(s, ':');
	long port = 53;
	struct in_addr a;

	if (d->nup == DNS_UPSTREAM_MAX) {
		snprintf(err, errlen, "dns-upstream: at most %d", DNS_UPSTREAM_MAX);
		return -ENOSPC;
	}
	if (colon) {
		char *end;

		port = strtol(colon + 1, &end, 10);
		if (*end || port < 1 || port > 65535)
			goto bad;
	}
	if ((size_t)(colon ? colon - s : (long)strlen(s)) >= sizeof(host))
		goto bad;
	snprintf(host, sizeof(host), "%.*s", (int)(colon ? colon - s : (long)strlen(s)), s);
	if (inet_pton(AF_INET, host, &a) != 1)
		goto bad;
	d->up[d->nup].sin_family = AF_INET;
	d->up[d->nup].sin_addr = a;
	d->up[d->nup].sin_port = htons((uint16_t)port);
	d->nup++;
	return 0;
bad:
	snprintf(err, errlen, "dns-upstream '%s': want IPV4[:PORT]", s);
	return -EINVAL;
}

/* (Re)read the nameservers of resolv.conf when it changed. */
static void dns_resolv_refresh(struct router *r)
{
	struct dns_config *d = &r->dnscfg;
	uint64_t now = pb_now(r->pb);
	int dir = d->resolv_dir_open ? d->resolv_dirfd : AT_FDCWD;
	const char *base = d->resolv_dir_open ? d->resolv_base : d->resolv_path;
	struct stat st;
	char line[512];
	FILE *f;
	int fd;

	if (d->explicit_up || (d->resolv_checked &&
			       now - d->resolv_checked < RESOLV_RECHECK_NS))
		return;
	d->resolv_checked = now;
	if (fstatat(dir, base, &st, 0) < 0) {
		d->nup = 0;
		return;
	}
	int64_t mt = (int64_t)st.st_mtim.tv_sec * (int64_t)NS_PER_SEC +
		     st.st_mtim.tv_nsec;

	if (mt == d->resolv_mtime)
		return;
	d->resolv_mtime = mt;
	d->nup = 0;
	d->current = 0;
	d->gen++;	/* every socket reconnects to the new list */
	fd = openat(dir, base, O_RDONLY | O_CLOEXEC);
	f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char addr[64];
		char err[128];

		if (sscanf(line, " nameserver %63s", addr) == 1 && !strchr(addr, ':'))
			add_upstream(d, addr, err, sizeof(err));
	}
	fclose(f);
	log_info(&r->pb->log, "dns: %u upstream server(s) from %s", d->nup,
		 d->resolv_path);
}

/* Hold the directory of resolv.conf's real path (symlinks resolved now:
 * later they might point outside what the sandbox leaves visible).  When
 * the file does not exist yet, stay with the path. */
static void resolv_open_dir(struct dns_config *d)
{
	char real[PATH_MAX];
	char *slash;
	int fd;

	if (!realpath(d->resolv_path, real) || !(slash = strrchr(real, '/')) ||
	    strlen(slash + 1) >= sizeof(d->resolv_base))
		return;
	str_copy(d->resolv_base, sizeof(d->resolv_base), slash + 1);
	*slash = '\0';
	fd = open(real[0] ? real : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d->resolv_dirfd = fd;
	d->resolv_dir_open = true;
}

int dns_configure(struct router *r, const struct opts *o, char *err,
		  size_t errlen)
{
	struct dns_config *d = &r->dnscfg;
	const char *v = opts_get(o, "dns-resolv-conf");

	d->resolv_mtime = -1;
	str_copy(d->resolv_path, sizeof(d->resolv_path),
		 v ? v : "/etc/resolv.conf");
	if (v && strlen(v) >= sizeof(d->resolv_path)) {
		snprintf(err, errlen, "dns-resolv-conf: path too long");
		return -EINVAL;
	}
	for (unsigned i = 0; i < o->n; i++) {
		if (strcmp(o->pair[i].key, "dns-upstream"))
			continue;
		int rc = add_upstream(d, o->pair[i].val, err, errlen);

		if (rc)
			return rc;
		d->explicit_up = true;
	}
	if (v && d->explicit_up) {
		snprintf(err, errlen, "give dns-upstream= or dns-resolv-conf=, not both");
		return -EINVAL;
	}
	if (!d->explicit_up)
		resolv_open_dir(d);
	return 0;
}

void dns_free(struct router *r)
{
	struct dns_config *d = &r->dnscfg;

	if (d->resolv_dir_open)
		close(d->resolv_dirfd);
	d->resolv_dir_open = false;
}

bool dns_tcp_upstream(struct router *r, struct sockaddr_in *out)
{
	dns_resolv_refresh(r);
	if (!r->dnscfg.nup)
		return false;
	*out = r->dnscfg.up[r->dnscfg.current % r->dnscfg.nup];
	return true;
}

/* ---- local answers ------------------------------------------------------------------- */

/* The address of a local name: 1 found, 0 not local, -1 local zone but
 * unknown (NXDOMAIN). */
static int dns_local_lookup(struct router *r, const char *name, uint32_t *ip)
{
	const struct dhcp_server *d = &r->dhcp;
	size_t dl = strlen(r->dhcp.domain), nl = strlen(name);
	size_t zl = strlen(LOCAL_ZONE);
	char label[DHCP_NAME_MAX];
	bool in_zone = nl > zl && name[nl - zl - 1] == '.' &&
		       !strcmp(name + nl - zl, LOCAL_ZONE);

	if (!strcmp(name, HOST_NAME)) {
		*ip = r->gw;
		return 1;
	}
	/* NAME, NAME.DOMAIN or NAME.patchbay.internal */
	if (!strchr(name, '.'))
		str_copy(label, sizeof(label), name);
	else if (dl && nl > dl + 1 && name[nl - dl - 1] == '.' &&
		 !strcmp(name + nl - dl, d->domain) &&
		 nl - dl - 1 < sizeof(label))
		snprintf(label, sizeof(label), "%.*s", (int)(nl - dl - 1), name);
	else if (in_zone && nl - zl - 1 < sizeof(label))
		snprintf(label, sizeof(label), "%.*s", (int)(nl - zl - 1), name);
	else
		return 0;
	if (label[0] && !strchr(label, '.')) {
		for (uint32_t i = 0; i < d->npool; i++) {
			const struct dhcp_lease *l = &d->lease[i];

			if (l->state == LEASE_BOUND && l->name[0] &&
			    !strcmp(l->name, label)) {
				*ip = htonl(d->pool_first + i);
				return 1;
			}
		}
	}
	return in_zone ? -1 : 0;
}

static void dns_send_to_guest(struct router *r, const struct ip4_view *ip,
			      uint16_t sport, uint8_t *frame, size_t len)
{
	if (ip->v6)
		ip6_send_udp(r, frame, &ip->dst6, 53, &ip->src6, sport, len);
	else
		udp_send_to_guest(r, frame, r->dns, 53, ip->src, sport, len);
}

/* Build an answer to q (query bytes p) with rcode and, if ip, one A. */
static void dns_reply_local(struct router *r, const struct ip4_view *ipv,
			    uint16_t sport, const uint8_t *p,
			    const struct dns_q *q, uint8_t rcode,
			    const uint32_t *ip)
{
	uint8_t *frame = router_alloc(r);
	uint8_t *b;
	size_t n;

	if (!frame)
		return;
	b = frame + ETH_HDR + (ipv->v6 ? IP6_HDR : IP4_HDR) + UDP_HDR;
	memcpy(b, p, q->qend);
	/* QR, opcode and RD from the query, AA, RA */
	b[2] = (uint8_t)(0x80 | (p[2] & 0x79) | 0x04);
	b[3] = (uint8_t)(0x80 | rcode);
	b[4] = 0;
	b[5] = 1;
	b[6] = 0;
	b[7] = ip ? 1 : 0;
	memset(b + 8, 0, 4);
	n = q->qend;
	if (ip) {
		static const uint8_t rr[10] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0,
						0, LOCAL_TTL };

		memcpy(b + n, rr, 10);
		b[n + 10] = 0;
		b[n + 11] = 4;
		memcpy(b + n + 12, ip, 4);
		n += 16;
	}
	dns_send_to_guest(r, ipv, sport, frame, n);
}

/* ---- forwarding ------------------------------------------------------------------------ */

static int dns_connect(struct router *r, struct flow *f)
{
	const struct sockaddr_in *up;

	f->dns.upstream = (uint8_t)(r->dnscfg.current % r->dnscfg.nup);
	f->dns.gen = r->dnscfg.gen;
	up = &r->dnscfg.up[f->dns.upstream];

	return connect(f->fd, (const struct sockaddr *)up, sizeof(*up)) < 0
		       ? -errno
		       : 0;
}

void dns_udp_input(struct router *r, const struct ip4_view *ip,
		   uint16_t sport, const uint8_t *p, size_t len)
{
	struct dns_config *d = &r->dnscfg;
	struct flow_key k = { .proto = IPPROTO_UDP };
	uint8_t buf[QUERY_MAX];
	struct dns_pending *slot;
	struct dns_q q;
	struct flow *f;
	uint32_t addr;
	int local;

	d->st.queries++;
	if (r->restricted) {
		/* restrict=on: no way out, DNS included (DHCP does not
		 * announce a DNS server then either, as in QEMU) */
		rdrop(r, RD_RESTRICTED);
		return;
	}
	if (len > QUERY_MAX || dns_parse_query(p, len, &q) < 0 ||
	    (q.flags & 0x8000)) {
		d->st.malformed++;
		return;
	}
	local = dns_local_lookup(r, q.name, &addr);
	if (local && q.qclass == 1) {
		d->st.local++;
		/* an A answer; NODATA for other types; NXDOMAIN if unknown */
		dns_reply_local(r, ip, sport, p, &q, local < 0 ? 3 : 0,
				local > 0 && q.qtype == 1 ? &addr : NULL);
		return;
	}
	dns_resolv_refresh(r);
	if (!d->nup) {
		d->st.no_upstream++;
		dns_reply_local(r, ip, sport, p, &q, 2, NULL);	/* SERVFAIL */
		return;
	}
	ip_fill_key(ip, &k);
	k.gport = sport;
	k.rport = 53;
	f = flow_lookup(r->flows, &k);
	if (!f) {
		int fd;

		f = router_flow_new(r, &k, ip->src_mac);
		if (!f)
			return;
		f->is_dns = true;
		fd = router_socket(r, SOCK_DGRAM, 0);
		f->fd = fd;
		if (fd < 0 || dns_connect(r, f) < 0 ||
		    router_flow_watch(r, f, EPOLLIN, true) < 0) {
			router_flow_close(r, f);
			rdrop(r, RD_SOCKET);
			return;
		}
		r->st.udp_opened++;
		router_kick_timer(r, NS_PER_SEC);
	}
	f->last_active = pb_now(r->pb);
	if (f->dns.upstream != d->current % d->nup || f->dns.gen != d->gen)
		dns_connect(r, f);
	/* a free slot, or the oldest */
	slot = &f->dns.q[0];
	for (unsigned i = 0; i < DNS_PENDING; i++) {
		if (!f->dns.q[i].sent) {
			slot = &f->dns.q[i];
			break;
		}
		if (f->dns.q[i].sent < slot->sent)
			slot = &f->dns.q[i];
	}
	slot->guest_id = q.id;
	slot->our_id = (uint16_t)arc4random();
	slot->qhash = hash_bytes(p + DNS_HDR, q.qend - DNS_HDR);
	slot->sent = pb_now(r->pb);
	memcpy(buf, p, len);
	buf[0] = (uint8_t)(slot->our_id >> 8);
	buf[1] = (uint8_t)slot->our_id;
	if (send(f->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		slot->sent = 0;
		rdrop(r, RD_UDP_SEND);
		return;
	}
	d->st.forwarded++;
	router_kick_timer(r, DNS_TIMEOUT_NS);
}

bool dns_answer(struct router *r, struct flow *f, uint8_t *buf, size_t len)
{
	struct dns_config *d = &r->dnscfg;
	struct dns_q q;
	uint16_t id;

	if (len < DNS_HDR || !(buf[2] & 0x80)) {
		d->st.malformed++;
		return false;
	}
	id = (uint16_t)(buf[0] << 8 | buf[1]);
	/* the question of an answer parses like the question of a query */
	if (dns_parse_query(buf, len, &q) < 0) {
		d->st.mismatched++;
		return false;
	}
	uint32_t h = hash_bytes(buf + DNS_HDR, q.qend - DNS_HDR);

	for (unsigned i = 0; i < DNS_PENDING; i++) {
		struct dns_pending *p = &f->dns.q[i];

		if (p->sent && p->our_id == id && p->qhash == h) {
			buf[0] = (uint8_t)(p->guest_id >> 8);
			buf[1] = (uint8_t)p->guest_id;
			p->sent = 0;
			d->st.answers++;
			return true;
		}
	}
	d->st.mismatched++;
	return false;
}

void dns_timer(struct router *r, struct flow *f, uint64_t now)
{
	struct dns_config *d = &r->dnscfg;
	bool late = false;

	for (unsigned i = 0; i < DNS_PENDING; i++) {
		if (f->dns.q[i].sent && now - f->dns.q[i].sent > DNS_TIMEOUT_NS) {
			f->dns.q[i].sent = 0;
			d->st.timeouts++;
			late = true;
		}
	}
	if (late)
		dns_upstream_failed(r, f);
}

void dns_upstream_failed(struct router *r, struct flow *f)
{
	struct dns_config *d = &r->dnscfg;

	if (d->nup < 2)
		return;
	/* only the first flow to notice moves everybody on */
	if (f->dns.upstream == d->current % d->nup) {
		d->current = (d->current + 1) % d->nup;
		log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_INFO,
		       "dns: upstream %u does not answer; using %u",
		       f->dns.upstream, d->current);
	}
	dns_connect(r, f);
}
