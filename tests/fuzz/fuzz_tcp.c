// SPDX-License-Identifier: MIT
/* fuzz_tcp.c: libFuzzer harness for the translation of guest TCP (and UDP,
 * DNS forwarding, ICMP echo) onto host sockets, against fake host sockets. */

/*
 * The router is built as in fuzz_router.c (pb_new with an injected clock,
 * switch "s", user netdev "u", callback port "c" playing the guest
 * 10.0.2.15 / fec0::15), but without restrict=on, so that guest SYNs,
 * datagrams and pings really open host sockets.  Those sockets are fakes:
 * the harness is linked with --wrap for every socket call the library makes
 * (socket, socketpair, connect, bind, listen, accept4, getsockopt,
 * setsockopt, recv,
 * recvmsg, recvmmsg, recvfrom, send, sendto, shutdown, close, epoll_ctl,
 * epoll_wait; Makefile: FUZZ_LDFLAGS_tcp), so no descriptor is opened and
 * no packet leaves the process.  A fake socket has the numbers FAKE_BASE
 * and up, a virtual receive stream (bytes are a function of their offset),
 * a send buffer of a size the input chooses, SO_PEEK_OFF semantics as the
 * kernel's, and readiness that pb_dispatch() sees through epoll_wait().
 * arc4random() is wrapped too, so that a run depends on its input alone.
 * socketpair() fails (EMFILE): a guest's TCP connection to the DNS address,
 * which would get a DNS-over-TCP session at the end of a socket pair, is
 * refused like one over the session limit (the sessions' stream framing is
 * fuzz_dns's; their behaviour, test_dns.py's).
 *
 * Input: byte 0 chooses the router's options (CONFIGS) and the host's
 * behaviour (SO_PEEK_OFF supported or not, connect() immediate or not);
 * bytes 1-4 seed arc4random(); then events, an opcode byte each followed by
 * its operands (missing operand bytes read as 0):
 *
 *   SYN      a guest SYN on connection c to one of six destinations (the
 *            gateway, a public address, the DNS address, a guestfwd, IPv6
 *            host and global), with MSS / window-scale options, window, ISN
 *   SEG      a guest segment on connection c: flags, sequence and ack
 *            relative to what the guest sent and saw, window, payload
 *   SYNACK   the guest answers a forwarded connection's SYN
 *   HDATA    N bytes (or a datagram: a DNS answer to the last query, an
 *            echo reply) arrive on fake socket s
 *   HEOF     the host peer closes; HRST: it resets
 *   CONNDONE a pending connect() completes (ok, refused, unreachable,
 *            timed out)
 *   HREAD    the host peer reads what was sent to it; SNDBUF: resize
 *   ACCEPT   a host client connects to the TCP hostfwd
 *   TICK     the clock advances and pb_dispatch() runs; DISPATCH: no time
 *   UDP      a guest datagram: a DNS query (v4 / v6) or to a public address
 *   PING     a guest echo request to a public address
 *   FAIL     the next socket() calls fail (EMFILE, ENFILE, ENOBUFS, EACCES)
 *   CMODE    how later connect() calls answer
 *
 * Checked on every frame the router emits: well-formed Ethernet / ARP /
 * IPv4 / IPv6 with valid checksums (IPv6 fragments: of the datagram they
 * make up), no larger than MTU + 14; for TCP on a
 * connection whose host socket is alive: a SYN-ACK acknowledges the
 * guest's SYN; data carries exactly the bytes the host delivered at that
 * offset and never beyond what it delivered; a FIN only after the host
 * closed and at the end of its data; an ACK never acknowledges more than
 * the host socket accepted (plus SYN and FIN).  On every byte the router
 * writes to a host socket: it is the guest's byte for that sequence number
 * (the stream arrives whole and in order).  After every event: all output
 * buffers returned, no ACK owed, every flow's descriptor a live fake.  At
 * teardown every fake socket is closed.  Leaks: ASan.
 *
 * Plain program (-DTCP_FUZZ_MAIN, same --wrap flags): "fuzz_tcp --seeds
 * DIR" writes the seed corpus; "fuzz_tcp FILE..." replays inputs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"
#include "flow.h"
#include "netdev.h"
#include "patchbay.h"
#include "pb.h"
#include "router.h"

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define GUEST 0x0a00020fu	/* 10.0.2.15 */
#define GW 0x0a000202u
#define DNS 0x0a000203u
#define GFWD 0x0a000264u	/* 10.0.2.100: the guestfwd in CONFIGS */
#define PUBLIC 0x5db8d822u	/* never reached: every socket is a fake */
#define NCONN_OUT 6
#define NCONN 8			/* 6, 7: forwarded (hostfwd) connections */
#define CLIENT_PORT 50000
#define DNS_UP_PORT 9		/* dns-upstream= in CONFIGS */

static const char *const configs[4] = {
	("dns-upstream=127.0.0.1:9,max-flows=16,"
	 "hostfwd=tcp::2222-:22,guestfwd=tcp:10.0.2.100:80-127.0.0.1:8080"),
	("dns-upstream=127.0.0.1:9,dns-upstream=127.0.0.2:9,max-flows=16,"
	 "mtu=576,hostfwd=tcp:127.0.0.1:2222-10.0.2.15:22"),
	"dns-upstream=127.0.0.1:9,max-flows=16,mtu=65520,hostfwd=tcp::2222-:22",
	("dns-upstream=127.0.0.1:9,max-flows=16,host-loopback=off,"
	 "outbound-addr=127.0.0.1,hostfwd=tcp::2222-:22"),
};

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t gw_mac[6] = { 0x52, 0x55, 10, 0, 2, 2 };

/* ---- byte helpers ------------------------------------------------------ */

static bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* The guest's byte at sequence number s; the host's at stream offset o. */
static uint8_t gpat(uint32_t s)
{
	return (uint8_t)(s * 13 + (s >> 9) + 1);
}

static uint8_t hpat(uint64_t o)
{
	return (uint8_t)(o * 7 + (o >> 8) + 3);
}

/* ---- fake host sockets ------------------------------------------------- */

#define FAKE_BASE 700
#define FAKE_MAX 48
#define DGRAM_Q 4
#define DGRAM_MAX 2048

struct fsock {
	bool used;
	int type, proto, family;
	bool connecting, connected, listening;
	bool eof;		/* host peer closed: read gives 0 after data */
	bool reset;		/* host peer reset */
	bool shut_wr;		/* the router shut down its sending side */
	int so_error;		/* pending (SO_ERROR) */
	uint16_t peer_port;
	/* the TCP connection (guest side) this socket belongs to */
	bool keyed, v6;
	uint16_t gport, rport;
	uint8_t rip[16];	/* the address the guest connected to */
	bool g_base_known, r_isn_known;
	uint32_t g_base;	/* sequence number of the guest's first byte */
	uint32_t r_isn;		/* the router's ISN towards the guest */
	/* host -> router stream: offsets of the virtual stream */
	uint64_t delivered, consumed;
	bool peek_on;		/* SO_PEEK_OFF set */
	uint64_t peek_off;
	/* router -> host */
	uint64_t tx;
	uint32_t sndbuf, sndq;
	/* datagrams */
	uint8_t dq[DGRAM_Q][DGRAM_MAX];
	uint16_t dlen[DGRAM_Q];
	unsigned nq;
	uint8_t last[DGRAM_MAX];	/* the last datagram the router sent */
	uint16_t last_len;
	/* epoll */
	bool in_ep;
	uint32_t ep_events;
	uint64_t ep_data;
	unsigned pending_accepts;
};

