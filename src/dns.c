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
 * TCP.
 *
 * DNS over TCP (RFC 7766).  A guest's TCP connection to the DNS address is a
 * TCP flow like any other, except that its "host socket" is one end of a
 * stream socket pair whose other end is a session here: it reads the
 * guest's length-prefixed queries, answers local names (and SERVFAIL when
 * no upstream is known) itself, and sends the rest, unchanged, over one TCP
 * connection to the current upstream, opened with the first such query.
 * Answers -- the upstream's, read whole, and ours -- go back to the guest
 * whole, never one inside another, in the order they are ready (RFC 7766
 * 7: clients match them by ID).  Bounds: DNS_TCP_MAX sessions,
 * DNS_TCP_PER_GUEST of one guest (more are refused with a reset), queries
 * of at most QUERY_MAX bytes (a longer one, a malformed one or a response
 * ends the session), one query at a time on its way upstream and one
 * answer being read (a guest that does not read its answers stops being
 * read), and DNS_TCP_IDLE_NS without anything moving ends the session.
 * Buffers are allocated with the session and returned with it.
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
#define DNS_MSG_MAX 65535
#define DNS_TCP_IDLE_NS (10 * NS_PER_SEC)
#define DNS_TCP_UP 0x100u	/* ref idx bit: the session's upstream socket,
				 * whose generation is in the bits above */
#define DNS_TCP_UGEN_SHIFT 9
#define DNS_TCP_UGEN_MASK 0x7fffu

static void dns_tcp_close(struct router *r, unsigned slot);

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
	for (unsigned i = 0; i < DNS_TCP_MAX; i++)
		dns_tcp_close(r, i);
}

/* The upstream for DNS over TCP; false if none is known. */
static bool dns_tcp_upstream(struct router *r, struct sockaddr_in *out)
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

/* Write into b an answer to q (query bytes p) with rcode and, if ip, one
 * A record; returns its length, at most q->qend + 16. */
static size_t dns_build_local(uint8_t *b, const uint8_t *p,
			      const struct dns_q *q, uint8_t rcode,
			      const uint32_t *ip)
{
	size_t n;

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
	return n;
}

