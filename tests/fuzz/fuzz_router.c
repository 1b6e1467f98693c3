// SPDX-License-Identifier: MIT
/* fuzz_router.c: libFuzzer harness for the user-mode router: arbitrary
 * frames from a guest (ARP, IPv4, fragments, ICMP, UDP, TCP, DHCP). */

/*
 * Each input builds a fresh library instance (pb_new, switch "s", a user
 * netdev "u" and a callback port "c", with an injected clock), so that a
 * crash reproduces from its input alone, and feeds it frames through
 * pb_port_send():
 *
 *   byte 0   config: bits 0-1 choose the router's options (CONFIGS below);
 *            every one has restrict=on
 *   records  be16 n:
 *              n < 0x8000: a frame of the next n bytes (fewer if the input
 *                          ends first); the clock advances 1 us
 *              n >= 0x8000: a tick: the clock advances (n & 0x7fff) ms and
 *                          pb_dispatch() runs the due timers (reassembly
 *                          timeouts, housekeeping)
 *
 * No host socket is ever opened.  restrict=on refuses TCP, UDP and ICMP to
 * anything but the router's own addresses in router_map_dst() (RST / ICMP
 * administratively prohibited), and no hostfwd or guestfwd is configured;
 * but the router's own DNS service forwards queries to an upstream even
 * with restrict=on (as QEMU's does), through a host socket.  So socket()
 * is interposed here and always fails (EMFILE, as when the process runs
 * out of descriptors: the router must cope), dns-upstream= names a
 * loopback address so that the host's resolv.conf is never read, and
 * connect() aborts.  After every record the flow table must be empty.
 *
 * Checked after every record: the round's output buffers are all returned
 * and no flow exists.  Checked on every frame the router emits: it comes
 * from the router's MAC; ARP is a 42-byte Ethernet/IPv4 ARP; IPv4 has a
 * valid header checksum, a total length that fits the frame and the MTU,
 * and, unless fragmented, a valid UDP, TCP or ICMP checksum over a
 * transport header that fits.  Leaks are ASan's.
 *
 * Build (libFuzzer), from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iinclude -Isrc tests/fuzz/fuzz_router.c $(ls src/[a-z]*.c) -o fr
 * Plain program (-DROUTER_FUZZ_MAIN, no -fsanitize=fuzzer): "fuzz_router
 * --seeds DIR" writes the seed corpus, "fuzz_router FILE..." replays
 * inputs and prints what the router counted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "flow.h"
#include "netdev.h"
#include "patchbay.h"
#include "pb.h"
#include "router.h"

static const char *const configs[4] = {
	"restrict=on,dns-upstream=127.0.0.1:9,max-flows=16",
	("restrict=on,dns-upstream=127.0.0.1:9,mtu=576,hostname=fz,domainname=example.com,"
	 "dnssearch=example.com,dnssearch=lab.example.com,bootfile=pxelinux.0,"
	 "tftp-server-name=tftp.lab,dhcp-option=42,,10.0.2.9,"
	 "dhcp-option=224,,hex:01:02:03,max-flows=16"),
	("restrict=on,dns-upstream=127.0.0.1:9,max-flows=16,net=192.168.7.0/28,"
	 "dhcpstart=192.168.7.12,"
	 "dhcp-host=52:54:00:00:00:02,,192.168.7.5,,beta,dhcp-lease=60"),
	"restrict=on,dns-upstream=127.0.0.1:9,max-flows=16,dhcp=off,mtu=65520",
};

/* No host socket, ever (see above). */
static unsigned long sockets_refused;

int socket(int domain, int type, int protocol)
{
	(void)domain;
	(void)type;
	(void)protocol;
	sockets_refused++;
	errno = EMFILE;
	return -1;
}

int connect(int fd, const struct sockaddr *a, socklen_t len)
{
	(void)a;
	(void)len;
	fprintf(stderr, "fuzz_router: connect(%d) called\n", fd);
	abort();
}

struct fz {
	pb_t *pb;
	struct router *r;
	int port;
	uint64_t now;
	uint64_t frames_out;
};

static uint64_t fz_clock(void *opaque)
{
	return ((struct fz *)opaque)->now;
}

static void fz_log(void *opaque, enum pb_log_level level, const char *msg)
{
	(void)opaque;
	(void)level;
	CHECK(msg != NULL && strlen(msg) < 4096);
}