/* Where a socket() made during a guest SYN belongs. */
struct syn_ctx {
	bool on;
	bool v6;
	uint16_t gport, rport;
	uint8_t rip[16];
	uint32_t seq;
};

struct fz {
	bool armed;		/* fakes active (inside an input) */
	pb_t *pb;
	struct router *r;
	int port;
	uint64_t now;
	uint32_t rnd;
	bool no_peek_off;
	int connect_mode;	/* 0: EINPROGRESS, else an immediate result */
	unsigned fail_sockets;
	int fail_errno;
	unsigned next_client;
	struct syn_ctx syn;
	struct fsock fs[FAKE_MAX];
	struct conn {
		bool v6;
		uint32_t dst;
		uint8_t dst6[16];
		uint16_t gport, rport;
		uint32_t isn, nxt;	/* guest's sequence numbers */
		uint32_t r_nxt;		/* router's, as far as seen */
		bool r_seen;
	} c[NCONN];
	uint64_t frames_out;
};

static struct fz z;

static struct fsock *fake(int fd)
{
	if (!z.armed || fd < FAKE_BASE || fd >= FAKE_BASE + FAKE_MAX ||
	    !z.fs[fd - FAKE_BASE].used)
		return NULL;
	return &z.fs[fd - FAKE_BASE];
}

static int fake_fd(const struct fsock *s)
{
	return FAKE_BASE + (int)(s - z.fs);
}

static struct fsock *fake_new(int family, int type, int proto)
{
	for (int i = 0; i < FAKE_MAX; i++) {
		struct fsock *s = &z.fs[i];

		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		s->used = true;
		s->family = family;
		s->type = type & 0xf;
		s->proto = proto;
		s->sndbuf = 16384;
		return s;
	}
	return NULL;
}

static uint32_t fake_ready(const struct fsock *s)
{
	uint32_t ev = 0;

	if (s->so_error)
		ev |= EPOLLERR;
	if (s->listening)
		return s->pending_accepts ? EPOLLIN : 0;
	if (s->type == SOCK_DGRAM || s->type == SOCK_RAW)
		return ev | (s->nq ? EPOLLIN : 0) | EPOLLOUT;
	if (s->reset)
		return ev | EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLERR;
	if (s->connecting)
		return ev ? ev | EPOLLOUT | EPOLLHUP : 0;
	if (!s->connected)
		return ev | EPOLLHUP;
	if (s->delivered > s->consumed || s->eof)
		ev |= EPOLLIN;
	if (s->eof && s->shut_wr)
		ev |= EPOLLHUP;
	if (!s->shut_wr && s->sndq < s->sndbuf)
		ev |= EPOLLOUT;
	return ev;
}

/* The real functions (--wrap). */
int __real_socket(int, int, int);
int __real_connect(int, const struct sockaddr *, socklen_t);
int __real_bind(int, const struct sockaddr *, socklen_t);
int __real_listen(int, int);
int __real_accept4(int, struct sockaddr *, socklen_t *, int);
int __real_getsockopt(int, int, int, void *, socklen_t *);
int __real_setsockopt(int, int, int, const void *, socklen_t);
ssize_t __real_recv(int, void *, size_t, int);
ssize_t __real_recvmsg(int, struct msghdr *, int);
int __real_recvmmsg(int, struct mmsghdr *, unsigned, int, struct timespec *);
ssize_t __real_recvfrom(int, void *, size_t, int, struct sockaddr *,
			socklen_t *);
ssize_t __real_send(int, const void *, size_t, int);
ssize_t __real_sendto(int, const void *, size_t, int, const struct sockaddr *,
		      socklen_t);
int __real_shutdown(int, int);
int __real_close(int);
int __real_epoll_ctl(int, int, int, struct epoll_event *);
int __real_epoll_wait(int, struct epoll_event *, int, int);
uint32_t __real_arc4random(void);

int __wrap_socket(int, int, int);
int __wrap_socketpair(int, int, int, int *);
int __wrap_connect(int, const struct sockaddr *, socklen_t);
int __wrap_bind(int, const struct sockaddr *, socklen_t);
int __wrap_listen(int, int);
int __wrap_accept4(int, struct sockaddr *, socklen_t *, int);
int __wrap_getsockopt(int, int, int, void *, socklen_t *);
int __wrap_setsockopt(int, int, int, const void *, socklen_t);
ssize_t __wrap_recv(int, void *, size_t, int);
ssize_t __wrap_recvmsg(int, struct msghdr *, int);
int __wrap_recvmmsg(int, struct mmsghdr *, unsigned, int, struct timespec *);
ssize_t __wrap_recvfrom(int, void *, size_t, int, struct sockaddr *,
			socklen_t *);
ssize_t __wrap_send(int, const void *, size_t, int);
ssize_t __wrap_sendmsg(int, const struct msghdr *, int);
ssize_t __real_sendmsg(int, const struct msghdr *, int);
ssize_t __wrap_sendto(int, const void *, size_t, int, const struct sockaddr *,
		      socklen_t);
int __wrap_shutdown(int, int);
int __wrap_close(int);
int __wrap_epoll_ctl(int, int, int, struct epoll_event *);
int __wrap_epoll_wait(int, struct epoll_event *, int, int);
uint32_t __wrap_arc4random(void);

static int fail(int err)
{
	errno = err;
	return -1;
}

int __wrap_socket(int family, int type, int proto)
{
	struct fsock *s;

	if (!z.armed)
		return __real_socket(family, type, proto);
	if (z.fail_sockets) {
		z.fail_sockets--;
		return fail(z.fail_errno);
	}
	s = fake_new(family, type, proto);
	if (!s)
		return fail(EMFILE);
	if (z.syn.on && (type & 0xf) == SOCK_STREAM) {
		s->keyed = true;
		s->v6 = z.syn.v6;
		s->gport = z.syn.gport;
		s->rport = z.syn.rport;
		memcpy(s->rip, z.syn.rip, 16);
		s->g_base = z.syn.seq + 1;
		s->g_base_known = true;
	}
#ifdef TCP_FUZZ_MAIN
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "socket() = %d%s, g_base %u\n", fake_fd(s),
			s->keyed ? " (keyed)" : "", s->g_base);
#endif
	return fake_fd(s);
}

int __wrap_socketpair(int d, int type, int proto, int *sv)
{
	(void)d;
	(void)type;
	(void)proto;
	(void)sv;
	errno = EMFILE;
	return -1;
}

int __wrap_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	struct fsock *s = fake(fd);

	if (!s) {
		/* nothing but a fake may ever connect (network safety) */
		CHECK(!z.armed);
		return __real_connect(fd, a, len);
	}
	CHECK(len >= sizeof(struct sockaddr_in));
	s->peer_port = ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (s->type != SOCK_STREAM) {
		s->connected = true;
		return 0;
	}
	if (s->connecting || s->connected)
		return fail(s->connected ? EISCONN : EALREADY);
	switch (z.connect_mode) {
	case 0:
		s->connecting = true;
		return fail(EINPROGRESS);
	case 1:
		s->connected = true;
		return 0;
	default:
		return fail(z.connect_mode == 2 ? ECONNREFUSED : ENETUNREACH);
	}
}

int __wrap_bind(int fd, const struct sockaddr *a, socklen_t len)
{
	if (!fake(fd)) {
		CHECK(!z.armed);
		return __real_bind(fd, a, len);
	}
	return 0;
}

int __wrap_listen(int fd, int backlog)
{
	struct fsock *s = fake(fd);

	if (!s)
		return __real_listen(fd, backlog);
	s->listening = true;
	return 0;
}

