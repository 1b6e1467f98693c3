// SPDX-License-Identifier: MIT
/* fwd.c: hostfwd (host port -> guest) and guestfwd (guest address ->
 * command or host socket), with QEMU's option syntax. */

/*
 * hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 *   A socket listens on the host (HOSTADDR default: all addresses, as in
 *   QEMU); every connection (TCP) or client (UDP) becomes a flow towards
 *   GUESTADDR (default: the first DHCP address) at GUESTPORT.  The guest
 *   sees a client on the host's loopback as coming from the gateway address.
 * guestfwd=[tcp]:SERVER:PORT-cmd:COMMAND | -HOST:PORT | -unix:PATH
 *   A guest connecting to SERVER:PORT (an address in net=, answered by the
 *   router like its own) is joined to a new COMMAND (run by /bin/sh -c with
 *   the connection as standard input and output), or to a host socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flow.h"
#include "netdev.h"
#include "router.h"
#include "smb.h"
#include "sockaddr.h"

static int parse_port(const char *s, size_t n, uint16_t *out, bool zero_ok)
{
	char buf[8];
	char *end;
	long v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (*end || v < (zero_ok ? 0 : 1) || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* "[ADDR]:PORT" (ADDR may be empty) from s[0..n), IPv4 only. */
static int parse_addr_port(const char *s, size_t n, uint32_t *addr,
			   bool *has_addr, uint16_t *port, bool zero_ok)
{
	const char *colon = memrchr(s, ':', n);
	char ip[INET_ADDRSTRLEN];
	size_t al;

	if (!colon)
		return -EINVAL;
	al = (size_t)(colon - s);
	*has_addr = al > 0;
	if (al) {
		struct in_addr a;

		if (al >= sizeof(ip))
			return -EINVAL;
		memcpy(ip, s, al);
		ip[al] = '\0';
		if (inet_pton(AF_INET, ip, &a) != 1)
			return -EINVAL;
		*addr = a.s_addr;
	}
	return parse_port(colon + 1, n - al - 1, port, zero_ok);
}

/* "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT" from s[0..n): *af is AF_INET,
 * AF_INET6, or AF_UNSPEC when the address is empty. */
static int parse_any_port(const char *s, size_t n, int *af, uint32_t *a4,
			  struct in6_addr *a6, uint16_t *port)
{
	char ip[INET6_ADDRSTRLEN];
	const char *close;
	bool has;

	if (n && s[0] == '[') {
		close = memchr(s, ']', n);
		if (!close || close + 1 >= s + n || close[1] != ':' ||
		    (size_t)(close - s - 1) >= sizeof(ip))
			return -EINVAL;
		memcpy(ip, s + 1, (size_t)(close - s - 1));
		ip[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, ip, a6) != 1)
			return -EINVAL;
		*af = AF_INET6;
		return parse_port(close + 2, n - (size_t)(close + 2 - s), port,
				  false);
	}
	if (parse_addr_port(s, n, a4, &has, port, false))
		return -EINVAL;
	*af = has ? AF_INET : AF_UNSPEC;
	return 0;
}

/*
 * Parse a hostfwd rule into *h.  host_only: the short form
 * "[tcp|udp]:[HOSTADDR]:HOSTPORT" (QEMU's hostfwd_remove) is accepted too;
 * the guest fields are then left zero.
 */
