// SPDX-License-Identifier: MIT
/* test_tcp.c: unit tests of the router's TCP translation state machine,
 * driven with crafted guest segments against loopback host sockets. */

/*
 * A lab is a library instance (pb_new) with a switch "s", the router "u"
 * and the test's callback port "c", which plays the guest 10.0.2.15.  The
 * test builds whole Ethernet/IPv4/TCP frames with their checksums, sends
 * them with pb_port_send() and reads what the router sends back through its
 * rx callback, checking every header and checksum of each frame with code
 * of its own.  The guest connects to 10.0.2.2:PORT, which the router maps
 * to 127.0.0.1:PORT, where the test listens (port 0: the kernel picks one);
 * the host side of every case is thus a real kernel socket on loopback.
 *
 * The router's clock is a fake one (loop.clock): time moves only when a
 * test moves it, so retransmission, persist and linger timers fire exactly
 * when a test wants them to and never by accident.  Host socket events are
 * real: tests turn the loop (poll on pb_fd() and pb_dispatch()) until what
 * they wait for happens or a real-time deadline passes.  What must not
 * happen is watched for QUIET_MS.  After every frame and every turn of the
 * loop the router must hold no output buffer and owe no ACK.
 *
 * Teardown frees the lab and closes every socket a test made, also when an
 * assertion failed half-way.
 *
 * Every check runs unconditionally (the bugs this file first found in
 * tcp.c -- RTO back-off, FIN resend, window accounting -- are fixed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "stats_json.h"

#include "flow.h"
#include "netdev.h"
#include "patchbay.h"
#include "pb.h"
#include "router.h"

/* Host-order IPv4 address from its four parts. */
#define IP(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

#define GUEST IP(10, 0, 2, 15)
#define GW IP(10, 0, 2, 2)

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

#define WAIT_MS 3000	/* for what must happen (real time) */
#define QUIET_MS 60	/* watching for what must not happen */
#define MAX_RX 512
#define FRAME_CAP 1600	/* MTU 1500 + Ethernet */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
/* The router's MAC: 52:55 + the gateway address (router.c). */
static const uint8_t gw_mac[6] = { 0x52, 0x55, 10, 0, 2, 2 };

/* SYN options: MSS 1460, NOP, window scale 7. */
static const uint8_t opt_mss_ws[8] = { 2, 4, 0x05, 0xb4, 1, 3, 3, 7 };
/* SYN options: MSS 536 and no window scaling. */
static const uint8_t opt_mss536[4] = { 2, 4, 0x02, 0x18 };

/* ---- byte helpers ------------------------------------------------------- */

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint16_t csum(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint32_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
	       6 + len;
}

/* Deterministic test data: byte i of stream `salt`. */
static uint8_t pattern(unsigned salt, size_t i)
{
	return (uint8_t)(i * 7 + salt * 31 + (i >> 8));
}

static void fill(uint8_t *b, size_t n, unsigned salt, size_t from)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pattern(salt, from + i);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Helpers that wait or check report the test line that called them: the
 * macro of the same name records it (helpers call each other as (name)(...)
 * so that the test's line stays).
 */
static int caller_line;

#define fail_at(...)                                                   \
	do {                                                           \
		print_error("called from test line %d: ", caller_line); \
		fail_msg(__VA_ARGS__);                                 \
	} while (0)

#define want(c)                                      \
	do {                                         \
		if (!(c))                            \
			fail_at("%s is false", #c); \
	} while (0)

#define want_eq(a, b)                                                      \
	do {                                                               \
		unsigned long long a_ = (unsigned long long)(a);           \
		unsigned long long b_ = (unsigned long long)(b);           \
		if (a_ != b_)                                              \
			fail_at("%s is %llu (%#llx), not %s = %llu (%#llx)", \
				#a, a_, a_, #b, b_, b_);                   \
	} while (0)

/* ---- the lab ------------------------------------------------------------ */

struct rxframe {
	uint8_t b[FRAME_CAP];
	size_t len;
};

struct lab {
	pb_t *pb;
	int port;
	struct router *r;
	uint64_t now;		/* the injected clock, ns */
	struct rxframe rx[MAX_RX];
	unsigned nrx, rd;	/* frames received, frames looked at */
	uint32_t peer;		/* source address segments must have */
	unsigned overflow;
};

/* What teardown releases: the lab and the test's own sockets. */
static struct lab *cur_lab;
static int test_fds[64];
static unsigned ntest_fds;

static int track(int fd)
{
	assert_true(fd >= 0);
	assert_true(ntest_fds < sizeof(test_fds) / sizeof(test_fds[0]));
	test_fds[ntest_fds++] = fd;
	return fd;
}

static void host_close(int fd)
{
	for (unsigned i = 0; i < ntest_fds; i++) {
		if (test_fds[i] == fd) {
			test_fds[i] = test_fds[--ntest_fds];
			break;
		}
	}
	close(fd);
}

static void lab_rx(void *opaque, const void *frame, size_t len)
{
	struct lab *l = opaque;

	if (l->nrx == MAX_RX || len > sizeof(l->rx[0].b)) {
		l->overflow++;
		return;
	}
	memcpy(l->rx[l->nrx].b, frame, len);
	l->rx[l->nrx++].len = len;
}

static uint64_t lab_clock(void *opaque)
{
	return ((struct lab *)opaque)->now;
}

static void lab_log(void *opaque, enum pb_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	(void)msg;
}

/* The router's state between rounds: no output slot held, no ACK owed. */
static void lab_check_idle(struct lab *l)
{
	assert_int_equal(l->r->arena_used, 0);
	assert_int_equal(l->r->nack, 0);
}

/* A switch "s" with the router "u" (spec: more of its options) and the
 * test's callback port "c". */
static struct lab *lab_open(const char *spec)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_ERR,
				 .log_fn = lab_log,
				 .max_ports = 16,
				 .max_segments = 4 };
	struct lab *l = calloc(1, sizeof(*l));
	char buf[512];
	int nd, rc;

	assert_non_null(l);
	assert_null(cur_lab);
	cur_lab = l;
	assert_int_equal(pb_new(&cfg, &l->pb), 0);
	l->now = 1000 * NS_PER_SEC;
	l->peer = GW;
	l->pb->loop.clock = lab_clock;
	l->pb->loop.clock_opaque = l;
	assert_int_equal(pb_segment_add(l->pb, "switch,id=s"), 0);
	snprintf(buf, sizeof(buf),
		 "user,id=u,segment=s,ipv6=off,dns-upstream=127.0.0.1:9%s%s",
		 *spec ? "," : "", spec);
	rc = pb_netdev_add(l->pb, buf);
	if (rc)
		fail_msg("pb_netdev_add(%s): %s", buf, pb_errmsg(l->pb));
	l->port = pb_callback_port_add(l->pb, "c", "s", lab_rx, l);
	assert_true(l->port >= 0);
	nd = netdev_find(l->pb, "u");
	assert_true(nd >= 0);
	l->r = router_get(l->pb, (uint32_t)nd);
	assert_non_null(l->r);
	return l;
}

static void lab_free(void)
{
	if (cur_lab) {
		pb_free(cur_lab->pb);
		free(cur_lab);
		cur_lab = NULL;
	}
}

/* End of a test: nothing was lost on the way to the guest. */
static void lab_close(struct lab *l)
{
	assert_int_equal(l->overflow, 0);
	lab_check_idle(l);
	lab_free();
}

static int teardown(void **state)
{
	(void)state;
	lab_free();
	while (ntest_fds)
		close(test_fds[--ntest_fds]);
	return 0;
}

/* One turn of the event loop (the fake clock keeps the timerfd readable
 * while a timer is armed, so this does not block then). */
static void lab_turn(struct lab *l)
{
	struct pollfd p = { .fd = pb_fd(l->pb), .events = POLLIN };

	poll(&p, 1, 5);
	assert_true(pb_dispatch(l->pb) >= 0);
	lab_check_idle(l);
}

static void lab_advance(struct lab *l, uint64_t ms)
{
	l->now += ms * NS_PER_MS;
}

/* ---- frames to and from the guest --------------------------------------- */

/* A guest segment; the options (a multiple of 4 bytes) come from opt. */
struct gseg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *opt;
	size_t optlen;
	const void *data;
	size_t len;
};

/* Ethernet + IPv4 + TCP from the guest to dst; returns the frame length.
 * The TCP checksum is at f + 14 + 20 + 16. */
static size_t tcp_frame(uint8_t *f, const struct gseg *g, uint32_t dst)
{
	uint8_t *ip = f + 14, *t = ip + 20;
	size_t hlen = 20 + g->optlen, tlen = hlen + g->len;

	assert_true(g->optlen % 4 == 0 && g->optlen <= 40);
	assert_true(14 + 20 + tlen <= FRAME_CAP);
	memcpy(f, gw_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint32_t)(20 + tlen));
	put16(ip + 4, 0x4321);
	put16(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	put32(ip + 12, GUEST);
	put32(ip + 16, dst);
	put16(ip + 10, csum(ip, 20, 0));
	put16(t, g->sport);
	put16(t + 2, g->dport);
	put32(t + 4, g->seq);
	put32(t + 8, g->ack);
	t[12] = (uint8_t)((hlen / 4) << 4);
	t[13] = g->flags;
	put16(t + 14, g->wnd);
	put32(t + 16, 0);
	if (g->optlen)
		memcpy(t + 20, g->opt, g->optlen);
	if (g->len)
		memcpy(t + hlen, g->data, g->len);
	put16(t + 16, csum(t, tlen, pseudo_sum(GUEST, dst, (uint32_t)tlen)));
	return 14 + 20 + tlen;
}

/* Recompute the TCP checksum of a frame built by tcp_frame() and changed
 * since (the TCP length is taken from the IP header). */
static void fix_tcp_csum(uint8_t *f)
{
	uint8_t *ip = f + 14, *t = ip + 20;
	uint32_t tlen = get16(ip + 2) - 20u;

	put16(t + 16, 0);
	put16(t + 16, csum(t, tlen, pseudo_sum(get32(ip + 12), get32(ip + 16),
					       tlen)));
}

static void lab_send(struct lab *l, const uint8_t *f, size_t len)
{
	assert_int_equal(pb_port_send(l->pb, l->port, f, len), 0);
	lab_check_idle(l);
}

static void guest_send(struct lab *l, const struct gseg *g)
{
	static uint8_t f[FRAME_CAP];

	lab_send(l, f, tcp_frame(f, g, GW));
}

/* A segment the router sent, checked and taken apart. */
struct tseg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	int mss;		/* -1: no option */
	int ws;			/* -1: no option */
	uint8_t data[FRAME_CAP];
	size_t len;
};

