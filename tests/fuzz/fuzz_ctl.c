// SPDX-License-Identifier: MIT
/* fuzz_ctl.c: libFuzzer harness for the daemon's control-socket request
 * handling (src/daemon/ctl.c): request lines, all commands. */

/*
 * ctl.c is compiled into this file (its request code is static), with a
 * small daemon instance: pb_new, switch "s", a user netdev "u" (restrict=on)
 * and a callback port "c".  No listening socket: one client slot is given
 * one end of a socketpair; the input is written to the other end in chunks
 * and client_read() reads it as it would from a real client, and serves
 * the lines it completes.
 *
 * Byte 0 of the input is the chunk size (0: all at once); the rest is what
 * the client sends.  After every chunk the replies are read back: each is
 * one line, a JSON object with "id" and a boolean "ok"; no reply is left
 * half-written at the end.
 *
 * Requests reach the library (hostfwd-add, port-add with any netdev spec,
 * capture-start with any file name), so the harness is linked with --wrap
 * for the calls that could reach outside the process (Makefile:
 * FUZZ_LDFLAGS_ctl): socket() gives an eventfd (pollable, sends nothing)
 * on which bind, listen, connect and setsockopt succeed and accept4 finds
 * nobody; opening a file for writing gives a memfd; fork, socketpair,
 * mkdir, unlink and chmod fail or do nothing; fcntl(F_GETFD) says no
 * descriptor number is open, so that "fd=N" in a spec never takes one of
 * the fuzzer's.  Leaks: ASan.
 *
 * Plain program (-DCTL_FUZZ_MAIN): "fuzz_ctl --seeds DIR" writes the seed
 * corpus, "fuzz_ctl FILE..." replays inputs and prints the replies.
 */
#include "check.h"
#include "../../src/daemon/ctl.c"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/eventfd.h>

#include "util.h"

/* ---- what the library may not do from here ----------------------------- */

#define NFAKE 64

static bool armed;
static int fakes[NFAKE];	/* eventfds standing for sockets; 0: free */

static bool is_fake(int fd)
{
	for (int i = 0; i < NFAKE; i++)
		if (fd > 0 && fakes[i] == fd)
			return true;
	return false;
}

int __real_close(int);
int __real_open(const char *, int, ...);
int __real_openat(int, const char *, int, ...);
int __real_socketpair(int, int, int, int *);
int __real_fcntl(int, int, ...);
int __real_setsockopt(int, int, int, const void *, socklen_t);

int __wrap_socket(int, int, int);
int __wrap_socketpair(int, int, int, int *);
int __wrap_bind(int, const struct sockaddr *, socklen_t);
int __wrap_listen(int, int);
int __wrap_connect(int, const struct sockaddr *, socklen_t);
int __wrap_accept4(int, struct sockaddr *, socklen_t *, int);
int __wrap_setsockopt(int, int, int, const void *, socklen_t);
int __wrap_close(int);
int __wrap_open(const char *, int, ...);
int __wrap_openat(int, const char *, int, ...);
pid_t __wrap_fork(void);
int __wrap_unlink(const char *);
int __wrap_mkdir(const char *, mode_t);
int __wrap_chmod(const char *, mode_t);
int __wrap_fcntl(int, int, ...);

static int fail(int err)
{
	errno = err;
	return -1;
}

int __wrap_socket(int family, int type, int proto)
{
	int fd;

	(void)family;
	(void)proto;
	CHECK(armed);
	fd = eventfd(0, EFD_CLOEXEC | (type & SOCK_NONBLOCK ? EFD_NONBLOCK : 0));
	if (fd < 0)
		return -1;
	for (int i = 0; i < NFAKE; i++) {
		if (!fakes[i]) {
			fakes[i] = fd;
			return fd;
		}
	}
	__real_close(fd);
	return fail(EMFILE);
}

int __wrap_socketpair(int d, int type, int proto, int *sv)
{
	if (armed)
		return fail(EMFILE);
	return __real_socketpair(d, type, proto, sv);
}

int __wrap_bind(int fd, const struct sockaddr *a, socklen_t len)
{
	(void)a;
	(void)len;
	return is_fake(fd) ? 0 : fail(EACCES);
}

int __wrap_listen(int fd, int backlog)
{
	(void)backlog;
	return is_fake(fd) ? 0 : fail(EACCES);
}

int __wrap_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	(void)a;
	(void)len;
	return is_fake(fd) ? fail(EINPROGRESS) : fail(EACCES);
}

int __wrap_accept4(int fd, struct sockaddr *a, socklen_t *len, int flags)
{
	(void)a;
	(void)len;
	(void)flags;
	return is_fake(fd) ? fail(EAGAIN) : fail(EBADF);
}

int __wrap_setsockopt(int fd, int level, int name, const void *v,
		      socklen_t len)
{
	if (!armed)
		return __real_setsockopt(fd, level, name, v, len);
	return is_fake(fd) ? 0 : fail(ENOTSOCK);
}

int __wrap_close(int fd)
{
	for (int i = 0; i < NFAKE; i++)
		if (fd > 0 && fakes[i] == fd)
			fakes[i] = 0;
	return __real_close(fd);
}