static void dns_reply_local(struct router *r, const struct ip4_view *ipv,
			    uint16_t sport, const uint8_t *p,
			    const struct dns_q *q, uint8_t rcode,
			    const uint32_t *ip)
{
	uint8_t *frame = router_alloc(r);
	uint8_t *b;

	if (!frame)
		return;
	b = frame + ETH_HDR + (ipv->v6 ? IP6_HDR : IP4_HDR) + UDP_HDR;
	dns_send_to_guest(r, ipv, sport, frame,
			  dns_build_local(b, p, q, rcode, ip));
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

/* ---- DNS over TCP ---------------------------------------------------------------------- */

int dns_tcp_take(uint8_t *msg, size_t *have, size_t max, const uint8_t *p,
		 size_t n, bool *done)
{
	size_t took = 0;

	*done = false;
	while (took < n) {
		size_t want;

		if (*have < 2) {
			want = 2 - *have;
		} else {
			size_t len = (size_t)(msg[0] << 8 | msg[1]);

			if (len == 0 || len > max)
				return -EMSGSIZE;
			want = 2 + len - *have;
		}
		if (want > n - took)
			want = n - took;
		memcpy(msg + *have, p + took, want);
		*have += want;
		took += want;
		if (*have >= 2) {
			size_t len = (size_t)(msg[0] << 8 | msg[1]);

			if (len == 0 || len > max)
				return -EMSGSIZE;
			if (*have == 2 + len) {
				*done = true;
				break;
			}
		}
	}
	return (int)took;
}

struct dns_tcp {
	int gfd;		/* ours of the pair; the flow has the other */
	int ufd;		/* upstream connection, -1: none yet */
	uint16_t gen;
	uint8_t mac[6];		/* the guest's */
	bool up_ready;		/* ufd connected */
	bool up_hup;		/* ufd hung up: out of epoll (a hang-up
				 * cannot be masked), read to its end as the
				 * guest's output drains */
	bool doomed;		/* answers owed were lost with the upstream:
				 * the guest's connection ends once what we
				 * have is sent, and its resolver retries */
	uint16_t ugen;		/* of the current upstream socket */
	bool retried;		/* the query upstream met a closed connection
				 * once and went on a new one */
	bool a_done;		/* a[] holds a whole answer not yet queued */
	bool g_eof;		/* the guest sends no more */
	uint32_t gev, uev;	/* epoll events requested on gfd, ufd */
	unsigned outstanding;	/* queries upstream not answered yet */
	uint64_t last;		/* last whole query, answer or flush (ns) */
	size_t inoff, inlen;	/* staged guest bytes in in[] */
	size_t qhave;		/* of the query in q[] */
	size_t uqlen, uqsent;	/* the framed query in q[] going upstream */
	size_t ahave;		/* of the upstream answer in a[] */
	size_t olen, osent;	/* whole framed answers for the guest */
	uint8_t in[4096];
	uint8_t q[2 + QUERY_MAX];
	uint8_t a[2 + DNS_MSG_MAX];
	uint8_t o[2 + DNS_MSG_MAX + 2 + QUERY_MAX + 16];
};

static union ref dns_tcp_ref(const struct router *r, unsigned slot,
			     const struct dns_tcp *s, bool up)
{
	uint32_t idx = slot;

	if (up)
		idx |= DNS_TCP_UP | (s->ugen & DNS_TCP_UGEN_MASK)
					    << DNS_TCP_UGEN_SHIFT;
	return ref_make(REF_DNSTCP, idx, (uint32_t)r->nd << 16 | s->gen);
}

static void dns_tcp_close(struct router *r, unsigned slot)
{
	struct dns_tcp *s = r->dnscfg.tcp[slot];

	if (!s)
		return;
	close(s->gfd);
	if (s->ufd >= 0)
		close(s->ufd);
	free(s);
	r->dnscfg.tcp[slot] = NULL;
}

int dns_tcp_open(struct router *r, const uint8_t *mac)
{
	struct dns_config *d = &r->dnscfg;
	unsigned slot = DNS_TCP_MAX, mine = 0;
	struct dns_tcp *s;
	int sv[2];

	for (unsigned i = 0; i < DNS_TCP_MAX; i++) {
		if (!d->tcp[i])
			slot = slot < DNS_TCP_MAX ? slot : i;
		else if (!memcmp(d->tcp[i]->mac, mac, 6))
			mine++;
	}
	if (slot == DNS_TCP_MAX || mine >= DNS_TCP_PER_GUEST) {
		d->st.tcp_limited++;
		return -EBUSY;
	}
	/* large, but only what a session touches is ever resident */
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0) {
		int e = -errno;

		free(s);
		return e;
	}
	memset(s, 0, offsetof(struct dns_tcp, in));
	s->gfd = sv[1];
	s->ufd = -1;
	s->gen = ++d->tcp_gen;
	memcpy(s->mac, mac, 6);
	s->gev = EPOLLIN;
	s->last = pb_now(r->pb);
	if (loop_add(&r->pb->loop, s->gfd, s->gev,
		     dns_tcp_ref(r, slot, s, false)) < 0) {
		int e = -errno;

		close(sv[0]);
		close(sv[1]);
		free(s);
		return e;
	}
	d->tcp[slot] = s;
	d->st.tcp_sessions++;
	router_kick_timer(r, TICK_SLOW_NS);
	return sv[0];
}

/* Room for a framed message of len bytes in the guest's output. */
static bool dns_tcp_room(struct dns_tcp *s, size_t len)
{
	if (s->osent) {
		memmove(s->o, s->o + s->osent, s->olen - s->osent);
		s->olen -= s->osent;
		s->osent = 0;
	}
	return sizeof(s->o) - s->olen >= 2 + len;
}

