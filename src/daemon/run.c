// SPDX-License-Identifier: MIT
/* run.c: `patchbay run -- CMD` (a command in its own network namespace with
 * user-mode networking) and `patchbay attach` (the same for an existing
 * namespace, for container runtimes). */

/*
 * How it works.  The TAP device must be created inside the target network
 * namespace, but patchbay itself stays in the host's namespace, where its
 * sockets reach the host.  So a child process does the namespace work:
 *   run:    the child unshares a network and mount namespace (and, when not
 *           root, a user namespace in which it maps itself to root), so it
 *           may create a TAP and configure it;
 *   attach: a helper child enters the target's namespaces with setns().
 * In there it creates the TAP, brings up lo and the TAP, gives the TAP the
 * first DHCP address with the router as default route (rtnetlink, no ip(8)),
 * and sends the TAP's fd back over a socket pair (SCM_RIGHTS).  The parent
 * adds it as a port next to the router and runs the event loop.  `run` then
 * lets the child exec the command, with a private /etc/resolv.conf (a bind
 * mount inside the child's mount namespace) that points at the router's DNS
 * address; the parent exits with the command's status.  Nothing outlives
 * the command: the namespace, and the TAP with it, go away when its last
 * process exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "netlink.h"
#include "patchbay.h"
#include "run.h"
#include "sandbox.h"
#include "sockaddr.h"

#define NET_KEYS_MAX 4000

struct run_opts {
	char net[NET_KEYS_MAX];		/* keys for -netdev user */
	const char *ifname;
	const char *stats_file;
	const char *capture;
	const char *netns;		/* attach: PATH or PID */
	const char *userns;		/* attach: PATH (optional) */
	int ready_fd, exit_fd;
	int verbosity;
	char **cmd;
	/* --join: a running daemon's control socket instead of our own
	 * instance; the namespace is addressed as given */
	const char *join;
	const char *address;		/* A.B.C.D/N */
	const char *gateway, *dns;
	const char *segment;
	char port_id[32];
	struct sandbox sb;
};

static void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						     noreturn));

/* run's private resolv.conf directory, removed also when we fail (by the
 * process that made it, not by a child that inherited the name) */
static char cleanup_dir[PATH_MAX];
static pid_t cleanup_owner;

static void remove_cleanup_dir(void)
{
	char path[PATH_MAX + 16];

	if (!cleanup_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/resolv.conf", cleanup_dir);
	unlink(path);
	rmdir(cleanup_dir);
	cleanup_dir[0] = '\0';
}

static void fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("patchbay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (getpid() == cleanup_owner)
		remove_cleanup_dir();
	exit(125);	/* like env(1) and podman: patchbay itself failed */
}

/* ---- in the namespace ---------------------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* Create the TAP and configure it and lo; returns the TAP fd or -errno,
 * with *what naming the failed step. */
static int ns_setup(const struct run_opts *o, const struct pb_router_info *ri,
		    const char **what)
{
	struct ifreq ifr = { 0 };
	int fd, idx, lo, rc;
	unsigned prefix = (unsigned)__builtin_popcount(ri->mask);

	*what = "open /dev/net/tun";
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* with a virtio-net header: the daemon turns on offloads */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o->ifname);
	*what = "create the TAP device";
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		goto fail;
	idx = (int)if_nametoindex(ifr.ifr_name);
	lo = (int)if_nametoindex("lo");
	*what = "bring up lo";
	if (lo && (rc = nl_link_up(lo, 0)) < 0)
		goto fail_rc;
	*what = "bring up the TAP device";
	if ((rc = nl_link_up(idx, ri->mtu)) < 0)
		goto fail_rc;
	*what = "add the address";
	if ((rc = nl_addr4_add(idx, ri->dhcp_start, prefix)) < 0)
		goto fail_rc;
	*what = "add the default route";
	if ((rc = nl_route4_default(idx, ri->gateway)) < 0)
		goto fail_rc;
	return fd;
fail:
	rc = -errno;
fail_rc:
	close(fd);
	return rc;
}

