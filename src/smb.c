// SPDX-License-Identifier: MIT
/* smb.c: smb=DIR: the system's smbd, one per guest connection, serving a
 * host directory as the share "qemu". */

/*
 * Theory of operation.
 *
 * At start-up we find smbd (PATH, then /usr/sbin, /usr/local/sbin, /sbin;
 * not found is a start-up error naming the Debian package), make a private
 * directory (mkdtemp) holding a generated smb.conf and every directory
 * smbd writes to (pid, lock, state, cache, private, ncalrpc, logs), and
 * register two forwards, SMBSERVER:445 and :139 (SMBSERVER defaults to .4
 * of net=, as in QEMU).  smbd never listens on a port of ours: like an
 * inetd service, one smbd is started per guest connection with the
 * connection on its standard input and output.
 *
 * smbd 4.x insists on an IP peer in that mode (with a unix socket pair it
 * exits at once: "get_remote_hostname failed"), so the connection it gets
 * is a TCP connection over 127.0.0.1 made for it: a one-shot listener on an
 * ephemeral loopback port, our connect() and the accept() of exactly our
 * connection (the peer address is checked), then the listener is closed.
 * The TCP translation joins the guest's connection to our end.
 *
 * smbd runs in its own session (when it stops it signals its whole process
 * group, which must not be ours), double-forked so that it is not our
 * child (the embedder's SIGCHLD handling is left alone).  The intermediate
 * child reports the grandchild's PID; the grandchild waits for a go-ahead
 * until we hold a pidfd for it, so that the pidfd is surely smbd's.  The
 * pidfds (at most SMB_CONN_MAX; a further connection is refused while all
 * are alive) let smb_free() stop every smbd still running, after which
 * the private directory is removed.  An smbd also exits by itself when its
 * guest connection ends.
 *
 * The share is read-write, guests are mapped to the daemon's own user
 * (guest ok, force user), printing is off.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "opts.h"
#include "router.h"
#include "smb.h"

#define SMB_STOP_WAIT_MS 3000

struct smb_server {
	char dir[1024];		/* the private temporary directory */
	char conf[1100];
	char logdir[1100];
	char smbd[PATH_MAX];
	char share[PATH_MAX];
	int pidfd[SMB_CONN_MAX];
	struct smb_stats st;
};

static const char *const smb_subdirs[] = {
	"private", "pid", "lock", "state", "cache", "ncalrpc", "log",
	"bind-dns",
};

/* ---- start-up ----------------------------------------------------------------- */