int __wrap_accept4(int fd, struct sockaddr *a, socklen_t *len, int flags)
{
	struct fsock *s = fake(fd), *c;
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (!s)
		return __real_accept4(fd, a, len, flags);
	if (!s->listening || !s->pending_accepts)
		return fail(EAGAIN);
	s->pending_accepts--;
	c = fake_new(AF_INET, SOCK_STREAM, 0);
	if (!c)
		return fail(EMFILE);
	c->connected = true;
	c->keyed = true;
	c->gport = 22;
	c->rport = (uint16_t)(CLIENT_PORT + z.next_client % 2);
	put32(c->rip, GW);	/* a loopback client appears as the gateway */
	z.next_client++;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(c->rport);
	if (a && len) {
		memcpy(a, &sin, MIN((size_t)*len, sizeof(sin)));
		*len = sizeof(sin);
	}
	return fake_fd(c);
}

int __wrap_getsockopt(int fd, int level, int name, void *v, socklen_t *len)
{
	struct fsock *s = fake(fd);

	if (!s)
		return __real_getsockopt(fd, level, name, v, len);
	if (level == SOL_SOCKET && name == SO_ERROR) {
		int e = s->so_error;

		CHECK(*len >= sizeof(int));
		if (s->connecting && !e)
			e = 0;	/* still in progress: the kernel says 0 */
		memcpy(v, &e, sizeof(e));
		s->so_error = 0;
		return 0;
	}
	if (level == SOL_SOCKET && name == SO_MEMINFO) {
		uint32_t mi[SK_MEMINFO_VARS] = { 0 };

		mi[SK_MEMINFO_SNDBUF] = s->sndbuf * 2;
		mi[SK_MEMINFO_WMEM_QUEUED] = s->sndq * 2;
		memcpy(v, mi, MIN((size_t)*len, sizeof(mi)));
		*len = (socklen_t)MIN((size_t)*len, sizeof(mi));
		return 0;
	}
	return fail(ENOPROTOOPT);
}

int __wrap_setsockopt(int fd, int level, int name, const void *v,
		      socklen_t len)
{
	struct fsock *s = fake(fd);
	int val = 0;

	if (!s)
		return __real_setsockopt(fd, level, name, v, len);
	if (len >= sizeof(int))
		memcpy(&val, v, sizeof(int));
	if (level == SOL_SOCKET && name == SO_PEEK_OFF) {
		if (z.no_peek_off || s->type != SOCK_STREAM)
			return fail(EOPNOTSUPP);
		s->peek_on = val >= 0;
		s->peek_off = val >= 0 ? (uint64_t)val : 0;
		return 0;
	}
	return 0;	/* SO_LINGER, TCP_NODELAY, IP_TTL, IP_RECVERR... */
}

/* Copy the virtual stream from offset `from` (past consumed) into iov. */
static size_t stream_copy(struct fsock *s, uint64_t from,
			  const struct iovec *iov, size_t niov)
{
	uint64_t o = s->consumed + from;
	size_t n = 0;

	for (size_t i = 0; i < niov; i++) {
		uint8_t *b = iov[i].iov_base;

		for (size_t j = 0; j < iov[i].iov_len && o < s->delivered; j++)
			b[j] = hpat(o++), n++;
	}
	return n;
}

static ssize_t stream_read(struct fsock *s, const struct iovec *iov,
			   size_t niov, int flags)
{
	size_t want = 0, n;
	uint64_t from = 0;

	for (size_t i = 0; i < niov; i++)
		want += iov[i].iov_len;
	if (s->reset)
		return fail(ECONNRESET);
	if (!s->connected)
		return fail(ENOTCONN);
	if (!want)
		return 0;
	if ((flags & MSG_PEEK) && s->peek_on)
		from = s->peek_off;
#ifdef TCP_FUZZ_MAIN
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "read %#x: want %zu from %llu (consumed %llu of %llu)\n",
			flags, want, (unsigned long long)from,
			(unsigned long long)s->consumed,
			(unsigned long long)s->delivered);
#endif
	if (s->consumed + from >= s->delivered)
		return s->eof ? 0 : fail(EAGAIN);
	if (flags & MSG_TRUNC) {
		CHECK(!(flags & MSG_PEEK));
		n = (size_t)MIN((uint64_t)want, s->delivered - s->consumed);
	} else {
		n = stream_copy(s, from, iov, niov);
	}
	if (flags & MSG_PEEK) {
		if (s->peek_on)
			s->peek_off += n;
	} else {
		s->consumed += n;
		if (s->peek_on)
			s->peek_off -= MIN(s->peek_off, (uint64_t)n);
	}
	return (ssize_t)n;
}

static ssize_t dgram_read(struct fsock *s, const struct iovec *iov,
			  size_t niov, int flags)
{
	size_t n = 0, len;

	if (flags & MSG_ERRQUEUE)
		return fail(EAGAIN);
	if (s->so_error) {
		int e = s->so_error;

		s->so_error = 0;
		return fail(e);
	}
	if (!s->nq)
		return fail(EAGAIN);
	len = s->dlen[0];
	for (size_t i = 0; i < niov && n < len; i++) {
		size_t k = MIN(iov[i].iov_len, len - n);

		memcpy(iov[i].iov_base, s->dq[0] + n, k);
		n += k;
	}
	if (!(flags & MSG_PEEK)) {
		s->nq--;
		memmove(s->dq[0], s->dq[1], sizeof(s->dq[0]) * s->nq);
		memmove(s->dlen, s->dlen + 1, sizeof(s->dlen[0]) * s->nq);
	}
	return (ssize_t)n;
}

static ssize_t fake_read(struct fsock *s, const struct iovec *iov, size_t niov,
			 int flags)
{
	CHECK(flags & MSG_DONTWAIT);
	if (s->type == SOCK_STREAM)
		return stream_read(s, iov, niov, flags);
	return dgram_read(s, iov, niov, flags);
}

ssize_t __wrap_recv(int fd, void *b, size_t len, int flags)
{
	struct fsock *s = fake(fd);
	struct iovec iov = { .iov_base = b, .iov_len = len };

	if (!s)
		return __real_recv(fd, b, len, flags);
	if (!b) {
		CHECK(flags & MSG_TRUNC);
		iov.iov_len = len;
	}
	return fake_read(s, &iov, 1, flags);
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *mh, int flags)
{
	struct fsock *s = fake(fd);
	ssize_t n;

	if (!s)
		return __real_recvmsg(fd, mh, flags);
	n = fake_read(s, mh->msg_iov, mh->msg_iovlen, flags);
	if (n >= 0) {
		mh->msg_controllen = 0;
		mh->msg_flags = 0;
	}
	return n;
}

int __wrap_recvmmsg(int fd, struct mmsghdr *m, unsigned n, int flags,
		    struct timespec *t)
{
	struct fsock *s = fake(fd);
	unsigned i;

	if (!s)
		return __real_recvmmsg(fd, m, n, flags, t);
	for (i = 0; i < n; i++) {
		ssize_t k = fake_read(s, m[i].msg_hdr.msg_iov,
				      m[i].msg_hdr.msg_iovlen, flags);

		if (k < 0)
			return i ? (int)i : -1;
		m[i].msg_len = (unsigned)k;
	}
	return (int)i;
}

ssize_t __wrap_recvfrom(int fd, void *b, size_t len, int flags,
			struct sockaddr *a, socklen_t *alen)
{
	struct fsock *s = fake(fd);

	if (!s)
		return __real_recvfrom(fd, b, len, flags, a, alen);
	return fail(EAGAIN);	/* no UDP hostfwd in CONFIGS */
}