/* Every frame the router sends must be well-formed. */
static void fz_rx(void *opaque, const void *frame, size_t len)
{
	struct fz *z = opaque;
	const uint8_t *f = frame, *ip, *l4;
	size_t total, hlen, l4len;
	uint16_t type, frag;

	z->frames_out++;
	CHECK(len >= 14);
	CHECK(!memcmp(f + 6, z->r->mac, 6));
	type = get16(f + 12);
	if (type == 0x0806) {
		CHECK(len == 42);
		CHECK(!memcmp(f + 14, "\x00\x01\x08\x00\x06\x04\x00", 7));
		CHECK(f[21] == 1 || f[21] == 2);
		CHECK(!memcmp(f + 22, z->r->mac, 6));
		return;
	}
	if (type == 0x86dd) {
		/* IPv6: a valid fixed header, and an upper-layer packet whose
		 * checksum (pseudo-header included) is right */
		uint32_t ph;

		CHECK(len >= 14 + 40);
		ip = f + 14;
		CHECK(ip[0] >> 4 == 6);
		l4len = get16(ip + 4);
		CHECK(14 + 40 + l4len <= len);
		CHECK(40 + l4len <= z->r->mtu);
		CHECK(ip[6] == 58 || ip[6] == 6 || ip[6] == 17);
		l4 = ip + 40;
		ph = sum16(ip + 8, 32, 0) + ip[6] + (uint32_t)l4len;
		CHECK(fold(sum16(l4, l4len, ph)) == 0xffff);
		return;
	}
	CHECK(type == 0x0800);
	CHECK(len >= 14 + 20);
	ip = f + 14;
	CHECK(ip[0] == 0x45);
	hlen = 20;
	total = get16(ip + 2);
	CHECK(total >= hlen && 14 + total <= len);
	CHECK(total <= z->r->mtu);
	CHECK(fold(sum16(ip, hlen, 0)) == 0xffff);
	frag = get16(ip + 6);
	if (frag & 0x3fff)
		return;		/* a fragment: its L4 header is elsewhere */
	l4 = ip + hlen;
	l4len = total - hlen;
	switch (ip[9]) {
	case 1:
		CHECK(l4len >= 8);
		CHECK(fold(sum16(l4, l4len, 0)) == 0xffff);
		break;
	case 6:
	case 17: {
		uint32_t ph = sum16(ip + 12, 8, 0) + ip[9] + (uint32_t)l4len;

		if (ip[9] == 17) {
			CHECK(l4len >= 8 && get16(l4 + 4) == l4len);
			if (get16(l4 + 6) == 0)
				break;
		} else {
			CHECK(l4len >= 20 && (l4[12] >> 4) * 4u <= l4len);
		}
		CHECK(fold(sum16(l4, l4len, ph)) == 0xffff);
		break;
	}
	default:
		CHECK(!"router sent an unexpected IP protocol");
	}
}

static void fz_after(struct fz *z)
{
	CHECK(z->r->arena_used == 0);
	CHECK(z->r->flows->count == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_DEBUG,
				 .log_fn = fz_log,
				 .max_ports = 8,
				 .max_segments = 2 };
	char spec[1024];
	struct fz z = { .now = 1000 * NS_PER_SEC };
	size_t pos = 1;
	int nd;

	if (size < 1)
		return 0;
	CHECK(pb_new(&cfg, &z.pb) == 0);
	z.pb->loop.clock = fz_clock;
	z.pb->loop.clock_opaque = &z;
	CHECK(pb_segment_add(z.pb, "switch,id=s,fdb-size=64") == 0);
	snprintf(spec, sizeof(spec), "user,id=u,segment=s,%s",
		 configs[data[0] & 3]);
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

	while (size - pos >= 2) {
		uint16_t n = get16(data + pos);

		pos += 2;
		if (n & 0x8000) {
			z.now += (uint64_t)(n & 0x7fff) * NS_PER_MS;
			CHECK(pb_dispatch(z.pb) >= 0);
		} else {
			size_t len = n < size - pos ? n : size - pos;
			/* a copy of exactly len bytes: ASan sees over-reads */
			uint8_t *f = malloc(len ? len : 1);

			CHECK(f != NULL);
			memcpy(f, data + pos, len);
			pos += len;
			z.now += 1000;
			CHECK(pb_port_send(z.pb, z.port, f, len) == 0);
			free(f);
		}
		fz_after(&z);
	}
	/* Let everything time out, then tear down (leaks: ASan). */
	z.now += 3600 * NS_PER_SEC;
	CHECK(pb_dispatch(z.pb) >= 0);
	fz_after(&z);
#ifdef ROUTER_FUZZ_MAIN
	pb_log_stats(z.pb);
	fprintf(stderr, "frames out: %llu, socket() refused: %lu\n",
		(unsigned long long)z.frames_out, sockets_refused);
#endif
	pb_free(z.pb);
	return 0;
}