static bool find_smbd(char *out, size_t size)
{
	static const char *const fallback[] = { "/usr/sbin", "/usr/local/sbin",
						"/sbin" };
	const char *path = getenv("PATH");
	char buf[4096];
	char *save = NULL;

	if (path && strlen(path) < sizeof(buf)) {
		strcpy(buf, path);
		for (char *d = strtok_r(buf, ":", &save); d;
		     d = strtok_r(NULL, ":", &save)) {
			if (d[0] != '/')
				continue;	/* never a relative PATH entry */
			if (snprintf(out, size, "%s/smbd", d) < (int)size &&
			    access(out, X_OK) == 0)
				return true;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(fallback); i++) {
		snprintf(out, size, "%s/smbd", fallback[i]);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

/* A value smb.conf takes literally: no line breaks, no %-substitutions,
 * no blanks at the ends (Samba trims them). */
static bool conf_safe(const char *s)
{
	size_t n = strlen(s);

	return n && !strpbrk(s, "\n\r%") && s[0] != ' ' && s[0] != '\t' &&
	       s[n - 1] != ' ' && s[n - 1] != '\t';
}

static int write_conf(struct smb_server *s, const char *user, char *err,
		      size_t errlen)
{
	int fd = open(s->conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	const char *d = s->dir;

	if (!f) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "smb: cannot write %s: %s", s->conf,
			 strerror(errno));
		return -EIO;
	}
	fprintf(f,
		"# Written by patchbay for smb=: private to one instance,\n"
		"# removed when it stops.  smbd is started per connection.\n"
		"[global]\n"
		"\tserver role = standalone server\n"
		"\tserver string = patchbay\n"
		"\tworkgroup = WORKGROUP\n"
		"\tsecurity = user\n"
		"\tmap to guest = Bad User\n"
		"\tguest account = %s\n"
		"\tprivate dir = %s/private\n"
		"\tsmb passwd file = %s/private/smbpasswd\n"
		"\tpid directory = %s/pid\n"
		"\tlock directory = %s/lock\n"
		"\tstate directory = %s/state\n"
		"\tcache directory = %s/cache\n"
		"\tncalrpc dir = %s/ncalrpc\n"
		"\tbinddns dir = %s/bind-dns\n"
		"\tlog file = %s/log/smbd.log\n"
		"\tmax log size = 1000\n"
		"\tinterfaces = 127.0.0.1\n"
		"\tbind interfaces only = yes\n"
		"\tload printers = no\n"
		"\tprinting = bsd\n"
		"\tprintcap name = /dev/null\n"
		"\tdisable spoolss = yes\n"
		"\tusershare max shares = 0\n"
		"[" SMB_SHARE "]\n"
		"\tpath = %s\n"
		"\tread only = no\n"
		"\tguest ok = yes\n"
		"\tguest only = yes\n"
		"\tforce user = %s\n",
		user, d, d, d, d, d, d, d, d, d, s->share, user);
	if (fclose(f) != 0) {
		snprintf(err, errlen, "smb: cannot write %s: %s", s->conf,
			 strerror(errno));
		return -EIO;
	}
	return 0;
}

/* The address for SMB: smbserver= or .4 of net=. */
static int smb_address(struct router *r, const char *v, uint32_t *out,
		       char *err, size_t errlen)
{
	struct in_addr a;

	if (!v) {
		*out = r->net | htonl(4);
	} else if (inet_pton(AF_INET, v, &a) == 1) {
		*out = a.s_addr;
	} else {
		snprintf(err, errlen, "smbserver: '%s' is not an IPv4 address", v);
		return -EINVAL;
	}
	if (!router_in_net(r, *out) || *out == r->net ||
	    (*out | r->mask) == 0xffffffffu || *out == r->gw || *out == r->dns) {
		snprintf(err, errlen, "smbserver: %s must be an address inside net=, other than the gateway and DNS",
			 v ? v : "the default .4");
		return -EINVAL;
	}
	return 0;
}

int smb_configure(struct router *r, const struct opts *o, char *err,
		  size_t errlen)
{
	const char *dir = opts_get(o, "smb");
	const char *server = opts_get(o, "smbserver");
	const char *tmp = getenv("TMPDIR");
	static const uint16_t ports[] = { 445, 139 };
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	struct smb_server *s;
	struct stat st;
	uint32_t addr;
	int rc;

	if (!dir) {
		if (server) {
			snprintf(err, errlen, "smbserver: needs smb=DIR");
			return -EINVAL;
		}
		return 0;
	}
	if ((rc = smb_address(r, server, &addr, err, errlen)))
		return rc;
	if (r->nguestfwd + ARRAY_SIZE(ports) > GUESTFWD_MAX) {
		snprintf(err, errlen, "smb: no room for its forwards (guestfwd at most %d)",
			 GUESTFWD_MAX);
		return -ENOSPC;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "smb: out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < SMB_CONN_MAX; i++)
		s->pidfd[i] = -1;
	if (!find_smbd(s->smbd, sizeof(s->smbd))) {
		free(s);
		snprintf(err, errlen, "smb: smbd not found in PATH or /usr/sbin: install Samba (Debian package 'samba')");
		return -ENOENT;
	}
	rc = !realpath(dir, s->share) || stat(s->share, &st) < 0 ? errno
		: !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
	if (rc) {
		int e = rc;

		free(s);
		snprintf(err, errlen, "smb: '%s' is not a directory: %s", dir,
			 strerror(e));
		return -e;
	}
	if (!conf_safe(s->share)) {
		free(s);
		snprintf(err, errlen, "smb: '%s': smbd cannot take a path with line breaks, '%%' or blanks at its ends",
			 dir);
		return -EINVAL;
	}
	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) || !pwp ||
	    !conf_safe(pw.pw_name)) {
		free(s);
		snprintf(err, errlen, "smb: the daemon's user (uid %u) has no usable name",
			 (unsigned)geteuid());
		return -EINVAL;
	}
	if (!tmp || tmp[0] != '/' || !conf_safe(tmp))
		tmp = "/tmp";
	if (snprintf(s->dir, sizeof(s->dir), "%s/patchbay-smb.XXXXXX", tmp) >=
		    (int)sizeof(s->dir) - 64 ||
	    !mkdtemp(s->dir)) {
		int e = errno;

		free(s);
		snprintf(err, errlen, "smb: cannot make a private directory in %s: %s",
			 tmp, strerror(e));
		return -e;
	}
	r->smb = s;	/* from here on smb_free() cleans up */
	for (size_t i = 0; i < ARRAY_SIZE(smb_subdirs); i++) {
		char p[1100];

		snprintf(p, sizeof(p), "%s/%s", s->dir, smb_subdirs[i]);
		if (mkdir(p, 0700) < 0) {
			snprintf(err, errlen, "smb: mkdir %s: %s", p,
				 strerror(errno));
			return -EIO;
		}
	}
	snprintf(s->conf, sizeof(s->conf), "%s/smb.conf", s->dir);
	snprintf(s->logdir, sizeof(s->logdir), "%s/log", s->dir);
	if ((rc = write_conf(s, pw.pw_name, err, errlen)))
		return rc;
	for (size_t i = 0; i < ARRAY_SIZE(ports); i++) {
		struct guestfwd *g = &r->guestfwd[r->nguestfwd++];

		memset(g, 0, sizeof(*g));
		g->ip = addr;
		g->port = ports[i];
		g->kind = GFWD_SMB;
		str_copy(g->target, sizeof(g->target), "smbd");
	}
	{
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &addr, a, sizeof(a));
		log_info(&r->pb->log, "smb: sharing %s as \\\\%s\\" SMB_SHARE
			 " (%s, config %s)", s->share, a, s->smbd, s->conf);
	}
	return 0;
}