/* Send fd (or an error code when fd < 0) over sock. */
static void send_fd(int sock, int fd, const char *what)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char msg[256];
	struct iovec iov = { .iov_base = msg };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		snprintf(msg, sizeof(msg), "ok");
		msg_put_cmsg(&mh, cbuf, sizeof(cbuf), SOL_SOCKET, SCM_RIGHTS,
			     &fd, sizeof(int));
	} else {
		snprintf(msg, sizeof(msg), "cannot %s: %s", what, strerror(-fd));
	}
	iov.iov_len = strlen(msg) + 1;
	sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* Receive the TAP fd; dies with the child's message on failure. */
static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char msg[256] = "";
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	int fd = -1;

	if (n <= 0)
		fatal("the namespace helper died before sending the TAP device");
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (fd < 0)
		fatal("in the namespace: %s", msg);
	return fd;
}

/* The child of `run`: new namespaces, the TAP, then the command. */
static void run_child(const struct run_opts *o, const struct pb_router_info *ri,
		      const char *resolv, int sock)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	const char *what;
	char map[64], go;
	int fd;

	if (uid != 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) < 0) {
			send_fd(sock, -errno, "create user and network namespaces (are unprivileged user namespaces allowed?)");
			_exit(125);
		}
		/* map ourselves to root in the new user namespace */
		write_file("/proc/self/setgroups", "deny");
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
		write_file("/proc/self/uid_map", map);
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
		write_file("/proc/self/gid_map", map);
	} else if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
		send_fd(sock, -errno, "create a network namespace");
		_exit(125);
	}
	/* our mounts stay ours */
	mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (resolv && mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
		fprintf(stderr, "patchbay: warning: cannot provide /etc/resolv.conf: %s\n",
			strerror(errno));
	fd = ns_setup(o, ri, &what);
	send_fd(sock, fd, what);
	if (fd < 0)
		_exit(125);
	close(fd);
	/* wait until the parent has the port up */
	if (read(sock, &go, 1) != 1)
		_exit(125);
	close(sock);
	execvp(o->cmd[0], o->cmd);
	fprintf(stderr, "patchbay: cannot run %s: %s\n", o->cmd[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* The helper of `attach`: enter the namespaces, make the TAP, send it. */
static void attach_child(const struct run_opts *o, const struct pb_router_info *ri,
			 int sock)
{
	char path[PATH_MAX];
	const char *what = "enter the network namespace";
	char *end;
	long pid = strtol(o->netns, &end, 10);
	int nsfd, ufd = -1, fd;

	if (*o->netns && !*end) {
		/* a PID: its user namespace too, when it is not ours */
		struct stat a, b;

		snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
		if (!o->userns && stat(path, &a) == 0 &&
		    stat("/proc/self/ns/user", &b) == 0 && a.st_ino != b.st_ino)
			ufd = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
	} else {
		snprintf(path, sizeof(path), "%s%s",
			 strchr(o->netns, '/') ? "" : "/run/netns/", o->netns);
	}
	if (o->userns)
		ufd = open(o->userns, O_RDONLY | O_CLOEXEC);
	if (ufd >= 0 && setns(ufd, CLONE_NEWUSER) < 0) {
		send_fd(sock, -errno, "enter the user namespace");
		_exit(125);
	}
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
		send_fd(sock, -errno, what);
		_exit(125);
	}
	fd = ns_setup(o, ri, &what);
	send_fd(sock, fd, what);
	_exit(fd < 0 ? 125 : 0);
}

/* ---- the parent ------------------------------------------------------------------------- */

/* Every translated connection holds a host socket: take all the file
 * descriptors we are allowed (the soft limit is often 1024). */
void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int write_stats(pb_t *pb, const char *path)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (!path || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return 0;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = pb_stats_json(pb, fd);
	close(fd);
	return rc ? rc : rename(tmp, path) ? -errno : 0;
}

static void usage_run(void)
{
	fputs("Usage: patchbay run [options] -- COMMAND [ARGS...]\n"
	      "       patchbay attach --netns NAME|PATH|PID [options]\n"
	      "\n"
	      "run: COMMAND in a new network namespace whose only way out is\n"
	      "patchbay's user-mode router (as root, or rootless through a user\n"
	      "namespace). attach: the same for an existing namespace.\n"
	      "\n"
	      "Options:\n"
	      "  --net KEYS        router keys as for -netdev user (repeatable), e.g.\n"
	      "                    --net hostfwd=tcp:127.0.0.1:8080-:80,dns-upstream=...\n"
	      "                    (',' separates keys; write ',,' for a comma inside a\n"
	      "                    value, e.g. a guestfwd command)\n"
	      "  --ifname NAME     interface in the namespace (default eth0)\n"
	      "  --capture FILE    pcap of the namespace's traffic\n"
	      "  --stats-file PATH counters as JSON at exit and on SIGUSR1\n"
	      "  --netns X         attach: a name from `ip netns`, a path, or a PID\n"
	      "  --userns PATH     attach: user namespace to enter first\n"
	      "  --join CTL        join a running daemon's segment through its control\n"
	      "                    socket instead of starting a router of our own\n"
	      "  --address A/N     with --join: the namespace's address (required)\n"
	      "  --gateway IP      with --join: default route (default: network .2)\n"
	      "  --dns IP          with --join: resolver (default: network .3)\n"
	      "  --segment NAME    with --join: the daemon's segment to join\n"
	      "  --ready-fd N      attach: write \"1\" to fd N once the network is up\n"
	      "  --exit-fd N       attach: exit when fd N is closed by the other end\n"
	      "  --runas USER|UID[:GID]  as root: the network process's user after\n"
	      "                    set-up (default nobody; never COMMAND's)\n"
	      "  --no-sandbox      the network process keeps user, capabilities,\n"
	      "                    file system and system calls\n"
	      "  -v, -q            more / less logging\n"
	      "\n"
	      "run exits with COMMAND's status (128+N if killed by signal N; 125 if\n"
	      "patchbay itself failed, 126/127 if COMMAND cannot run).\n",
	      stdout);
}

static void parse(int argc, char **argv, bool attach, struct run_opts *o)
{
	size_t len = 0;

	memset(o, 0, sizeof(*o));
	o->ifname = "eth0";
	o->ready_fd = o->exit_fd = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--")) {
			o->cmd = argv + i + 1;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage_run();
			exit(0);
		}
		if (!strcmp(a, "-v")) {
			o->verbosity++;
			continue;
		}
		if (!strcmp(a, "-q")) {
			o->verbosity = -1;
			continue;
		}
		if (!strcmp(a, "--no-sandbox")) {
			o->sb.off = true;
			continue;
		}
		if (!attach && a[0] != '-') {
			o->cmd = argv + i;	/* no "--": the command starts here */
			break;
		}
		if (!v)
			fatal("%s needs an argument (see --help)", a);
		i++;
		if (!strcmp(a, "--net")) {
			int n = snprintf(o->net + len, sizeof(o->net) - len, ",%s", v);

			if (n < 0 || (size_t)n >= sizeof(o->net) - len)
				fatal("--net: too long");
			len += (size_t)n;
		} else if (!strcmp(a, "--ifname")) {
			if (strlen(v) >= IFNAMSIZ || !*v)
				fatal("--ifname: 1-%d characters", IFNAMSIZ - 1);
			o->ifname = v;
		} else if (!strcmp(a, "--capture")) {
			o->capture = v;
		} else if (!strcmp(a, "--stats-file")) {
			o->stats_file = v;
		} else if (!strcmp(a, "--runas")) {
			o->sb.runas = v;
		} else if (!strcmp(a, "--join")) {
			o->join = v;
		} else if (!strcmp(a, "--address")) {
			o->address = v;
		} else if (!strcmp(a, "--gateway")) {
			o->gateway = v;
		} else if (!strcmp(a, "--dns")) {
			o->dns = v;
		} else if (!strcmp(a, "--segment")) {
			o->segment = v;
		} else if (attach && !strcmp(a, "--netns")) {
			o->netns = v;
		} else if (attach && !strcmp(a, "--userns")) {
			o->userns = v;
		} else if (attach && (!strcmp(a, "--ready-fd") || !strcmp(a, "--exit-fd"))) {
			char *end;
			long n = strtol(v, &end, 10);

			if (*end || n < 0 || n > 65535 || fcntl((int)n, F_GETFD) < 0)
				fatal("%s: '%s' is not an open file descriptor", a, v);
			if (a[2] == 'r')
				o->ready_fd = (int)n;
			else
				o->exit_fd = (int)n;
		} else {
			fatal("unknown option '%s' (see --help)", a);
		}
	}
	if (!attach && (!o->cmd || !o->cmd[0]))
		fatal("run: no command given (patchbay run [options] -- COMMAND)");
	if (attach && !o->netns)
		fatal("attach: --netns is required");
	if (o->join && !o->address)
		fatal("--join needs --address A.B.C.D/N for the namespace (the daemon's DHCP server also answers a client run inside it)");
	if (!o->join && (o->address || o->gateway || o->dns || o->segment))
		fatal("--address, --gateway, --dns and --segment go with --join");
	if (o->join && (o->net[0] || o->capture || o->stats_file))
		fatal("with --join the daemon's router is used: --net, --capture and --stats-file belong to that daemon");
}