/* Check every header of a frame from the router to the guest. */
static void parse_seg(const struct rxframe *fr, uint32_t src,
		      struct tseg *s)
{
	const uint8_t *f = fr->b, *ip = f + 14, *t;
	size_t tlen, hlen;

	if (fr->len < 14 || get16(f + 12) != 0x0800)
		fail_msg("unexpected frame: %zu bytes, type %04x", fr->len,
			 fr->len >= 14 ? get16(f + 12) : 0);
	assert_memory_equal(f, guest_mac, 6);
	assert_memory_equal(f + 6, gw_mac, 6);
	assert_true(fr->len >= 14 + 20 + 20);
	assert_int_equal(ip[0], 0x45);
	if (ip[9] != 6)
		fail_msg("unexpected IP protocol %u", ip[9]);
	assert_int_equal(get16(ip + 2), fr->len - 14);
	assert_int_equal(csum(ip, 20, 0), 0);
	assert_int_equal(get16(ip + 6), 0x4000);	/* DF, no fragment */
	assert_int_equal(get32(ip + 12), src);
	assert_int_equal(get32(ip + 16), GUEST);
	t = ip + 20;
	tlen = fr->len - 14 - 20;
	assert_int_equal(csum(t, tlen, pseudo_sum(src, GUEST, (uint32_t)tlen)),
			 0);
	hlen = (size_t)(t[12] >> 4) * 4;
	assert_true(hlen >= 20 && hlen <= tlen);
	memset(s, 0, sizeof(*s));
	s->sport = get16(t);
	s->dport = get16(t + 2);
	s->seq = get32(t + 4);
	s->ack = get32(t + 8);
	s->flags = t[13];
	s->wnd = get16(t + 14);
	s->mss = s->ws = -1;
	for (size_t i = 20; i < hlen;) {
		uint8_t kind = t[i];

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		assert_true(i + 2 <= hlen && t[i + 1] >= 2 &&
			    i + t[i + 1] <= hlen);
		if (kind == 2) {
			assert_int_equal(t[i + 1], 4);
			s->mss = get16(t + i + 2);
		} else if (kind == 3) {
			assert_int_equal(t[i + 1], 3);
			s->ws = t[i + 2];
		}
		i += t[i + 1];
	}
	/* options only in a SYN */
	if (!(s->flags & TH_SYN))
		assert_int_equal(hlen, 20);
	s->len = tlen - hlen;
	memcpy(s->data, t + hlen, s->len);
}

/* The next segment already received, if any. */
static bool lab_next(struct lab *l, struct tseg *s)
{
	bool have = l->rd < l->nrx;

	if (have)
		parse_seg(&l->rx[l->rd++], l->peer, s);	/* copied out */
	if (l->rd == l->nrx)
		l->rd = l->nrx = 0;
	return have;
}

/* The next segment from the router, turning the loop for up to ms. */
static bool wait_seg(struct lab *l, struct tseg *s, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	for (;;) {
		if (lab_next(l, s))
			return true;
		if (mono_ms() >= end)
			return false;
		lab_turn(l);
	}
}

static void must_seg(struct lab *l, struct tseg *s)
{
	if (!wait_seg(l, s, WAIT_MS))
		fail_at("no segment from the router within %d ms", WAIT_MS);
}
#define must_seg(l, s) (caller_line = __LINE__, must_seg(l, s))

/* Nothing from the router for ms. */
static void expect_quiet(struct lab *l, unsigned ms)
{
	struct tseg s;

	if (wait_seg(l, &s, ms))
		fail_at("unexpected segment: flags %02x seq %u ack %u len %zu",
			s.flags, s.seq, s.ack, s.len);
}
#define expect_quiet(l, ms) (caller_line = __LINE__, expect_quiet(l, ms))

/* Nothing already received (no waiting: the reply to a frame comes during
 * pb_port_send() itself). */
static void expect_none(struct lab *l)
{
	struct tseg s;

	if (lab_next(l, &s))
		fail_at("unexpected segment: flags %02x seq %u ack %u len %zu",
			s.flags, s.seq, s.ack, s.len);
}
#define expect_none(l) (caller_line = __LINE__, expect_none(l))

/* ---- statistics --------------------------------------------------------- */

/* The stats JSON of the instance (through a memfd), NUL-terminated, with
 * the white space outside strings removed. */
static char *lab_stats(struct lab *l)
{
	return stats_compact(l->pb);
}

/* A number of the router's object (counters and drops by reason). */
static unsigned long long counter(struct lab *l, const char *name)
{
	const char *s = strstr(lab_stats(l), "\"router\":{");
	char key[64];
	const char *v;

	assert_non_null(s);
	snprintf(key, sizeof(key), "\"%s\":", name);
	v = strstr(s, key);
	if (!v)
		fail_msg("no %s in the router stats: %s", name, s);
	return strtoull(v + strlen(key), NULL, 10);
}

/* Turn the loop until the router has n flows (false after ms). */
static bool wait_flows(struct lab *l, unsigned long long n, unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (counter(l, "flows") != n) {
		if (mono_ms() >= end)
			return false;
		lab_turn(l);
	}
	return true;
}

/* ---- host sockets ------------------------------------------------------- */

static int host_listen(uint16_t *port, int backlog)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static bool fd_ready(int fd, short events, unsigned ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, (int)ms) == 1;
}

static int host_accept(int lfd)
{
	int fd;

	if (!fd_ready(lfd, POLLIN, WAIT_MS))
		fail_at("no connection to accept within %d ms", WAIT_MS);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	return track(fd);
}
#define host_accept(lfd) (caller_line = __LINE__, host_accept(lfd))

/* Read exactly n bytes from a host socket (the router writes while we
 * turn the loop). */
static void host_read(struct lab *l, int fd, uint8_t *buf, size_t n)
{
	uint64_t end = mono_ms() + WAIT_MS;
	size_t got = 0;

	while (got < n) {
		ssize_t k = recv(fd, buf + got, n - got, MSG_DONTWAIT);

		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		if (k == 0)
			fail_at("EOF after %zu of %zu bytes", got, n);
		if (errno != EAGAIN)
			fail_at("recv: %s", strerror(errno));
		if (mono_ms() >= end)
			fail_at("only %zu of %zu bytes within %d ms", got, n,
				WAIT_MS);
		lab_turn(l);
		fd_ready(fd, POLLIN, 1);
	}
}
#define host_read(l, fd, buf, n) \
	(caller_line = __LINE__, host_read(l, fd, buf, n))

/* The host socket has nothing to read (for QUIET_MS). */
static void host_nothing(int fd)
{
	uint8_t b;

	want(!fd_ready(fd, POLLIN, QUIET_MS));
	want_eq(recv(fd, &b, 1, MSG_DONTWAIT), -1);
	want_eq(errno, EAGAIN);
}
#define host_nothing(fd) (caller_line = __LINE__, host_nothing(fd))

/* What the next recv() on a host socket returns: 0 for EOF, -errno. */
static int host_recv_end(int fd)
{
	uint8_t b;
	ssize_t k;

	if (!fd_ready(fd, POLLIN, WAIT_MS))
		fail_at("host socket not readable within %d ms", WAIT_MS);
	k = recv(fd, &b, 1, MSG_DONTWAIT);
	if (k > 0)
		fail_at("data where EOF or an error was expected");
	return k == 0 ? 0 : -errno;
}
#define host_recv_end(fd) (caller_line = __LINE__, host_recv_end(fd))

