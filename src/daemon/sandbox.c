// SPDX-License-Identifier: MIT
/* sandbox.c: the daemon narrows itself once its sockets, TAPs and files are
 * open: an empty root, an unprivileged user, fewer capabilities, seccomp. */

/*
 * Theory of operation.
 *
 * Two steps around set-up.  sandbox_early(), as root and before anything is
 * opened, unshares a private mount namespace: everything set-up opens (the
 * TFTP root, resolv.conf's directory, TAP devices) then belongs to mounts of
 * that namespace.  sandbox_apply(), after set-up:
 *   1. mount namespace (root only): a small tmpfs becomes the root
 *      (pivot_root), the directories the daemon still uses by path (the
 *      directories of its unix sockets, control socket, stats file and
 *      capture files, collected by sandbox_scan_spec()/sandbox_keep_file())
 *      are bind-mounted (not recursively) at their old paths, the old root
 *      is detached and the tmpfs made read-only.  The fds opened during
 *      set-up keep working, but mounts below them are gone: a file system
 *      mounted inside the TFTP root is out of reach;
 *   2. user (root only): setgroups/setresgid/setresuid to --runas (default
 *      "nobody", or 65534:65534), keeping only CAP_DAC_OVERRIDE when
 *      directories are kept (the daemon removes its socket files and writes
 *      its stats there, inside root-owned directories, and nothing else is
 *      visible) and CAP_NET_RAW when ICMP ping sockets are closed to the new
 *      group (net.ipv4.ping_group_range), for the raw ICMP fallback.  The
 *      bounding set loses everything else;
 *   3. no_new_privs and a seccomp BPF allow-list of the system calls the
 *      event loop, the router, the services and the control socket make.
 *      Process creation (clone, fork, execve) fails with EPERM, so that a
 *      feature added at run time that would run a program fails cleanly;
 *      any other call is trapped: the SIGSYS handler writes one line
 *      naming the call and the process dies of SIGSYS.  The audit arch is
 *      checked first (x86_64 and aarch64 known; elsewhere no filter, said
 *      in the summary); x32 calls on x86_64 kill the process.
 * A feature that runs programs (smb=, guestfwd cmd:, tap script=/
 * downscript=) needs the real file system, execve and a child that is not
 * under our filter: with one configured nothing of the above is done, and
 * the summary says why.  docs/sandbox.md lists what each feature needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SB_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SB_SANITIZER 1
#endif
#endif

#if defined(__x86_64__)
#define SB_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define SB_DEFAULT_USER "nobody"
#define SB_DEFAULT_ID 65534

/* ---- what the configuration still needs --------------------------------------------- */

static void keep_dir(struct sandbox *sb, const char *dir)
{
	for (unsigned i = 0; i < sb->nkeep; i++)
		if (!strcmp(sb->keep[i], dir))
			return;
	if (sb->nkeep < SANDBOX_KEEP_MAX) {
		char *d = strdup(dir);

		if (d)
			sb->keep[sb->nkeep++] = d;
	}
}

void sandbox_keep_file(struct sandbox *sb, const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (!path || !*path || strlen(path) >= sizeof(dir))
		return;
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (!slash) {
		sb->relative = true;
		return;
	}
	if (slash == dir)
		return;		/* a file in "/": nothing to keep */
	*slash = '\0';
	if (dir[0] != '/')
		sb->relative = true;
	else
		keep_dir(sb, dir);
}

/* The value of key in spec (QEMU syntax: ',' separates, ',,' is a comma),
 * starting the search at *pos; copied to out. */
static bool spec_next(const char *spec, size_t *pos, char *key, size_t ksize,
		      char *val, size_t vsize)
{
	const char *p = spec + *pos;
	size_t k = 0, v = 0;

	if (!*p)
		return false;
	while (*p && *p != '=' && *p != ',') {
		if (k + 1 < ksize)
			key[k++] = *p;
		p++;
	}
	key[k] = '\0';
	if (*p == '=') {
		p++;
		while (*p) {
			if (*p == ',' && p[1] != ',')
				break;
			if (*p == ',')
				p++;
			if (v + 1 < vsize)
				val[v++] = *p;
			p++;
		}
	}
	val[v] = '\0';
	if (*p == ',')
		p++;
	*pos = (size_t)(p - spec);
	return true;
}