#ifdef ROUTER_FUZZ_MAIN
/* ---- seed corpus and replay ------------------------------------------- */

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t gw_mac[6] = { 0x52, 0x55, 10, 0, 2, 2 };

#define GUEST 0x0a00020fu	/* 10.0.2.15 */
#define GW 0x0a000202u
#define DNS 0x0a000203u

struct seed {
	uint8_t b[16384];
	size_t n;
};

static void s_bytes(struct seed *s, const void *p, size_t n)
{
	CHECK(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void s_frame(struct seed *s, const uint8_t *f, size_t n)
{
	uint8_t h[2];

	CHECK(n < 0x8000);
	put16(h, (uint32_t)n);
	s_bytes(s, h, 2);
	s_bytes(s, f, n);
}

static void s_tick(struct seed *s, unsigned ms)
{
	uint8_t h[2];

	put16(h, 0x8000 | ms);
	s_bytes(s, h, 2);
}

static size_t eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, guest_mac, 6);
	put16(f + 12, type);
	return 14;
}

static size_t arp_who_has(uint8_t *f, uint32_t sip, uint32_t tip)
{
	eth(f, bcast, 0x0806);
	memcpy(f + 14, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(f + 22, guest_mac, 6);
	put32(f + 28, sip);
	memset(f + 32, 0, 6);
	put32(f + 38, tip);
	return 42;
}

/* IPv4 header at f + 14 for an L4 payload of l4len bytes at f + 34 (already
 * written); fills the L4 checksum for TCP/UDP/ICMP.  Returns frame length. */
static size_t ip4(uint8_t *f, const uint8_t *dmac, uint8_t proto,
		  uint32_t src, uint32_t dst, size_t l4len, uint16_t fragw,
		  bool l4csum)
{
	uint8_t *ip = f + 14, *l4 = ip + 20;

	eth(f, dmac, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint32_t)(20 + l4len));
	put16(ip + 4, 0x4242);
	put16(ip + 6, fragw);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, (uint16_t)~fold(sum16(ip, 20, 0)));
	if (l4csum) {
		uint32_t ph = 0;
		size_t at = proto == 1 ? 2 : proto == 6 ? 16 : 6;

		if (proto != 1)
			ph = sum16(ip + 12, 8, 0) + proto + (uint32_t)l4len;
		put16(l4 + at, 0);
		put16(l4 + at, (uint16_t)~fold(sum16(l4, l4len, ph)));
	}
	return 14 + 20 + l4len;
}

static size_t ping(uint8_t *f, uint32_t dst, uint16_t seq, size_t plen)
{
	uint8_t *icmp = f + 34;

	memset(icmp, 0, 8);
	icmp[0] = 8;
	put16(icmp + 4, 0x77);
	put16(icmp + 6, seq);
	for (size_t i = 0; i < plen; i++)
		icmp[8 + i] = (uint8_t)i;
	return ip4(f, gw_mac, 1, GUEST, dst, 8 + plen, 0, true);
}

static size_t tcp_syn(uint8_t *f, uint32_t dst, uint16_t dport)
{
	uint8_t *t = f + 34;

	memset(t, 0, 24);
	put16(t, 40000);
	put16(t + 2, dport);
	put32(t + 4, 0x01020304);
	t[12] = 6 << 4;
	t[13] = 0x02;		/* SYN */
	put16(t + 14, 64240);
	memcpy(t + 20, "\x02\x04\x05\xb4", 4);	/* MSS 1460 */
	return ip4(f, gw_mac, 6, GUEST, dst, 24, 0x4000, true);
}