/* --join: the namespace's addressing from --address/--gateway/--dns. */
static void join_info(const struct run_opts *o, struct pb_router_info *ri)
{
	char buf[64];
	char *slash;
	long n;
	struct in_addr a;

	memset(ri, 0, sizeof(*ri));
	if (strlen(o->address) >= sizeof(buf))
		fatal("--address: too long");
	strcpy(buf, o->address);
	slash = strchr(buf, '/');
	n = slash ? strtol(slash + 1, NULL, 10) : 24;
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1 || n < 8 || n > 30)
		fatal("--address: want A.B.C.D/N (N 8-30), not '%s'", o->address);
	ri->dhcp_start = a.s_addr;
	ri->mask = htonl((uint32_t)(0xffffffffull << (32 - n)));
	ri->net = a.s_addr & ri->mask;
	ri->gateway = ri->net | htonl(2);
	ri->dns = ri->net | htonl(3);
	ri->mtu = 1500;
	if (o->gateway && inet_pton(AF_INET, o->gateway, &ri->gateway) != 1)
		fatal("--gateway: '%s' is not an IPv4 address", o->gateway);
	if (o->dns && inet_pton(AF_INET, o->dns, &ri->dns) != 1)
		fatal("--dns: '%s' is not an IPv4 address", o->dns);
}