static void host_write(int fd, const uint8_t *b, size_t n)
{
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* The router's only TCP flow. */
static const struct flow *tcp_flow(struct lab *l)
{
	for (uint32_t i = 0; i < l->r->flows->high; i++) {
		const struct flow *f = &l->r->flows->f[i];

		if (f->used && f->k.proto == IPPROTO_TCP)
			return f;
	}
	fail_msg("no TCP flow");
	return NULL;
}

/* Its host socket. */
static int flow_fd(struct lab *l)
{
	return tcp_flow(l)->fd;
}

/* Bytes waiting in the receive queue of the router's host socket: data
 * from the host not yet acknowledged by the guest. */
static int flow_queued(struct lab *l)
{
	int n = -1;

	assert_int_equal(ioctl(flow_fd(l), SIOCINQ, &n), 0);
	return n;
}

/* ---- connections -------------------------------------------------------- */

/* One guest connection through the router to a listener of the test. */
struct conn {
	uint16_t gport, hport;
	int lfd, afd;		/* the test's listener and accepted one */
	uint32_t isn;		/* the guest's initial sequence number */
	uint32_t snd_nxt;	/* the guest's next sequence number */
	uint32_t iss;		/* the router's initial sequence number */
	uint32_t rcv_nxt;	/* next sequence number from the router */
	uint16_t wnd;		/* the window field the guest sends */
	struct tseg synack;
};

static void c_send(struct lab *l, const struct conn *c, uint8_t flags,
		   uint32_t seq, uint32_t ack, const void *data, size_t len)
{
	struct gseg g = { .sport = c->gport,
			  .dport = c->hport,
			  .seq = seq,
			  .ack = ack,
			  .flags = flags,
			  .wnd = c->wnd,
			  .data = data,
			  .len = len };

	guest_send(l, &g);
}

/* In-order data (flags added to ACK); the guest's sequence advances.
 * Without PSH: a small segment with PSH has its ACK delayed (see
 * test_delayed_ack), the others are ACKed at once. */
static void c_data(struct lab *l, struct conn *c, uint8_t flags,
		   const void *data, size_t len)
{
	c_send(l, c, TH_ACK | flags, c->snd_nxt, c->rcv_nxt, data, len);
	c->snd_nxt += (uint32_t)len + !!(flags & (TH_FIN | TH_SYN));
}

/* A pure ACK of everything received so far. */
static void c_ack(struct lab *l, const struct conn *c)
{
	c_send(l, c, TH_ACK, c->snd_nxt, c->rcv_nxt, NULL, 0);
}

/* The guest's SYN from gport to 10.0.2.2:hport. */
static void c_syn(struct lab *l, struct conn *c, const uint8_t *opt,
		  size_t optlen)
{
	struct gseg g = { .sport = c->gport,
			  .dport = c->hport,
			  .seq = c->isn,
			  .flags = TH_SYN,
			  .wnd = c->wnd,
			  .opt = opt,
			  .optlen = optlen };

	guest_send(l, &g);
}

/* Wait for the SYN-ACK to c's SYN and check what every SYN-ACK has. */
static void c_synack(struct lab *l, struct conn *c)
{
	struct tseg *s = &c->synack;

	(must_seg)(l, s);
	want_eq(s->flags, TH_SYN | TH_ACK);
	want_eq(s->sport, c->hport);
	want_eq(s->dport, c->gport);
	want_eq(s->ack, c->isn + 1);
	want_eq(s->len, 0);
	want(s->wnd > 0);
	want(s->mss > 0);
	c->iss = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->snd_nxt = c->isn + 1;
}
#define c_synack(l, c) (caller_line = __LINE__, c_synack(l, c))

/* SYN (with the given options), SYN-ACK, ACK, and the host's accept(). */
static void conn_open_at(struct lab *l, struct conn *c, uint16_t gport,
			 int lfd, uint16_t hport, const uint8_t *opt,
			 size_t optlen, uint16_t wnd)
{
	memset(c, 0, sizeof(*c));
	c->gport = gport;
	c->lfd = lfd;
	c->hport = hport;
	c->isn = 0x1000000u * (gport % 200) + 0xabcdu;
	c->wnd = wnd;
	c_syn(l, c, opt, optlen);
	(c_synack)(l, c);
	c_ack(l, c);
	(expect_none)(l);
	c->afd = (host_accept)(c->lfd);
}
#define conn_open_at(l, c, gport, lfd, hport, opt, optlen, wnd) \
	(caller_line = __LINE__,                                 \
	 conn_open_at(l, c, gport, lfd, hport, opt, optlen, wnd))

static void conn_open(struct lab *l, struct conn *c, uint16_t gport,
		      const uint8_t *opt, size_t optlen, uint16_t wnd)
{
	uint16_t hport;
	int lfd = host_listen(&hport, 16);

	(conn_open_at)(l, c, gport, lfd, hport, opt, optlen, wnd);
}
#define conn_open(l, c, gport, opt, optlen, wnd) \
	(caller_line = __LINE__, conn_open(l, c, gport, opt, optlen, wnd))

/*
 * Take len bytes from the router as a guest receiver that keeps only
 * in-order data and does not ACK: checks each segment (at most mss, the
 * ACK field, the sequence) and the bytes against pattern `salt` from
 * offset `from`.  Returns the number of segments.
 */
static unsigned c_take(struct lab *l, struct conn *c, size_t len,
		       uint16_t mss, unsigned salt, size_t from)
{
	uint8_t expect[FRAME_CAP];
	unsigned nseg = 0;
	struct tseg s;

	for (size_t got = 0; got < len; nseg++) {
		(must_seg)(l, &s);
		want_eq(s.flags & ~TH_PSH, TH_ACK);
		want_eq(s.sport, c->hport);
		want_eq(s.dport, c->gport);
		want_eq(s.seq, c->rcv_nxt);
		want_eq(s.ack, c->snd_nxt);
		want(s.len > 0 && s.len <= mss);
		want(got + s.len <= len);
		fill(expect, s.len, salt, from + got);
		want(!memcmp(s.data, expect, s.len));
		got += s.len;
		c->rcv_nxt += (uint32_t)s.len;
		/* the last segment of what the host sent is pushed */
		if (got == len)
			want(s.flags & TH_PSH);
	}
	return nseg;
}
#define c_take(l, c, len, mss, salt, from) \
	(caller_line = __LINE__, c_take(l, c, len, mss, salt, from))

/* ---- opening ------------------------------------------------------------ */

/* A SYN to a port nobody listens on: RST|ACK for the SYN, no flow left.
 * A segment of no connection: RST with its ACK number as sequence. */
static void test_syn_closed_port(void **state)
{
	struct lab *l = lab_open("");
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct gseg g = { .sport = 40001,
			  .seq = 0x11223344,
			  .flags = TH_SYN,
			  .wnd = 65535,
			  .opt = opt_mss_ws,
			  .optlen = sizeof(opt_mss_ws) };
	struct tseg s;
	int fd;

	(void)state;
	/* a bound socket that does not listen keeps the port closed */
	fd = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	g.dport = ntohs(a.sin_port);

	for (int round = 0; round < 2; round++) {
		guest_send(l, &g);
		must_seg(l, &s);
		assert_int_equal(s.flags, TH_RST | TH_ACK);
		assert_int_equal(s.seq, 0);
		assert_int_equal(s.ack, 0x11223345);
		assert_int_equal(s.sport, g.dport);
		assert_int_equal(s.dport, 40001);
		assert_int_equal(s.len, 0);
		assert_true(wait_flows(l, 0, WAIT_MS));
		expect_quiet(l, QUIET_MS);
		assert_int_equal(counter(l, "tcp_refused"), round + 1);
	}
	assert_int_equal(counter(l, "flows"), 0);

	/* an ACK (with data) for no connection: RST, sequence = its ACK */
	g.flags = TH_ACK | TH_PSH;
	g.seq = 5000;
	g.ack = 0xdeadbeef;
	g.opt = NULL;
	g.optlen = 0;
	g.data = "xyz";
	g.len = 3;
	guest_send(l, &g);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_RST);
	assert_int_equal(s.seq, 0xdeadbeef);
	expect_none(l);
	assert_int_equal(counter(l, "tcp_no_connection"), 1);
	/* an RST for no connection: nothing (never RST an RST) */
	g.flags = TH_RST;
	g.len = 0;
	guest_send(l, &g);
	expect_none(l);
	assert_int_equal(counter(l, "tcp_no_connection"), 1);

	/* the DNS address has no TCP service but port 53: RST at once */
	{
		static uint8_t f[FRAME_CAP];

		g.flags = TH_SYN;
		g.seq = 900;
		g.ack = 0;
		g.dport = 80;
		lab_send(l, f, tcp_frame(f, &g, IP(10, 0, 2, 3)));
		l->peer = IP(10, 0, 2, 3);
		assert_true(lab_next(l, &s));
		assert_int_equal(s.flags, TH_RST | TH_ACK);
		assert_int_equal(s.ack, 901);
		expect_none(l);
		assert_int_equal(counter(l, "no_route"), 1);
		l->peer = GW;
	}
	assert_int_equal(counter(l, "flows"), 0);
	lab_close(l);
}

/*
 * No SYN-ACK before the host connection is up.  The listener's accept
 * queue is full (backlog 0 and a connection of the test's own waiting in
 * it), so the kernel drops the router's SYN: the guest must hear nothing,
 * also when it repeats its SYN.  Once the queue has room, the kernel's
 * retransmitted SYN (after about 1 s) gets through and only then does the
 * guest get its SYN-ACK.
 */
static void test_synack_waits_for_host(void **state)
{
	struct lab *l = lab_open("");
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct conn c;
	uint16_t hport;
	int filler;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.lfd = host_listen(&hport, 0);
	a.sin_port = htons(hport);
	filler = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_true(fd_ready(c.lfd, POLLIN, WAIT_MS));

	c.gport = 40100;
	c.hport = hport;
	c.isn = 0x7fffff00;	/* the ACK field wraps past 2^31 */
	c.wnd = 65535;
	c_syn(l, &c, opt_mss_ws, sizeof(opt_mss_ws));
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 1);
	expect_quiet(l, 300);
	/* the router's host socket is still connecting */
	assert_int_equal(getpeername(flow_fd(l), (struct sockaddr *)&a,
				     &(socklen_t){ sizeof(a) }),
			 -1);
	assert_int_equal(errno, ENOTCONN);
	c_syn(l, &c, opt_mss_ws, sizeof(opt_mss_ws));	/* retransmitted */
	expect_quiet(l, QUIET_MS);
	assert_int_equal(counter(l, "flows"), 1);
	assert_int_equal(counter(l, "tcp_opened"), 1);
	/* a second guest connection, pending too, given up by the guest */
	{
		struct conn d = c;

		d.gport = 40101;
		d.isn = 12345;
		c_syn(l, &d, NULL, 0);
		expect_none(l);
		assert_int_equal(counter(l, "flows"), 2);
		c_send(l, &d, TH_RST, d.isn + 1, 0, NULL, 0);
		expect_none(l);
		assert_int_equal(counter(l, "flows"), 1);
	}

	/* make room: the router's connection gets in with the kernel's
	 * next SYN */
	host_close(track(accept4(c.lfd, NULL, NULL, SOCK_CLOEXEC)));
	host_close(filler);
	c_synack(l, &c);
	/* the router's socket is connected now, and the listener has the
	 * connection */
	assert_int_equal(getpeername(flow_fd(l), (struct sockaddr *)&a,
				     &(socklen_t){ sizeof(a) }),
			 0);
	assert_int_equal(ntohs(a.sin_port), hport);
	assert_true(fd_ready(c.lfd, POLLIN, WAIT_MS));
	assert_int_equal(c.synack.mss, 1460);
	assert_int_equal(c.synack.ws, 7);
	c_ack(l, &c);
	expect_none(l);
	c.afd = host_accept(c.lfd);
	c_data(l, &c, 0, "ping", 4);
	{
		uint8_t b[4];
		struct tseg s;

		assert_true(lab_next(l, &s));
		assert_int_equal(s.flags, TH_ACK);
		assert_int_equal(s.ack, c.snd_nxt);
		host_read(l, c.afd, b, 4);
		assert_memory_equal(b, "ping", 4);
	}
	lab_close(l);
}

/*
 * The SYN-ACK's options: MSS = MTU - 40; window scaling only when the SYN
 * offered it; its window is not scaled.  A repeated SYN gets the same
 * SYN-ACK again, and so does silence after the SYN-ACK timeout (1 s).
 */