void sandbox_scan_spec(struct sandbox *sb, const char *spec)
{
	char key[64], val[PATH_MAX];
	size_t pos = 0;

	while (spec_next(spec, &pos, key, sizeof(key), val, sizeof(val))) {
		const char *u;

		if (!strcmp(key, "addr.path") || !strcmp(key, "local.path") ||
		    !strcmp(key, "remote.path") || !strcmp(key, "file") ||
		    !strcmp(key, "path"))
			sandbox_keep_file(sb, val);
		else if (!strcmp(key, "guestfwd") && (u = strstr(val, "-unix:")))
			sandbox_keep_file(sb, u + 6);
		else if (!strcmp(key, "guestfwd") && strstr(val, "-cmd:"))
			sb->exec_why = "guestfwd=...-cmd: runs a command";
		else if (!strcmp(key, "smb"))
			sb->exec_why = "smb= runs smbd";
		else if ((!strcmp(key, "script") || !strcmp(key, "downscript")) &&
			 strcmp(val, "no"))
			sb->exec_why = "tap script=/downscript= runs a program";
	}
}

void sandbox_free(struct sandbox *sb)
{
	for (unsigned i = 0; i < sb->nkeep; i++)
		free(sb->keep[i]);
	sb->nkeep = 0;
}

/* ---- mount namespace ---------------------------------------------------------------- */

int sandbox_early(struct sandbox *sb, char *err, size_t errlen)
{
	if (sb->off || sb->exec_why || geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		snprintf(err, errlen, "sandbox: private mount namespace: %s",
			 strerror(errno));
		return -errno;
	}
	sb->mount_ns = true;
	return 0;
}

/* mkdir -p in the new root. */
static int make_path(const char *path)
{
	char p[PATH_MAX];

	if (strlen(path) >= sizeof(p))
		return -ENAMETOOLONG;
	strcpy(p, path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -errno;
			if (!c)
				return 0;
			*s = c;
		}
	}
}

#define OLD_ROOT "/.old-root"

/* Bind dir (an absolute path as the configuration wrote it) from the old
 * root to the same path in the new one; its real path (symlinks resolved
 * before the switch) is the source. */
static int bind_kept(const char *dir, const char *real)
{
	char src[PATH_MAX + sizeof(OLD_ROOT)];
	int rc;

	snprintf(src, sizeof(src), OLD_ROOT "%s", real);
	rc = make_path(dir);
	if (rc)
		return rc;
	if (mount(src, dir, NULL, MS_BIND, NULL) < 0)
		return -errno;
	mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV |
	      MS_NOEXEC, NULL);
	return 0;
}

/* The empty root with the kept directories; *nbound counts them. */
static int enter_empty_root(struct sandbox *sb, unsigned *nbound, char *err,
			    size_t errlen)
{
	char *real[SANDBOX_KEEP_MAX] = { 0 };
	char cwd[PATH_MAX] = "";
	const char *step;
	int rc = 0;

	*nbound = 0;
	if (sb->relative && getcwd(cwd, sizeof(cwd)))
		keep_dir(sb, cwd);
	for (unsigned i = 0; i < sb->nkeep; i++)
		real[i] = realpath(sb->keep[i], NULL);	/* NULL: skipped */
	step = "mount a tmpfs";
	if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=256k,mode=0755") < 0)
		goto fail;
	step = "pivot_root";
	if (chdir("/tmp") < 0 || mkdir("." OLD_ROOT, 0700) < 0 ||
	    syscall(SYS_pivot_root, ".", "." OLD_ROOT) < 0 || chdir("/") < 0)
		goto fail;
	for (unsigned i = 0; i < sb->nkeep; i++) {
		if (!real[i])
			continue;
		rc = bind_kept(sb->keep[i], real[i]);
		if (rc) {
			snprintf(err, errlen, "sandbox: keep %s: %s",
				 sb->keep[i], strerror(-rc));
			goto out;
		}
		(*nbound)++;
	}
#ifdef SB_SANITIZER
	/* LeakSanitizer reads /proc/self at exit */
	if (make_path("/proc") == 0)
		mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      NULL);