/* Append a framed message to the guest's output; false if it does not fit
 * now. */
static bool dns_tcp_out(struct dns_tcp *s, const uint8_t *m, size_t len)
{
	if (!dns_tcp_room(s, len))
		return false;
	s->o[s->olen] = (uint8_t)(len >> 8);
	s->o[s->olen + 1] = (uint8_t)len;
	memcpy(s->o + s->olen + 2, m, len);
	s->olen += 2 + len;
	return true;
}

/* Open the upstream connection; false (the query answered SERVFAIL by the
 * caller) if there is none. */
static bool dns_tcp_connect(struct router *r, unsigned slot,
			    struct dns_tcp *s)
{
	struct sockaddr_in up;
	int fd;

	if (!dns_tcp_upstream(r, &up))
		return false;
	fd = router_socket(r, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&up, sizeof(up)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return false;
	}
	s->uev = EPOLLOUT;
	s->ugen++;	/* events of an earlier socket are not this one's */
	if (loop_add(&r->pb->loop, fd, s->uev,
		     dns_tcp_ref(r, slot, s, true)) < 0) {
		close(fd);
		return false;
	}
	s->ufd = fd;
	s->up_ready = false;
	s->up_hup = false;
	s->outstanding = 0;
	s->ahave = 0;
	s->a_done = false;
	return true;
}

static void dns_tcp_up_close(struct dns_tcp *s)
{
	if (s->ufd >= 0)
		close(s->ufd);
	s->ufd = -1;
	s->up_ready = false;
	s->up_hup = false;
	s->outstanding = 0;
	s->ahave = 0;
	s->a_done = false;
}

/* Our own answer to query q (bytes p) for the guest: rcode and, if ip,
 * one A record. */
static void dns_tcp_reply(struct dns_tcp *s, const uint8_t *p,
			  const struct dns_q *q, uint8_t rcode,
			  const uint32_t *ip)
{
	uint8_t ans[QUERY_MAX + 16];
	size_t n = dns_build_local(ans, p, q, rcode, ip);

	dns_tcp_out(s, ans, n);
}

/* SERVFAIL for the query in q[] that was to go upstream. */
static void dns_tcp_servfail(struct dns_tcp *s)
{
	struct dns_q q;

	if (s->uqlen > 2 && dns_parse_query(s->q + 2, s->uqlen - 2, &q) == 0)
		dns_tcp_reply(s, s->q + 2, &q, 2, NULL);
	s->uqlen = s->uqsent = 0;
}

/* The upstream connection failed or closed.  Answers it owed are lost:
 * the guest's connection ends (doomed) once our output is sent, the signal
 * RFC 7766 gives a client to retry.  Otherwise a query waiting to go out
 * gets one new connection, else SERVFAIL. */
static void dns_tcp_up_lost(struct router *r, unsigned slot,
			    struct dns_tcp *s)
{
	bool owed = s->outstanding || s->uqsent;

	dns_tcp_up_close(s);
	if (owed) {
		s->doomed = true;
		s->uqlen = s->uqsent = 0;
		return;
	}
	if (!s->uqlen)
		return;	/* an idle connection: a new one when needed */
	if (!s->retried && dns_tcp_connect(r, slot, s))
		s->retried = true;
	else
		dns_tcp_servfail(s);
}

/* A whole query in s->q: answer it, or make it the one going upstream.
 * false: the session must end (a malformed message). */