/* Opening for writing gives a scratch memfd; reading is harmless. */
static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	if (armed && (flags & (O_CREAT | O_WRONLY | O_RDWR | O_TRUNC)))
		return memfd_create("fuzz-ctl", MFD_CLOEXEC);
	return __real_openat(dirfd, path, flags, mode);
}

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return open_common(AT_FDCWD, path, flags, mode);
}

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return open_common(dirfd, path, flags, mode);
}

pid_t __wrap_fork(void)
{
	return fail(EAGAIN);
}

int __wrap_unlink(const char *path)
{
	(void)path;
	return 0;
}

int __wrap_mkdir(const char *path, mode_t mode)
{
	(void)path;
	(void)mode;
	return fail(EACCES);
}

int __wrap_chmod(const char *path, mode_t mode)
{
	(void)path;
	(void)mode;
	return 0;
}

int __wrap_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if (armed && cmd == F_GETFD && !is_fake(fd))
		return fail(EBADF);
	return __real_fcntl(fd, cmd, arg);
}

/* ---- the harness -------------------------------------------------------- */

static void fz_log(void *opaque, enum pb_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	CHECK(msg != NULL && strlen(msg) < 4096);
}

static void fz_rx(void *opaque, const void *frame, size_t len)
{
	(void)opaque;
	(void)frame;
	CHECK(len >= 14);
}

struct replies {
	char buf[1 << 16];
	size_t len;
	unsigned lines;
};

/* Every reply line: a JSON object with "id" and a boolean "ok". */
static void check_reply(char *line, size_t len)
{
	static const struct json_limits lim = { .max_depth = 64,
						.max_nodes = 1u << 20,
						.arrays = true };
	struct json_doc d = { 0 };
	char err[256];
	uint32_t ok, id;

#ifdef CTL_FUZZ_MAIN
	fprintf(stderr, "< %.*s\n", (int)MIN(len, (size_t)300), line);
#endif
	CHECK(json_parse(&d, line, len, &lim, err, sizeof(err)) == 0);
	CHECK(d.node[0].type == JSON_OBJECT);
	ok = json_get(&d, 0, "ok");
	id = json_get(&d, 0, "id");
	CHECK(ok != JSON_NONE && d.node[ok].type == JSON_BOOL);
	CHECK(id != JSON_NONE);
	json_free(&d);
}

static void drain(int fd, struct replies *r)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (r->len == sizeof(r->buf)) {
			/* a reply longer than the buffer: not checked */
			r->len = 0;
			continue;
		}
		n = recv(fd, r->buf + r->len, sizeof(r->buf) - r->len,
			 MSG_DONTWAIT);
		if (n <= 0)
			break;
		r->len += (size_t)n;
		while ((nl = memchr(r->buf, '\n', r->len))) {
			size_t l = (size_t)(nl - r->buf);

			check_reply(r->buf, l);
			r->lines++;
			memmove(r->buf, nl + 1, r->len - l - 1);
			r->len -= l + 1;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_DEBUG,
				 .log_fn = fz_log,
				 .max_ports = 8,
				 .max_segments = 4 };
	static struct replies rep;
	struct ctl *c;
	struct ctl_client *cl;
	size_t chunk, pos = 1;
	int sv[2];
	pb_t *pb;

	if (size < 1)
		return 0;
	chunk = data[0] ? data[0] : size;
	rep.len = 0;
	rep.lines = 0;
	CHECK(pb_new(&cfg, &pb) == 0);
	armed = true;
	CHECK(pb_segment_add(pb, "switch,id=s") == 0);
	CHECK(pb_netdev_add(pb, "user,id=u,segment=s,restrict=on,"
				"dns-upstream=127.0.0.1:9") == 0);
	CHECK(pb_callback_port_add(pb, "c", "s", fz_rx, NULL) >= 0);
	armed = false;
	CHECK(__real_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 1 << 20 },
			 sizeof(int)) == 0);
	armed = true;

	c = calloc(1, sizeof(*c));
	CHECK(c != NULL);
	c->pb = pb;
	c->lfd = -1;
	c->reply.max = CTL_OUT_MAX;
	for (int i = 0; i < CTL_MAX_CLIENTS; i++)
		c->cl[i].fd = c->cl[i].passed_fd = -1;
	c->memfd = memfd_create("fuzz-ctl", MFD_CLOEXEC);
	CHECK(c->memfd >= 0);
	cl = &c->cl[0];
	cl->fd = sv[0];
	cl->in = malloc(CTL_IN_CAP);
	CHECK(cl->in != NULL);

	while (cl->fd >= 0) {
		size_t n = MIN(chunk, size - pos);
		bool last = pos == size;

		if (last)
			shutdown(sv[1], SHUT_WR);
		else
			CHECK(send(sv[1], data + pos, n, MSG_DONTWAIT) == (ssize_t)n);
		pos += n;
		/* read until this chunk (or the end of file) is taken */
		for (int k = 0; cl->fd >= 0 && k < 64; k++) {
			bool more = cl->pending;

			if (more ? !client_serve(c, cl) : !client_read(c, cl))
				break;
			drain(sv[1], &rep);
			if (!cl->pending && !more)
				break;
		}
		client_flush(cl);
		drain(sv[1], &rep);
		if (last)
			break;
	}
	CHECK(rep.len == 0);	/* no partial reply line */

	client_close(cl);
	close(sv[1]);
	close(c->memfd);
	sb_free(&c->reply);
	json_free(&c->doc);
	free(c);
	pb_free(pb);
	armed = false;
	for (int i = 0; i < NFAKE; i++)
		CHECK(!fakes[i]);	/* the library closed every socket */
	return 0;
}