#endif
	step = "detach the old root";
	if (umount2(OLD_ROOT, MNT_DETACH) < 0 || rmdir(OLD_ROOT) < 0)
		goto fail;
	step = "make the root read-only";
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
		  MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		goto fail;
	if (cwd[0] && chdir(cwd) < 0)
		goto fail;
	goto out;
fail:
	rc = -errno;
	snprintf(err, errlen, "sandbox: %s: %s", step, strerror(errno));
out:
	for (unsigned i = 0; i < sb->nkeep; i++)
		free(real[i]);
	return rc;
}

/* ---- user and capabilities ------------------------------------------------------------ */

static int parse_runas(const char *s, uid_t *uid, gid_t *gid, char *err,
		       size_t errlen)
{
	char name[256];
	const char *colon;
	struct passwd *pw;
	char *end;
	unsigned long n;

	if (!s) {
		pw = getpwnam(SB_DEFAULT_USER);
		*uid = pw ? pw->pw_uid : SB_DEFAULT_ID;
		*gid = pw ? pw->pw_gid : SB_DEFAULT_ID;
		return 0;
	}
	colon = strchr(s, ':');
	if (strlen(s) >= sizeof(name) || !*s)
		goto bad;
	snprintf(name, sizeof(name), "%.*s",
		 (int)(colon ? (size_t)(colon - s) : strlen(s)), s);
	errno = 0;
	n = strtoul(name, &end, 10);
	if (*name && !*end && !errno && n < UINT32_MAX) {
		*uid = (uid_t)n;
		pw = getpwuid(*uid);
		*gid = pw ? pw->pw_gid : (gid_t)n;
	} else if ((pw = getpwnam(name))) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	} else {
		snprintf(err, errlen, "--runas: no user '%s'", name);
		return -EINVAL;
	}
	if (colon) {
		struct group *gr;

		n = strtoul(colon + 1, &end, 10);
		if (colon[1] && !*end && n < UINT32_MAX)
			*gid = (gid_t)n;
		else if ((gr = getgrnam(colon + 1)))
			*gid = gr->gr_gid;
		else
			goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "--runas: want USER|UID[:GROUP|GID], not '%s'", s);
	return -EINVAL;
}

/* Can gid open ICMP ping sockets (net.ipv4.ping_group_range)? */
static bool ping_allowed(gid_t gid)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "re");
	unsigned long lo = 1, hi = 0;
	char buf[64], *end;

	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			lo = strtoul(buf, &end, 10);
			hi = end != buf ? strtoul(end, NULL, 10) : 0;
		}
		fclose(f);
	}
	return gid >= lo && gid <= hi;
}

static int drop_user(uid_t uid, gid_t gid, uint64_t keep, char *err,
		     size_t errlen)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { { 0 } };
	const char *step = "drop the bounding set";

	for (int c = 0; c < 64; c++)
		if (!(keep & (1ull << c)) && prctl(PR_CAPBSET_DROP, c) < 0 &&
		    errno != EINVAL)
			goto fail;
	step = "keep capabilities across setuid";
	if (prctl(PR_SET_KEEPCAPS, 1) < 0)
		goto fail;
	step = "setgroups/setresgid/setresuid";
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		goto fail;
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	step = "capset";
	if (syscall(SYS_capset, &hdr, data) < 0)
		goto fail;
	prctl(PR_SET_KEEPCAPS, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
#ifdef SB_SANITIZER
	/* LeakSanitizer attaches to our threads with ptrace at exit */
	prctl(PR_SET_DUMPABLE, 1);
#endif
	return 0;
fail:
	snprintf(err, errlen, "sandbox: %s: %s", step, strerror(errno));
	return -errno;
}