static bool dns_tcp_query(struct router *r, unsigned slot, struct dns_tcp *s)
{
	struct dns_config *d = &r->dnscfg;
	const uint8_t *p = s->q + 2;
	size_t len = s->qhave - 2;
	struct dns_q q;
	uint32_t addr;
	int local;

	d->st.queries++;
	s->last = pb_now(r->pb);
	if (dns_parse_query(p, len, &q) < 0 || (q.flags & 0x8000)) {
		d->st.malformed++;
		return false;
	}
	local = dns_local_lookup(r, q.name, &addr);
	if (local && q.qclass == 1) {
		d->st.local++;
		dns_tcp_reply(s, p, &q, local < 0 ? 3 : 0,
			      local > 0 && q.qtype == 1 ? &addr : NULL);
		s->qhave = 0;
		return true;
	}
	if (s->ufd < 0 && !dns_tcp_connect(r, slot, s)) {
		d->st.no_upstream++;
		dns_tcp_reply(s, p, &q, 2, NULL);	/* SERVFAIL */
		s->qhave = 0;
		return true;
	}
	s->uqlen = s->qhave;
	s->uqsent = 0;
	s->qhave = 0;
	d->st.forwarded++;
	return true;
}

/* Move what can move; false: the session is over. */
static bool dns_tcp_run(struct router *r, unsigned slot, struct dns_tcp *s)
{
	bool moved = true;

	while (moved) {
		moved = false;
		/* answers to the guest */
		if (s->osent < s->olen) {
			ssize_t n = send(s->gfd, s->o + s->osent,
					 s->olen - s->osent,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && errno != EAGAIN)
				return false;
			if (n > 0) {
				s->osent += (size_t)n;
				moved = true;
				if (s->osent == s->olen)
					s->last = pb_now(r->pb);
			}
		}
		if (s->doomed)
			return s->osent < s->olen;
		/* the query on its way upstream */
		if (s->uqsent < s->uqlen && s->up_ready) {
			ssize_t n = send(s->ufd, s->q + s->uqsent,
					 s->uqlen - s->uqsent,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && errno != EAGAIN) {
				dns_tcp_up_lost(r, slot, s);
				moved = true;
			} else if (n > 0) {
				s->uqsent += (size_t)n;
				if (s->uqsent == s->uqlen) {
					s->uqlen = s->uqsent = 0;
					s->outstanding++;
					s->retried = false;
				}
				moved = true;
			}
		}
		/* a whole answer from upstream, to the guest when it fits */
		if (s->a_done && dns_tcp_out(s, s->a + 2, s->ahave - 2)) {
			r->dnscfg.st.answers++;
			s->a_done = false;
			s->ahave = 0;
			/* (a zone transfer answers one query with several) */
			if (s->outstanding)
				s->outstanding--;
			s->last = pb_now(r->pb);
			moved = true;
		}
		/* read whenever connected: an idle upstream's close shows as
		 * the end of its stream */
		if (s->up_ready && !s->a_done) {
			size_t want = s->ahave < 2 ? 2 - s->ahave
				      : 2 + (size_t)(s->a[0] << 8 | s->a[1]) -
						s->ahave;
			ssize_t n = recv(s->ufd, s->a + s->ahave, want,
					 MSG_DONTWAIT);

			if (n == 0 || (n < 0 && errno != EAGAIN)) {
				dns_tcp_up_lost(r, slot, s);
				moved = true;
			} else if (n > 0) {
				s->ahave += (size_t)n;
				moved = true;
				if (s->ahave >= 2 && !(s->a[0] | s->a[1]))
					dns_tcp_up_lost(r, slot, s);
				else if (s->ahave >= 2 &&
					 s->ahave == 2 + (size_t)(s->a[0] << 8 |
								  s->a[1]))
					s->a_done = true;
			}
		}
		/* the guest's queries: one whole at a time, while nothing waits
		 * to go upstream and an answer of ours would fit */
		while (!s->doomed && !s->uqlen &&
		       dns_tcp_room(s, QUERY_MAX + 16)) {
			bool done;
			int took;

			if (s->inoff == s->inlen) {
				ssize_t n;

				if (s->g_eof)
					break;
				n = recv(s->gfd, s->in, sizeof(s->in),
					 MSG_DONTWAIT);
				if (n == 0)
					s->g_eof = true;
				if (n < 0 && errno != EAGAIN)
					return false;
				if (n <= 0)
					break;
				s->inoff = 0;
				s->inlen = (size_t)n;
			}
			took = dns_tcp_take(s->q, &s->qhave, QUERY_MAX,
					    s->in + s->inoff,
					    s->inlen - s->inoff, &done);
			if (took < 0) {
				r->dnscfg.st.malformed++;
				return false;
			}
			s->inoff += (size_t)took;
			moved = true;
			if (done && !dns_tcp_query(r, slot, s))
				return false;
		}
	}
	/* over when the guest has sent everything and got every answer */
	if (s->g_eof && s->inoff == s->inlen && !s->uqlen &&
	    s->osent == s->olen && (!s->outstanding || s->ufd < 0))
		return false;
	return true;
}

