// SPDX-License-Identifier: MIT
/* main.c: the patchbay daemon: options, default topology, signals, loop. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "patchbay.h"
#include "run.h"
#include "sandbox.h"

#define MAX_SPECS 256

static const char usage_text[] =
	"Usage: patchbay [options]\n"
	"       patchbay run [options] -- COMMAND [ARGS...]   (see run --help)\n"
	"       patchbay attach --netns NAME|PATH|PID [options]\n"
	"       patchbay ctl [--ctl PATH] [--json] COMMAND [ARGS]  (see ctl --help)\n"
	"\n"
	"A user-space virtual Ethernet: segments (switches, hubs) joining QEMU\n"
	"guests, TAP devices, other peers and a user-mode router (NAT, DHCP).\n"
	"With no -netdev, patchbay starts one switch with the router and a\n"
	"stream listener on a unix socket, and prints the QEMU options that\n"
	"attach a VM to it.\n"
	"\n"
	"Options:\n"
	"  -netdev SPEC, --netdev SPEC  add a backend (QEMU -netdev syntax):\n"
	"      stream,id=ID,server=on|off,addr.type=inet|unix|fd,addr.host=H,\n"
	"             addr.port=P,addr.path=PATH,addr.str=FD[,reconnect-ms=MS]\n"
	"      socket,id=ID,listen=[H]:P | connect=H:P | mcast=MADDR:P[,localaddr=IP]\n"
	"             | udp=H:P,localaddr=H:P | fd=FD\n"
	"      dgram,id=ID,local.type=inet|unix|fd,local.host=,local.port=,\n"
	"             local.path=,local.str=,remote.type=inet|unix,remote.host=,\n"
	"             remote.port=,remote.path=\n"
	"      tap,id=ID[,ifname=NAME][,fd=FD][,script=PATH|no][,downscript=PATH|no]\n"
	"             [,vnet_hdr=on|off][,offload=on|off][,netns=NAME|PATH]\n"
	"      user,id=ID[,net=ADDR/N][,host=IP][,dns=IP][,dhcpstart=IP][,restrict=on]\n"
	"             [,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT]...\n"
	"             [,guestfwd=[tcp]:ADDR:PORT-cmd:CMD|-HOST:PORT|-unix:PATH]...\n"
	"             [,mtu=N][,host-loopback=on|off][,outbound-addr=IP][,max-flows=N]\n"
	"             [,max-flows-per-guest=N][,max-udp-flows=N][,max-tcp-half-open=N]\n"
	"             [,max-tcp-half-open-per-guest=N]\n"
	"             [,max-frags=N][,max-frags-per-guest=N][,max-tftp-sessions=N]\n"
	"             [,max-tftp-per-guest=N][,max-leases=N]\n"
	"             [,hostname=][,domainname=][,dnssearch=]...[,bootfile=]\n"
	"             [,tftp-server-name=][,dhcp-host=MAC,,IP[,,NAME]]...\n"
	"             [,dhcp-option=CODE,,VALUE]...[,dhcp=on|off][,dhcp-lease=S]\n"
	"             [,dns-upstream=IP[:PORT]]...|[,dns-resolv-conf=PATH]\n"
	"             [,tftp=DIR][,smb=DIR][,smbserver=IP][,ipv4=on|off]\n"
	"             [,ipv6=on|off][,ipv6-prefix=P][,ipv6-prefixlen=N]\n"
	"             [,ipv6-host=IP6][,ipv6-dns=IP6]\n"
	"      every type also takes segment=NAME (default: the first segment)\n"
	"  --segment SPEC               add a segment: switch,id=NAME[,fdb-size=N]\n"
	"                               [,fdb-per-port=N][,ageing=SECONDS] or\n"
	"                               hub,id=NAME\n"
	"                               (default: one switch named sw0)\n"
	"  --capture SPEC               pcap capture: id=ID,netdev=ID|segment=NAME,\n"
	"                               file=PATH[,maxlen=BYTES]\n"
	"  -object filter-dump,id=ID,netdev=ID,file=PATH[,maxlen=BYTES]\n"
	"                               the same in QEMU's syntax\n"
	"  --stats-file PATH            write counters as JSON at exit and on SIGUSR1\n"
	"  --socket PATH                path of the default unix listener\n"
	"  --ctl PATH                   control socket (JSON lines, owner-only; the\n"
	"                               default topology has one: ctl.sock beside\n"
	"                               the default listener)\n"
	"  --max-ctl-clients N          control clients served at once (1-256,\n"
	"                               default 32; more get an EBUSY line)\n"
	"  --runas USER|UID[:GID]       as root: the user to become after set-up\n"
	"                               (default: nobody)\n"
	"  --no-sandbox                 keep user, capabilities, file system and\n"
	"                               system calls (for debugging)\n"
	"  -v, --verbose                debug log output\n"
	"  -q, --quiet                  only warnings and errors\n"
	"  -h, --help                   this text\n"
	"  -V, --version                print the version\n"
	"\n"
	"Signals: SIGINT/SIGTERM shut down cleanly (socket files are removed);\n"
	"SIGUSR1 writes the stats file and logs the counters.\n"
	"See patchbay(1) for details.\n";

struct spec {
	enum { SPEC_SEGMENT, SPEC_NETDEV, SPEC_CAPTURE } kind;
	const char *text;
};

/* Set once the instance exists, so that a fatal start-up error still
 * removes the socket files made so far. */