ssize_t __wrap_send(int fd, const void *b, size_t len, int flags)
{
	struct fsock *s = fake(fd);
	const uint8_t *p = b;
	size_t n;

	if (!s) {
		CHECK(!z.armed);
		return __real_send(fd, b, len, flags);
	}
	CHECK(flags & MSG_DONTWAIT);
	if (s->type != SOCK_STREAM) {
		if (s->so_error) {
			int e = s->so_error;

			s->so_error = 0;
			return fail(e);
		}
		s->last_len = (uint16_t)MIN(len, sizeof(s->last));
		memcpy(s->last, b, s->last_len);
		return (ssize_t)len;
	}
	if (s->reset)
		return fail(ECONNRESET);
	if (s->shut_wr)
		return fail(EPIPE);
	if (!s->connected)
		return fail(ENOTCONN);
	n = MIN(len, (size_t)(s->sndbuf - MIN(s->sndq, s->sndbuf)));
	if (!n)
		return fail(EAGAIN);
	/* the guest's stream, whole and in order */
	for (size_t j = 0; s->g_base_known && j < n; j++)
		CHECK(p[j] == gpat(s->g_base + (uint32_t)(s->tx + j)));
	s->tx += n;
	s->sndq += (uint32_t)n;
	return (ssize_t)n;
}

/* A run of one flow's datagrams with UDP_SEGMENT (udp.c): equal-sized
 * segments, the last no larger; an "old kernel" (no SO_PEEK_OFF) has no
 * UDP_SEGMENT either, and says EINVAL. */
ssize_t __wrap_sendmsg(int fd, const struct msghdr *mh, int flags)
{
	struct fsock *s = fake(fd);
	const struct cmsghdr *cm;
	uint16_t seg = 0;
	size_t total = 0;

	if (!s) {
		CHECK(!z.armed);
		return __real_sendmsg(fd, mh, flags);
	}
	CHECK(flags & MSG_DONTWAIT);
	CHECK(s->type != SOCK_STREAM);
	for (cm = CMSG_FIRSTHDR((struct msghdr *)mh); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)mh, (struct cmsghdr *)cm))
		if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == 103)
			memcpy(&seg, CMSG_DATA(cm), sizeof(seg));
	CHECK(seg && mh->msg_iovlen >= 2 && mh->msg_iovlen <= 64);
	for (size_t i = 0; i < mh->msg_iovlen; i++) {
		CHECK(mh->msg_iov[i].iov_len <= seg);
		CHECK(i + 1 == mh->msg_iovlen || mh->msg_iov[i].iov_len == seg);
		total += mh->msg_iov[i].iov_len;
	}
	CHECK(total <= 65507);
	if (z.no_peek_off)
		return fail(EINVAL);
	if (s->so_error) {
		int e = s->so_error;

		s->so_error = 0;
		return fail(e);
	}
	return (ssize_t)total;
}

ssize_t __wrap_sendto(int fd, const void *b, size_t len, int flags,
		      const struct sockaddr *a, socklen_t alen)
{
	if (!fake(fd)) {
		CHECK(!z.armed);
		return __real_sendto(fd, b, len, flags, a, alen);
	}
	return __wrap_send(fd, b, len, flags);
}

int __wrap_shutdown(int fd, int how)
{
	struct fsock *s = fake(fd);

	if (!s)
		return __real_shutdown(fd, how);
	if (how == SHUT_WR || how == SHUT_RDWR)
		s->shut_wr = true;
	return 0;
}

int __wrap_close(int fd)
{
	struct fsock *s = fake(fd);

	if (!s) {
		CHECK(!z.armed || fd < FAKE_BASE || fd >= FAKE_BASE + FAKE_MAX);
		return __real_close(fd);
	}
	s->used = false;
	s->in_ep = false;	/* as the kernel: the last close leaves epoll */
#ifdef TCP_FUZZ_MAIN
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "close(%d)\n", fd);
#endif
	return 0;
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct fsock *s = fake(fd);

	if (!s)
		return __real_epoll_ctl(epfd, op, fd, ev);
	CHECK(epfd == pb_fd(z.pb));
	switch (op) {
	case EPOLL_CTL_ADD:
		if (s->in_ep)
			return fail(EEXIST);
		s->in_ep = true;
		break;
	case EPOLL_CTL_MOD:
		if (!s->in_ep)
			return fail(ENOENT);
		break;
	case EPOLL_CTL_DEL:
		if (!s->in_ep)
			return fail(ENOENT);
		s->in_ep = false;
		return 0;
	default:
		return fail(EINVAL);
	}
	s->ep_events = ev->events;
	s->ep_data = ev->data.u64;
	return 0;
}

int __wrap_epoll_wait(int epfd, struct epoll_event *ev, int max, int tmo)
{
	int n;

	if (!z.armed || !z.pb || epfd != pb_fd(z.pb))
		return __real_epoll_wait(epfd, ev, max, tmo);
	n = __real_epoll_wait(epfd, ev, max, 0);
	if (n < 0)
		return n;
	for (int i = 0; i < FAKE_MAX && n < max; i++) {
		struct fsock *s = &z.fs[i];
		uint32_t r;

		if (!s->used || !s->in_ep)
			continue;
		r = fake_ready(s) & (s->ep_events | EPOLLERR | EPOLLHUP);
		if (!r)
			continue;
		ev[n].events = r;
		ev[n].data.u64 = s->ep_data;
		n++;
	}
	return n;
}

uint32_t __wrap_arc4random(void)
{
	if (!z.armed)
		return __real_arc4random();
	z.rnd = z.rnd * 1103515245u + 12345u;
	return z.rnd;
}

/* ---- checks on what the router sends ----------------------------------- */

static struct fsock *fake_for(bool v6, const uint8_t *rip, uint16_t gport,
			      uint16_t rport)
{
	for (int i = 0; i < FAKE_MAX; i++) {
		struct fsock *s = &z.fs[i];

		if (s->used && s->keyed && s->v6 == v6 && s->gport == gport &&
		    s->rport == rport && !memcmp(s->rip, rip, v6 ? 16 : 4))
			return s;
	}
	return NULL;
}

static struct conn *conn_for(bool v6, uint16_t gport, uint16_t rport)
{
	for (int i = 0; i < NCONN; i++)
		if (z.c[i].gport == gport && z.c[i].rport == rport &&
		    z.c[i].v6 == v6)
			return &z.c[i];
	return NULL;
}

static void check_tcp(bool v6, const uint8_t *rip, const uint8_t *t,
		      size_t l4len)
{
	size_t hlen = (size_t)(t[12] >> 4) * 4, plen = l4len - hlen;
	uint16_t rport = get16(t), gport = get16(t + 2);
	uint32_t seq = get32(t + 4), ack = get32(t + 8);
	uint8_t fl = t[13];
	struct fsock *s = fake_for(v6, rip, gport, rport);
	struct conn *c = conn_for(v6, gport, rport);

	CHECK(hlen >= 20);
#ifdef TCP_FUZZ_MAIN
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "tcp %u -> %u%s flags %#x seq %u ack %u len %zu"
			" (host: %s%llu delivered, %llu consumed, %llu sent)\n",
			rport, gport, v6 ? " (v6)" : "", fl, seq, ack, plen,
			!s ? "no socket, " : s->eof ? "eof, " : "",
			s ? (unsigned long long)s->delivered : 0ull,
			s ? (unsigned long long)s->consumed : 0ull,
			s ? (unsigned long long)s->tx : 0ull);