/* ---- connections -------------------------------------------------------------- */

/* Close the pidfds of smbd processes that have ended; free slots. */
static unsigned smb_reap(struct smb_server *s)
{
	unsigned running = 0;

	for (int i = 0; i < SMB_CONN_MAX; i++) {
		struct pollfd p = { .fd = s->pidfd[i], .events = POLLIN };

		if (s->pidfd[i] < 0)
			continue;
		if (poll(&p, 1, 0) == 1) {
			close(s->pidfd[i]);
			s->pidfd[i] = -1;
		} else {
			running++;
		}
	}
	return running;
}

/* A TCP connection over 127.0.0.1 to ourselves: *ours and *theirs. */
static int loopback_pair(int *ours, int *theirs)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in mine = { 0 }, peer = { 0 };
	socklen_t len = sizeof(a);
	int l, c = -1, rc;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		goto fail;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto fail;
	len = sizeof(mine);
	if (getsockname(c, (struct sockaddr *)&mine, &len) < 0)
		goto fail;
	/* Our connection is queued by now; anyone else's is turned away. */
	for (int k = 0; k < 8; k++) {
		int fd;

		len = sizeof(peer);
		fd = accept4(l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
		if (fd < 0)
			goto fail;
		if (peer.sin_port == mine.sin_port &&
		    peer.sin_addr.s_addr == mine.sin_addr.s_addr) {
			close(l);
			*ours = c;
			*theirs = fd;
			return 0;
		}
		close(fd);
	}
	errno = EADDRINUSE;
fail:
	rc = errno ? -errno : -EIO;
	if (c >= 0)
		close(c);
	close(l);
	return rc;
}

/*
 * Start smbd with sock as its standard input and output, in its own
 * session, not as our child; returns a pidfd for it or a negative code.
 */