static void test_synack_options(void **state)
{
	static const uint8_t ws_only[4] = { 1, 3, 3, 0 };
	struct lab *l = lab_open("");
	struct conn a, b, c;
	uint16_t hport;
	int lfd = host_listen(&hport, 16);
	struct tseg s;
	unsigned seen = 0;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.lfd = lfd;
	a.hport = hport;
	a.wnd = 65535;
	b = c = a;
	a.gport = 40200;
	a.isn = 1000;
	b.gport = 40201;
	b.isn = 2000;
	c.gport = 40202;
	c.isn = 3000;

	c_syn(l, &a, opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &a);
	assert_int_equal(a.synack.mss, 1460);
	assert_int_equal(a.synack.ws, 7);

	c_syn(l, &b, NULL, 0);
	c_synack(l, &b);
	assert_int_equal(b.synack.mss, 1460);
	assert_int_equal(b.synack.ws, -1);

	c_syn(l, &c, ws_only, sizeof(ws_only));
	c_synack(l, &c);
	assert_int_equal(c.synack.mss, 1460);
	assert_int_equal(c.synack.ws, 7);
	assert_true(a.iss != b.iss && b.iss != c.iss);
	expect_quiet(l, QUIET_MS);

	/* a's SYN again: the same SYN-ACK */
	c_syn(l, &a, opt_mss_ws, sizeof(opt_mss_ws));
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_SYN | TH_ACK);
	assert_int_equal(s.seq, a.iss);
	assert_int_equal(s.ack, a.isn + 1);
	assert_int_equal(s.ws, 7);
	expect_none(l);

	/* no ACK for 1 s: all three SYN-ACKs again */
	lab_advance(l, 1100);
	while (seen != 7 && wait_seg(l, &s, WAIT_MS)) {
		struct conn *x = s.dport == a.gport   ? &a
				 : s.dport == b.gport ? &b
						      : &c;

		assert_int_equal(s.dport, x->gport);
		assert_int_equal(s.flags, TH_SYN | TH_ACK);
		assert_int_equal(s.seq, x->iss);
		assert_int_equal(s.ack, x->isn + 1);
		seen |= 1u << (x == &a ? 0 : x == &b ? 1 : 2);
	}
	assert_int_equal(seen, 7);
	expect_quiet(l, QUIET_MS);
	assert_int_equal(counter(l, "flows"), 3);

	/* an ACK of something else than the SYN-ACK: RST with that ACK
	 * number as sequence (RFC 9293 3.10.7.4); the flow waits on */
	c_send(l, &b, TH_ACK, b.snd_nxt, b.iss + 5, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_RST);
	assert_int_equal(s.seq, b.iss + 5);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 3);
	c_ack(l, &b);
	expect_none(l);
	c_data(l, &b, 0, "ok", 2);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, b.snd_nxt);
	lab_close(l);

	/* a SYN with data: the SYN-ACK acknowledges the SYN only */
	l = lab_open("");
	memset(&a, 0, sizeof(a));
	a.lfd = lfd;
	a.hport = hport;
	a.wnd = 65535;
	a.gport = 40204;
	a.isn = 5000;
	{
		struct gseg g = { .sport = a.gport,
				  .dport = a.hport,
				  .seq = a.isn,
				  .flags = TH_SYN,
				  .wnd = 65535,
				  .data = "early",
				  .len = 5 };

		guest_send(l, &g);
	}
	c_synack(l, &a);
	lab_close(l);

	/* MSS follows the MTU */
	l = lab_open("mtu=1400");
	memset(&a, 0, sizeof(a));
	a.lfd = lfd;
	a.hport = hport;
	a.wnd = 65535;
	a.gport = 40203;
	a.isn = 4000;
	c_syn(l, &a, opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &a);
	assert_int_equal(a.synack.mss, 1360);
	lab_close(l);
}

/* ---- guest to host ------------------------------------------------------ */

/* A small segment with PSH (a request): no ACK of its own when the host's
 * answer carries it; an ACK after at most half a millisecond when none
 * comes; a second one while an ACK waits is ACKed at once. */
static void test_delayed_ack(void **state)
{
	struct lab *l = lab_open("");
	uint8_t got[8];
	struct conn c;
	struct tseg s;

	(void)state;
	conn_open(l, &c, 40350, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	/* request, answer: one segment back, carrying data and the ACK */
	c_data(l, &c, TH_PSH, "req1", 4);
	expect_quiet(l, QUIET_MS);
	host_read(l, c.afd, got, 4);
	assert_memory_equal(got, "req1", 4);
	host_write(c.afd, (const uint8_t *)"answer", 6);
	must_seg(l, &s);
	assert_int_equal(s.len, 6);
	assert_int_equal(s.ack, c.snd_nxt);
	expect_none(l);
	c.rcv_nxt = s.seq + 6;
	c_ack(l, &c);
	/* no answer: the ACK comes when the delay is over */
	c_data(l, &c, TH_PSH, "req2", 4);
	expect_quiet(l, QUIET_MS);
	lab_advance(l, 1);
	must_seg(l, &s);
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.ack, c.snd_nxt);
	expect_quiet(l, QUIET_MS);
	/* two requests in a row: the second is ACKed at once */
	c_data(l, &c, TH_PSH, "r3", 2);
	c_data(l, &c, TH_PSH, "r4", 2);
	must_seg(l, &s);
	assert_int_equal(s.ack, c.snd_nxt);
	lab_advance(l, 1);
	expect_quiet(l, QUIET_MS);
	host_read(l, c.afd, got, 8);
	assert_memory_equal(got, "req2r3r4", 8);
	assert_int_equal(counter(l, "flows"), 1);
	lab_close(l);
}

static void test_data_in_order(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[3000], got[3000];
	struct conn c;
	struct tseg s;

	(void)state;
	conn_open(l, &c, 40300, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	fill(b, sizeof(b), 1, 0);
	for (size_t off = 0; off < sizeof(b); off += 1000) {
		c_data(l, &c, 0, b + off, 1000);
		assert_true(lab_next(l, &s));
		assert_int_equal(s.flags, TH_ACK);
		assert_int_equal(s.seq, c.rcv_nxt);
		assert_int_equal(s.ack, c.snd_nxt);
		assert_true(s.wnd > 0);
		assert_int_equal(s.len, 0);
		expect_none(l);
	}
	host_read(l, c.afd, got, sizeof(got));
	assert_memory_equal(got, b, sizeof(b));
	host_nothing(c.afd);
	expect_quiet(l, QUIET_MS);
	lab_close(l);
}

/* A gap: the later segment is not written and the guest gets a duplicate
 * ACK for what it missed; the router keeps no out-of-order data, so after
 * the missing segment the guest's retransmission of the later one fills
 * the stream, in order. */
static void test_out_of_order(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[300], got[300];
	struct conn c;
	struct tseg s;
	uint32_t base;

	(void)state;
	conn_open(l, &c, 40400, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	fill(b, sizeof(b), 2, 0);
	base = c.snd_nxt;
	c_send(l, &c, TH_ACK | TH_PSH, base + 100, c.rcv_nxt, b + 100, 100);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, base);
	expect_none(l);
	c_send(l, &c, TH_ACK | TH_PSH, base + 200, c.rcv_nxt, b + 200, 100);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, base);
	expect_none(l);
	assert_int_equal(counter(l, "tcp_out_of_window"), 2);
	host_nothing(c.afd);

	/* the missing one */
	c_send(l, &c, TH_ACK | TH_PSH, base, c.rcv_nxt, b, 100);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, base + 100);
	host_read(l, c.afd, got, 100);
	assert_memory_equal(got, b, 100);
	/* the guest resends the rest in one segment */
	c_send(l, &c, TH_ACK | TH_PSH, base + 100, c.rcv_nxt, b + 100, 200);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, base + 300);
	host_read(l, c.afd, got + 100, 200);
	assert_memory_equal(got, b, 300);
	host_nothing(c.afd);
	assert_int_equal(counter(l, "flows"), 1);
	lab_close(l);
}

/* Old data again: ACKed again, never written twice; a segment that
 * overlaps the edge contributes only its new part. */
static void test_retransmitted_segment(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[400], got[400];
	struct conn c;
	struct tseg s;
	uint32_t base;

	(void)state;
	conn_open(l, &c, 40500, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	fill(b, sizeof(b), 3, 0);
	base = c.snd_nxt;
	c_data(l, &c, 0, b, 200);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, base + 200);
	host_read(l, c.afd, got, 200);

	/* the whole segment again, twice */
	for (int i = 0; i < 2; i++) {
		c_send(l, &c, TH_ACK | TH_PSH, base, c.rcv_nxt, b, 200);
		assert_true(lab_next(l, &s));
		assert_int_equal(s.flags, TH_ACK);
		assert_int_equal(s.ack, base + 200);
		expect_none(l);
	}
	/* its second half only */
	c_send(l, &c, TH_ACK, base + 100, c.rcv_nxt, b + 100, 100);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, base + 200);
	host_nothing(c.afd);

	/* 150..350: 150 old bytes and 150 new ones */
	c_send(l, &c, TH_ACK | TH_PSH, base + 150, c.rcv_nxt, b + 150, 200);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, base + 350);
	c.snd_nxt = base + 350;
	host_read(l, c.afd, got + 200, 150);
	assert_memory_equal(got, b, 350);
	host_nothing(c.afd);
	lab_close(l);
}

/* ---- host to guest ------------------------------------------------------ */

/*
 * Host data reaches the guest in segments of at most its MSS, in sequence;
 * it stays in the router's socket until the guest ACKs it; without an ACK
 * the retransmission timeout sends the unacknowledged bytes again.
 */
static void test_host_data_and_retransmit(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[3000];
	struct conn c;
	uint32_t first;
	unsigned n;

	(void)state;
	conn_open(l, &c, 40600, opt_mss536, sizeof(opt_mss536), 65535);
	assert_int_equal(c.synack.ws, -1);
	first = c.rcv_nxt;
	fill(b, sizeof(b), 4, 0);
	host_write(c.afd, b, sizeof(b));
	n = c_take(l, &c, sizeof(b), 536, 4, 0);
	assert_true(n >= 6);	/* 3000 / 536 */
	assert_int_equal(flow_queued(l), 3000);
	expect_quiet(l, QUIET_MS);
	assert_int_equal(flow_queued(l), 3000);

	/* 1000 bytes acknowledged: they leave the queue */
	c_send(l, &c, TH_ACK, c.snd_nxt, first + 1000, NULL, 0);
	expect_none(l);
	assert_int_equal(flow_queued(l), 2000);

	/* past the RTO (200 ms): from the first unacknowledged byte again */
	lab_advance(l, 250);
	c.rcv_nxt = first + 1000;
	c_take(l, &c, 2000, 536, 4, 1000);
	assert_int_equal(flow_queued(l), 2000);
	expect_quiet(l, QUIET_MS);

	/* and again (the back-off is test_rto_backoff's) */
	lab_advance(l, 450);
	c.rcv_nxt = first + 1000;
	c_take(l, &c, 2000, 536, 4, 1000);

	/* everything acknowledged: the queue is empty, no more resending */
	c_ack(l, &c);
	expect_none(l);
	assert_int_equal(flow_queued(l), 0);
	lab_advance(l, 5000);
	expect_quiet(l, QUIET_MS);
	lab_close(l);
}

/* The guest's window limits what is in flight; ACKs that open it let more
 * out.  Three duplicate ACKs resend from the first unacknowledged byte. */
static void test_host_data_window(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[3000];
	struct conn c;
	uint32_t first;

	(void)state;
	conn_open(l, &c, 40700, opt_mss536, sizeof(opt_mss536), 1000);
	first = c.rcv_nxt;
	fill(b, sizeof(b), 5, 0);
	host_write(c.afd, b, sizeof(b));
	assert_int_equal(c_take(l, &c, 1000, 536, 5, 0), 2);
	expect_quiet(l, QUIET_MS);

	/* ACK 1000: 1000 more */
	c_ack(l, &c);
	c_take(l, &c, 1000, 536, 5, 1000);
	expect_quiet(l, QUIET_MS);

	/* three duplicate ACKs of 2000: the second 1000 again, at once */
	for (int i = 0; i < 3; i++) {
		c_send(l, &c, TH_ACK, c.snd_nxt, first + 1000, NULL, 0);
		if (i < 2)
			expect_none(l);
	}
	c.rcv_nxt = first + 1000;
	c_take(l, &c, 1000, 536, 5, 1000);
	expect_quiet(l, QUIET_MS);

	/* a larger window: the rest */
	c.wnd = 65535;
	c_ack(l, &c);
	c_take(l, &c, 1000, 536, 5, 2000);
	c_ack(l, &c);
	expect_none(l);
	assert_int_equal(flow_queued(l), 0);
	lab_close(l);
}