static size_t udp(uint8_t *f, const uint8_t *dmac, uint32_t src,
		  uint32_t dst, uint16_t sport, uint16_t dport,
		  const void *payload, size_t plen)
{
	uint8_t *u = f + 34;

	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint32_t)(8 + plen));
	memcpy(u + 8, payload, plen);
	return ip4(f, dmac, 17, src, dst, 8 + plen, 0, true);
}

static size_t dhcp(uint8_t *f, uint8_t type, uint32_t req, uint32_t server)
{
	uint8_t b[300];
	size_t n = 240;

	memset(b, 0, sizeof(b));
	b[0] = 1;
	b[1] = 1;
	b[2] = 6;
	put32(b + 4, 0xabcd0000u | type);
	memcpy(b + 28, guest_mac, 6);
	put32(b + 236, 0x63825363u);
	b[n++] = 53;
	b[n++] = 1;
	b[n++] = type;
	if (req) {
		b[n++] = 50;
		b[n++] = 4;
		put32(b + n, req);
		n += 4;
		b[n++] = 54;
		b[n++] = 4;
		put32(b + n, server);
		n += 4;
	}
	memcpy(b + n, "\x0c\x05guest\x37\x05\x01\x03\x06\x0f\x77\xff", 15);
	return udp(f, bcast, 0, 0xffffffffu, 68, 67, b, sizeof(b));
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

static void s_start(struct seed *s, uint8_t config)
{
	s->n = 0;
	s_bytes(s, &config, 1);
}

static void write_seeds(const char *dir)
{
	static uint8_t f[8192];
	struct seed s;
	size_t n;

	s_start(&s, 0);
	s_frame(&s, f, arp_who_has(f, GUEST, GW));
	s_write(dir, "arp-request", &s);

	s_start(&s, 0);
	s_frame(&s, f, arp_who_has(f, GUEST, GW));
	s_frame(&s, f, ping(f, GW, 1, 56));
	s_frame(&s, f, ping(f, DNS, 2, 56));
	s_write(dir, "ping", &s);

	s_start(&s, 1);
	s_frame(&s, f, dhcp(f, 1, 0, 0));
	s_write(dir, "dhcp-discover", &s);

	s_start(&s, 2);
	s_frame(&s, f, dhcp(f, 1, 0, 0));
	s_frame(&s, f, dhcp(f, 3, 0xc0a8070cu, 0xc0a80702u));
	s_tick(&s, 30000);
	s_frame(&s, f, dhcp(f, 3, 0xc0a8070cu, 0xc0a80702u));
	s_write(dir, "dhcp-dora", &s);

	s_start(&s, 0);
	s_frame(&s, f, tcp_syn(f, GW, 80));
	s_frame(&s, f, tcp_syn(f, 0x5db8d822u, 443));	/* outside */
	s_write(dir, "tcp-syn", &s);

	s_start(&s, 0);
	s_frame(&s, f, udp(f, gw_mac, GUEST, GW, 5353, 9, "hello", 5));
	s_frame(&s, f, udp(f, gw_mac, GUEST, DNS, 5354, 53,
			   "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
			   "\x07" "example\x03" "com\x00\x00\x01\x00\x01", 29));
	s_write(dir, "udp", &s);

	/* A 3000-byte ping to the gateway in three fragments, out of order,
	 * at MTU 576 (the reply is fragmented too); then one left to time
	 * out. */
	s_start(&s, 1);
	n = ping(f, GW, 3, 2992);	/* 3000 bytes of ICMP */
	{
		static uint8_t g[2048];
		const uint8_t *icmp = f + 34;
		const size_t cuts[4] = { 0, 1480, 2960, 3000 };

		(void)n;
		for (int i = 2; i >= 0; i--) {
			size_t off = cuts[i], len = cuts[i + 1] - cuts[i];

			memcpy(g + 34, icmp + off, len);
			s_frame(&s, g, ip4(g, gw_mac, 1, GUEST, GW, len,
					   (uint16_t)((i < 2 ? 0x2000 : 0) |
						      off / 8), false));
		}
		memcpy(g + 34, icmp, 1480);
		s_frame(&s, g, ip4(g, gw_mac, 1, GUEST, GW, 1480, 0x2000, false));
		s_tick(&s, 11000);
	}
	s_write(dir, "ping-fragments", &s);
}

#include "replay.h"

int main(int argc, char **argv)
{
	return fuzz_main(argc, argv, write_seeds);
}
#endif