static pb_t *live_pb;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
						   noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("patchbay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pb_free(live_pb);
	exit(1);
}

static int write_stats(pb_t *pb, const char *path)
{
	char tmp[4096];
	int fd, rc;

	if (!path)
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = pb_stats_json(pb, fd);
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		fprintf(stderr, "patchbay: warning: cannot write %s: %s\n",
			path, pb_strerror(rc));
	return rc;
}

/* name in the private runtime directory (see ctl_runtime_dir()). */
static void default_socket(char *out, size_t size, const char *name)
{
	char dir[3072], err[512];

	if (ctl_runtime_dir(dir, sizeof(dir), true, err, sizeof(err)))
		die("%s", err);
	snprintf(out, size, "%s/%s", dir, name);
}

/* Translate "-object filter-dump,..." into a capture spec. */
static const char *object_to_capture(const char *s)
{
	if (strncmp(s, "filter-dump,", 12))
		die("-object: only filter-dump is supported, not '%s'", s);
	return s;
}

/* A fresh epoll set of the n descriptors in pfd (their poll events),
 * watched by pb's loop in place of old; returns it, or -1 when there is
 * none (out of descriptors: the caller polls instead). */
static int watch_ours(pb_t *pb, int old, const struct pollfd *pfd, int n,
		      bool *flag)
{
	int ep;

	if (old >= 0) {
		pb_unwatch_fd(pb, old);
		close(old);	/* first: the new one may need its number */
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = {
			.events = (pfd[i].events & POLLIN ? EPOLLIN : 0) |
				  (pfd[i].events & POLLOUT ? EPOLLOUT : 0),
			.data.fd = pfd[i].fd,
		};

		if (epoll_ctl(ep, EPOLL_CTL_ADD, pfd[i].fd, &ev) < 0) {
			close(ep);
			return -1;
		}
	}
	if (pb_watch_fd(pb, ep, EPOLLIN, note_ready, flag) < 0) {
		close(ep);
		return -1;
	}
	return ep;
}