/*
 * Exponential back-off (RFC 6298 5.5): without ACKs the retransmissions
 * come 200, 400, 800, ... ms apart, at most 10 s.
 * (tcp_timer() doubles the RTO before the resend arms the next timeout.)
 */
static void test_rto_backoff(void **state)
{
	static const unsigned gaps[] = { 200,  400,   800,   1600,
					 3200, 6400, 10000, 10000 };
	struct lab *l;
	uint8_t b[100];
	struct conn c;
	struct tseg s;

	(void)state;
	l = lab_open("");
	conn_open(l, &c, 40650, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	fill(b, sizeof(b), 10, 0);
	host_write(c.afd, b, sizeof(b));
	c_take(l, &c, sizeof(b), 1460, 10, 0);
	for (size_t i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		/* 10 ms early: nothing; on time: the same 100 bytes */
		lab_advance(l, gaps[i] - 10);
		expect_quiet(l, 20);
		lab_advance(l, 10);
		must_seg(l, &s);
		assert_int_equal(s.seq, c.rcv_nxt - sizeof(b));
		assert_int_equal(s.len, sizeof(b));
	}
	lab_close(l);
}

/* A server that speaks first (SMTP, SSH): what the host sends before the
 * guest completed the handshake waits for the guest's ACK. */
static void test_host_speaks_first(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[200];
	struct conn c;
	uint16_t hport;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.lfd = host_listen(&hport, 16);
	c.hport = hport;
	c.gport = 40660;
	c.isn = 0xfffffff0u;	/* the sequence wraps in the data */
	c.wnd = 65535;
	c_syn(l, &c, opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &c);
	c.afd = host_accept(c.lfd);
	fill(b, sizeof(b), 11, 0);
	host_write(c.afd, b, sizeof(b));
	expect_quiet(l, QUIET_MS);
	/* the handshake's ACK carries data of the guest's own */
	c_data(l, &c, 0, "EHLO", 4);
	c_take(l, &c, sizeof(b), 1460, 11, 0);
	c_ack(l, &c);
	expect_none(l);
	host_read(l, c.afd, b, 4);
	assert_memory_equal(b, "EHLO", 4);
	assert_int_equal(flow_queued(l), 0);
	lab_close(l);
}

/*
 * A guest that ignores the window (and a host that does not read): the
 * router ACKs only what the host socket took.  When the host reads, the
 * guest is told at once (duplicate ACKs and a window update) and its
 * resent data completes the stream, every byte once and in order.
 *
 * When the socket takes nothing more, the window advertised is 0: the
 * router measures the send buffer's real use (SO_MEMINFO), overhead
 * included.
 */
static void test_guest_overruns_window(void **state)
{
	enum { TOTAL = 16 << 20, SEG = 1400 };
	struct lab *l = lab_open("");
	static uint8_t got[TOTAL];
	uint8_t b[SEG];
	int small = 4096;
	struct conn c;
	struct tseg s;
	uint16_t hport;
	uint32_t base, acked = 0;
	unsigned stalls = 0, updates = 0;
	size_t have = 0;
	int lfd;

	(void)state;
	lfd = host_listen(&hport, 16);
	assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small,
				    sizeof(small)),
			 0);
	conn_open_at(l, &c, 40670, lfd, hport, opt_mss_ws, sizeof(opt_mss_ws),
		     65535);
	base = c.snd_nxt;
	/* send from the last ACK on, whatever the window says, until two
	 * segments in a row are not taken at all */
	while (stalls < 2) {
		size_t n = MIN((size_t)SEG, (size_t)TOTAL - acked);

		assert_true(n > 0);	/* the host buffers are not 16 MB */
		fill(b, n, 12, acked);
		c_send(l, &c, TH_ACK, base + acked, c.rcv_nxt, b, n);
		assert_true(lab_next(l, &s));
		assert_int_equal(s.flags, TH_ACK);
		expect_none(l);
		assert_true(s.ack - base >= acked && s.ack - base <= acked + n);
		stalls = s.ack - base == acked ? stalls + 1 : 0;
		acked = s.ack - base;
	}
	assert_int_equal(s.wnd, 0);	/* no room, no window */
	assert_true(counter(l, "flows") == 1);

	/* the host reads it all: the router tells the guest it may go on */
	host_read(l, c.afd, got, acked);
	have = acked;
	while (wait_seg(l, &s, updates ? 0 : WAIT_MS)) {
		assert_int_equal(s.flags, TH_ACK);
		assert_int_equal(s.ack, base + acked);
		updates++;
	}
	assert_true(updates >= 1);
	assert_true(s.wnd > 0);
	for (size_t i = 0; i < have; i++)
		if (got[i] != pattern(12, i))
			fail_msg("host byte %zu wrong", i);

	/* the rest, now within the window */
	for (size_t k = 0; k < 20; k++) {
		fill(b, SEG, 12, acked);
		c_send(l, &c, TH_ACK, base + acked, c.rcv_nxt, b, SEG);
		assert_true(lab_next(l, &s));
		assert_int_equal(s.ack, base + acked + SEG);
		acked += SEG;
		host_read(l, c.afd, got + have, SEG);
		have += SEG;
	}
	for (size_t i = 0; i < have; i++)
		if (got[i] != pattern(12, i))
			fail_msg("host byte %zu wrong", i);
	host_nothing(c.afd);
	lab_close(l);
}

/*
 * Bulk both ways at once, 2 MB each, the guest honouring the router's
 * window (scaled) and the router the guest's (256 KB): every byte arrives
 * once, in order.  The guest goes back to the router's ACK when it took
 * less than was sent.
 */
static void test_bulk(void **state)
{
	enum { TOTAL = 2 << 20, SEG = 1460 };
	struct lab *l = lab_open("");
	static uint8_t hgot[TOTAL], hsend[TOTAL], b[SEG];
	struct conn c;
	struct tseg s;
	uint32_t gbase, hbase;
	size_t gsent = 0, gacked = 0, hwritten = 0, hread = 0, ggot = 0;
	uint64_t edge, end = mono_ms() + 10000;

	(void)state;
	conn_open(l, &c, 40680, opt_mss_ws, sizeof(opt_mss_ws), 2048);
	gbase = c.snd_nxt;
	hbase = c.rcv_nxt;
	edge = c.synack.wnd;	/* not scaled in a SYN-ACK */
	fill(hsend, TOTAL, 13, 0);
	while (gacked < TOTAL || ggot < TOTAL) {
		bool acked_data = false;

		if (mono_ms() > end)
			fail_msg("stuck: guest sent %zu acked %zu, host wrote "
				 "%zu read %zu, guest got %zu",
				 gsent, gacked, hwritten, hread, ggot);
		/* host: write what fits, read what came */
		if (hwritten < TOTAL) {
			ssize_t k = send(c.afd, hsend + hwritten,
					 TOTAL - hwritten,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (k > 0)
				hwritten += (size_t)k;
			else
				assert_int_equal(errno, EAGAIN);
		}
		for (;;) {
			ssize_t k = recv(c.afd, hgot + hread, TOTAL - hread,
					 MSG_DONTWAIT);

			if (k <= 0) {
				assert_true(k < 0 && errno == EAGAIN);
				break;
			}
			hread += (size_t)k;
		}
		/* guest: send within the window */
		if (gsent < TOTAL && gsent < edge) {
			size_t n = MIN((size_t)SEG, TOTAL - gsent);

			n = (size_t)MIN((uint64_t)n, edge - gsent);
			fill(b, n, 14, gsent);
			c_send(l, &c, TH_ACK, gbase + (uint32_t)gsent,
			       c.rcv_nxt, b, n);
			gsent += n;
		} else {
			lab_turn(l);
		}
		/* guest: take what the router sent */
		while (lab_next(l, &s)) {
			assert_int_equal(s.flags & ~TH_PSH, TH_ACK);
			if (s.len) {
				assert_int_equal(s.seq, c.rcv_nxt);
				assert_true(ggot + s.len <= TOTAL);
				assert_memory_equal(s.data, hsend + ggot,
						    s.len);
				ggot += s.len;
				c.rcv_nxt += (uint32_t)s.len;
				acked_data = true;
			}
			assert_true(s.ack - gbase <= gsent);
			if (s.ack - gbase >= gacked) {
				gacked = s.ack - gbase;
				edge = gacked + ((uint64_t)s.wnd << 7);
			}
		}
		if (gacked < gsent && gsent == edge) {
			/* the router took less than it said: go back */
			gsent = gacked;
		}
		if (acked_data)
			c_send(l, &c, TH_ACK, gbase + (uint32_t)gsent,
			       c.rcv_nxt, NULL, 0);
	}
	while (hread < TOTAL) {
		host_read(l, c.afd, hgot + hread, TOTAL - hread);
		hread = TOTAL;
	}
	for (size_t i = 0; i < TOTAL; i++)
		if (hgot[i] != pattern(14, i))
			fail_msg("host byte %zu wrong", i);
	assert_int_equal(c.rcv_nxt - hbase, TOTAL);
	assert_int_equal(flow_queued(l), 0);
	lab_close(l);
}

/* ---- closing ------------------------------------------------------------ */

/*
 * Guest FIN: the host reads EOF but can still send (half-close); the host's
 * close becomes a FIN after its data; both FINs acknowledged, the flow
 * lingers to answer a repeated FIN, then ends.
 */
static void test_guest_fin_half_close(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[16];
	struct conn c;
	struct tseg s;
	uint32_t fin;

	(void)state;
	conn_open(l, &c, 40800, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	c_data(l, &c, TH_FIN, "hello", 5);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);	/* data and FIN */
	expect_none(l);
	host_read(l, c.afd, b, 5);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(host_recv_end(c.afd), 0);

	/* the other direction still works */
	host_write(c.afd, (const uint8_t *)"world", 5);
	must_seg(l, &s);
	assert_int_equal(s.flags & ~TH_PSH, TH_ACK);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.data, "world", 5);
	c.rcv_nxt += 5;
	c_ack(l, &c);
	expect_none(l);

	/* host close: FIN after the data */
	host_close(c.afd);
	must_seg(l, &s);
	assert_int_equal(s.flags, TH_FIN | TH_ACK);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(s.len, 0);
	fin = s.seq;
	c.rcv_nxt = fin + 1;
	c_ack(l, &c);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 1);	/* lingering */
	assert_int_equal(counter(l, "tcp_closed"), 0);

	/* a repeated FIN while lingering: ACKed */
	c_send(l, &c, TH_FIN | TH_ACK, c.snd_nxt - 1, c.rcv_nxt, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(s.seq, fin + 1);
	expect_none(l);

	lab_advance(l, 3000);
	assert_true(wait_flows(l, 0, WAIT_MS));
	assert_int_equal(counter(l, "tcp_closed"), 1);
	assert_int_equal(counter(l, "tcp_reset"), 0);
	expect_quiet(l, QUIET_MS);
	lab_close(l);
}