/* --join: hand the TAP to the daemon as a port (fd passed with the
 * request); dies with the daemon's error. */
static void join_add(struct run_opts *o, int fd)
{
	char line[256], err[256];
	char *reply = NULL;

	snprintf(o->port_id, sizeof(o->port_id), "ns%ld", (long)getpid());
	snprintf(line, sizeof(line),
		 "{\"id\":1,\"cmd\":\"port-add\",\"spec\":\"tap,id=%s,fd=passed%s%s\"}",
		 o->port_id, o->segment ? ",segment=" : "",
		 o->segment ? o->segment : "");
	if (ctl_request(o->join, line, fd, &reply, err, sizeof(err)) < 0)
		fatal("--join %s: %s", o->join, err);
	if (!strstr(reply, "\"ok\":true"))
		fatal("--join %s: the daemon refused the port: %s", o->join, reply);
	free(reply);
	close(fd);
}

static void join_del(const struct run_opts *o)
{
	char line[128], err[256];
	char *reply = NULL;

	snprintf(line, sizeof(line),
		 "{\"id\":2,\"cmd\":\"port-del\",\"netdev\":\"%s\"}",
		 o->port_id);
	if (ctl_request(o->join, line, -1, &reply, err, sizeof(err)) == 0)
		free(reply);
}

/* Before set-up: what the sandbox must leave us, and the private mount
 * namespace.  With --join there is no router here: the process only
 * waits, talking to the daemon's control socket by path, and stays as it
 * is. */
static void sandbox_start(struct run_opts *o)
{
	char err[512];

	if (o->join) {
		o->sb.off = true;
		return;
	}
	sandbox_scan_spec(&o->sb, o->net + (o->net[0] == ','));
	sandbox_keep_file(&o->sb, o->stats_file);
	if (sandbox_early(&o->sb, err, sizeof(err)))
		fatal("%s", err);
}

/* After the TAP is a port: the network process narrows itself (never the
 * command, which is another process by now). */