/* ---- seccomp -------------------------------------------------------------------------- */

struct sys_name {
	long nr;
	const char *name;
};

#define SYS(n) { SYS_##n, #n }

/* What the daemon calls after set-up: the loop (epoll, timerfd, signalfd
 * reads, poll), memory, every socket operation of the router, services,
 * backends and control socket (with SCM_RIGHTS), files of captures, stats
 * and TFTP (openat2), resolv.conf re-reads, socket removal at exit, the
 * `run` parent's wait and signal forwarding. */
static const struct sys_name allowed[] = {
	SYS(read), SYS(write), SYS(readv), SYS(writev), SYS(pread64),
	SYS(pwrite64), SYS(close), SYS(lseek), SYS(fcntl), SYS(ioctl),
	SYS(dup), SYS(dup3), SYS(openat), SYS(openat2), SYS(newfstatat),
	SYS(fstat), SYS(statx), SYS(unlinkat), SYS(renameat), SYS(renameat2),
	SYS(ftruncate), SYS(fsync), SYS(getdents64),
	SYS(socket), SYS(connect), SYS(accept4), SYS(bind), SYS(listen),
	SYS(sendto), SYS(recvfrom), SYS(sendmsg), SYS(recvmsg), SYS(sendmmsg),
	SYS(recvmmsg), SYS(shutdown), SYS(getsockopt), SYS(setsockopt),
	SYS(getsockname), SYS(getpeername),
	SYS(socketpair),	/* DNS over TCP sessions (dns.c) */
	SYS(epoll_create1), SYS(epoll_ctl), SYS(epoll_pwait), SYS(ppoll),
	SYS(timerfd_create), SYS(timerfd_settime), SYS(timerfd_gettime),
	SYS(eventfd2), SYS(pipe2), SYS(signalfd4),
	SYS(clock_gettime), SYS(clock_getres), SYS(gettimeofday),
	SYS(clock_nanosleep), SYS(nanosleep),
	SYS(brk), SYS(mmap), SYS(munmap), SYS(mremap), SYS(madvise),
	SYS(mprotect),
	SYS(rt_sigreturn), SYS(rt_sigprocmask), SYS(rt_sigaction),
	SYS(kill), SYS(tgkill), SYS(getpid), SYS(gettid), SYS(getppid),
	SYS(getuid), SYS(geteuid), SYS(getgid), SYS(getegid),
	SYS(wait4), SYS(waitid), SYS(exit), SYS(exit_group),
	SYS(restart_syscall), SYS(getrandom), SYS(futex), SYS(sched_yield),
	SYS(prlimit64), SYS(uname),
#ifdef SYS_epoll_wait
	SYS(epoll_wait),
#endif
#ifdef SYS_epoll_pwait2
	SYS(epoll_pwait2),
#endif
#ifdef SYS_poll
	SYS(poll),
#endif
#ifdef SYS_accept
	SYS(accept),
#endif
#ifdef SYS_stat
	SYS(stat), SYS(lstat), SYS(open), SYS(unlink), SYS(rename),
#endif
#ifdef SYS_time
	SYS(time),
#endif
#ifdef SB_SANITIZER
	/* the sanitizers' runtime: reports, leak check at exit (a tracer
	 * thread attaching to ours) */
	SYS(clone), SYS(ptrace), SYS(prctl), SYS(sigaltstack),
	SYS(sched_getaffinity), SYS(readlinkat), SYS(set_robust_list),
#ifdef SYS_readlink
	SYS(readlink),
#endif
#ifdef SYS_getdents
	SYS(getdents),
#endif
#endif
};

/* Refused with EPERM instead of trapped: a feature added at run time that
 * would start a program then fails with an error, not a dead daemon. */