static int hostfwd_parse(const struct router *r, const char *s,
			 struct hostfwd *h, bool host_only, char *err,
			 size_t errlen)
{
	const char *p = s, *dash;
	uint32_t gaddr = r->dhcp_start;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	/* The first ':'-separated field is the protocol, maybe empty. */
	h->proto = FWD_TCP;
	if (!strncmp(p, "udp:", 4))
		h->proto = FWD_UDP;
	else if (strncmp(p, "tcp:", 4) && p[0] != ':')
		goto bad;
	p = strchr(p, ':') + 1;
	/* the host part ends at the '-' that follows the port */
	dash = p[0] == '[' && strchr(p, ']') ? strchr(strchr(p, ']'), '-')
					      : strchr(p, '-');
	if (!dash && host_only)
		dash = p + strlen(p);
	if (!dash)
		goto bad;
	{
		int af;
		uint32_t a4 = htonl(INADDR_ANY);
		struct in6_addr a6;
		uint16_t port;

		if (parse_any_port(p, (size_t)(dash - p), &af, &a4, &a6, &port))
			goto bad;
		if (af == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&h->host;

			in6->sin6_family = AF_INET6;
			in6->sin6_port = htons(port);
			in6->sin6_addr = a6;
		} else {
			struct sockaddr_in *in = (struct sockaddr_in *)&h->host;

			in->sin_family = AF_INET;
			in->sin_port = htons(port);
			in->sin_addr.s_addr = a4;
		}
	}
	if (!*dash)
		return 0;
	{
		int af;
		uint32_t a4 = gaddr;
		struct in6_addr a6;

		if (parse_any_port(dash + 1, strlen(dash + 1), &af, &a4, &a6,
				   &h->guest_port))
			goto bad;
		if (af == AF_INET6) {
			if (IN6_IS_ADDR_MULTICAST(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) ||
			    !memcmp(&a6, &r->ip6.host, 16) ||
			    !memcmp(&a6, &r->ip6.dns, 16)) {
				snprintf(err, errlen, "hostfwd '%s': the guest address must be a guest's IPv6 address",
					 s);
				return -EINVAL;
			}
			h->guest_v6 = true;
			h->guest_ip6 = a6;
			return 0;
		}
		gaddr = a4;
	}
	if (!router_in_net(r, gaddr) || router_owns(r, gaddr)) {
		snprintf(err, errlen, "hostfwd '%s': the guest address must be a guest's address in net=",
			 s);
		return -EINVAL;
	}
	h->guest_ip = gaddr;
	return 0;
bad:
	snprintf(err, errlen,
		 "hostfwd '%s': want [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT%s",
		 s, host_only ? " or [tcp|udp]:[HOSTADDR]:HOSTPORT" : "");
	return -EINVAL;
}

int fwd_parse_hostfwd(struct router *r, const char *s, char *err,
		      size_t errlen)
{
	int rc;

	if (r->nhostfwd == HOSTFWD_MAX) {
		snprintf(err, errlen, "hostfwd: at most %d forwards", HOSTFWD_MAX);
		return -ENOSPC;
	}
	rc = hostfwd_parse(r, s, &r->hostfwd[r->nhostfwd], false, err, errlen);
	if (!rc)
		r->nhostfwd++;
	return rc;
}