static int smb_spawn(struct smb_server *s, int sock)
{
	char *argv[] = { s->smbd, "-l", s->logdir, "-s", s->conf, NULL };
	int rep[2], go[2], status, pidfd = -1;
	pid_t pid, smbd = -1;
	ssize_t n;

	if (pipe2(rep, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(go, O_CLOEXEC) < 0) {
		int e = -errno;

		close(rep[0]);
		close(rep[1]);
		return e;
	}
	pid = fork();
	if (pid == 0) {
		/* only async-signal-safe calls from here on */
		sigset_t none;
		pid_t g;
		char c;

		close(rep[0]);
		close(go[1]);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		g = fork();
		if (g != 0) {
			if (g > 0)
				(void)!write(rep[1], &g, sizeof(g));
			_exit(g > 0 ? 0 : 1);
		}
		close(rep[1]);
		setsid();
		if (dup2(sock, 0) < 0 || dup2(sock, 1) < 0)
			_exit(127);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		execv(s->smbd, argv);
		_exit(127);
	}
	close(rep[1]);
	close(go[0]);
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		do
			n = read(rep[0], &smbd, sizeof(smbd));
		while (n < 0 && errno == EINTR);
		if (n == sizeof(smbd) && smbd > 0)
			pidfd = pidfd_open(smbd, 0);
		if (pidfd >= 0)
			(void)!write(go[1], "g", 1);
	}
	close(rep[0]);
	close(go[1]);	/* without the go-ahead, the grandchild exits */
	return pidfd >= 0 ? pidfd : -ECHILD;
}

int smb_connect(struct router *r)
{
	struct smb_server *s = r->smb;
	int slot = -1, ours = -1, theirs = -1, pidfd, rc;

	if (!s)
		return -ECONNREFUSED;
	smb_reap(s);
	for (int i = 0; i < SMB_CONN_MAX && slot < 0; i++)
		if (s->pidfd[i] < 0)
			slot = i;
	if (slot < 0) {
		s->st.busy++;
		log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_WARN,
		       "smb: %d smbd processes running: connection refused",
		       SMB_CONN_MAX);
		return -EAGAIN;
	}
	rc = loopback_pair(&ours, &theirs);
	if (rc < 0) {
		s->st.spawn_failed++;
		return rc;
	}
	pidfd = smb_spawn(s, theirs);
	close(theirs);
	if (pidfd < 0) {
		s->st.spawn_failed++;
		close(ours);
		log_rl(&r->pb->log, &r->rl, pb_now(r->pb), PB_LOG_WARN,
		       "smb: cannot start %s: %s", s->smbd, strerror(-pidfd));
		return pidfd;
	}
	s->pidfd[slot] = pidfd;
	s->st.connections++;
	fcntl(ours, F_SETFL, fcntl(ours, F_GETFL) | O_NONBLOCK);
	log_debug(&r->pb->log, "smb: started smbd for a guest connection");
	return ours;
}

/* ---- shutdown ----------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;	/* keep going: remove what we can */
}

/* Wait up to ms for every smbd to end; true if they all did. */
static bool smb_wait(struct smb_server *s, int ms)
{
	for (; ms > 0; ms -= 20) {
		if (!smb_reap(s))
			return true;
		poll(NULL, 0, 20);
	}
	return !smb_reap(s);
}

void smb_free(struct router *r)
{
	struct smb_server *s = r->smb;

	if (!s)
		return;
	for (int i = 0; i < SMB_CONN_MAX; i++)
		if (s->pidfd[i] >= 0)
			pidfd_send_signal(s->pidfd[i], SIGTERM, NULL, 0);
	if (!smb_wait(s, SMB_STOP_WAIT_MS)) {
		for (int i = 0; i < SMB_CONN_MAX; i++)
			if (s->pidfd[i] >= 0)
				pidfd_send_signal(s->pidfd[i], SIGKILL, NULL, 0);
		smb_wait(s, 1000);
	}
	for (int i = 0; i < SMB_CONN_MAX; i++)
		if (s->pidfd[i] >= 0)
			close(s->pidfd[i]);
	if (s->dir[0])
		nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	free(s);
	r->smb = NULL;
}

void smb_stats_json(struct router *r, FILE *f)
{
	struct smb_server *s = r->smb;
	unsigned running;

	if (!s)
		return;
	running = smb_reap(s);
	fprintf(f, ",\"smb\":{\"connections\":%llu,\"running\":%u,"
		   "\"busy\":%llu,\"spawn_failed\":%llu}",
		(unsigned long long)s->st.connections, running,
		(unsigned long long)s->st.busy,
		(unsigned long long)s->st.spawn_failed);
}