static const struct sys_name refused[] = {
#ifndef SB_SANITIZER
	SYS(clone),
#endif
	SYS(execve), SYS(execveat),
#ifdef SYS_fork
	SYS(fork), SYS(vfork),
#endif
#ifdef SYS_clone3
	SYS(clone3),
#endif
};

/* Names for the log line of other calls. */
static const struct sys_name notable[] = {
	SYS(ptrace), SYS(mount), SYS(umount2), SYS(pivot_root), SYS(unshare),
	SYS(setns), SYS(reboot), SYS(kexec_load), SYS(init_module),
	SYS(finit_module), SYS(delete_module), SYS(mknodat), SYS(mkdirat),
	SYS(symlinkat), SYS(linkat), SYS(fchmodat), SYS(fchownat),
	SYS(fchmod), SYS(fchown), SYS(setuid), SYS(setgid), SYS(setresuid),
	SYS(setresgid), SYS(setgroups), SYS(capset), SYS(prctl), SYS(bpf),
	SYS(perf_event_open), SYS(process_vm_readv), SYS(process_vm_writev),
	SYS(keyctl), SYS(add_key), SYS(request_key), SYS(personality),
	SYS(chroot), SYS(chdir), SYS(fchdir), SYS(memfd_create),
	SYS(userfaultfd), SYS(io_uring_setup), SYS(pidfd_open), SYS(sigaltstack),
	SYS(faccessat), SYS(readlinkat), SYS(sched_getaffinity), SYS(sysinfo),
	SYS(getrusage), SYS(set_robust_list), SYS(rseq), SYS(fstatfs),
	SYS(statfs), SYS(sendfile), SYS(splice),
#ifdef SYS_open
	SYS(open), SYS(creat), SYS(mknod), SYS(mkdir), SYS(rmdir), SYS(chmod),
	SYS(chown), SYS(link), SYS(symlink), SYS(readlink), SYS(access),
	SYS(getdents), SYS(iopl), SYS(ioperm), SYS(arch_prctl),
#endif
};

static const char *sys_name(long nr)
{
	static const struct { const struct sys_name *t; size_t n; } tabs[] = {
		{ allowed, sizeof(allowed) / sizeof(allowed[0]) },
		{ refused, sizeof(refused) / sizeof(refused[0]) },
		{ notable, sizeof(notable) / sizeof(notable[0]) },
	};

	for (size_t t = 0; t < sizeof(tabs) / sizeof(tabs[0]); t++)
		for (size_t i = 0; i < tabs[t].n; i++)
			if (tabs[t].t[i].nr == nr)
				return tabs[t].t[i].name;
	return "?";
}

/* Async-signal-safe: write(2) of a line built by hand, then die of the
 * same signal once the handler returns (SA_RESETHAND made it the default
 * again; the signal stays blocked until then). */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[160] = "patchbay: sandbox: forbidden system call ";
	char num[24];
	size_t n = strlen(line), k = 0;
	long nr = si->si_syscall;
	const char *name = sys_name(nr);
	ssize_t w;

	(void)uc;
	if (nr < 0)
		nr = -nr;
	do
		num[k++] = (char)('0' + nr % 10);
	while ((nr /= 10) && k < sizeof(num));
	while (k && n < sizeof(line) - 1)
		line[n++] = num[--k];
	if (n + strlen(name) + 4 < sizeof(line)) {
		line[n++] = ' ';
		line[n++] = '(';
		for (const char *c = name; *c; c++)
			line[n++] = *c;
		line[n++] = ')';
	}
	line[n++] = '\n';
	w = write(2, line, n);
	(void)w;
	kill(getpid(), sig);
}

#define N_EXTRA 8