#ifdef CTL_FUZZ_MAIN
/* ---- seed corpus and replay --------------------------------------------- */

static void s_write(const char *dir, const char *name, uint8_t chunk,
		    const char *text)
{
	char path[4096];
	size_t n = strlen(text);
	uint8_t *b = malloc(n + 1);
	FILE *fp;

	CHECK(b != NULL);
	b[0] = chunk;
	memcpy(b + 1, text, n);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	CHECK(fp != NULL);
	CHECK(fwrite(b, 1, n + 1, fp) == n + 1);
	CHECK(fclose(fp) == 0);
	fprintf(stderr, "== %s\n", name);
	LLVMFuzzerTestOneInput(b, n + 1);	/* a seed must itself pass */
	free(b);
}

static void write_seeds(const char *dir)
{
	s_write(dir, "version", 0, "{\"id\":1,\"cmd\":\"version\"}\n");
	s_write(dir, "lists", 0,
		"{\"id\":1,\"cmd\":\"stats\"}\n"
		"{\"id\":2,\"cmd\":\"segments\"}\n"
		"{\"id\":3,\"cmd\":\"ports\"}\n"
		"{\"id\":4,\"cmd\":\"flows\"}\n"
		"{\"id\":5,\"cmd\":\"leases\"}\n"
		"{\"id\":\"six\",\"cmd\":\"forwards\"}\n"
		"{\"cmd\":\"captures\"}\n");
	s_write(dir, "hostfwd", 0,
		"{\"id\":1,\"cmd\":\"hostfwd-add\",\"netdev\":\"u\","
		"\"rule\":\"tcp:127.0.0.1:2222-:22\"}\n"
		"{\"id\":2,\"cmd\":\"forwards\"}\n"
		"{\"id\":3,\"cmd\":\"hostfwd-del\",\"rule\":\"tcp:127.0.0.1:2222\"}\n"
		"{\"id\":4,\"cmd\":\"hostfwd-add\",\"rule\":\"udp::5353-:53\"}\n");
	s_write(dir, "ports", 0,
		"{\"id\":1,\"cmd\":\"port-add\",\"spec\":\"socket,id=so,segment=s,"
		"listen=127.0.0.1:1234\"}\n"
		"{\"id\":2,\"cmd\":\"port-add\",\"spec\":\"stream,id=st,"
		"segment=s,server=on,addr.type=unix,addr.path=/nonexistent/s\"}\n"
		"{\"id\":3,\"cmd\":\"port-add\",\"spec\":\"dgram,id=d,segment=s,"
		"local.type=inet,local.host=127.0.0.1,local.port=0\"}\n"
		"{\"id\":4,\"cmd\":\"ports\"}\n"
		"{\"id\":5,\"cmd\":\"port-del\",\"netdev\":\"st\"}\n"
		"{\"id\":6,\"cmd\":\"port-add\",\"spec\":\"stream,fd=0\"}\n");
	s_write(dir, "capture", 0,
		"{\"id\":1,\"cmd\":\"capture-start\",\"capture\":\"k\","
		"\"segment\":\"s\",\"file\":\"/nonexistent/x.pcap\",\"maxlen\":96}\n"
		"{\"id\":2,\"cmd\":\"captures\"}\n"
		"{\"id\":3,\"cmd\":\"capture-stop\",\"capture\":\"k\"}\n"
		"{\"id\":4,\"cmd\":\"capture-start\",\"capture\":\"k2\","
		"\"netdev\":\"u\",\"file\":\"/nonexistent/y.pcap\"}\n");
	s_write(dir, "link", 0,
		"{\"id\":1,\"cmd\":\"link\",\"port\":\"c\",\"up\":false}\n"
		"{\"id\":2,\"cmd\":\"link\",\"port\":\"c\",\"up\":true}\n"
		"{\"id\":3,\"cmd\":\"link\",\"port\":\"nope\",\"up\":1}\n");
	s_write(dir, "errors", 0,
		"{\"id\":1,\"cmd\":\"nope\"}\n"
		"{\"id\":[1],\"cmd\":\"version\"}\n"
		"{\"id\":1.5,\"cmd\":\"version\",\"extra\":1}\n"
		"not json\n"
		"   \n"
		"{\"cmd\":\"version\"");
	s_write(dir, "chunked", 3,
		"{\"id\":1,\"cmd\":\"version\"}\n{\"id\":2,\"cmd\":\"stats\"}\n");
}

#include "replay.h"

int main(int argc, char **argv)
{
	return fuzz_main(argc, argv, write_seeds);
}
#endif