#endif
	if (c && !(fl & TH_RST)) {
		uint32_t end = seq + (uint32_t)plen + !!(fl & (TH_SYN | TH_FIN));

		if (!c->r_seen || seq_lt(c->r_nxt, end))
			c->r_nxt = end;
		c->r_seen = true;
	}
	if (!s) {
		/* no host socket: no data, no FIN can come from it */
		CHECK(plen == 0);
		CHECK(!(fl & TH_FIN) || (fl & TH_RST));
		return;
	}
	if (fl & TH_RST)
		return;
	if (fl & TH_SYN) {
		CHECK(plen == 0 && !(fl & TH_FIN));
		s->r_isn = seq;
		s->r_isn_known = true;
		if ((fl & TH_ACK) && s->g_base_known)
			CHECK(ack == s->g_base);
		return;
	}
	if ((fl & TH_ACK) && !s->g_base_known && !s->tx) {
		/* a forwarded connection: the first ACK after our SYN
		 * acknowledges the guest's SYN, nothing more */
		s->g_base = ack;
		s->g_base_known = true;
	}
	if ((fl & TH_ACK) && s->g_base_known)
		CHECK(ack - s->g_base <= s->tx + s->shut_wr);
	if (plen || (fl & TH_FIN)) {
		uint32_t off;

		CHECK(s->r_isn_known);
		off = seq - (s->r_isn + 1);
		CHECK((uint64_t)off + plen <= s->delivered);
		for (size_t j = 0; j < plen; j++)
			CHECK(t[hlen + j] == hpat((uint64_t)off + j));
		if (fl & TH_FIN)
			CHECK(s->eof && (uint64_t)off + plen == s->delivered);
	}
}

/* The IPv6 datagram whose fragments are coming (the router emits all of
 * one datagram's in a row): made whole here, its checksum checked then. */
static struct {
	bool on;
	uint32_t id, total, have;
	uint8_t nh;
	uint8_t addrs[32];
	uint8_t buf[65536];
} fr6;

static void check_frag6(const uint8_t *ip, const uint8_t *l4, size_t l4len)
{
	uint16_t w;
	uint32_t id, off, n;
	bool more;

	CHECK(l4len > 8);
	w = get16(l4 + 2);
	id = get32(l4 + 4);
	off = w & ~7u;
	more = w & 1;
	n = (uint32_t)(l4len - 8);
	CHECK(!more || n % 8 == 0);
	CHECK(off + n <= 65535);
	CHECK(l4[0] == 17 || l4[0] == 58);
	if (!fr6.on || fr6.id != id ||
	    memcmp(fr6.addrs, ip + 8, 32)) {
		/* (one cut short by a full arena is left behind) */
		fr6.on = true;
		fr6.id = id;
		fr6.total = fr6.have = 0;
		memcpy(fr6.addrs, ip + 8, 32);
	}
	memcpy(fr6.buf + off, l4 + 8, n);
	fr6.have += n;
	if (!more)
		fr6.total = off + n;
	if (off == 0)
		fr6.nh = l4[0];
	if (fr6.total && fr6.have == fr6.total) {
		uint32_t ph = sum16(fr6.addrs, 32, 0) + fr6.nh + fr6.total;

		CHECK(fold(sum16(fr6.buf, fr6.total, ph)) == 0xffff);
		fr6.on = false;
	}
}

static void fz_rx(void *opaque, const void *frame, size_t len)
{
	const uint8_t *f = frame, *ip, *l4;
	size_t total, l4len;
	uint16_t type;
	uint32_t ph;

	(void)opaque;
	z.frames_out++;
	CHECK(len >= 14 && len <= z.r->mtu + 14u);
	CHECK(!memcmp(f + 6, z.r->mac, 6));
	type = get16(f + 12);
	if (type == 0x0806) {
		CHECK(len == 42);
		return;
	}
	if (type == 0x86dd) {
		CHECK(len >= 14 + 40);
		ip = f + 14;
		CHECK(ip[0] >> 4 == 6);
		l4len = get16(ip + 4);
		CHECK(14 + 40 + l4len <= len);
		l4 = ip + 40;
		if (ip[6] == 44) {
			check_frag6(ip, l4, l4len);
			return;
		}
		ph = sum16(ip + 8, 32, 0) + ip[6] + (uint32_t)l4len;
		CHECK(fold(sum16(l4, l4len, ph)) == 0xffff);
		if (ip[6] == 6) {
			CHECK(l4len >= 20);
			check_tcp(true, ip + 8, l4, l4len);
		}
		return;
	}
	CHECK(type == 0x0800);
	CHECK(len >= 14 + 20);
	ip = f + 14;
	CHECK(ip[0] == 0x45);
	total = get16(ip + 2);
	CHECK(total >= 20 && 14 + total <= len && total <= z.r->mtu);
	CHECK(fold(sum16(ip, 20, 0)) == 0xffff);
	if (get16(ip + 6) & 0x3fff)
		return;		/* a fragment */
	l4 = ip + 20;
	l4len = total - 20;
	if (ip[9] == 1) {
		CHECK(l4len >= 8 && fold(sum16(l4, l4len, 0)) == 0xffff);
		return;
	}
	CHECK(ip[9] == 6 || ip[9] == 17);
	ph = sum16(ip + 12, 8, 0) + ip[9] + (uint32_t)l4len;
	if (ip[9] == 17) {
		CHECK(l4len >= 8 && get16(l4 + 4) == l4len);
		CHECK(fold(sum16(l4, l4len, ph)) == 0xffff);
		return;
	}
	CHECK(l4len >= 20 && (l4[12] >> 4) * 4u <= l4len);
	CHECK(fold(sum16(l4, l4len, ph)) == 0xffff);
	check_tcp(false, ip + 12, l4, l4len);
}

static void fz_log(void *opaque, enum pb_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	CHECK(msg != NULL && strlen(msg) < 4096);
#ifdef TCP_FUZZ_MAIN
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "log: %s\n", msg);
#endif
}

static uint64_t fz_clock(void *opaque)
{
	(void)opaque;
	return z.now;
}

/* After every event. */
static void fz_after(void)
{
	struct flow_table *t = z.r->flows;

	CHECK(z.r->arena_used == 0);
	CHECK(z.r->nack == 0);
	for (uint32_t i = 0; i < t->high; i++) {
		const struct flow *f = &t->f[i];

		if (f->used && f->fd >= 0)
			CHECK(fake(f->fd) != NULL);
	}
}

/* ---- guest frames ------------------------------------------------------ */

static uint8_t frame[70000];

static const uint8_t guest6[16] = { 0xfe, 0xc0, [15] = 0x15 };
static const uint8_t host6[16] = { 0xfe, 0xc0, [15] = 0x02 };
static const uint8_t dns6[16] = { 0xfe, 0xc0, [15] = 0x03 };
static const uint8_t public6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };

/* Ethernet + IPv4/IPv6 header in front of l4len bytes at l4off(v6), with
 * the L4 checksum at csum_at filled in.  Returns the frame's length. */
static size_t l4off(bool v6)
{
	return 14 + (v6 ? 40u : 20u);
}