static void sandbox_finish(struct run_opts *o)
{
	char err[512];

	if (sandbox_apply(&o->sb, err, sizeof(err)))
		fatal("%s", err);
	sandbox_free(&o->sb);
	if (o->verbosity > 0 && !o->join)
		fprintf(stderr, "patchbay: info: sandbox: %s\n", o->sb.summary);
}

/* Instance with one switch, the router and (later) the TAP. */
static pb_t *make_instance(const struct run_opts *o, struct pb_router_info *ri)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION };
	char spec[NET_KEYS_MAX + 64];
	pb_t *pb;
	int rc;

	cfg.log_level = o->verbosity < 0 ? PB_LOG_WARN
			: o->verbosity == 0 ? PB_LOG_WARN
					    : PB_LOG_DEBUG;
	if (o->verbosity == 1)
		cfg.log_level = PB_LOG_INFO;
	cfg.max_ports = 16;
	rc = pb_new(&cfg, &pb);
	if (rc)
		fatal("cannot start: %s", pb_strerror(rc));
	if (pb_segment_add(pb, "switch,id=sw0"))
		fatal("%s", pb_errmsg(pb));
	snprintf(spec, sizeof(spec), "user,id=net0%s", o->net);
	if (pb_netdev_add(pb, spec))
		fatal("--net: %s", pb_errmsg(pb));
	if (pb_router_info(pb, "net0", ri))
		fatal("%s", pb_errmsg(pb));
	return pb;
}

static void add_tap(pb_t *pb, const struct run_opts *o, int fd)
{
	char spec[128];

	snprintf(spec, sizeof(spec), "tap,id=ns0,fd=%d", fd);
	if (pb_netdev_add(pb, spec))
		fatal("%s", pb_errmsg(pb));
	if (o->capture) {
		char cap[PATH_MAX + 64];

		if (strchr(o->capture, ','))
			fatal("--capture: the path must not contain ','");
		snprintf(cap, sizeof(cap), "id=cap0,netdev=ns0,file=%s", o->capture);
		if (pb_capture_add(pb, cap))
			fatal("--capture: %s", pb_errmsg(pb));
	}
}

/*
 * The event loop of run/attach: until the child exits (run), a terminating
 * signal, or exit_fd closing (attach).  Returns the exit status.
 */
/* The signals the parent takes through a signalfd. */
static void our_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGHUP);
	sigaddset(mask, SIGUSR1);
	sigaddset(mask, SIGCHLD);
}

/*
 * Block our signals (they come through serve()'s signalfd), make a socket
 * pair and fork.  In the child, signals are as they were and *end is its
 * end of the pair; in the parent, *end is the parent's.  Returns fork()'s
 * result.
 */