int main(int argc, char **argv)
{
	struct spec specs[MAX_SPECS];
	int nspecs = 0, verbosity = 0, nnetdev = 0, nseg = 0;
	int max_ctl = CTL_CLIENTS_DEFAULT;
	const char *stats_file = NULL, *sock_path = NULL, *ctl_path = NULL;
	char default_sock[4096] = "", default_ctl[4096], spec_buf[4200];
	struct ctl *ctl = NULL;
	struct sandbox sb = { 0 };
	bool test_trap = false;
	struct pb_config cfg = { .version = PB_CONFIG_VERSION };
	bool running = true;
	sigset_t mask;
	pb_t *pb;
	int sfd, rc;

	if (argc > 1 && !strcmp(argv[1], "run"))
		return run_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "attach"))
		return attach_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_client_main(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int kind = -1;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("patchbay %s\n", PB_VERSION_STRING);
			return 0;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbosity++;
			continue;
		} else if (!strcmp(a, "-vv")) {
			verbosity += 2;
			continue;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			verbosity = -1;
			continue;
		} else if (!strcmp(a, "--no-sandbox")) {
			sb.off = true;
			continue;
		} else if (!strcmp(a, "--sandbox-test-trap")) {
			/* not in --help: the test suite's forbidden call */
			test_trap = true;
			continue;
		} else if (!strcmp(a, "--runas")) {
			if (!val)
				die("%s needs an argument", a);
			sb.runas = val;
			i++;
			continue;
		} else if (!strcmp(a, "-netdev") || !strcmp(a, "--netdev")) {
			kind = SPEC_NETDEV;
			nnetdev++;
		} else if (!strcmp(a, "--segment")) {
			kind = SPEC_SEGMENT;
			nseg++;
		} else if (!strcmp(a, "--capture")) {
			kind = SPEC_CAPTURE;
		} else if (!strcmp(a, "-object") || !strcmp(a, "--object")) {
			if (!val)
				die("%s needs an argument", a);
			val = object_to_capture(val);
			kind = SPEC_CAPTURE;
		} else if (!strcmp(a, "--stats-file")) {
			if (!val)
				die("%s needs an argument", a);
			stats_file = val;
			i++;
			continue;
		} else if (!strcmp(a, "--max-ctl-clients")) {
			char *end;
			long v = val ? strtol(val, &end, 10) : 0;

			if (!val || !*val || *end || v < 1 || v > CTL_MAX_CLIENTS)
				die("--max-ctl-clients must be a number from 1 to %d, not '%s'",
				    CTL_MAX_CLIENTS, val ? val : "");
			max_ctl = (int)v;
			i++;
			continue;
		} else if (!strcmp(a, "--socket") || !strcmp(a, "--ctl")) {
			if (!val)
				die("%s needs an argument", a);
			if (!strcmp(a, "--ctl"))
				ctl_path = val;
			else
				sock_path = val;
			i++;
			continue;
		} else {
			die("unknown option '%s' (see --help)", a);
		}
		if (!val)
			die("%s needs an argument", a);
		if (nspecs == MAX_SPECS)
			die("too many options (at most %d)", MAX_SPECS);
		specs[nspecs].kind = kind;
		specs[nspecs].text = val;
		nspecs++;
		i++;
	}
	if (sock_path && nnetdev)
		die("--socket sets the default listener; with -netdev give the path there");

	cfg.log_level = verbosity < 0 ? PB_LOG_WARN
			: verbosity == 0 ? PB_LOG_INFO
					 : PB_LOG_DEBUG;
	for (int i = 0; i < nspecs; i++)
		sandbox_scan_spec(&sb, specs[i].text);
	if (sandbox_early(&sb, spec_buf, sizeof(spec_buf)))
		die("%s", spec_buf);
	rc = pb_new(&cfg, &pb);
	if (rc)
		die("cannot start: %s", pb_strerror(rc));
	live_pb = pb;
	raise_nofile();

	/* Segments first, so that netdevs can name them in any order. */
	for (int i = 0; i < nspecs; i++) {
		if (specs[i].kind != SPEC_SEGMENT)
			continue;
		rc = pb_segment_add(pb, specs[i].text);
		if (rc)
			die("--segment %s: %s", specs[i].text, pb_errmsg(pb));
	}
	if (!nseg && pb_segment_add(pb, "switch,id=sw0"))
		die("default segment: %s", pb_errmsg(pb));
	if (!nnetdev) {
		if (!sock_path) {
			default_socket(default_sock, sizeof(default_sock),
				       "patchbay.sock");
			sock_path = default_sock;
		}
		if (strchr(sock_path, ','))
			die("--socket: the path must not contain ','");
		rc = pb_netdev_add(pb, "user,id=net0");
		if (rc)
			die("default router: %s", pb_errmsg(pb));
		snprintf(spec_buf, sizeof(spec_buf),
			 "stream,id=vm,server=on,addr.type=unix,addr.path=%s",
			 sock_path);
		rc = pb_netdev_add(pb, spec_buf);
		if (rc)
			die("default listener: %s", pb_errmsg(pb));
	}
	for (int i = 0; i < nspecs; i++) {
		if (specs[i].kind != SPEC_NETDEV)
			continue;
		rc = pb_netdev_add(pb, specs[i].text);
		if (rc)
			die("-netdev %s: %s", specs[i].text, pb_errmsg(pb));
	}
	for (int i = 0; i < nspecs; i++) {
		const char *t = specs[i].text;

		if (specs[i].kind != SPEC_CAPTURE)
			continue;
		if (!strncmp(t, "filter-dump,", 12)) {
			snprintf(spec_buf, sizeof(spec_buf), "type=%s", t);
			t = spec_buf;
		}
		rc = pb_capture_add(pb, t);
		if (rc)
			die("capture %s: %s", specs[i].text, pb_errmsg(pb));
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));

	if (!nnetdev) {
		printf("patchbay: a segment with the user-mode router (10.0.2.0/24:\n"
		       "  gateway 10.0.2.2 = this host's 127.0.0.1, DHCP from 10.0.2.15)\n"
		       "  and a VM listener at %s\n"
		       "Attach QEMU VMs (each with its own MAC address) with:\n"
		       "  -netdev stream,id=n0,server=off,addr.type=unix,addr.path=%s \\\n"
		       "  -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56\n",
		       sock_path, sock_path);
		fflush(stdout);
	}
	if (!ctl_path && !nnetdev) {
		default_socket(default_ctl, sizeof(default_ctl), CTL_SOCK_NAME);
		ctl_path = default_ctl;
	}
	if (ctl_path) {
		ctl = ctl_open(pb, ctl_path, max_ctl, spec_buf,
			       sizeof(spec_buf));
		if (!ctl)
			die("--ctl: %s", spec_buf);
		if (verbosity >= 0)
			fprintf(stderr, "patchbay: info: control socket %s\n",
				ctl_path);
	}
	sandbox_keep_file(&sb, sock_path);
	sandbox_keep_file(&sb, ctl_path);
	sandbox_keep_file(&sb, stats_file);
	if (sandbox_apply(&sb, spec_buf, sizeof(spec_buf)))
		die("%s", spec_buf);
	sandbox_free(&sb);
	if (verbosity >= 0)
		fprintf(stderr, "patchbay: info: sandbox: %s\n", sb.summary);
	if (verbosity >= 0)
		fputs("patchbay: info: ready\n", stderr);
	if (test_trap)
		sandbox_test_trap();

	/*
	 * One epoll_wait() a turn: the library's fds and ours (signals,
	 * control clients) in one wait.  Ours sit in an epoll set of their
	 * own (dep), itself watched by the library's loop; when it is ready,
	 * poll() says which and the control code runs as before.  The set is
	 * rebuilt after every control turn (clients come and go, and a
	 * closed client's number may come back as a new one).
	 */
	struct pollfd pfd[2 + CTL_POLLFDS];
	bool ours = true;
	int dep = -1, nfds = 0;

	while (running) {
		if (ours) {
			pfd[0] = (struct pollfd){ .fd = pb_fd(pb), .events = POLLIN };
			pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
			nfds = 2 + (ctl ? ctl_pollfds(ctl, pfd + 2) : 0);
			dep = watch_ours(pb, dep, pfd + 1, nfds - 1, &ours);
		}
		int n;

		if (dep >= 0) {
			ours = false;
			rc = pb_wait(pb, ctl && ctl_busy(ctl) ? 0 : -1);
			if (!rc && !ours && !(ctl && ctl_busy(ctl)))
				continue;
			n = poll(pfd + 1, (nfds_t)nfds - 1, 0);
		} else {
			/* no descriptor for our epoll set: poll everything */
			n = poll(pfd, (nfds_t)nfds,
				 ctl && ctl_busy(ctl) ? 0 : pb_next_timeout(pb));
			rc = n >= 0 && pfd[0].revents ? pb_dispatch(pb) : 0;
		}
		ours = true;
		if (rc)
			fprintf(stderr, "patchbay: error: dispatch: %s\n",
				pb_strerror(rc));
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pfd[1].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR1) {
					pb_log_stats(pb);
					write_stats(pb, stats_file);
				} else if (si.ssi_signo != SIGHUP) {
					running = false;
				}
			}
		}
		if (ctl && n >= 0)
			ctl_handle(ctl, pfd + 2, nfds - 2);
	}
	if (dep >= 0) {
		pb_unwatch_fd(pb, dep);
		close(dep);
	}
	ctl_close(ctl);
	if (verbosity >= 0)
		fputs("patchbay: info: shutting down\n", stderr);
	pb_log_stats(pb);
	write_stats(pb, stats_file);
	pb_free(pb);
	live_pb = NULL;
	close(sfd);
	return 0;
}