static int install_filter(unsigned *ncalls, char *err, size_t errlen)
{
#ifdef SB_AUDIT_ARCH
	const size_t na = sizeof(allowed) / sizeof(allowed[0]);
	const size_t nr = sizeof(refused) / sizeof(refused[0]);
	struct sock_filter f[2 * (sizeof(allowed) + sizeof(refused)) /
			     sizeof(allowed[0]) + N_EXTRA];
	struct sock_fprog prog = { .filter = f };
	struct sigaction sa = { .sa_sigaction = on_sigsys,
				.sa_flags = SA_SIGINFO | SA_RESETHAND };
	size_t i = 0;

#define INS(code, k) (f[i++] = (struct sock_filter)BPF_STMT(code, k))
#define JEQ(k, t, e) (f[i++] = (struct sock_filter)BPF_JUMP( \
			      BPF_JMP | BPF_JEQ | BPF_K, k, t, e))
	INS(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	JEQ(SB_AUDIT_ARCH, 1, 0);
	INS(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	INS(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	/* x32 numbers would bypass the list */
	f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
					      0x40000000u, 0, 1);
	INS(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
	for (size_t k = 0; k < na; k++) {
		JEQ((uint32_t)allowed[k].nr, 0, 1);
		INS(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	for (size_t k = 0; k < nr; k++) {
		JEQ((uint32_t)refused[k].nr, 0, 1);
		INS(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
	}
	INS(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
#undef INS
#undef JEQ
	prog.len = (unsigned short)i;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		snprintf(err, errlen, "sandbox: seccomp: %s", strerror(errno));
		return -errno;
	}
	*ncalls = (unsigned)na;
	return 0;
#else
	(void)err;
	(void)errlen;
	*ncalls = 0;
	return 0;
#endif
}

/* ---- all of it ------------------------------------------------------------------------ */

int sandbox_apply(struct sandbox *sb, char *err, size_t errlen)
{
	char user[96] = "unchanged", caps[96] = "unchanged", mnt[96] = "host";
	uid_t uid = 0;
	gid_t gid = 0;
	unsigned nbound = 0, ncalls = 0;
	uint64_t keep = 0;
	int rc;

	if (sb->off) {
		snprintf(sb->summary, sizeof(sb->summary), "off (--no-sandbox)");
		return 0;
	}
	if (sb->exec_why) {
		snprintf(sb->summary, sizeof(sb->summary),
			 "off: %s (needs the file system, execve and an unfiltered child)",
			 sb->exec_why);
		return 0;
	}
	if (geteuid() == 0) {
		rc = parse_runas(sb->runas, &uid, &gid, err, errlen);
		if (rc)
			return rc;
		if (sb->nkeep || sb->relative)
			keep |= 1ull << CAP_DAC_OVERRIDE;
		if (!ping_allowed(gid))
			keep |= 1ull << CAP_NET_RAW;
		if (sb->keep_kill)
			keep |= 1ull << CAP_KILL;
	} else if (sb->runas) {
		snprintf(err, errlen, "--runas: only root can change user");
		return -EPERM;
	}
	if (sb->mount_ns) {
		rc = enter_empty_root(sb, &nbound, err, errlen);
		if (rc)
			return rc;
		snprintf(mnt, sizeof(mnt), "empty root + %u kept dir(s)", nbound);
	}
	if (geteuid() == 0) {
		rc = drop_user(uid, gid, keep, err, errlen);
		if (rc)
			return rc;
		snprintf(user, sizeof(user), "%u:%u", (unsigned)uid,
			 (unsigned)gid);
		snprintf(caps, sizeof(caps), "%s%s%s%s",
			 keep ? "" : "none",
			 keep & (1ull << CAP_DAC_OVERRIDE) ? "+dac_override" : "",
			 keep & (1ull << CAP_NET_RAW) ? "+net_raw" : "",
			 keep & (1ull << CAP_KILL) ? "+kill" : "");
	}
	rc = install_filter(&ncalls, err, errlen);
	if (rc)
		return rc;
	snprintf(sb->summary, sizeof(sb->summary),
		 "user %s, caps %s, mount ns %s, seccomp %s", user, caps, mnt,
		 ncalls ? "on" : "off (unknown architecture)");
	return 0;
}

void sandbox_test_trap(void)
{
	/* bad magic numbers: EINVAL even where nothing filters it */
	syscall(SYS_reboot, 0, 0, 0, NULL);
}