static pid_t fork_with_pair(int *end)
{
	sigset_t mask;
	int sv[2];
	pid_t child;

	our_signals(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		fatal("socketpair: %s", strerror(errno));
	child = fork();
	if (child < 0)
		fatal("fork: %s", strerror(errno));
	if (child == 0) {
		sigset_t none;

		sigemptyset(&none);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(sv[0]);
		*end = sv[1];
	} else {
		close(sv[1]);
		*end = sv[0];
	}
	return child;
}

void note_ready(void *opaque, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	*(bool *)opaque = true;
}

static int serve(pb_t *pb, const struct run_opts *o, pid_t child)
{
	sigset_t mask;
	int sfd, status = 0;
	bool running = true;

	our_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		fatal("signalfd: %s", strerror(errno));
	/* with a router of our own, one epoll_wait() a turn: the signal and
	 * exit descriptors are watched by its loop */
	bool ours = false;

	if (pb && (pb_watch_fd(pb, sfd, EPOLLIN, note_ready, &ours) < 0 ||
		   (o->exit_fd >= 0 &&
		    pb_watch_fd(pb, o->exit_fd, EPOLLIN, note_ready, &ours) < 0)))
		fatal("cannot watch the signal descriptors");
	while (running) {
		struct pollfd pfd[3] = {
			{ .fd = -1 },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = o->exit_fd, .events = POLLIN },
		};
		int n;

		if (pb) {
			ours = false;
			pb_wait(pb, -1);
			if (!ours)
				continue;
			n = poll(pfd, o->exit_fd >= 0 ? 3 : 2, 0);
		} else {
			n = poll(pfd, o->exit_fd >= 0 ? 3 : 2, -1);
		}
		if (n < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (o->exit_fd >= 0 && pfd[2].revents) {
			char b[64];

			if (read(o->exit_fd, b, sizeof(b)) <= 0)
				running = false;
		}
		if (!pfd[1].revents)
			continue;
		struct signalfd_siginfo si;

		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			switch (si.ssi_signo) {
			case SIGUSR1:
				if (pb) {
					pb_log_stats(pb);
					write_stats(pb, o->stats_file);
				}
				break;
			case SIGCHLD:
				if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
					running = false;
					child = 0;
				}
				break;
			default:
				/* pass it on to the command; stop when it is gone */
				if (child > 0)
					kill(child, (int)si.ssi_signo);
				else
					running = false;
				break;
			}
		}
	}
	if (pb) {
		pb_unwatch_fd(pb, sfd);
		if (o->exit_fd >= 0)
			pb_unwatch_fd(pb, o->exit_fd);
	}
	close(sfd);
	if (pb)
		write_stats(pb, o->stats_file);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int run_main(int argc, char **argv)
{
	struct pb_router_info ri;
	struct run_opts o;
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], resolv[PATH_MAX + 16];
	int sock, fd, rc;
	pid_t child;
	FILE *f;

	parse(argc, argv, false, &o);
	raise_nofile();
	o.sb.keep_kill = true;	/* signals go on to the command */
	sandbox_start(&o);
	pb_t *pb = NULL;

	if (o.join)
		join_info(&o, &ri);
	else
		pb = make_instance(&o, &ri);

	/* a resolv.conf for the command, pointing at the router */
	if (!tmp || !*tmp || strlen(tmp) > sizeof(dir) - 32)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/patchbay-run-XXXXXX", tmp);
	if (!mkdtemp(dir))
		fatal("mkdtemp: %s", strerror(errno));
	snprintf(cleanup_dir, sizeof(cleanup_dir), "%s", dir);
	cleanup_owner = getpid();
	snprintf(resolv, sizeof(resolv), "%s/resolv.conf", dir);
	f = fopen(resolv, "we");
	if (!f)
		fatal("%s: %s", resolv, strerror(errno));
	fprintf(f, "nameserver %s\n", inet_ntoa((struct in_addr){ ri.dns }));
	if (ri.domain[0])
		fprintf(f, "search %s\n", ri.domain);
	fclose(f);
	chmod(resolv, 0644);
	chmod(dir, 0755);

	child = fork_with_pair(&sock);
	if (child == 0)
		run_child(&o, &ri, resolv, sock);
	fd = recv_fd(sock);
	/* the child has bind-mounted it: the file is no longer needed here */
	remove_cleanup_dir();
	if (o.join)
		join_add(&o, fd);
	else
		add_tap(pb, &o, fd);
	if (write(sock, "g", 1) != 1)
		fatal("the command's process is gone");
	close(sock);
	sandbox_finish(&o);
	rc = serve(pb, &o, child);
	if (o.join)
		join_del(&o);
	pb_free(pb);
	remove_cleanup_dir();
	return rc;
}

int attach_main(int argc, char **argv)
{
	struct pb_router_info ri;
	struct run_opts o;
	int sock, fd, status, rc;
	pid_t child;

	parse(argc, argv, true, &o);
	raise_nofile();
	sandbox_start(&o);
	pb_t *pb = NULL;

	if (o.join)
		join_info(&o, &ri);
	else
		pb = make_instance(&o, &ri);

	child = fork_with_pair(&sock);
	if (child == 0)
		attach_child(&o, &ri, sock);
	fd = recv_fd(sock);
	close(sock);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (o.join)
		join_add(&o, fd);
	else
		add_tap(pb, &o, fd);
	if (o.ready_fd >= 0) {
		if (write(o.ready_fd, "1", 1) != 1)
			fatal("--ready-fd: %s", strerror(errno));
		close(o.ready_fd);
	}
	sandbox_finish(&o);
	if (o.verbosity >= 0)
		fprintf(stderr, "patchbay: info: ready\n");
	rc = serve(pb, &o, 0);
	if (o.join)
		join_del(&o);
	pb_free(pb);
	return rc;
}