static void dns_tcp_arm(struct router *r, unsigned slot, struct dns_tcp *s)
{
	uint32_t gev = 0, uev = 0;

	/* (level-triggered: ask only for what can be acted on now) */
	if (s->osent < s->olen)
		gev |= EPOLLOUT;
	if (!s->g_eof && !s->doomed && s->inoff == s->inlen && !s->uqlen &&
	    dns_tcp_room(s, QUERY_MAX + 16))
		gev |= EPOLLIN;
	if (s->ufd >= 0) {
		if (!s->up_ready || s->uqsent < s->uqlen)
			uev |= EPOLLOUT;
		if (s->up_ready && !s->a_done)
			uev |= EPOLLIN;
	}
	if (gev != s->gev) {
		s->gev = gev;
		loop_mod(&r->pb->loop, s->gfd, gev,
			 dns_tcp_ref(r, slot, s, false));
	}
	if (s->ufd >= 0 && !s->up_hup && uev != s->uev) {
		s->uev = uev;
		loop_mod(&r->pb->loop, s->ufd, uev,
			 dns_tcp_ref(r, slot, s, true));
	}
}

void dns_tcp_event(struct router *r, uint32_t idx, uint16_t gen,
		   uint32_t events)
{
	unsigned slot = idx & (DNS_TCP_UP - 1);
	struct dns_tcp *s = slot < DNS_TCP_MAX ? r->dnscfg.tcp[slot] : NULL;

	if (!s || s->gen != gen)
		return;
	if ((idx & DNS_TCP_UP) &&
	    (s->ufd < 0 || s->up_hup ||
	     idx >> DNS_TCP_UGEN_SHIFT != (s->ugen & DNS_TCP_UGEN_MASK)))
		return;	/* of an upstream socket closed since */
	if (!(idx & DNS_TCP_UP) && (events & (EPOLLHUP | EPOLLERR))) {
		/* the flow is gone: nobody left to answer */
		dns_tcp_close(r, slot);
		return;
	}
	if ((idx & DNS_TCP_UP) && !s->up_ready) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(s->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 ||
		    err) {
			/* the query waiting for it gets SERVFAIL */
			dns_tcp_up_close(s);
			dns_tcp_servfail(s);
		} else if (events & EPOLLOUT) {
			s->up_ready = true;
			s->last = pb_now(r->pb);
		}
	} else if ((idx & DNS_TCP_UP) && (events & (EPOLLHUP | EPOLLERR))) {
		/* out of epoll; what it sent before is still read */
		loop_del(&r->pb->loop, s->ufd);
		s->up_hup = true;
	}
	if (!dns_tcp_run(r, slot, s)) {
		dns_tcp_close(r, slot);
		return;
	}
	dns_tcp_arm(r, slot, s);
}

void dns_tcp_tick(struct router *r, uint64_t now)
{
	bool any = false;

	for (unsigned i = 0; i < DNS_TCP_MAX; i++) {
		struct dns_tcp *s = r->dnscfg.tcp[i];

		if (s && now - s->last > DNS_TCP_IDLE_NS)
			dns_tcp_close(r, i);
		else if (s)
			any = true;
	}
	if (any)
		router_kick_timer(r, TICK_SLOW_NS);
}
