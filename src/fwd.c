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

#include "router.h"
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

/* "[ADDR]:PORT" (ADDR may be empty) from s[0..n). */
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

int fwd_parse_hostfwd(struct router *r, const char *s, char *err,
		      size_t errlen)
{
	struct hostfwd *h;
	const char *p = s, *dash;
	uint32_t haddr = htonl(INADDR_ANY), gaddr = r->dhcp_start;
	bool has;

	if (r->nhostfwd == HOSTFWD_MAX) {
		snprintf(err, errlen, "hostfwd: at most %d forwards", HOSTFWD_MAX);
		return -ENOSPC;
	}
	h = &r->hostfwd[r->nhostfwd];
	memset(h, 0, sizeof(*h));
	/* The first ':'-separated field is the protocol, maybe empty. */
	h->proto = FWD_TCP;
	if (!strncmp(p, "udp:", 4))
		h->proto = FWD_UDP;
	else if (strncmp(p, "tcp:", 4) && p[0] != ':')
		goto bad;
	p = strchr(p, ':') + 1;
	dash = strchr(p, '-');
	if (!dash)
		goto bad;
	if (parse_addr_port(p, (size_t)(dash - p), &haddr, &has, &h->guest_port,
			    false))
		goto bad;
	h->host.sin_family = AF_INET;
	h->host.sin_port = htons(h->guest_port);
	h->host.sin_addr.s_addr = haddr;
	if (parse_addr_port(dash + 1, strlen(dash + 1), &gaddr, &has,
			    &h->guest_port, false))
		goto bad;
	if (!router_in_net(r, gaddr) || router_owns(r, gaddr)) {
		snprintf(err, errlen, "hostfwd '%s': the guest address must be a guest's address in net=",
			 s);
		return -EINVAL;
	}
	h->guest_ip = gaddr;
	h->fd = -1;
	r->nhostfwd++;
	return 0;
bad:
	snprintf(err, errlen,
		 "hostfwd '%s': want [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
		 s);
	return -EINVAL;
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

int fwd_start(struct router *r)
{
	for (unsigned i = 0; i < r->nhostfwd; i++) {
		struct hostfwd *h = &r->hostfwd[i];
		int type = h->proto == FWD_TCP ? SOCK_STREAM : SOCK_DGRAM;
		int one = 1, fd;
		char name[64];

		saddr_str((struct sockaddr *)&h->host, sizeof(h->host), name,
			  sizeof(name));
		fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&h->host, sizeof(h->host)) < 0 ||
		    (type == SOCK_STREAM && listen(fd, 128) < 0)) {
			close(fd);
			goto fail;
		}
		h->fd = fd;
		if (loop_add(&r->pb->loop, fd, EPOLLIN,
			     ref_make(REF_HOSTFWD, i, r->nd)) < 0)
			goto fail;
		log_info(&r->pb->log, "hostfwd %s %s -> guest port %u",
			 h->proto == FWD_TCP ? "tcp" : "udp", name,
			 h->guest_port);
		continue;
fail:
		return pb__err(r->pb, -errno, "hostfwd %s %s: %s",
			       h->proto == FWD_TCP ? "tcp" : "udp", name,
			       strerror(errno));
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