/* The host closes first: data, FIN; the guest goes on sending, the host
 * reads it; then the guest's FIN ends the flow. */
static void test_host_fin_first(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[16];
	struct conn c;
	struct tseg s;
	size_t got = 0;

	(void)state;
	conn_open(l, &c, 40900, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	host_write(c.afd, (const uint8_t *)"bye", 3);
	assert_int_equal(shutdown(c.afd, SHUT_WR), 0);
	for (;;) {
		must_seg(l, &s);
		assert_int_equal(s.seq, c.rcv_nxt);
		assert_int_equal(s.ack, c.snd_nxt);
		memcpy(b + got, s.data, s.len);
		got += s.len;
		c.rcv_nxt += (uint32_t)s.len;
		if (s.flags & TH_FIN)
			break;
		assert_int_equal(s.flags & ~TH_PSH, TH_ACK);
	}
	assert_int_equal(got, 3);
	assert_memory_equal(b, "bye", 3);
	c.rcv_nxt++;
	c_ack(l, &c);
	expect_none(l);

	c_data(l, &c, 0, "more", 4);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);
	host_read(l, c.afd, b, 4);
	assert_memory_equal(b, "more", 4);

	c_data(l, &c, TH_FIN, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(host_recv_end(c.afd), 0);
	lab_advance(l, 3000);
	assert_true(wait_flows(l, 0, WAIT_MS));
	assert_int_equal(counter(l, "tcp_closed"), 1);
	lab_close(l);
}

/* Data and FIN from the host, in order; returns whether the FIN came. */
static bool c_take_to_fin(struct lab *l, struct conn *c, const char *text,
			  size_t len)
{
	size_t got = 0;
	struct tseg s;

	while ((wait_seg)(l, &s, got < len ? WAIT_MS : QUIET_MS)) {
		want_eq(s.seq, c->rcv_nxt);
		want(got + s.len <= len);
		want(!memcmp(s.data, text + got, s.len));
		got += s.len;
		c->rcv_nxt += (uint32_t)s.len;
		if (s.flags & TH_FIN) {
			want_eq(got, len);
			c->rcv_nxt++;
			(expect_quiet)(l, QUIET_MS);
			return true;
		}
	}
	want_eq(got, len);
	return false;
}
#define c_take_to_fin(l, c, text, len) \
	(caller_line = __LINE__, c_take_to_fin(l, c, text, len))

/*
 * The router's FIN, not acknowledged, is sent again after the RTO; an ACK
 * of the data alone leaves the FIN to resend.
 *
 * After a retransmission timeout the FIN goes out again right after the
 * resent data (the resend looks for end of file once more).
 */
static void test_fin_retransmit(void **state)
{
	struct lab *l = lab_open("");
	struct conn c;
	struct tseg s;
	uint32_t first;
	bool fin;

	(void)state;
	conn_open(l, &c, 40950, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	first = c.rcv_nxt;
	host_write(c.afd, (const uint8_t *)"last", 4);
	host_close(c.afd);
	assert_true(c_take_to_fin(l, &c, "last", 4));
	/* nothing acknowledged: after the RTO the data (and the FIN) again */
	lab_advance(l, 250);
	c.rcv_nxt = first;
	fin = c_take_to_fin(l, &c, "last", 4);
	assert_true(fin);
	/* the data acknowledged: the FIN follows at once if it was missing */
	c.rcv_nxt = first + 4;
	c_ack(l, &c);
	if (!fin) {
		assert_true(lab_next(l, &s));
		assert_int_equal(s.flags, TH_FIN | TH_ACK);
		assert_int_equal(s.seq, first + 4);
	}
	expect_none(l);
	/* the FIN not acknowledged: it alone comes again */
	lab_advance(l, 10000);
	must_seg(l, &s);
	assert_int_equal(s.flags, TH_FIN | TH_ACK);
	assert_int_equal(s.seq, first + 4);
	assert_int_equal(s.len, 0);
	expect_quiet(l, QUIET_MS);
	/* FIN acknowledged, then the guest's own FIN: lingering, then gone */
	c.rcv_nxt = first + 5;
	c_ack(l, &c);
	expect_none(l);
	c_data(l, &c, TH_FIN, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);
	lab_advance(l, 3000);
	assert_true(wait_flows(l, 0, WAIT_MS));
	lab_close(l);
}

/* Guest RST: the host peer is reset too.  An RST far outside the window
 * only gets a challenge ACK (RFC 5961). */
static void test_guest_rst(void **state)
{
	struct lab *l = lab_open("");
	struct conn c;
	struct tseg s;

	(void)state;
	conn_open(l, &c, 41000, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	c_send(l, &c, TH_RST, c.snd_nxt + 0x40000000u, 0, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 1);
	host_nothing(c.afd);

	c_send(l, &c, TH_RST, c.snd_nxt, 0, NULL, 0);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 0);
	assert_int_equal(counter(l, "tcp_reset"), 1);
	assert_int_equal(host_recv_end(c.afd), -ECONNRESET);
	expect_quiet(l, QUIET_MS);
	lab_close(l);
}

/* Host RST (close with SO_LINGER 0): the guest gets an RST. */
static void test_host_rst(void **state)
{
	struct lab *l = lab_open("");
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct conn c;
	struct tseg s;

	(void)state;
	conn_open(l, &c, 41100, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	c_data(l, &c, 0, "abc", 3);
	assert_true(lab_next(l, &s));
	assert_int_equal(setsockopt(c.afd, SOL_SOCKET, SO_LINGER, &lg,
				    sizeof(lg)),
			 0);
	host_close(c.afd);
	must_seg(l, &s);
	assert_int_equal(s.flags, TH_RST | TH_ACK);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_true(wait_flows(l, 0, WAIT_MS));
	assert_int_equal(counter(l, "tcp_reset"), 1);
	expect_quiet(l, QUIET_MS);

	/* the guest, not knowing yet, sends more: RST for no connection */
	c_data(l, &c, 0, "def", 3);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_RST);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(counter(l, "tcp_no_connection"), 1);
	lab_close(l);
}

/* ---- malformed and unexpected segments ---------------------------------- */

static void test_bad_checksum(void **state)
{
	struct lab *l = lab_open("");
	static uint8_t f[FRAME_CAP];
	uint8_t got[4];
	struct conn c;
	struct tseg s;
	uint16_t hport;
	int lfd = host_listen(&hport, 16);
	struct gseg g = { .sport = 41200,
			  .dport = hport,
			  .seq = 77,
			  .flags = TH_SYN,
			  .wnd = 65535,
			  .opt = opt_mss_ws,
			  .optlen = sizeof(opt_mss_ws) };
	size_t n;

	(void)state;
	n = tcp_frame(f, &g, GW);
	f[14 + 20 + 17] ^= 0x01;
	lab_send(l, f, n);
	expect_quiet(l, QUIET_MS);
	assert_int_equal(counter(l, "l4_checksum"), 1);
	assert_int_equal(counter(l, "flows"), 0);
	assert_int_equal(counter(l, "tcp_opened"), 0);
	assert_false(fd_ready(lfd, POLLIN, 0));

	/* on a connection: a data segment with a bad checksum is dropped */
	conn_open_at(l, &c, 41201, lfd, hport, opt_mss_ws,
		     sizeof(opt_mss_ws), 65535);
	g = (struct gseg){ .sport = c.gport,
			   .dport = c.hport,
			   .seq = c.snd_nxt,
			   .ack = c.rcv_nxt,
			   .flags = TH_ACK | TH_PSH,
			   .wnd = 65535,
			   .data = "data",
			   .len = 4 };
	n = tcp_frame(f, &g, GW);
	f[n - 1] ^= 0x40;	/* the payload changed after the checksum */
	lab_send(l, f, n);
	expect_none(l);
	host_nothing(c.afd);
	assert_int_equal(counter(l, "l4_checksum"), 2);
	/* the right one goes through */
	c_data(l, &c, 0, "data", 4);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);
	host_read(l, c.afd, got, 4);
	assert_memory_equal(got, "data", 4);
	lab_close(l);
}

/*
 * SYN options with bogus lengths: still a SYN-ACK, no crash.  Options
 * before the bad one count; it and everything after are ignored (here an
 * MSS of 1200 after a bad option: the router falls back to 536).
 */
static void test_bogus_options(void **state)
{
	static const struct {
		uint8_t o[40];
		size_t len;
		bool ws;	/* window scaling in the SYN-ACK */
	} cases[] = {
		/* MSS of length 0; of length 1 */
		{ { 2, 0, 2, 4, 4, 0xb0 }, 8, false },
		{ { 2, 1, 2, 4, 4, 0xb0 }, 8, false },
		/* WS running past the end */
		{ { 3, 40, 7, 1 }, 4, false },
		/* WS 5, then timestamps cut short */
		{ { 1, 1, 1, 3, 3, 5, 8, 10, 1, 2 }, 12, true },
		/* WS, then an MSS of length 255 */
		{ { 3, 3, 9, 2, 255 }, 8, true },
		/* MSS of length 3, WS of length 2 */
		{ { 2, 3, 5, 3, 2, 0, 0, 0 }, 8, false },
		/* WS of length 4 */
		{ { 3, 4, 7, 0 }, 4, false },
		/* EOL, then WS */
		{ { 0, 3, 3, 7 }, 4, false },
		/* unknown kinds, the second too long */
		{ { 254, 2, 1, 1, 253, 40 }, 8, false },
		/* 40 NOPs */
		{ { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		    1 },
		  40, false },
		/* WS 14, MSS 0 */
		{ { 3, 3, 14, 2, 4, 0, 0 }, 8, true },
		/* WS 200 (14 at most) */
		{ { 3, 3, 200 }, 4, true },
	};
	static const uint8_t bad_then_mss[8] = { 2, 0, 2, 4, 4, 0xb0 };
	struct lab *l = lab_open("max-flows=64,max-tcp-half-open-per-guest=32");
	uint8_t b[1000];
	struct conn c;
	uint16_t hport;
	int lfd = host_listen(&hport, 64);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.gport = (uint16_t)(41300 + i);
		c.lfd = lfd;
		c.hport = hport;
		c.isn = (uint32_t)(i * 1000000u);
		c.wnd = 65535;
		c_syn(l, &c, cases[i].o, cases[i].len);
		c_synack(l, &c);
		assert_int_equal(c.synack.mss, 1460);
		if (c.synack.ws != (cases[i].ws ? 7 : -1))
			fail_msg("case %zu: window scale %d in the SYN-ACK", i,
				 c.synack.ws);
		expect_none(l);
	}
	assert_int_equal(counter(l, "flows"), sizeof(cases) / sizeof(cases[0]));

	/* the MSS after a bad option was not taken: segments of 536 (a
	 * listener of its own: the other connections wait in lfd's queue) */
	conn_open(l, &c, 41399, bad_then_mss, sizeof(bad_then_mss), 65535);
	fill(b, sizeof(b), 6, 0);
	host_write(c.afd, b, sizeof(b));
	assert_int_equal(c_take(l, &c, sizeof(b), 536, 6, 0), 2);
	lab_close(l);
}