int fwd_parse_guestfwd(struct router *r, const char *s, char *err,
		       size_t errlen)
{
	struct guestfwd *g;
	const char *p = s, *dash;
	bool has;

	if (r->nguestfwd == GUESTFWD_MAX) {
		snprintf(err, errlen, "guestfwd: at most %d forwards", GUESTFWD_MAX);
		return -ENOSPC;
	}
	g = &r->guestfwd[r->nguestfwd];
	memset(g, 0, sizeof(*g));
	if (!strncmp(p, "tcp:", 4))
		p += 4;
	else if (p[0] == ':')
		p++;
	else
		goto bad;
	dash = strchr(p, '-');
	if (!dash || parse_addr_port(p, (size_t)(dash - p), &g->ip, &has,
				     &g->port, false) || !has)
		goto bad;
	if (!router_in_net(r, g->ip) || g->ip == r->net ||
	    (g->ip | r->mask) == 0xffffffffu) {
		snprintf(err, errlen, "guestfwd '%s': the server address must be inside net=", s);
		return -EINVAL;
	}
	p = dash + 1;
	if (!strncmp(p, "cmd:", 4)) {
		g->kind = GFWD_CMD;
		p += 4;
		if (!*p || strlen(p) >= sizeof(g->target))
			goto bad;
		str_copy(g->target, sizeof(g->target), p);
	} else if (!strncmp(p, "unix:", 5)) {
		g->kind = GFWD_UNIX;
		p += 5;
		if (!*p || strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			goto bad;
		str_copy(g->target, sizeof(g->target), p);
	} else {
		uint32_t a;
		uint16_t port;

		g->kind = GFWD_INET;
		if (parse_addr_port(p, strlen(p), &a, &has, &port, false) ||
		    !has)
			goto bad;
		g->inet.sin_family = AF_INET;
		g->inet.sin_addr.s_addr = a;
		g->inet.sin_port = htons(port);
	}
	r->nguestfwd++;
	return 0;
bad:
	snprintf(err, errlen,
		 "guestfwd '%s': want [tcp:]SERVER:PORT-cmd:COMMAND, -HOST:PORT or -unix:PATH",
		 s);
	return -EINVAL;
}

static socklen_t fwd_host_len(const struct hostfwd *h)
{
	return h->host.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					     : sizeof(struct sockaddr_in);
}

/* Listening on all addresses (0.0.0.0 or ::)? */
static bool fwd_host_wild(const struct hostfwd *h)
{
	if (h->host.ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
			&((const struct sockaddr_in6 *)&h->host)->sin6_addr);
	return ((const struct sockaddr_in *)&h->host)->sin_addr.s_addr ==
	       htonl(INADDR_ANY);
}

static uint16_t fwd_host_port(const struct hostfwd *h)
{
	return ntohs(h->host.ss_family == AF_INET6
			     ? ((const struct sockaddr_in6 *)&h->host)->sin6_port
			     : ((const struct sockaddr_in *)&h->host)->sin_port);
}

void fwd_client_key(const struct router *r, const struct hostfwd *h,
		    const struct sockaddr_storage *client, struct flow_key *k)
{
	const struct sockaddr_in *c4 = (const struct sockaddr_in *)client;
	const struct sockaddr_in6 *c6 = (const struct sockaddr_in6 *)client;
	bool c_is6 = client->ss_family == AF_INET6;
	bool c_loop = c_is6 ? IN6_IS_ADDR_LOOPBACK(&c6->sin6_addr) ||
				      (IN6_IS_ADDR_V4MAPPED(&c6->sin6_addr) &&
				       c6->sin6_addr.s6_addr[12] == 127)
			    : (ntohl(c4->sin_addr.s_addr) >> 24) == 127;

	k->gport = h->guest_port;
	k->rport = ntohs(c_is6 ? c6->sin6_port : c4->sin_port);
	if (h->guest_v6) {
		k->v6 = 1;
		k->gip6 = h->guest_ip6;
		/* a client on the host's loopback appears as the router's
		 * host address; others as themselves (IPv4 ones mapped) */
		if (c_loop) {
			k->rip6 = r->ip6.host;
		} else if (c_is6) {
			k->rip6 = c6->sin6_addr;
		} else {
			memset(&k->rip6, 0, sizeof(k->rip6));
			k->rip6.s6_addr[10] = k->rip6.s6_addr[11] = 0xff;
			memcpy(k->rip6.s6_addr + 12, &c4->sin_addr, 4);
		}
		return;
	}
	k->gip = h->guest_ip;
	if (c_loop)
		k->rip = r->gw;	/* NOLINT(bugprone-branch-clone): as the last branch, for another reason */
	else if (!c_is6)
		k->rip = c4->sin_addr.s_addr;
	else if (IN6_IS_ADDR_V4MAPPED(&c6->sin6_addr))
		memcpy(&k->rip, c6->sin6_addr.s6_addr + 12, 4);
	else
		k->rip = r->gw;	/* an IPv6 client cannot be shown to an IPv4 guest */
}

/* Open the listening socket of forward i. */
static int fwd_listen(struct router *r, unsigned i)
{
	struct hostfwd *h = &r->hostfwd[i];
	int type = h->proto == FWD_TCP ? SOCK_STREAM : SOCK_DGRAM;
	int one = 1, fd, err;
	socklen_t len = fwd_host_len(h);
	char name[80];

	saddr_str((struct sockaddr *)&h->host, len, name, sizeof(name));
	fd = socket(h->host.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&h->host, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0))
		goto fail;
	err = loop_add(&r->pb->loop, fd, EPOLLIN, ref_make(REF_HOSTFWD, i, r->nd));
	if (err < 0) {
		errno = -err;
		goto fail;
	}
	h->fd = fd;
	log_info(&r->pb->log, "hostfwd %s %s -> guest port %u",
		 h->proto == FWD_TCP ? "tcp" : "udp", name, h->guest_port);
	return 0;
fail:
	err = errno;
	if (fd >= 0)
		close(fd);
	return pb__err(r->pb, -err, "hostfwd %s %s: %s",
		       h->proto == FWD_TCP ? "tcp" : "udp", name, strerror(err));
}

int fwd_start(struct router *r)
{
	for (unsigned i = 0; i < r->nhostfwd; i++) {
		int rc = fwd_listen(r, i);

		if (rc)
			return rc;
	}
	return 0;
}

void fwd_stop(struct router *r)
{
	for (unsigned i = 0; i < r->nhostfwd; i++) {
		if (r->hostfwd[i].fd >= 0) {
			loop_del(&r->pb->loop, r->hostfwd[i].fd);
			close(r->hostfwd[i].fd);
			r->hostfwd[i].fd = -1;
		}
	}
}

const struct guestfwd *fwd_guest_match(const struct router *r, uint32_t ip,
				       uint16_t port)
{
	for (unsigned i = 0; i < r->nguestfwd; i++)
		if (r->guestfwd[i].ip == ip && r->guestfwd[i].port == port)
			return &r->guestfwd[i];
	return NULL;
}