static size_t ip_wrap(const struct conn *c, uint8_t proto, size_t l4len,
		      size_t csum_at)
{
	uint8_t *ip = frame + 14, *l4 = frame + l4off(c->v6);
	uint32_t ph;

	memcpy(frame, gw_mac, 6);
	memcpy(frame + 6, guest_mac, 6);
	put16(frame + 12, c->v6 ? 0x86dd : 0x0800);
	if (c->v6) {
		memset(ip, 0, 40);
		ip[0] = 0x60;
		put16(ip + 4, (uint32_t)l4len);
		ip[6] = proto;
		ip[7] = 64;
		memcpy(ip + 8, guest6, 16);
		memcpy(ip + 24, c->dst6, 16);
		ph = sum16(ip + 8, 32, 0) + proto + (uint32_t)l4len;
	} else {
		memset(ip, 0, 20);
		ip[0] = 0x45;
		put16(ip + 2, (uint32_t)(20 + l4len));
		put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = proto;
		put32(ip + 12, GUEST);
		put32(ip + 16, c->dst);
		put16(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
		ph = sum16(ip + 12, 8, 0) + proto + (uint32_t)l4len;
	}
	if (proto == 1)
		ph = 0;
	put16(l4 + csum_at, 0);
	put16(l4 + csum_at, (uint16_t)~fold(sum16(l4, l4len, ph)));
	return l4off(c->v6) + l4len;
}

static void send_frame(size_t len)
{
	z.now += 1000;
	CHECK(pb_port_send(z.pb, z.port, frame, len) == 0);
}

static void send_tcp(struct conn *c, uint8_t flags, uint32_t seq,
		     uint32_t ack, uint16_t wnd, const uint8_t *opt,
		     size_t optlen, size_t plen)
{
	uint8_t *t = frame + l4off(c->v6);
	size_t hlen = 20 + ((optlen + 3) & ~(size_t)3);

	memset(t, 0, hlen);
	put16(t, c->gport);
	put16(t + 2, c->rport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (uint8_t)(hlen / 4 << 4);
	t[13] = flags;
	put16(t + 14, wnd);
	if (optlen)
		memcpy(t + 20, opt, optlen);
	for (size_t j = 0; j < plen; j++)
		t[hlen + j] = gpat(seq + (flags & TH_SYN ? 1 : 0) + (uint32_t)j);
	send_frame(ip_wrap(c, 6, hlen + plen, 16));
}

/* ---- events ------------------------------------------------------------ */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t in8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t in16(struct in *in)
{
	uint16_t hi = in8(in);

	return (uint16_t)(hi << 8 | in8(in));
}

static uint32_t in32(struct in *in)
{
	uint32_t hi = in16(in);

	return hi << 16 | in16(in);
}

enum op {
	OP_SYN, OP_SEG, OP_SYNACK, OP_HDATA, OP_HEOF, OP_HRST, OP_CONNDONE,
	OP_HREAD, OP_SNDBUF, OP_ACCEPT, OP_TICK, OP_DISPATCH, OP_UDP, OP_PING,
	OP_FAIL, OP_CMODE, OP_COUNT
};

static void dispatch(void)
{
	CHECK(pb_dispatch(z.pb) >= 0);
}

/* The n-th live fake socket (modulo their number), or NULL. */
static struct fsock *pick(uint8_t n)
{
	unsigned live = 0;

	for (int i = 0; i < FAKE_MAX; i++)
		live += z.fs[i].used;
	if (!live)
		return NULL;
	n = (uint8_t)(n % live);
	for (int i = 0; i < FAKE_MAX; i++)
		if (z.fs[i].used && !n--)
			return &z.fs[i];
	return NULL;
}

static void ev_syn(struct in *in)
{
	static const uint16_t mss_tab[8] = { 1460, 536, 64, 65535,
					     0, 1, 20000, 1220 };
	struct conn *c = &z.c[in8(in) % NCONN_OUT];
	uint8_t d = in8(in) % 6, o = in8(in), ws = in8(in);
	uint16_t wnd = in16(in);
	uint32_t isn = in32(in);
	uint8_t opt[8];
	size_t optlen = 0;

	memset(c, 0, sizeof(*c));
	c->gport = (uint16_t)(40000 + (c - z.c));
	c->v6 = d >= 4;
	switch (d) {
	case 0: c->dst = GW; c->rport = 80; break;
	case 1: c->dst = PUBLIC; c->rport = 443; break;
	case 2: c->dst = DNS; c->rport = 53; break;
	case 3: c->dst = GFWD; c->rport = 80; break;
	case 4: memcpy(c->dst6, host6, 16); c->rport = 80; break;
	default: memcpy(c->dst6, public6, 16); c->rport = 443; break;
	}
	if (o & 1) {
		opt[optlen++] = 2;
		opt[optlen++] = 4;
		put16(opt + optlen, mss_tab[(o >> 1) & 7]);
		optlen += 2;
	}
	if (o & 0x10) {
		opt[optlen++] = 1;
		opt[optlen++] = 3;
		opt[optlen++] = 3;
		opt[optlen++] = ws;
	}
	c->isn = isn;
	c->nxt = isn + 1;
	z.syn = (struct syn_ctx){ .on = true, .v6 = c->v6, .gport = c->gport,
				  .rport = c->rport, .seq = isn };
	if (c->v6)
		memcpy(z.syn.rip, c->dst6, 16);
	else
		put32(z.syn.rip, c->dst);
	send_tcp(c, (uint8_t)(TH_SYN | (o & 0x40)), isn, 0, wnd, opt, optlen, 0);
	z.syn.on = false;
}

static void ev_seg(struct in *in)
{
	struct conn *c = &z.c[in8(in) % NCONN];
	uint8_t fl = in8(in);
	int8_t sd = (int8_t)in8(in), ad = (int8_t)in8(in);
	uint16_t wnd = in16(in);
	size_t plen = (size_t)in8(in) * 8;
	uint8_t flags = fl < 0x80 ? (uint8_t)(TH_ACK | (fl & (TH_PSH | TH_FIN)))
				  : (uint8_t)(fl & 0x3f);
	uint32_t seq = c->nxt + (uint32_t)(int32_t)sd;

	if (!c->gport)
		return;		/* never opened */
	if (fl < 0x80 && (fl & 0x40))
		plen = MIN(plen * 8, (size_t)65000);	/* large */
	send_tcp(c, flags, seq, c->r_nxt + (uint32_t)(int32_t)ad, wnd, NULL, 0,
		 plen);
	c->nxt = seq + (uint32_t)plen + !!(flags & TH_FIN) + !!(flags & TH_SYN);
}

static void ev_synack(struct in *in)
{
	struct conn *c = &z.c[NCONN_OUT + in8(in) % 2];
	uint16_t wnd = in16(in);
	uint8_t o = in8(in);
	uint32_t isn = in32(in);
	static const uint8_t opt[8] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7 };

	if (!c->r_seen)
		return;		/* no SYN from the router yet */
	c->isn = isn;
	c->nxt = isn + 1;
	send_tcp(c, TH_SYN | TH_ACK, isn, c->r_nxt, wnd, opt, o & 1 ? 8 : 4, 0);
}

static void ev_hdata(struct in *in)
{
	struct fsock *s = pick(in8(in));
	uint8_t n = in8(in);

	if (!s || s->listening)
		return;
	if (s->type == SOCK_STREAM) {
		if (!s->eof && !s->reset && s->connected)
			s->delivered += (uint64_t)n * 64 + 1;
		return;
	}
	if (s->nq == DGRAM_Q)
		return;
	uint8_t *d = s->dq[s->nq];
	size_t len;

	if (s->proto == IPPROTO_ICMP && s->last_len >= 8) {
		/* an echo reply to the last request */
		len = s->last_len;
		memcpy(d, s->last, len);
		d[0] = 0;
	} else if (s->peer_port == DNS_UP_PORT && s->last_len >= 12 &&
		   !(n & 1)) {
		/* the upstream's answer to the last query */
		len = s->last_len;
		memcpy(d, s->last, len);
		d[2] |= 0x80;
		if (n & 2)
			d[1] ^= 1;	/* a wrong ID */
		if ((n & 4) && len + 16 <= DGRAM_MAX) {
			static const uint8_t rr[16] = { 0xc0, 0x0c, 0, 1, 0, 1,
							0, 0, 0, 60, 0, 4,
							93, 184, 216, 34 };

			memcpy(d + len, rr, 16);
			len += 16;
			d[7] = 1;
		}
	} else {
		len = MIN((size_t)n * 8, (size_t)DGRAM_MAX);
		for (size_t j = 0; j < len; j++)
			d[j] = hpat(j);
	}
	s->dlen[s->nq++] = (uint16_t)len;
}

static void ev_connect_done(struct in *in)
{
	static const int errs[4] = { 0, ECONNREFUSED, ENETUNREACH, ETIMEDOUT };
	struct fsock *s = pick(in8(in));
	int e = errs[in8(in) & 3];

	if (!s || !s->connecting)
		return;
	s->connecting = false;
	if (e)
		s->so_error = e;
	else
		s->connected = true;
}

static void ev_udp(struct in *in)
{
	static const char *const names[4] = { "\7example\3com", "\4host",
					       "\4host\10patchbay\10internal",
					       "\3www\7example\3org" };
	struct conn c = { .gport = (uint16_t)(5300 + in8(in) % 4) };
	uint8_t k = in8(in), n = in8(in);
	uint8_t *u = frame + 0;
	size_t len = 0;

	switch (k % 4) {
	case 0:
	case 1: {
		const char *nm = names[n % 4];

		c.v6 = k % 4 == 1;
		c.dst = DNS;
		memcpy(c.dst6, dns6, 16);
		c.rport = 53;
		u = frame + l4off(c.v6) + 8;
		memcpy(u, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
		       12);
		len = 12;
		memcpy(u + len, nm, strlen(nm) + 1);
		len += strlen(nm) + 1;
		memcpy(u + len, "\x00\x01\x00\x01", 4);
		len += 4;
		break;
	}
	default:
		c.v6 = k % 4 == 3;
		c.dst = PUBLIC;
		memcpy(c.dst6, public6, 16);
		c.rport = 9;
		u = frame + l4off(c.v6) + 8;
		len = (size_t)n * 16;
		for (size_t j = 0; j < len; j++)
			u[j] = (uint8_t)j;
		break;
	}
	u -= 8;
	put16(u, c.gport);
	put16(u + 2, c.rport);
	put16(u + 4, (uint32_t)(8 + len));
	send_frame(ip_wrap(&c, 17, 8 + len, 6));
}

static void ev_ping(struct in *in)
{
	struct conn c = { .dst = PUBLIC };
	uint8_t *ic = frame + l4off(false);
	uint16_t id = in8(in) % 2, sq = in8(in);

	memset(ic, 0, 8);
	ic[0] = 8;
	put16(ic + 4, id);
	put16(ic + 6, sq);
	memcpy(ic + 8, "patchbay", 8);
	send_frame(ip_wrap(&c, 1, 16, 2));
}

static void run_event(struct in *in)
{
	static const int errs[4] = { EMFILE, ENFILE, ENOBUFS, EACCES };
	struct fsock *s;
	uint8_t b;

	switch (in8(in) % OP_COUNT) {
	case OP_SYN:
		ev_syn(in);
		break;
	case OP_SEG:
		ev_seg(in);
		break;
	case OP_SYNACK:
		ev_synack(in);
		break;
	case OP_HDATA:
		ev_hdata(in);
		break;
	case OP_HEOF:
		if ((s = pick(in8(in))) && s->connected)
			s->eof = true;
		break;
	case OP_HRST:
		if ((s = pick(in8(in))) && s->type == SOCK_STREAM &&
		    s->connected) {
			s->reset = true;
			s->so_error = ECONNRESET;
		} else if (s && s->type != SOCK_STREAM) {
			s->so_error = ECONNREFUSED;
		}
		break;
	case OP_CONNDONE:
		ev_connect_done(in);
		break;
	case OP_HREAD:
		if ((s = pick(in8(in))))
			s->sndq -= MIN(s->sndq, (uint32_t)in8(in) * 256 + 1);
		break;
	case OP_SNDBUF:
		if ((s = pick(in8(in))))
			s->sndbuf = (uint32_t)in8(in) * 512;
		break;
	case OP_ACCEPT:
		for (int i = 0; i < FAKE_MAX; i++)
			if (z.fs[i].used && z.fs[i].listening)
				z.fs[i].pending_accepts++;
		break;
	case OP_TICK:
		b = in8(in);
		z.now += (b < 128 ? (uint64_t)b * 10 : (uint64_t)(b - 127) * 1000) *
			 NS_PER_MS;
		dispatch();
		break;
	case OP_DISPATCH:
		dispatch();
		break;
	case OP_UDP:
		ev_udp(in);
		break;
	case OP_PING:
		ev_ping(in);
		break;
	case OP_FAIL:
		b = in8(in);
		z.fail_sockets = 1 + (b & 3);
		z.fail_errno = errs[(b >> 2) & 3];
		break;
	case OP_CMODE:
		z.connect_mode = in8(in) & 3;
		break;
	}
}

/* The accepted connections' guest side: 10.0.2.15:22 <- gateway:5000x. */
static void conns_init(void)
{
	memset(z.c, 0, sizeof(z.c));
	for (int j = 0; j < 2; j++) {
		struct conn *c = &z.c[NCONN_OUT + j];

		c->gport = 22;
		c->rport = (uint16_t)(CLIENT_PORT + j);
		c->dst = GW;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_DEBUG,
				 .log_fn = fz_log,
				 .max_ports = 8,
				 .max_segments = 2 };
	struct in in = { data, size };
	char spec[1024];
	uint8_t conf;
	int nd;

	if (size < 5)
		return 0;
	memset(&z, 0, sizeof(z));
	z.now = 1000 * NS_PER_SEC;
	conf = in8(&in);
	z.rnd = in32(&in);
	z.no_peek_off = conf & 4;
	z.connect_mode = conf & 8 ? 1 : 0;
	conns_init();
	CHECK(pb_new(&cfg, &z.pb) == 0);
	CHECK(pb_fd(z.pb) < FAKE_BASE);
	z.armed = true;
	z.pb->loop.clock = fz_clock;
	z.pb->loop.clock_opaque = &z;
	CHECK(pb_segment_add(z.pb, "switch,id=s,fdb-size=64") == 0);
	snprintf(spec, sizeof(spec), "user,id=u,segment=s,%s", configs[conf & 3]);
	if (pb_netdev_add(z.pb, spec) < 0) {
		fprintf(stderr, "%s: %s\n", spec, pb_errmsg(z.pb));
		abort();
	}
	z.port = pb_callback_port_add(z.pb, "c", "s", fz_rx, &z);
	CHECK(z.port >= 0);
	nd = netdev_find(z.pb, "u");
	CHECK(nd >= 0);
	z.r = router_get(z.pb, (uint32_t)nd);
	CHECK(z.r != NULL);
	/* the router learns the guest's MAC (it sends it forwarded SYNs) */
	{
		uint8_t *a = frame + 14;

		memset(frame, 0xff, 6);
		memcpy(frame + 6, guest_mac, 6);
		put16(frame + 12, 0x0806);
		memcpy(a, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
		memcpy(a + 8, guest_mac, 6);
		put32(a + 14, GUEST);
		memset(a + 18, 0, 6);
		put32(a + 24, GW);
		send_frame(42);
	}
	while (in.n) {
		run_event(&in);
		fz_after();
	}
	/* let everything time out, then tear down (leaks: ASan) */
	for (int i = 0; i < 4; i++) {
		z.now += 600 * NS_PER_SEC;
		dispatch();
		fz_after();
	}
#ifdef TCP_FUZZ_MAIN
	pb_log_stats(z.pb);
	fprintf(stderr, "frames out: %llu\n", (unsigned long long)z.frames_out);
#endif
	pb_free(z.pb);
	for (int i = 0; i < FAKE_MAX; i++)
		CHECK(!z.fs[i].used);	/* every host socket closed */
	z.armed = false;
	z.pb = NULL;
	return 0;
}

#ifdef TCP_FUZZ_MAIN
/* ---- seed corpus and replay -------------------------------------------- */

struct seed {
	uint8_t b[4096];
	size_t n;
};

static void s_bytes(struct seed *s, const void *p, size_t n)
{
	CHECK(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void s_op(struct seed *s, enum op op, const char *args, size_t n)
{
	uint8_t o = (uint8_t)op;

	s_bytes(s, &o, 1);
	s_bytes(s, args, n);
}

#define OP(s, op, lit) s_op(s, op, lit, sizeof(lit) - 1)

static void s_start(struct seed *s, uint8_t conf)
{
	s->n = 0;
	s_bytes(s, &conf, 1);
	s_bytes(s, "\x01\x02\x03\x04", 4);
}

static void s_write(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	CHECK(fp != NULL);
	CHECK(fwrite(s->b, 1, s->n, fp) == s->n);
	CHECK(fclose(fp) == 0);
	LLVMFuzzerTestOneInput(s->b, s->n);	/* a seed must itself pass */
}

/*
 * Handshake, data both ways, close: SYN (MSS 1460, WS 7) on connection 0
 * to the gateway, connect completes, guest ACKs the SYN-ACK, sends 80
 * bytes, the host sends 129 bytes and closes, the guest ACKs everything
 * and sends its FIN.  The operands of SEG are relative, so the same bytes
 * work whatever the ISNs.
 */
static void seed_handshake(struct seed *s)
{
	/* conn 0, gateway, MSS+WS, ws 7, window 64240, ISN 0x10000000 */
	OP(s, OP_SYN, "\x00\x00\x13\x07\xfa\xf0\x10\x00\x00\x00");
	OP(s, OP_CONNDONE, "\x00\x00");	/* socket 0 is the hostfwd's */
	OP(s, OP_CONNDONE, "\x01\x00");
	OP(s, OP_DISPATCH, "");
	/* ACK of the SYN-ACK: conn 0, ACK, seq +0, ack +0, wnd, no data */
	OP(s, OP_SEG, "\x00\x00\x00\x00\x01\xf5\x00");
	/* 80 bytes of data with PSH */
	OP(s, OP_SEG, "\x00\x08\x00\x00\x01\xf5\x0a");
	OP(s, OP_HDATA, "\x01\x02");	/* 129 bytes from the host */
	OP(s, OP_HEOF, "\x01");
	OP(s, OP_DISPATCH, "");
	OP(s, OP_SEG, "\x00\x00\x00\x00\x01\xf5\x00");	/* ACK all */
	OP(s, OP_SEG, "\x00\x01\x00\x00\x01\xf5\x00");	/* FIN */
	OP(s, OP_HREAD, "\x01\xff");
	OP(s, OP_TICK, "\x82");
}

static void write_seeds(const char *dir)
{
	struct seed s;

	s_start(&s, 0);
	seed_handshake(&s);
	s_write(dir, "handshake-data-close", &s);

	/* the same without SO_PEEK_OFF, at MTU 576, connect immediate */
	s_start(&s, 1 | 4 | 8);
	seed_handshake(&s);
	s_write(dir, "nopeek-mtu576", &s);

	/* refused, unreachable, then EMFILE */
	s_start(&s, 0);
	OP(&s, OP_SYN, "\x01\x01\x01\x00\x10\x00\x00\x00\x00\x01");
	OP(&s, OP_CONNDONE, "\x01\x01");
	OP(&s, OP_SYN, "\x02\x00\x01\x00\x10\x00\x00\x00\x00\x02");
	OP(&s, OP_CONNDONE, "\x01\x02");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_FAIL, "\x00");
	OP(&s, OP_SYN, "\x03\x00\x01\x00\x10\x00\x00\x00\x00\x03");
	OP(&s, OP_TICK, "\x90");
	s_write(dir, "refused-unreach-emfile", &s);

	/* the host's data waits behind a zero window, then retransmission
	 * timeouts until the guest answers */
	s_start(&s, 0);
	OP(&s, OP_SYN, "\x00\x00\x13\x02\x10\x00\x20\x00\x00\x00");
	OP(&s, OP_CONNDONE, "\x01\x00");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_SEG, "\x00\x00\x00\x00\x00\x00\x00");
	OP(&s, OP_HDATA, "\x01\x40");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_TICK, "\x20");
	OP(&s, OP_TICK, "\x80");
	OP(&s, OP_SEG, "\x00\x00\x00\x00\x10\x00\x00");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_TICK, "\x30");
	OP(&s, OP_SEG, "\x00\x00\x00\x00\x10\x00\x00");
	OP(&s, OP_HRST, "\x01");
	OP(&s, OP_DISPATCH, "");
	s_write(dir, "zero-window-rto-reset", &s);

	/* a forwarded connection: host client, SYN to the guest, answer,
	 * data both ways, guest resets */
	s_start(&s, 0);
	OP(&s, OP_ACCEPT, "");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_SYNACK, "\x00\xfa\xf0\x01\x20\x00\x00\x00");
	OP(&s, OP_HDATA, "\x01\x05");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_SEG, "\x06\x08\x00\x00\x01\x00\x04");
	OP(&s, OP_SEG, "\x06\x84\x00\x00\x01\x00\x00");	/* RST */
	s_write(dir, "hostfwd", &s);

	/* DNS over UDP (v4 and v6) and TCP, with answers; a ping; UDP out */
	s_start(&s, 1);
	OP(&s, OP_UDP, "\x00\x00\x00");
	OP(&s, OP_UDP, "\x01\x01\x03");
	OP(&s, OP_HDATA, "\x01\x04");
	OP(&s, OP_HDATA, "\x02\x00");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_TICK, "\x83");	/* upstream times out: next one */
	OP(&s, OP_UDP, "\x00\x00\x03");
	OP(&s, OP_PING, "\x00\x01");
	OP(&s, OP_HDATA, "\x03\x00");
	OP(&s, OP_UDP, "\x02\x02\x10");
	OP(&s, OP_HDATA, "\x04\x10");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_SYN, "\x04\x02\x01\x00\x10\x00\x00\x00\x00\x09");
	OP(&s, OP_CONNDONE, "\x05\x00");
	OP(&s, OP_DISPATCH, "");
	s_write(dir, "dns-udp-icmp", &s);

	/* IPv6 to the host, guestfwd */
	s_start(&s, 0);
	OP(&s, OP_SYN, "\x00\x04\x13\x07\xff\xff\xff\xff\xff\xf0");
	OP(&s, OP_SYN, "\x01\x03\x01\x00\x20\x00\x00\x00\x00\x00");
	OP(&s, OP_CONNDONE, "\x01\x00");
	OP(&s, OP_CONNDONE, "\x02\x00");
	OP(&s, OP_DISPATCH, "");
	OP(&s, OP_SEG, "\x00\x08\x00\x00\x01\x00\x20");
	OP(&s, OP_SEG, "\x01\x08\x00\x00\x01\x00\x20");
	OP(&s, OP_DISPATCH, "");
	s_write(dir, "ipv6-guestfwd", &s);
}

#include "replay.h"

int main(int argc, char **argv)
{
	return fuzz_main(argc, argv, write_seeds);
}
#endif