/* Header length below 20 or past the end of the packet; a header cut
 * short: dropped as l4_malformed, nothing answered. */
static void test_malformed_header(void **state)
{
	struct lab *l = lab_open("");
	static uint8_t f[FRAME_CAP];
	struct conn c;
	uint16_t hport;
	int lfd = host_listen(&hport, 16);
	struct gseg g = { .sport = 41400,
			  .dport = hport,
			  .seq = 1,
			  .flags = TH_SYN,
			  .wnd = 65535 };
	size_t n;

	(void)state;
	/* data offset 15 (60 bytes), 20 in the packet */
	n = tcp_frame(f, &g, GW);
	f[14 + 20 + 12] = 15 << 4;
	fix_tcp_csum(f);
	lab_send(l, f, n);
	expect_none(l);
	assert_int_equal(counter(l, "l4_malformed"), 1);
	/* data offset 7 (28 bytes), 24 in the packet */
	g.data = "abcd";
	g.len = 4;
	n = tcp_frame(f, &g, GW);
	f[14 + 20 + 12] = 7 << 4;	/* 28 > 24 */
	fix_tcp_csum(f);
	lab_send(l, f, n);
	expect_none(l);
	assert_int_equal(counter(l, "l4_malformed"), 2);
	/* data offset 4 and 0 */
	for (uint8_t d = 0; d <= 4; d += 4) {
		g.len = 0;
		n = tcp_frame(f, &g, GW);
		f[14 + 20 + 12] = (uint8_t)(d << 4);
		fix_tcp_csum(f);
		lab_send(l, f, n);
		expect_none(l);
	}
	assert_int_equal(counter(l, "l4_malformed"), 4);
	/* 12 bytes of TCP header (IP length says so) */
	n = tcp_frame(f, &g, GW);
	put16(f + 14 + 2, 20 + 12);
	put16(f + 14 + 10, 0);
	put16(f + 14 + 10, csum(f + 14, 20, 0));
	lab_send(l, f, 14 + 20 + 12);
	expect_none(l);
	assert_int_equal(counter(l, "l4_malformed"), 5);
	assert_int_equal(counter(l, "flows"), 0);
	assert_int_equal(counter(l, "tcp_opened"), 0);
	assert_false(fd_ready(lfd, POLLIN, 0));

	/* on a connection: a data segment whose header runs past the end */
	conn_open_at(l, &c, 41401, lfd, hport, opt_mss_ws, sizeof(opt_mss_ws),
		     65535);
	g = (struct gseg){ .sport = c.gport,
			   .dport = c.hport,
			   .seq = c.snd_nxt,
			   .ack = c.rcv_nxt,
			   .flags = TH_ACK | TH_PSH,
			   .wnd = 65535,
			   .data = "0123456789",
			   .len = 10 };
	n = tcp_frame(f, &g, GW);
	f[14 + 20 + 12] = 8 << 4;	/* 32 > 30 */
	fix_tcp_csum(f);
	lab_send(l, f, n);
	expect_none(l);
	host_nothing(c.afd);
	assert_int_equal(counter(l, "l4_malformed"), 6);
	assert_int_equal(counter(l, "flows"), 1);
	lab_close(l);
}

/*
 * A keepalive or zero-window probe from the guest (seq = rcv_nxt - 1, no
 * data or one old byte) is answered with an ACK; a pure ACK in sequence is
 * not (no ACK for an ACK).  The other way: with the guest's window closed
 * the router sends nothing, then probes with one byte after the RTO.
 */
static void test_window_probe(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[100];
	struct conn c;
	struct tseg s;
	size_t got = 0;

	(void)state;
	conn_open(l, &c, 41500, opt_mss536, sizeof(opt_mss536), 65535);
	c_data(l, &c, 0, "0123456789", 10);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);

	c_send(l, &c, TH_ACK, c.snd_nxt - 1, c.rcv_nxt, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(s.ack, c.snd_nxt);
	assert_true(s.wnd > 0);
	expect_none(l);
	c_send(l, &c, TH_ACK, c.snd_nxt - 1, c.rcv_nxt, "9", 1);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);
	expect_none(l);
	c_ack(l, &c);
	expect_none(l);
	{
		uint8_t h[10];

		host_read(l, c.afd, h, 10);
		assert_memory_equal(h, "0123456789", 10);
		host_nothing(c.afd);
	}

	/* the guest's window closes; the host has 100 bytes for it */
	c.wnd = 0;
	c_ack(l, &c);
	expect_none(l);
	fill(b, sizeof(b), 7, 0);
	host_write(c.afd, b, sizeof(b));
	expect_quiet(l, 100);
	/* persist: one byte after the RTO */
	lab_advance(l, 250);
	must_seg(l, &s);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(s.len, 1);
	assert_int_equal(s.data[0], b[0]);
	expect_quiet(l, QUIET_MS);
	/* the guest takes it, window still closed; then it opens */
	c.rcv_nxt++;
	got = 1;
	c_ack(l, &c);
	expect_none(l);
	c.wnd = 65535;
	c_ack(l, &c);
	c_take(l, &c, sizeof(b) - got, 536, 7, got);
	c_ack(l, &c);
	expect_none(l);
	assert_int_equal(flow_queued(l), 0);
	lab_close(l);
}

/* An ACK for data the router never sent: dropped (tcp_out_of_window), an
 * ACK back, and the connection carries on.  So does a stray SYN. */
static void test_ack_never_sent(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[8];
	struct conn c;
	struct tseg s;

	(void)state;
	conn_open(l, &c, 41600, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	c_send(l, &c, TH_ACK, c.snd_nxt, c.rcv_nxt + 5000, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.seq, c.rcv_nxt);
	assert_int_equal(s.ack, c.snd_nxt);
	expect_none(l);
	assert_int_equal(counter(l, "tcp_out_of_window"), 1);
	/* with data: the data goes nowhere */
	c_send(l, &c, TH_ACK | TH_PSH, c.snd_nxt, c.rcv_nxt + 1, "lost", 4);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);
	assert_int_equal(counter(l, "tcp_out_of_window"), 2);
	host_nothing(c.afd);
	/* a SYN on the connection: a challenge ACK, nothing else */
	c_send(l, &c, TH_SYN, c.snd_nxt + 1000, 0, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 1);

	/* still a working connection, both ways */
	c_data(l, &c, 0, "fine", 4);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);
	host_read(l, c.afd, b, 4);
	assert_memory_equal(b, "fine", 4);
	fill(b, sizeof(b), 8, 0);
	host_write(c.afd, b, sizeof(b));
	c_take(l, &c, sizeof(b), 1460, 8, 0);
	c_ack(l, &c);
	expect_none(l);
	lab_close(l);
}

/* ---- forwarded connections (hostfwd) ------------------------------------ */

/* A loopback port free a moment ago (hostfwd= wants a number). */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* The guest announces itself (gratuitous ARP, which gets no answer). */
static void guest_garp(struct lab *l)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t f[42];

	memcpy(f, bcast, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, 0x0806);
	memcpy(f + 14, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(f + 22, guest_mac, 6);
	put32(f + 28, GUEST);
	memset(f + 32, 0, 6);
	put32(f + 38, GUEST);
	lab_send(l, f, sizeof(f));
	expect_none(l);
}

static int host_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));

	/* the router's listener is the kernel's: this completes at once */
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* The router's SYN for a host client of a forward to guest port 22. */
static void c_fwd_syn(struct lab *l, struct conn *c)
{
	struct tseg s;

	must_seg(l, &s);
	assert_int_equal(s.flags, TH_SYN);
	assert_int_equal(s.dport, 22);
	assert_int_equal(s.ack, 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(s.mss, 1460);
	assert_int_equal(s.ws, 7);
	assert_true(s.wnd > 0);
	memset(c, 0, sizeof(*c));
	c->gport = 22;
	c->hport = s.sport;	/* the client's, which appears as 10.0.2.2 */
	c->iss = s.seq;
	c->rcv_nxt = s.seq + 1;
	c->wnd = 65535;
	c->synack = s;
}

/*
 * A host client of hostfwd: the guest gets a SYN (MSS, window scaling),
 * again after 1 s without an answer; the guest's SYN-ACK is ACKed; data
 * both ways; closing both ways ends the flow.
 */
static void test_hostfwd(void **state)
{
	struct lab *l;
	char spec[96], b[16];
	uint16_t port = free_port();
	struct conn c;
	struct tseg s;
	int cl;

	(void)state;
	snprintf(spec, sizeof(spec), "hostfwd=tcp:127.0.0.1:%u-10.0.2.15:22",
		 port);
	l = lab_open(spec);
	guest_garp(l);
	cl = host_connect(port);
	c_fwd_syn(l, &c);
	assert_int_equal(counter(l, "flows"), 1);
	expect_quiet(l, QUIET_MS);
	lab_advance(l, 1100);
	must_seg(l, &s);
	assert_int_equal(s.flags, TH_SYN);
	assert_int_equal(s.seq, c.iss);

	/* a SYN-ACK for something else and a bare ACK: ignored */
	c.isn = 0x55555555;
	c_send(l, &c, TH_SYN | TH_ACK, c.isn, c.iss + 7, NULL, 0);
	expect_none(l);
	c_send(l, &c, TH_ACK, c.isn, c.iss + 1, NULL, 0);
	expect_none(l);
	{
		struct gseg g = { .sport = 22,
				  .dport = c.hport,
				  .seq = c.isn,
				  .ack = c.iss + 1,
				  .flags = TH_SYN | TH_ACK,
				  .wnd = 65535,
				  .opt = opt_mss536,
				  .optlen = sizeof(opt_mss536) };

		guest_send(l, &g);
	}
	c.snd_nxt = c.isn + 1;
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.seq, c.iss + 1);
	assert_int_equal(s.ack, c.isn + 1);
	expect_none(l);

	/* data both ways (the guest's MSS is 536, no scaling) */
	{
		uint8_t d[1200];

		fill(d, sizeof(d), 15, 0);
		host_write(cl, d, sizeof(d));
		assert_int_equal(c_take(l, &c, sizeof(d), 536, 15, 0), 3);
		c_ack(l, &c);
		expect_none(l);
	}
	c_data(l, &c, 0, "from guest", 10);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.ack, c.snd_nxt);
	host_read(l, cl, (uint8_t *)b, 10);
	assert_memory_equal(b, "from guest", 10);

	/* the client closes, then the guest */
	host_close(cl);
	assert_true(c_take_to_fin(l, &c, "", 0));
	c_data(l, &c, TH_FIN, NULL, 0);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_ACK);
	assert_int_equal(s.ack, c.snd_nxt);
	lab_advance(l, 3000);
	assert_true(wait_flows(l, 0, WAIT_MS));
	assert_int_equal(counter(l, "tcp_closed"), 1);
	lab_close(l);
}