/*
 * Start COMMAND with one end of a socket pair as its stdin and stdout.  The
 * child forks again and exits at once, so the command is not our child:
 * nothing is left for us to reap, and the embedder's SIGCHLD handling is
 * not disturbed.
 */
static int fwd_spawn(struct router *r, const char *cmd)
{
	int sv[2], status;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		/* in the child: only async-signal-safe calls */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
			_exit(127);
		if (fork() != 0)
			_exit(0);
		setsid();
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	log_info(&r->pb->log, "guestfwd: started '%s'", cmd);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	return sv[0];
}

int fwd_guest_connect(struct router *r, const struct guestfwd *g,
		      bool *connected)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd, rc;

	*connected = false;
	if (g->kind == GFWD_CMD) {
		*connected = true;
		return fwd_spawn(r, g->target);
	}
	if (g->kind == GFWD_SMB) {
		*connected = true;
		return smb_connect(r);
	}
	fd = socket(g->kind == GFWD_UNIX ? AF_UNIX : AF_INET,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (g->kind == GFWD_UNIX) {
		str_copy(un.sun_path, sizeof(un.sun_path), g->target);
		rc = connect(fd, (struct sockaddr *)&un, sizeof(un));
	} else {
		rc = connect(fd, (const struct sockaddr *)&g->inet,
			     sizeof(g->inet));
	}
	if (rc == 0) {
		*connected = true;
		return fd;
	}
	if (errno == EINPROGRESS)
		return fd;
	rc = -errno;
	close(fd);
	return rc;
}

/* ---- listing and runtime changes (the control socket) ---------------------- */

void fwd_hostfwd_rule(const struct hostfwd *h, char *out, size_t size)
{
	char ha[INET6_ADDRSTRLEN + 2] = "", ga[INET6_ADDRSTRLEN + 2];
	char t[INET6_ADDRSTRLEN];

	if (h->host.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&h->host)->sin6_addr,
			  t, sizeof(t));
		snprintf(ha, sizeof(ha), "[%s]", t);
	} else if (((const struct sockaddr_in *)&h->host)->sin_addr.s_addr !=
		   htonl(INADDR_ANY)) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&h->host)->sin_addr,
			  ha, sizeof(ha));
	}
	if (h->guest_v6) {
		inet_ntop(AF_INET6, &h->guest_ip6, t, sizeof(t));
		snprintf(ga, sizeof(ga), "[%s]", t);
	} else {
		inet_ntop(AF_INET, &h->guest_ip, ga, sizeof(ga));
	}
	snprintf(out, size, "%s:%s:%u-%s:%u", h->proto == FWD_TCP ? "tcp" : "udp",
		 ha, fwd_host_port(h), ga, h->guest_port);
}

void fwd_guestfwd_rule(const struct guestfwd *g, char *out, size_t size)
{
	char ga[INET_ADDRSTRLEN], ta[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &g->ip, ga, sizeof(ga));
	switch (g->kind) {
	case GFWD_CMD:
		snprintf(out, size, "tcp:%s:%u-cmd:%s", ga, g->port, g->target);
		break;
	case GFWD_UNIX:
		snprintf(out, size, "tcp:%s:%u-unix:%s", ga, g->port, g->target);
		break;
	case GFWD_INET:
		inet_ntop(AF_INET, &g->inet.sin_addr, ta, sizeof(ta));
		snprintf(out, size, "tcp:%s:%u-%s:%u", ga, g->port, ta,
			 ntohs(g->inet.sin_port));
		break;
	default:
		snprintf(out, size, "tcp:%s:%u-%s", ga, g->port, g->target);
		break;
	}
}

/* The checks both runtime changes start with; *out: the router of netdev
 * id (NULL or "": the only router there is). */
static int fwd_router(struct pb *pb, const char *id, const char *rule,
		      struct router **out)
{
	int nd;

	pb->errmsg[0] = '\0';
	if (!rule)
		return pb__err(pb, -EINVAL, "hostfwd: no rule");
	if (pb->in_round)
		return pb__err(pb, -EBUSY, "hostfwd: cannot change forwards from inside a callback");
	loop_update_now(&pb->loop);
	if (!id || !*id) {
		if (pb->nrouters != 1)
			return pb__err(pb, -EINVAL, "hostfwd: name the user-mode netdev (there are %u)",
				       pb->nrouters);
		*out = router_get(pb, pb->routers[0]);
		return 0;
	}
	nd = netdev_find(pb, id);
	if (nd < 0)
		return pb__err(pb, -ENOENT, "hostfwd: no netdev '%s'", id);
	*out = router_get(pb, (uint32_t)nd);
	if (!*out)
		return pb__err(pb, -EINVAL, "hostfwd: netdev '%s' is not a user-mode router (-netdev user)",
			       id);
	return 0;
}