/* The guest refuses a forwarded connection (RST|ACK): the host client is
 * reset; an RST that does not ACK the SYN is ignored. */
static void test_hostfwd_refused(void **state)
{
	struct lab *l;
	char spec[96];
	uint16_t port = free_port();
	struct conn c;
	int cl;

	(void)state;
	snprintf(spec, sizeof(spec), "hostfwd=tcp:127.0.0.1:%u-10.0.2.15:22",
		 port);
	l = lab_open(spec);
	guest_garp(l);
	cl = host_connect(port);
	c_fwd_syn(l, &c);
	c_send(l, &c, TH_RST | TH_ACK, 0, c.iss + 2, NULL, 0);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 1);
	c_send(l, &c, TH_RST | TH_ACK, 0, c.iss + 1, NULL, 0);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), 0);
	assert_int_equal(counter(l, "tcp_refused"), 1);
	assert_int_equal(host_recv_end(cl), -ECONNRESET);
	lab_close(l);
}

/* ---- limits ------------------------------------------------------------- */

/* A full flow table: the next SYN gets RST|ACK and is counted; once a
 * flow ends, a new one fits.  (max-flows is at least 16; this one guest
 * may have them all, and all may be half-open.) */
static void test_flow_table_full(void **state)
{
	enum { MAXF = 16 };
	struct lab *l = lab_open("max-flows=16,max-flows-per-guest=16,"
				 "max-tcp-half-open=16,"
				 "max-tcp-half-open-per-guest=16");
	struct conn c[MAXF + 1];
	struct tseg s;
	uint16_t hport;
	int lfd = host_listen(&hport, 64);

	(void)state;
	for (unsigned i = 0; i <= MAXF; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].gport = (uint16_t)(42000 + i);
		c[i].hport = hport;
		c[i].lfd = lfd;
		c[i].isn = 5000u * i;
		c[i].wnd = 65535;
	}
	for (unsigned i = 0; i < MAXF; i++) {
		c_syn(l, &c[i], opt_mss_ws, sizeof(opt_mss_ws));
		c_synack(l, &c[i]);
	}
	assert_int_equal(counter(l, "flows"), MAXF);
	c_syn(l, &c[MAXF], opt_mss_ws, sizeof(opt_mss_ws));
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_RST | TH_ACK);
	assert_int_equal(s.ack, c[MAXF].isn + 1);
	assert_int_equal(s.dport, c[MAXF].gport);
	expect_none(l);
	assert_int_equal(counter(l, "flow_table_full"), 1);
	assert_int_equal(counter(l, "flows"), MAXF);

	/* one ends (guest RST): now there is room */
	c_send(l, &c[3], TH_RST, c[3].snd_nxt, 0, NULL, 0);
	expect_none(l);
	assert_int_equal(counter(l, "flows"), MAXF - 1);
	c_syn(l, &c[MAXF], opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &c[MAXF]);
	assert_int_equal(counter(l, "flows"), MAXF);
	assert_int_equal(counter(l, "flow_table_full"), 1);
	lab_close(l);
}

/* The limit's entry in the router's "limits" object. */
static bool limit_is(struct lab *l, const char *name, unsigned max,
		     unsigned hit)
{
	char want[96];

	snprintf(want, sizeof(want), "\"%s\":{\"max\":%u,\"hit\":%u}", name,
		 max, hit);
	return strstr(strstr(lab_stats(l), "\"limits\":{"), want) != NULL;
}

/*
 * max-tcp-half-open=2: two SYNs answered but not yet acknowledged by the
 * guest are half-open; a third SYN gets RST|ACK and is counted.  Once the
 * guest completes one handshake there is room again, and the connections
 * already open never noticed.
 */
static void test_half_open_cap(void **state)
{
	struct lab *l = lab_open("max-tcp-half-open=2,"
				 "max-tcp-half-open-per-guest=2");
	struct conn c[3];
	struct tseg s;
	uint16_t hport;
	int lfd = host_listen(&hport, 64);

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].gport = (uint16_t)(43000 + i);
		c[i].hport = hport;
		c[i].lfd = lfd;
		c[i].isn = 7000u * (i + 1);
		c[i].wnd = 65535;
	}
	c_syn(l, &c[0], opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &c[0]);
	c_syn(l, &c[1], opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &c[1]);
	assert_int_equal(counter(l, "tcp_half_open"), 2);
	c_syn(l, &c[2], opt_mss_ws, sizeof(opt_mss_ws));
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags, TH_RST | TH_ACK);
	assert_int_equal(s.ack, c[2].isn + 1);
	expect_none(l);
	assert_true(limit_is(l, "tcp_half_open", 2, 1));
	assert_int_equal(counter(l, "flows"), 2);

	/* the guest completes one handshake: it is no longer half-open */
	c_ack(l, &c[0]);
	expect_none(l);
	assert_int_equal(counter(l, "tcp_half_open"), 1);
	c_syn(l, &c[2], opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &c[2]);
	assert_int_equal(counter(l, "flows"), 3);
	assert_true(limit_is(l, "tcp_half_open", 2, 1));
	/* the established one still carries data */
	c[0].afd = host_accept(lfd);
	c_data(l, &c[0], 0, "ping", 4);
	assert_true(lab_next(l, &s));
	assert_int_equal(s.flags & TH_ACK, TH_ACK);
	lab_close(l);
}

/* No ACK ever: after 12 retransmissions the router gives up and resets
 * both sides. */
static void test_retransmission_limit(void **state)
{
	struct lab *l = lab_open("");
	uint8_t b[100];
	struct conn c;
	struct tseg s;
	uint32_t first;
	unsigned resent = 0;

	(void)state;
	conn_open(l, &c, 42100, opt_mss_ws, sizeof(opt_mss_ws), 65535);
	first = c.rcv_nxt;
	fill(b, sizeof(b), 9, 0);
	host_write(c.afd, b, sizeof(b));
	c_take(l, &c, sizeof(b), 1460, 9, 0);
	for (;;) {
		lab_advance(l, 11000);	/* past the largest RTO (10 s) */
		must_seg(l, &s);
		if (s.flags & TH_RST)
			break;
		assert_int_equal(s.seq, first);
		assert_int_equal(s.len, sizeof(b));
		assert_memory_equal(s.data, b, sizeof(b));
		resent++;
		assert_true(resent <= 12);
	}
	assert_int_equal(resent, 12);
	assert_int_equal(s.flags, TH_RST | TH_ACK);
	assert_true(s.seq - first <= sizeof(b));
	assert_true(wait_flows(l, 0, WAIT_MS));
	assert_int_equal(host_recv_end(c.afd), -ECONNRESET);
	lab_close(l);
}

/* The guest never completes the handshake: six more SYN-ACKs, then an RST
 * to the guest and a reset host connection. */
static void test_synack_retries(void **state)
{
	struct lab *l = lab_open("");
	struct conn c;
	struct tseg s;
	uint16_t hport;
	unsigned resent = 0;
	int afd;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.lfd = host_listen(&hport, 16);
	c.hport = hport;
	c.gport = 42200;
	c.isn = 99;
	c.wnd = 65535;
	c_syn(l, &c, opt_mss_ws, sizeof(opt_mss_ws));
	c_synack(l, &c);
	afd = host_accept(c.lfd);
	for (;;) {
		lab_advance(l, 20000);
		must_seg(l, &s);
		if (s.flags & TH_RST)
			break;
		assert_int_equal(s.flags, TH_SYN | TH_ACK);
		assert_int_equal(s.seq, c.iss);
		resent++;
		assert_true(resent <= 6);
	}
	assert_int_equal(resent, 6);
	assert_int_equal(s.flags, TH_RST | TH_ACK);
	assert_true(wait_flows(l, 0, WAIT_MS));
	assert_int_equal(host_recv_end(afd), -ECONNRESET);
	lab_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_syn_closed_port, teardown),
		cmocka_unit_test_teardown(test_synack_waits_for_host, teardown),
		cmocka_unit_test_teardown(test_synack_options, teardown),
		cmocka_unit_test_teardown(test_delayed_ack, teardown),
		cmocka_unit_test_teardown(test_data_in_order, teardown),
		cmocka_unit_test_teardown(test_out_of_order, teardown),
		cmocka_unit_test_teardown(test_retransmitted_segment, teardown),
		cmocka_unit_test_teardown(test_host_data_and_retransmit,
					  teardown),
		cmocka_unit_test_teardown(test_host_data_window, teardown),
		cmocka_unit_test_teardown(test_rto_backoff, teardown),
		cmocka_unit_test_teardown(test_host_speaks_first, teardown),
		cmocka_unit_test_teardown(test_guest_overruns_window, teardown),
		cmocka_unit_test_teardown(test_bulk, teardown),
		cmocka_unit_test_teardown(test_guest_fin_half_close, teardown),
		cmocka_unit_test_teardown(test_host_fin_first, teardown),
		cmocka_unit_test_teardown(test_fin_retransmit, teardown),
		cmocka_unit_test_teardown(test_guest_rst, teardown),
		cmocka_unit_test_teardown(test_host_rst, teardown),
		cmocka_unit_test_teardown(test_bad_checksum, teardown),
		cmocka_unit_test_teardown(test_bogus_options, teardown),
		cmocka_unit_test_teardown(test_malformed_header, teardown),
		cmocka_unit_test_teardown(test_window_probe, teardown),
		cmocka_unit_test_teardown(test_ack_never_sent, teardown),
		cmocka_unit_test_teardown(test_hostfwd, teardown),
		cmocka_unit_test_teardown(test_hostfwd_refused, teardown),
		cmocka_unit_test_teardown(test_flow_table_full, teardown),
		cmocka_unit_test_teardown(test_half_open_cap, teardown),
		cmocka_unit_test_teardown(test_retransmission_limit, teardown),
		cmocka_unit_test_teardown(test_synack_retries, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