/*
 * Index of a forward among the first n that listens where key does (same
 * protocol and port; addresses equal or one of them the wildcard), and
 * with guest: also forwards to the same guest address and port; or -1.
 */
static int hostfwd_find(const struct router *r, const struct hostfwd *key,
			unsigned n, bool guest)
{
	for (unsigned i = 0; i < n; i++) {
		const struct hostfwd *h = &r->hostfwd[i];
		bool same = h->host.ss_family == key->host.ss_family &&
			    !memcmp(&h->host, &key->host, fwd_host_len(h));
		bool wild = fwd_host_wild(h) || fwd_host_wild(key);

		if (h->proto != key->proto || fwd_host_port(h) != fwd_host_port(key))
			continue;
		if (!same && (guest || !wild))
			continue;
		if (guest && (h->guest_v6 != key->guest_v6 ||
			      (h->guest_v6 ? memcmp(&h->guest_ip6, &key->guest_ip6, 16)
					   : h->guest_ip != key->guest_ip) ||
			      h->guest_port != key->guest_port))
			continue;
		return (int)i;
	}
	return -1;
}

int pb_hostfwd_add(pb_t *pb, const char *netdev, const char *rule)
{
	char err[OPTS_ERR_LEN];
	struct router *r;
	unsigned i;
	int rc;

	rc = fwd_router(pb, netdev, rule, &r);
	if (rc)
		return rc;
	/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): the analyzer does not follow the variadic error helper, which never returns 0 */
	rc = fwd_parse_hostfwd(r, rule, err, sizeof(err));
	if (rc)
		return pb__err(pb, rc, "%s", err);
	i = r->nhostfwd - 1;
	if (hostfwd_find(r, &r->hostfwd[i], i, false) >= 0) {
		r->nhostfwd--;
		return pb__err(pb, -EEXIST, "hostfwd '%s': that host port is already forwarded",
			       rule);
	}
	rc = fwd_listen(r, i);
	if (rc)
		r->nhostfwd--;
	return rc;
}

/*
 * Remove forward i: its listener closes at once.  TCP connections made
 * through it have sockets of their own and go on (marked as no longer
 * belonging to a forward); UDP clients share the listener's socket, so
 * their flows end with it.  The last forward moves into slot i, and what
 * refers to it by index (its epoll reference, its flows) follows.
 */
static void fwd_remove(struct router *r, unsigned i)
{
	struct hostfwd *h = &r->hostfwd[i];
	unsigned last = r->nhostfwd - 1;
	char rule[128];

	fwd_hostfwd_rule(h, rule, sizeof(rule));
	for (uint32_t k = 0; k < r->flows->high; k++) {
		struct flow *f = &r->flows->f[k];

		if (!f->used || f->hostfwd != (int)i)
			continue;
		if (f->shared_fd) {
			r->st.udp_closed++;
			router_flow_close(r, f);
		} else {
			f->hostfwd = HOSTFWD_REMOVED;
		}
	}
	if (h->fd >= 0) {
		loop_del(&r->pb->loop, h->fd);
		close(h->fd);
	}
	log_info(&r->pb->log, "hostfwd %s removed", rule);
	if (i != last) {
		*h = r->hostfwd[last];
		if (h->fd >= 0)
			loop_mod(&r->pb->loop, h->fd, EPOLLIN,
				 ref_make(REF_HOSTFWD, i, r->nd));
		for (uint32_t k = 0; k < r->flows->high; k++)
			if (r->flows->f[k].used &&
			    r->flows->f[k].hostfwd == (int)last)
				r->flows->f[k].hostfwd = (int)i;
	}
	r->nhostfwd--;
}

int pb_hostfwd_del(pb_t *pb, const char *netdev, const char *rule)
{
	char err[OPTS_ERR_LEN];
	struct hostfwd key;
	struct router *r;
	int rc, i;

	rc = fwd_router(pb, netdev, rule, &r);
	if (rc)
		return rc;
	/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): the analyzer does not follow the variadic error helper, which never returns 0 */
	rc = hostfwd_parse(r, rule, &key, true, err, sizeof(err));
	if (rc)
		return pb__err(pb, rc, "%s", err);
	i = hostfwd_find(r, &key, r->nhostfwd, strchr(rule, '-') != NULL);
	if (i < 0)
		return pb__err(pb, -ENOENT, "hostfwd '%s': no such forward on netdev %s",
			       rule, pb->netdevs[r->nd].id);
	fwd_remove(r, (unsigned)i);
	return 0;
}
