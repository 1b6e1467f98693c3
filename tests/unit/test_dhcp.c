// SPDX-License-Identifier: MIT
/* test_dhcp.c: unit tests of the DHCP parser, the search-list encoder and
 * the router's DHCP server driven through a callback port. */

/*
 * Three parts.  The parser (dhcp_parse, dhcp_sanitize_name) gets crafted
 * byte strings, each copied into a buffer of exactly its length so that
 * ASan (make asan-check) catches any read past the end.  The search-list
 * encoder is checked against hand-written RFC 1035 bytes.  The server runs
 * inside a real library instance (pb_new, a switch, a user netdev and a
 * callback port: no sockets, no daemon) with an injected clock: the test
 * builds whole Ethernet/IPv4/UDP frames with their checksums, sends them with
 * pb_port_send() and reads the replies its rx callback collected, checking
 * every header and checksum of each reply with code of its own.  After
 * each frame the router must hold no output buffer and no flow.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "stats_json.h"

#include "dhcp.h"
#include "flow.h"
#include "netdev.h"
#include "patchbay.h"
#include "pb.h"
#include "router.h"

/* Host-order IPv4 address from its four parts. */
#define IP(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

#define GW IP(10, 0, 2, 2)
#define DNS IP(10, 0, 2, 3)

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
/* The router's MAC: 52:55 + the gateway address (router.c). */
static const uint8_t gw_mac[6] = { 0x52, 0x55, 10, 0, 2, 2 };

/* ---- helpers: a BOOTP/DHCP message writer -------------------------------- */

struct msg {
	uint8_t b[2048];
	size_t len;
};

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

static void mac_of(uint8_t *mac, unsigned n)
{
	static const uint8_t base[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x00 };

	memcpy(mac, base, 6);
	mac[4] = (uint8_t)(0x34 + (n >> 8));
	mac[5] = (uint8_t)n;
}

/* The fixed part (op .. file) and, with magic, the magic cookie. */
static void msg_init(struct msg *m, uint8_t op, const uint8_t *mac,
		     uint32_t xid, bool magic)
{
	memset(m, 0, sizeof(*m));
	m->b[0] = op;
	m->b[1] = 1;
	m->b[2] = 6;
	put32(m->b + 4, xid);
	if (mac)
		memcpy(m->b + 28, mac, 6);
	m->len = DHCP_FIXED;
	if (magic) {
		put32(m->b + DHCP_FIXED, DHCP_MAGIC);
		m->len += 4;
	}
}

static void opt(struct msg *m, uint8_t code, const void *v, size_t n)
{
	assert_true(m->len + 2 + n <= sizeof(m->b));
	m->b[m->len++] = code;
	m->b[m->len++] = (uint8_t)n;
	memcpy(m->b + m->len, v, n);
	m->len += n;
}

static void opt8(struct msg *m, uint8_t code, uint8_t v)
{
	opt(m, code, &v, 1);
}

static void opt_ip(struct msg *m, uint8_t code, uint32_t ip)
{
	uint8_t b[4];

	put32(b, ip);
	opt(m, code, b, 4);
}

static void opt_str(struct msg *m, uint8_t code, const char *s)
{
	opt(m, code, s, strlen(s));
}

/* END, then zero padding up to BOOTP's 300 bytes. */
static void msg_end(struct msg *m)
{
	m->b[m->len++] = DHCP_OPT_END;
	if (m->len < DHCP_MIN_LEN)
		m->len = DHCP_MIN_LEN;
}

/* A client message of type t with the usual fixed fields. */
static void dhcp_msg(struct msg *m, uint8_t type, const uint8_t *mac,
		     uint32_t xid)
{
	msg_init(m, BOOTREQUEST, mac, xid, true);
	opt8(m, DHCP_OPT_MSG_TYPE, type);
}

/* dhcp_parse on a copy of exactly len bytes (ASan sees over-reads). */
static int parse(const uint8_t *p, size_t len, struct dhcp_msg *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	if (len)
		memcpy(copy, p, len);
	rc = dhcp_parse(copy, len, out);
	free(copy);
	return rc;
}

static int parse_msg(const struct msg *m, struct dhcp_msg *out)
{
	return parse(m->b, m->len, out);
}

/* dhcp_sanitize_name of a string (exact-size copy) into a 64-byte buffer. */
static const char *sanitize(const char *in, size_t len)
{
	static char out[DHCP_NAME_MAX];
	uint8_t *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	memcpy(copy, in, len);
	memset(out, 'X', sizeof(out));
	dhcp_sanitize_name(copy, len, out, sizeof(out));
	free(copy);
	assert_true(strlen(out) <= 63);
	return out;
}

/* ---- parser ---------------------------------------------------------------- */

static void test_parse_minimal_discover(void **state)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	dhcp_msg(&w, DHCPDISCOVER, mac, 0x12345678);
	w.b[10] = 0x80;		/* broadcast flag */
	put32(w.b + 12, IP(10, 0, 2, 99));	/* ciaddr */
	put32(w.b + 16, IP(10, 0, 2, 98));	/* yiaddr */
	put32(w.b + 20, IP(10, 0, 2, 97));	/* siaddr */
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.op, BOOTREQUEST);
	assert_int_equal(m.htype, 1);
	assert_int_equal(m.hlen, 6);
	assert_int_equal(m.type, DHCPDISCOVER);
	assert_true(m.has_magic);
	assert_memory_equal(&m.xid, "\x12\x34\x56\x78", 4);
	assert_int_equal(m.flags, 0x8000);
	assert_int_equal(ntohl(m.ciaddr), IP(10, 0, 2, 99));
	assert_int_equal(ntohl(m.yiaddr), IP(10, 0, 2, 98));
	assert_int_equal(ntohl(m.siaddr), IP(10, 0, 2, 97));
	assert_int_equal(m.giaddr, 0);
	assert_memory_equal(m.chaddr, mac, 6);
	assert_int_equal(m.requested_ip, 0);
	assert_int_equal(m.server_id, 0);
	assert_int_equal(m.client_id_len, 0);
	assert_string_equal(m.hostname, "");
	assert_int_equal(m.max_size, 0);

	/* The shortest: fixed part, magic, option 53, no END, no padding. */
	dhcp_msg(&w, DHCPDISCOVER, mac, 1);
	assert_int_equal(w.len, DHCP_FIXED + 4 + 3);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.type, DHCPDISCOVER);

	/* Every option the parser keeps. */
	dhcp_msg(&w, DHCPREQUEST, mac, 2);
	opt_ip(&w, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 15));
	opt_ip(&w, DHCP_OPT_SERVER_ID, GW);
	opt(&w, DHCP_OPT_MAX_SIZE, "\x05\xdc", 2);
	opt(&w, DHCP_OPT_CLIENT_ID, "\x01\x52\x54\x00\x12\x34\x56", 7);
	opt_str(&w, DHCP_OPT_HOSTNAME, "guest1");
	opt(&w, DHCP_OPT_PARAM_LIST, "\x01\x03\x06\x0f", 4);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.type, DHCPREQUEST);
	assert_int_equal(ntohl(m.requested_ip), IP(10, 0, 2, 15));
	assert_int_equal(ntohl(m.server_id), GW);
	assert_int_equal(m.max_size, 1500);
	assert_int_equal(m.client_id_len, 7);
	assert_memory_equal(m.client_id, "\x01\x52\x54\x00\x12\x34\x56", 7);
	assert_string_equal(m.hostname, "guest1");

	/* Option values of the wrong size are ignored, not fatal. */
	dhcp_msg(&w, DHCPREQUEST, mac, 3);
	opt(&w, DHCP_OPT_REQUESTED_IP, "\x0a\x00\x02", 3);
	opt(&w, DHCP_OPT_SERVER_ID, "\x0a\x00\x02\x02\x00", 5);
	opt(&w, DHCP_OPT_MAX_SIZE, "\x05", 1);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.requested_ip, 0);
	assert_int_equal(m.server_id, 0);
	assert_int_equal(m.max_size, 0);
}

static void test_parse_bootp(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	/* Plain BOOTP: 300 bytes, vendor area all zero. */
	msg_init(&w, BOOTREQUEST, mac, 7, false);
	w.len = DHCP_MIN_LEN;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_false(m.has_magic);
	assert_int_equal(m.type, DHCP_NONE);
	assert_memory_equal(m.chaddr, mac, 6);

	/* Only the fixed part; or a cookie cut short; or a wrong cookie. */
	w.len = DHCP_FIXED;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_false(m.has_magic);
	msg_init(&w, BOOTREQUEST, mac, 7, true);
	w.len = DHCP_FIXED + 3;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_false(m.has_magic);
	msg_init(&w, BOOTREQUEST, mac, 7, false);
	put32(w.b + DHCP_FIXED, 0x63825364u);
	w.len = DHCP_FIXED + 4;
	opt8(&w, DHCP_OPT_MSG_TYPE, 77);	/* not options: never read */
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_false(m.has_magic);
	assert_int_equal(m.type, DHCP_NONE);

	/* Magic without option 53: BOOTP with vendor options. */
	msg_init(&w, BOOTREQUEST, mac, 7, true);
	opt_str(&w, DHCP_OPT_HOSTNAME, "pxe");
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_true(m.has_magic);
	assert_int_equal(m.type, DHCP_NONE);
	assert_string_equal(m.hostname, "pxe");
}

static void test_parse_truncated_fixed(void **state)
{
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	dhcp_msg(&w, DHCPDISCOVER, (const uint8_t *)"\2\0\0\0\0\1", 1);
	msg_end(&w);
	assert_int_equal(parse(w.b, 0, &m), -EBADMSG);
	for (size_t len = 1; len < DHCP_FIXED; len += 7)
		assert_int_equal(parse(w.b, len, &m), -EBADMSG);
	assert_int_equal(parse(w.b, DHCP_FIXED - 1, &m), -EBADMSG);
	assert_int_equal(parse(w.b, DHCP_FIXED, &m), 0);
	/* Every length from the fixed part to the whole message parses. */
	for (size_t len = DHCP_FIXED; len <= w.len; len++)
		assert_int_equal(parse(w.b, len, &m), 0);
}

static void test_parse_wrong_header(void **state)
{
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	dhcp_msg(&w, DHCPDISCOVER, (const uint8_t *)"\2\0\0\0\0\1", 1);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	w.b[0] = BOOTREPLY;
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	w.b[0] = 0;
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	w.b[0] = BOOTREQUEST;
	w.b[1] = 6;		/* IEEE 802 */
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	w.b[1] = 1;
	w.b[2] = 16;
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	w.b[2] = 0;
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	w.b[2] = 6;
	assert_int_equal(parse_msg(&w, &m), 0);
}

static void test_parse_msg_type(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	for (unsigned t = 0; t < 256; t++) {
		msg_init(&w, BOOTREQUEST, mac, 1, true);
		opt8(&w, DHCP_OPT_MSG_TYPE, (uint8_t)t);
		msg_end(&w);
		if (t >= DHCPDISCOVER && t <= DHCPINFORM) {
			assert_int_equal(parse_msg(&w, &m), 0);
			assert_int_equal(m.type, t);
		} else {
			assert_int_equal(parse_msg(&w, &m), -EBADMSG);
		}
	}
	/* Length 0 and 2 are invalid. */
	msg_init(&w, BOOTREQUEST, mac, 1, true);
	opt(&w, DHCP_OPT_MSG_TYPE, "", 0);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	msg_init(&w, BOOTREQUEST, mac, 1, true);
	opt(&w, DHCP_OPT_MSG_TYPE, "\x01\x01", 2);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
	/* A bad second option 53 spoils a good first one. */
	msg_init(&w, BOOTREQUEST, mac, 1, true);
	opt8(&w, DHCP_OPT_MSG_TYPE, DHCPDISCOVER);
	opt8(&w, DHCP_OPT_MSG_TYPE, 200);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);
}

static void test_parse_truncated_tlv(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	/* A value that runs past the end: what came before is kept. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt_ip(&w, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 15));
	w.b[w.len++] = DHCP_OPT_HOSTNAME;
	w.b[w.len++] = 10;
	memcpy(w.b + w.len, "abc", 3);
	w.len += 3;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.type, DHCPREQUEST);
	assert_int_equal(ntohl(m.requested_ip), IP(10, 0, 2, 15));
	assert_string_equal(m.hostname, "");

	/* A code with no length byte. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt_ip(&w, DHCP_OPT_SERVER_ID, GW);
	w.b[w.len++] = DHCP_OPT_CLIENT_ID;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(ntohl(m.server_id), GW);
	assert_int_equal(m.client_id_len, 0);

	/* A truncated option 53 after a good one: the good one stays. */
	dhcp_msg(&w, DHCPINFORM, mac, 1);
	w.b[w.len++] = DHCP_OPT_MSG_TYPE;
	w.b[w.len++] = 1;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.type, DHCPINFORM);

	/* Pads are skipped; nothing after END is read. */
	msg_init(&w, BOOTREQUEST, mac, 1, true);
	memset(w.b + w.len, DHCP_OPT_PAD, 5);
	w.len += 5;
	opt8(&w, DHCP_OPT_MSG_TYPE, DHCPDECLINE);
	w.b[w.len++] = DHCP_OPT_END;
	opt8(&w, DHCP_OPT_MSG_TYPE, 99);
	opt_ip(&w, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 20));
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.type, DHCPDECLINE);
	assert_int_equal(m.requested_ip, 0);
}

static void test_parse_overload(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct dhcp_msg m;
	struct msg w;
	uint8_t *sname, *file;

	(void)state;
	/* 52 = 3: options also in file (first) and sname. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt8(&w, DHCP_OPT_OVERLOAD, 3);
	msg_end(&w);
	sname = w.b + 44;
	file = w.b + 108;
	memcpy(file, "\x0c\x08" "fromfile" "\x32\x04\x0a\x00\x02\x21" "\xff",
	       17);
	memcpy(sname, "\x36\x04\x0a\x00\x02\x02" "\x0c\x05" "sname" "\xff", 14);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.type, DHCPREQUEST);
	assert_int_equal(ntohl(m.requested_ip), IP(10, 0, 2, 33));
	assert_int_equal(ntohl(m.server_id), GW);
	/* sname is read after file (RFC 2131 4.1), so its name is last */
	assert_string_equal(m.hostname, "sname");

	/* 52 = 1: file only; sname stays a server name. */
	w.b[DHCP_FIXED + 4 + 3 + 2] = 1;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(ntohl(m.requested_ip), IP(10, 0, 2, 33));
	assert_int_equal(m.server_id, 0);
	assert_string_equal(m.hostname, "fromfile");

	/* 52 = 2: sname only. */
	w.b[DHCP_FIXED + 4 + 3 + 2] = 2;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.requested_ip, 0);
	assert_int_equal(ntohl(m.server_id), GW);
	assert_string_equal(m.hostname, "sname");

	/* Values 0 and 4 and a wrong length are ignored. */
	w.b[DHCP_FIXED + 4 + 3 + 2] = 0;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.requested_ip, 0);
	assert_int_equal(m.server_id, 0);
	w.b[DHCP_FIXED + 4 + 3 + 2] = 4;
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.requested_ip, 0);

	/* A file field full of options with no END, and a TLV that would run
	 * out of the field into sname: the scan stops at the field's end. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt8(&w, DHCP_OPT_OVERLOAD, 1);
	msg_end(&w);
	file = w.b + 108;
	memset(file, DHCP_OPT_PAD, 128);
	file[124] = DHCP_OPT_HOSTNAME;
	file[125] = 20;		/* 20 bytes claimed, 2 left in file */
	memcpy(w.b + 236, "xx", 2);	/* magic follows: must not be read */
	memcpy(w.b + 44, "\x0c\x03" "bad", 5);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "");

	/* An invalid option 53 inside an overloaded field is invalid. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt8(&w, DHCP_OPT_OVERLOAD, 2);
	msg_end(&w);
	memcpy(w.b + 44, "\x35\x01\x00\xff", 4);
	assert_int_equal(parse_msg(&w, &m), -EBADMSG);

	/* Option 52 inside the file field does not switch on sname. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt8(&w, DHCP_OPT_OVERLOAD, 1);
	msg_end(&w);
	memcpy(w.b + 108, "\x34\x01\x02\xff", 4);
	memcpy(w.b + 44, "\x36\x04\x0a\x00\x02\x02\xff", 7);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(m.server_id, 0);
}

static void test_parse_client_id(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	uint8_t id[255];
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	for (size_t i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(i * 7 + 1);
	for (size_t len = 0; len <= 255; len++) {
		dhcp_msg(&w, DHCPDISCOVER, mac, 1);
		opt(&w, DHCP_OPT_CLIENT_ID, id, len);
		msg_end(&w);
		assert_int_equal(parse_msg(&w, &m), 0);
		if (len >= 2 && len <= DHCP_CLIENT_ID_MAX) {
			assert_int_equal(m.client_id_len, len);
			assert_memory_equal(m.client_id, id, len);
		} else {
			assert_int_equal(m.client_id_len, 0);
		}
	}
}

static void test_sanitize_name(void **state)
{
	char big[300], want[64], out[8];

	(void)state;
	assert_string_equal(sanitize("MyHost", 6), "myhost");
	assert_string_equal(sanitize("host.example.com", 16), "host");
	assert_string_equal(sanitize("a_b c!d~e", 9), "abcde");
	assert_string_equal(sanitize("web-01", 6), "web-01");
	assert_string_equal(sanitize("--lead", 6), "lead");
	assert_string_equal(sanitize("trail--", 7), "trail");
	assert_string_equal(sanitize("-", 1), "");
	assert_string_equal(sanitize(".", 1), "");
	assert_string_equal(sanitize(".host", 5), "");
	assert_string_equal(sanitize("", 0), "");
	assert_string_equal(sanitize("ab\0cd", 5), "ab");
	assert_string_equal(sanitize("caf\xc3\xa9-1", 7), "caf-1");
	assert_string_equal(sanitize("\xff\xfe\x80", 3), "");
	/* 63 characters at most, even from a longer input. */
	memset(big, 'A', sizeof(big));
	memset(want, 'a', 63);
	want[63] = '\0';
	assert_string_equal(sanitize(big, sizeof(big)), want);
	assert_string_equal(sanitize(big, 63), want);
	want[62] = '\0';
	assert_string_equal(sanitize(big, 62), want);
	/* bad characters do not count towards the limit */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = i % 2 ? 'z' : '_';
	memset(want, 'z', 63);
	want[63] = '\0';
	assert_string_equal(sanitize(big, sizeof(big)), want);
	/* a dash cut at the limit is trimmed */
	memset(big, 'b', 62);
	big[62] = '-';
	big[63] = 'c';
	memset(want, 'b', 62);
	want[62] = '\0';
	assert_string_equal(sanitize(big, 64), want);
	/* A small output buffer truncates, always terminated. */
	memset(out, 'X', sizeof(out));
	dhcp_sanitize_name((const uint8_t *)"abcdefghij", 10, out, 4);
	assert_string_equal(out, "abc");
	assert_int_equal(out[4], 'X');
	dhcp_sanitize_name((const uint8_t *)"abc", 3, out, 1);
	assert_string_equal(out, "");
	out[0] = 'X';
	dhcp_sanitize_name((const uint8_t *)"abc", 3, out, 0);
	assert_int_equal(out[0], 'X');
}

static void test_parse_hostname(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	char big[255];
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	dhcp_msg(&w, DHCPDISCOVER, mac, 1);
	opt_str(&w, DHCP_OPT_HOSTNAME, "My_Laptop.Home.LAN");
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "mylaptop");

	memset(big, 'Q', sizeof(big));
	dhcp_msg(&w, DHCPDISCOVER, mac, 1);
	opt(&w, DHCP_OPT_HOSTNAME, big, sizeof(big));
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_int_equal(strlen(m.hostname), 63);
	assert_int_equal(m.hostname[0], 'q');

	/* An unusable name leaves none. */
	dhcp_msg(&w, DHCPDISCOVER, mac, 1);
	opt_str(&w, DHCP_OPT_HOSTNAME, "!!!");
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "");
}

static void test_parse_fqdn(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	static const uint8_t wire[] = "\x04\x00\x00"
				      "\x06" "Laptop" "\x07" "example"
				      "\x03" "com" "\x00";
	struct dhcp_msg m;
	struct msg w;

	(void)state;
	/* ASCII (E clear): flags, rcode1, rcode2, then the text name. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x01\x00\x00" "Laptop.example.com", 21);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "laptop");

	/* Wire format (E set, RFC 4702 2.3.1): the first label. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, wire, sizeof(wire) - 1);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "laptop");

	/* E set, first label longer than the option: no name. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x05\x00\x00\x09" "abc", 7);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "");
	/* ... exactly as long as the option: accepted. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x05\x00\x00\x03" "abc", 7);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "abc");
	/* ... the root (empty) name, and a compression-pointer byte. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x04\x00\x00\x00", 4);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "");
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x04\x00\x00\xc0\x0c", 5);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "");

	/* Three bytes or fewer: nothing to read. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x00\x00\x00", 3);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "");

	/* Option 12 wins, whichever comes first. */
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt_str(&w, DHCP_OPT_HOSTNAME, "plain");
	opt(&w, DHCP_OPT_FQDN, "\x00\x00\x00" "fqdn.example", 15);
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "plain");
	dhcp_msg(&w, DHCPREQUEST, mac, 1);
	opt(&w, DHCP_OPT_FQDN, "\x00\x00\x00" "fqdn.example", 15);
	opt_str(&w, DHCP_OPT_HOSTNAME, "plain");
	msg_end(&w);
	assert_int_equal(parse_msg(&w, &m), 0);
	assert_string_equal(m.hostname, "plain");
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random corruptions of a rich message: never a crash, never a read past
 * the end (under ASan), results always within their bounds. */
static void test_parse_random(void **state)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	uint32_t seed = 0x2545f491;
	struct dhcp_msg m;
	struct msg base, w;

	(void)state;
	dhcp_msg(&base, DHCPREQUEST, mac, 1);
	opt8(&base, DHCP_OPT_OVERLOAD, 3);
	opt_ip(&base, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 15));
	opt(&base, DHCP_OPT_CLIENT_ID, "\x01\x02\x00\x00\x00\x00\x01", 7);
	opt(&base, DHCP_OPT_FQDN, "\x04\x00\x00\x04host\x00", 9);
	opt_str(&base, DHCP_OPT_HOSTNAME, "Host-1");
	msg_end(&base);
	memcpy(base.b + 44, "\x0c\x02hi\xff", 5);
	memcpy(base.b + 108, "\x39\x02\x02\x40\xff", 5);
	for (int i = 0; i < 20000; i++) {
		unsigned flips = 1 + xorshift(&seed) % 8;

		w = base;
		for (unsigned k = 0; k < flips; k++) {
			size_t at = DHCP_FIXED - 200 + xorshift(&seed) % 264;

			w.b[at] = (uint8_t)xorshift(&seed);
		}
		w.len = DHCP_FIXED + xorshift(&seed) % (base.len - DHCP_FIXED + 1);
		if (parse_msg(&w, &m) == 0) {
			assert_true(m.client_id_len == 0 ||
				    (m.client_id_len >= 2 &&
				     m.client_id_len <= DHCP_CLIENT_ID_MAX));
			assert_true(strlen(m.hostname) <= 63);
			assert_true(m.type <= DHCPINFORM);
		}
	}
}

/* ---- dhcp_encode_search ---------------------------------------------------- */

static void test_search_one(void **state)
{
	static const uint8_t want[] = "\x07" "example" "\x03" "com" "\x00";
	const char *names[] = { "example.com" };
	uint8_t out[64];

	(void)state;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), 13);
	assert_memory_equal(out, want, 13);
	assert_int_equal(out[13], 0xee);
	/* A trailing dot names the same domain. */
	names[0] = "example.com.";
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), 13);
	assert_memory_equal(out, want, 13);
	/* A single label. */
	names[0] = "lan";
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), 5);
	assert_memory_equal(out, "\x03lan\x00", 5);
	/* Exactly enough room. */
	names[0] = "example.com";
	assert_int_equal(dhcp_encode_search(names, 1, out, 13), 13);
}

static void test_search_compression(void **state)
{
	/* RFC 1035 4.1.4: a suffix already written becomes a pointer
	 * 0b11 + 14-bit offset from the start of the option value. */
	static const uint8_t want[] = "\x07" "example" "\x03" "com" "\x00"
				      "\x03" "lab" "\xc0\x00";
	static const uint8_t want2[] = "\x01" "a" "\x07" "example" "\x03" "com"
				       "\x00"
				       "\x01" "b" "\x04" "test" "\xc0\x0a"
				       "\xc0\x02";
	const char *names[] = { "example.com", "lab.example.com" };
	const char *names2[] = { "a.example.com", "b.test.com",
				 "EXAMPLE.com" };
	uint8_t out[64];

	(void)state;
	assert_int_equal(dhcp_encode_search(names, 2, out, sizeof(out)), 19);
	assert_memory_equal(out, want, 19);
	/* Only "com" shared (offset 10); a whole name repeated (offset 2),
	 * matched without regard to case. */
	assert_int_equal(dhcp_encode_search(names2, 3, out, sizeof(out)), 26);
	assert_memory_equal(out, want2, 26);
}

static void test_search_errors(void **state)
{
	const char *names[64];
	char label64[80], name254[260];
	uint8_t out[DHCP_SEARCH_MAX];

	(void)state;
	names[0] = "example.com";
	assert_int_equal(dhcp_encode_search(names, 1, out, 12), -ENOSPC);
	assert_int_equal(dhcp_encode_search(names, 1, out, 0), -ENOSPC);
	names[1] = "lab.example.com";
	/* the pointer needs 2 more bytes than the 17 before it */
	assert_int_equal(dhcp_encode_search(names, 2, out, 18), -ENOSPC);
	assert_int_equal(dhcp_encode_search(names, 2, out, 19), 19);
	/* Many distinct long names overflow the option's buffer. */
	static char many[64][64];

	for (int i = 0; i < 64; i++) {
		snprintf(many[i], sizeof(many[i]),
			 "domain-number-%02d-with-a-long-label.site%02d.test", i,
			 i);
		names[i] = many[i];
	}
	assert_int_equal(dhcp_encode_search(names, 64, out, sizeof(out)),
			 -ENOSPC);
	/* Empty labels and overlong ones. */
	names[0] = "a..b";
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), -EINVAL);
	names[0] = ".a";
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), -EINVAL);
	names[0] = "";
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), -EINVAL);
	names[0] = "ok.test";
	names[1] = "";
	assert_int_equal(dhcp_encode_search(names, 2, out, sizeof(out)), -EINVAL);
	memset(label64, 'x', 64);
	strcpy(label64 + 64, ".test");
	names[0] = label64;
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), -EINVAL);
	label64[1] = '.';	/* now labels of 1 and 62 */
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)),
			 1 + 1 + 1 + 62 + 1 + 4 + 1);
	/* More than 253 characters is no domain name. */
	for (int i = 0; i < 254; i++)
		name254[i] = i % 2 ? '.' : 'a';
	name254[253] = 'a';
	name254[254] = '\0';
	names[0] = name254;
	assert_int_equal(dhcp_encode_search(names, 1, out, sizeof(out)), -EINVAL);
	name254[253] = '\0';
	assert_true(dhcp_encode_search(names, 1, out, sizeof(out)) > 0);
}

/* ---- the server, through a callback port ----------------------------------- */

#define MAX_RX 64

struct rxframe {
	uint8_t b[2048];
	size_t len;
};

struct lab {
	pb_t *pb;
	int port;
	struct router *r;
	uint64_t now;		/* the injected clock, ns */
	struct rxframe rx[MAX_RX];
	unsigned nrx;
	unsigned overflow;
};

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

/* A switch "s" with the router "u" (spec is the rest of its options) and
 * the test's callback port "c". */
static struct lab *lab_open(const char *spec)
{
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_ERR,
				 .log_fn = lab_log,
				 .max_ports = 16,
				 .max_segments = 4 };
	struct lab *l = calloc(1, sizeof(*l));
	char buf[1024];
	int nd, rc;

	assert_non_null(l);
	assert_int_equal(pb_new(&cfg, &l->pb), 0);
	l->now = 1000 * NS_PER_SEC;
	l->pb->loop.clock = lab_clock;
	l->pb->loop.clock_opaque = l;
	assert_int_equal(pb_segment_add(l->pb, "switch,id=s"), 0);
	snprintf(buf, sizeof(buf), "user,id=u,segment=s%s%s", *spec ? "," : "",
		 spec);
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

static void lab_close(struct lab *l)
{
	assert_int_equal(l->overflow, 0);
	pb_free(l->pb);
	free(l);
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

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint16_t ulen)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) +
	       17 + ulen;
}

/* Ethernet + IPv4 + UDP around payload; returns the frame length. */
static size_t udp_frame(uint8_t *f, const uint8_t *dmac, const uint8_t *smac,
			uint32_t sip, uint32_t dip, uint16_t sport,
			uint16_t dport, const uint8_t *payload, size_t plen)
{
	uint8_t *ip = f + 14, *u = ip + 20;
	uint16_t ulen = (uint16_t)(8 + plen), c;

	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, 20u + ulen);
	put16(ip + 4, 0x1234);
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, sip);
	put32(ip + 16, dip);
	put16(ip + 10, csum(ip, 20, 0));
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, ulen);
	put16(u + 6, 0);
	memcpy(u + 8, payload, plen);
	c = csum(u, ulen, pseudo_sum(sip, dip, ulen));
	put16(u + 6, c ? c : 0xffff);
	return 14 + 20 + ulen;
}

/* Send one frame; the router must end the round with nothing held. */
static void lab_send(struct lab *l, const uint8_t *f, size_t len)
{
	l->nrx = 0;
	assert_int_equal(pb_port_send(l->pb, l->port, f, len), 0);
	assert_int_equal(l->r->arena_used, 0);
	assert_int_equal(l->r->flows->count, 0);
}

/* A client message from mac as a broadcast from 0.0.0.0 (src/dst may be
 * overridden with ciaddr-style unicast through send_msg_to). */
static void send_msg_to(struct lab *l, const struct msg *m, const uint8_t *smac,
			const uint8_t *dmac, uint32_t sip, uint32_t dip)
{
	static uint8_t f[2100];
	size_t n = udp_frame(f, dmac, smac, sip, dip, 68, 67, m->b, m->len);

	lab_send(l, f, n);
}

static void send_msg(struct lab *l, const struct msg *m)
{
	send_msg_to(l, m, m->b + 28, bcast_mac, 0, 0xffffffffu);
}

/* A reply, checked and taken apart. */
struct reply {
	const uint8_t *eth_dst;
	uint32_t ip_src, ip_dst;	/* host order */
	const uint8_t *b;		/* the BOOTP message */
	size_t len;
	uint8_t type;
	uint32_t xid, ciaddr, yiaddr, siaddr, giaddr;	/* host order */
	uint16_t flags;
	bool has[256];
	uint8_t val[256][1024];		/* concatenated (RFC 3396) */
	size_t vlen[256];
};

static struct reply rep;

/* Walk one option area into rep; returns the overload value. */
static unsigned reply_options(const uint8_t *p, size_t n)
{
	unsigned overload = 0;
	size_t i = 0;

	while (i < n) {
		uint8_t code = p[i++], len;

		if (code == DHCP_OPT_END)
			return overload;
		if (code == DHCP_OPT_PAD)
			continue;
		assert_true(i < n);
		len = p[i++];
		assert_true(i + len <= n);
		assert_true(rep.vlen[code] + len <= sizeof(rep.val[code]));
		memcpy(rep.val[code] + rep.vlen[code], p + i, len);
		rep.vlen[code] += len;
		rep.has[code] = true;
		if (code == DHCP_OPT_OVERLOAD)
			overload = p[i];
		i += len;
	}
	fail_msg("option area without END");
	return 0;
}

/* Check the frame as a receiver would (every length and checksum) and
 * take the BOOTREPLY apart into rep. */
static struct reply *parse_reply(const struct rxframe *fr, bool want_magic)
{
	const uint8_t *f = fr->b, *ip, *u;
	size_t ulen, total;
	unsigned overload;

	memset(&rep, 0, sizeof(rep));
	assert_true(fr->len >= 14 + 20 + 8 + DHCP_MIN_LEN);
	assert_memory_equal(f + 6, gw_mac, 6);
	assert_int_equal(get16(f + 12), 0x0800);
	ip = f + 14;
	assert_int_equal(ip[0], 0x45);
	total = get16(ip + 2);
	assert_true(14 + total <= fr->len);
	assert_int_equal(csum(ip, 20, 0), 0);
	assert_int_equal(ip[9], 17);
	assert_int_equal(get16(ip + 6) & 0x3fff, 0);	/* not a fragment */
	assert_true(ip[8] > 0);
	u = ip + 20;
	ulen = get16(u + 4);
	assert_int_equal(ulen, total - 20);
	assert_int_equal(get16(u), 67);
	assert_int_equal(get16(u + 2), 68);
	rep.eth_dst = f;
	rep.ip_src = get32(ip + 12);
	rep.ip_dst = get32(ip + 16);
	assert_true(get16(u + 6) != 0);		/* checksum present */
	assert_int_equal(csum(u, ulen, pseudo_sum(rep.ip_src, rep.ip_dst,
						   (uint16_t)ulen)), 0);
	rep.b = u + 8;
	rep.len = ulen - 8;
	assert_true(rep.len >= DHCP_MIN_LEN);
	assert_int_equal(rep.b[0], BOOTREPLY);
	assert_int_equal(rep.b[1], 1);
	assert_int_equal(rep.b[2], 6);
	rep.xid = get32(rep.b + 4);
	rep.flags = get16(rep.b + 10);
	rep.ciaddr = get32(rep.b + 12);
	rep.yiaddr = get32(rep.b + 16);
	rep.siaddr = get32(rep.b + 20);
	rep.giaddr = get32(rep.b + 24);
	if (!want_magic) {
		assert_true(get32(rep.b + DHCP_FIXED) != DHCP_MAGIC);
		return &rep;
	}
	assert_int_equal(get32(rep.b + DHCP_FIXED), DHCP_MAGIC);
	overload = reply_options(rep.b + DHCP_FIXED + 4,
				 rep.len - DHCP_FIXED - 4);
	if (overload & 1)
		reply_options(rep.b + 108, 128);
	if (overload & 2)
		reply_options(rep.b + 44, 64);
	if (rep.has[DHCP_OPT_MSG_TYPE]) {
		assert_int_equal(rep.vlen[DHCP_OPT_MSG_TYPE], 1);
		rep.type = rep.val[DHCP_OPT_MSG_TYPE][0];
	}
	return &rep;
}

/* The DHCP replies among the frames received: exactly 0 or 1 wanted. */
static struct reply *lab_reply(struct lab *l)
{
	const struct rxframe *found = NULL;

	for (unsigned i = 0; i < l->nrx; i++) {
		const uint8_t *f = l->rx[i].b;

		if (l->rx[i].len < 14 + 20 + 8 || get16(f + 12) != 0x0800 ||
		    f[14 + 9] != 17 || get16(f + 14 + 20 + 2) != 68)
			continue;
		assert_null(found);
		found = &l->rx[i];
	}
	return found ? parse_reply(found, true) : NULL;
}

static uint32_t opt_ip4(const struct reply *r, uint8_t code)
{
	if (!r->has[code])
		fail_msg("option %u missing", code);
	assert_int_equal(r->vlen[code], 4);
	return get32(r->val[code]);
}

static uint32_t opt_u32(const struct reply *r, uint8_t code)
{
	return opt_ip4(r, code);
}

static void assert_opt_str(const struct reply *r, uint8_t code,
			   const char *s)
{
	if (!r->has[code])
		fail_msg("option %u missing", code);
	assert_int_equal(r->vlen[code], strlen(s));
	assert_memory_equal(r->val[code], s, strlen(s));
}

/* DISCOVER from client n (flags 0 or 0x8000); the OFFER or NULL. */
static struct reply *discover(struct lab *l, unsigned n, uint16_t flags)
{
	uint8_t mac[6];
	struct msg m;
	struct reply *r;

	mac_of(mac, n);
	dhcp_msg(&m, DHCPDISCOVER, mac, 0x1000 + n);
	put16(m.b + 10, flags);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	if (r) {
		assert_int_equal(r->type, DHCPOFFER);
		assert_int_equal(r->xid, 0x1000 + n);
		assert_memory_equal(r->b + 28, mac, 6);
	}
	return r;
}

/* REQUEST (SELECTING) of ip from client n; the reply or NULL. */
static struct reply *request(struct lab *l, unsigned n, uint32_t ip,
			     uint16_t flags)
{
	uint8_t mac[6];
	struct msg m;

	mac_of(mac, n);
	dhcp_msg(&m, DHCPREQUEST, mac, 0x2000 + n);
	put16(m.b + 10, flags);
	opt_ip(&m, DHCP_OPT_REQUESTED_IP, ip);
	opt_ip(&m, DHCP_OPT_SERVER_ID, GW);
	msg_end(&m);
	send_msg(l, &m);
	return lab_reply(l);
}

/* DISCOVER + REQUEST; returns the address bound. */
static uint32_t lease(struct lab *l, unsigned n)
{
	struct reply *r = discover(l, n, 0);
	uint32_t ip;

	assert_non_null(r);
	ip = r->yiaddr;
	r = request(l, n, ip, 0);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPACK);
	assert_int_equal(r->yiaddr, ip);
	return ip;
}

static void release(struct lab *l, unsigned n, uint32_t ip)
{
	uint8_t mac[6];
	struct msg m;

	mac_of(mac, n);
	dhcp_msg(&m, DHCPRELEASE, mac, 0x3000 + n);
	put32(m.b + 12, ip);
	opt_ip(&m, DHCP_OPT_SERVER_ID, GW);
	msg_end(&m);
	send_msg_to(l, &m, mac, gw_mac, ip, GW);
	assert_null(lab_reply(l));
}

/* The stats JSON of the instance (through a memfd), NUL-terminated, with
 * the white space outside strings removed. */
static char *lab_stats(struct lab *l)
{
	return stats_compact(l->pb);
}

/* A number of the router's "dhcp" object. */
static unsigned long long dhcp_counter(struct lab *l, const char *name)
{
	const char *s = strstr(lab_stats(l), "\"dhcp\":{");
	char key[64];
	const char *v;

	assert_non_null(s);
	snprintf(key, sizeof(key), "\"%s\":", name);
	v = strstr(s, key);
	if (!v)
		fail_msg("no %s in the dhcp stats: %s", name, s);
	return strtoull(v + strlen(key), NULL, 10);
}

/* The leases array of the router's "dhcp" object: [*begin, *end). */
static void json_lease_array(struct lab *l, const char **begin,
			     const char **end)
{
	const char *s = strstr(lab_stats(l), "\"dhcp\":{");

	assert_non_null(s);
	s = strstr(s, "\"leases\":[");
	assert_non_null(s);
	*begin = s + strlen("\"leases\":[");
	*end = strchr(*begin, ']');
	assert_non_null(*end);
}

/* How many leases the stats list. */
static unsigned json_leases(struct lab *l)
{
	const char *p, *end;
	unsigned n = 0;

	json_lease_array(l, &p, &end);
	while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

/* Is there a lease of ip (and, unless NULL, with that mac and name)? */
static bool json_lease(struct lab *l, const char *ip, const char *mac,
		       const char *name)
{
	const char *p, *end;
	char want[96];

	json_lease_array(l, &p, &end);
	while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
		const char *q = memchr(p, '}', (size_t)(end - p));
		size_t n;

		assert_non_null(q);
		n = (size_t)(q - p);
		snprintf(want, sizeof(want), "\"ip\":\"%s\"", ip);
		if (memmem(p, n, want, strlen(want))) {
			if (mac) {
				snprintf(want, sizeof(want), "\"mac\":\"%s\"", mac);
				if (!memmem(p, n, want, strlen(want)))
					return false;
			}
			if (name) {
				snprintf(want, sizeof(want), "\"name\":\"%s\"",
					 name);
				if (!memmem(p, n, want, strlen(want)))
					return false;
			}
			return true;
		}
		p = q;
	}
	return false;
}

static void test_server_offer_ack(void **state)
{
	/* search list: the exact bytes of test_search_compression */
	static const uint8_t search[] = "\x07" "example" "\x03" "com" "\x00"
					"\x03" "lab" "\xc0\x00";
	struct lab *l = lab_open("dnssearch=example.com,dnssearch=lab.example.com,"
				 "bootfile=pxelinux.0,tftp-server-name=tftp.lab,"
				 "mtu=1400,dhcp-lease=3600,domainname=example.com,"
				 "hostname=vm1,dhcp-option=42,,10.0.2.9");
	uint8_t mac[6];
	struct reply *r;

	(void)state;
	mac_of(mac, 1);
	r = discover(l, 1, 0);
	assert_non_null(r);
	/* no broadcast flag: unicast to the offered address at chaddr */
	assert_memory_equal(r->eth_dst, mac, 6);
	assert_int_equal(r->ip_src, GW);
	assert_int_equal(r->ip_dst, IP(10, 0, 2, 15));
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	assert_int_equal(r->ciaddr, 0);
	assert_int_equal(r->siaddr, GW);	/* next server (TFTP) */
	assert_int_equal(r->giaddr, 0);
	assert_int_equal(r->flags, 0);
	assert_int_equal(opt_ip4(r, DHCP_OPT_SERVER_ID), GW);
	assert_int_equal(opt_ip4(r, DHCP_OPT_SUBNET_MASK), IP(255, 255, 255, 0));
	assert_int_equal(opt_ip4(r, DHCP_OPT_ROUTER), GW);
	assert_int_equal(opt_ip4(r, DHCP_OPT_DNS), DNS);
	assert_int_equal(opt_ip4(r, DHCP_OPT_BROADCAST), IP(10, 0, 2, 255));
	assert_int_equal(opt_u32(r, DHCP_OPT_LEASE_TIME), 3600);
	assert_int_equal(opt_u32(r, DHCP_OPT_RENEWAL), 1800);
	assert_int_equal(opt_u32(r, DHCP_OPT_REBINDING), 3150);
	assert_int_equal(r->vlen[DHCP_OPT_MTU], 2);
	assert_int_equal(get16(r->val[DHCP_OPT_MTU]), 1400);
	assert_int_equal(r->vlen[DHCP_OPT_DOMAIN_SEARCH], sizeof(search) - 1);
	assert_memory_equal(r->val[DHCP_OPT_DOMAIN_SEARCH], search,
			    sizeof(search) - 1);
	assert_opt_str(r, DHCP_OPT_TFTP_SERVER, "tftp.lab");
	assert_opt_str(r, DHCP_OPT_BOOTFILE, "pxelinux.0");
	assert_opt_str(r, DHCP_OPT_DOMAIN_NAME, "example.com");
	assert_opt_str(r, DHCP_OPT_HOSTNAME, "vm1");
	assert_int_equal(opt_ip4(r, 42), IP(10, 0, 2, 9));
	/* sname and file carry the same (BOOTP clients, PXE ROMs) */
	assert_string_equal((const char *)r->b + 44, "tftp.lab");
	assert_string_equal((const char *)r->b + 108, "pxelinux.0");

	/* REQUEST with the broadcast flag: ACK to 255.255.255.255. */
	r = request(l, 1, IP(10, 0, 2, 15), 0x8000);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPACK);
	assert_int_equal(r->xid, 0x2001);
	assert_memory_equal(r->eth_dst, bcast_mac, 6);
	assert_int_equal(r->ip_dst, 0xffffffffu);
	assert_int_equal(r->flags, 0x8000);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	assert_int_equal(r->siaddr, GW);
	assert_int_equal(opt_u32(r, DHCP_OPT_LEASE_TIME), 3600);
	assert_int_equal(opt_ip4(r, DHCP_OPT_ROUTER), GW);
	assert_int_equal(opt_ip4(r, DHCP_OPT_DNS), DNS);
	assert_int_equal(get16(r->val[DHCP_OPT_MTU]), 1400);
	assert_memory_equal(r->val[DHCP_OPT_DOMAIN_SEARCH], search,
			    sizeof(search) - 1);

	/* RENEWING: unicast from ciaddr, no option 50 or 54; the ACK goes
	 * to ciaddr at chaddr. */
	{
		struct msg m;

		dhcp_msg(&m, DHCPREQUEST, mac, 0x4001);
		put32(m.b + 12, IP(10, 0, 2, 15));
		msg_end(&m);
		send_msg_to(l, &m, mac, gw_mac, IP(10, 0, 2, 15), GW);
		r = lab_reply(l);
		assert_non_null(r);
		assert_int_equal(r->type, DHCPACK);
		assert_int_equal(r->ip_dst, IP(10, 0, 2, 15));
		assert_memory_equal(r->eth_dst, mac, 6);
		assert_int_equal(r->ciaddr, IP(10, 0, 2, 15));
		assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	}
	assert_int_equal(json_leases(l), 1);
	assert_true(json_lease(l, "10.0.2.15", "52:54:00:12:34:01", ""));
	assert_int_equal(dhcp_counter(l, "discover"), 1);
	assert_int_equal(dhcp_counter(l, "offer"), 1);
	assert_int_equal(dhcp_counter(l, "request"), 2);
	assert_int_equal(dhcp_counter(l, "ack"), 2);
	assert_int_equal(dhcp_counter(l, "malformed"), 0);
	lab_close(l);
}

/* Defaults: no MTU option at 1500, no lease options beyond 51/58/59,
 * no 66/67/119 unless configured; the default lease is a day. */
static void test_server_defaults(void **state)
{
	struct lab *l = lab_open("");
	struct reply *r;

	(void)state;
	r = discover(l, 1, 0x8000);
	assert_non_null(r);
	assert_memory_equal(r->eth_dst, bcast_mac, 6);
	assert_int_equal(r->ip_dst, 0xffffffffu);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	assert_int_equal(opt_u32(r, DHCP_OPT_LEASE_TIME), 86400);
	assert_false(r->has[DHCP_OPT_MTU]);
	assert_false(r->has[DHCP_OPT_DOMAIN_SEARCH]);
	assert_false(r->has[DHCP_OPT_TFTP_SERVER]);
	assert_false(r->has[DHCP_OPT_BOOTFILE]);
	assert_false(r->has[DHCP_OPT_HOSTNAME]);
	assert_int_equal(r->b[44], 0);
	assert_int_equal(r->b[108], 0);
	lab_close(l);
}

static void test_server_five_clients(void **state)
{
	struct lab *l = lab_open("");
	uint32_t ip[5];
	char want[2][32];

	(void)state;
	for (unsigned i = 0; i < 5; i++) {
		ip[i] = lease(l, i + 1);
		assert_int_equal(ip[i], IP(10, 0, 2, 15 + i));
		for (unsigned j = 0; j < i; j++)
			assert_true(ip[i] != ip[j]);
	}
	/* A second round (reboot, DISCOVER again) gives each the same. */
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(lease(l, i + 1), ip[i]);
	assert_int_equal(json_leases(l), 5);
	for (unsigned i = 0; i < 5; i++) {
		snprintf(want[0], sizeof(want[0]), "10.0.2.%u", 15 + i);
		snprintf(want[1], sizeof(want[1]), "52:54:00:12:34:%02x", i + 1);
		assert_true(json_lease(l, want[0], want[1], NULL));
	}
	lab_close(l);
}

static void test_server_release(void **state)
{
	struct lab *l = lab_open("");
	uint32_t a, b;

	(void)state;
	a = lease(l, 1);
	assert_int_equal(a, IP(10, 0, 2, 15));
	release(l, 1, a);
	assert_int_equal(dhcp_counter(l, "release"), 1);
	assert_int_equal(json_leases(l), 0);
	/* Someone new gets a never-used address, not the released one... */
	b = lease(l, 2);
	assert_int_equal(b, IP(10, 0, 2, 16));
	/* ...and the old client its old one back. */
	assert_int_equal(lease(l, 1), a);
	/* A RELEASE naming someone else's address changes nothing. */
	release(l, 2, a);
	assert_int_equal(json_leases(l), 2);
	lab_close(l);
}

static void test_server_client_id(void **state)
{
	struct lab *l = lab_open("");
	struct reply *r;
	uint8_t mac[6];
	struct msg m;

	(void)state;
	/* A client known by option 61 keeps its address on another MAC. */
	mac_of(mac, 7);
	dhcp_msg(&m, DHCPDISCOVER, mac, 1);
	opt(&m, DHCP_OPT_CLIENT_ID, "\x00" "client-x", 9);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	mac_of(mac, 8);
	memcpy(m.b + 28, mac, 6);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	/* The first MAC without the identifier is another client. */
	assert_int_equal(discover(l, 7, 0)->yiaddr, IP(10, 0, 2, 16));
	lab_close(l);
}

static void test_server_reservation(void **state)
{
	struct lab *l = lab_open("dhcp-host=52:54:00:00:00:02,,10.0.2.50,,beta,"
				 "hostname=generic");
	static const uint8_t beta[6] = { 0x52, 0x54, 0, 0, 0, 2 };
	struct reply *r;
	struct msg m;

	(void)state;
	/* Others first: nobody gets .50. */
	assert_int_equal(lease(l, 1), IP(10, 0, 2, 15));
	r = request(l, 2, IP(10, 0, 2, 50), 0);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPNAK);

	dhcp_msg(&m, DHCPDISCOVER, beta, 9);
	opt_ip(&m, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 16));
	opt_str(&m, DHCP_OPT_HOSTNAME, "other-name");
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPOFFER);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 50));
	assert_opt_str(r, DHCP_OPT_HOSTNAME, "beta");
	dhcp_msg(&m, DHCPREQUEST, beta, 10);
	opt_ip(&m, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 50));
	opt_ip(&m, DHCP_OPT_SERVER_ID, GW);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPACK);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 50));
	assert_opt_str(r, DHCP_OPT_HOSTNAME, "beta");
	assert_true(json_lease(l, "10.0.2.50", "52:54:00:00:00:02", "beta"));
	/* A client without a reservation gets the server's hostname=. */
	r = discover(l, 3, 0);
	assert_opt_str(r, DHCP_OPT_HOSTNAME, "generic");
	lab_close(l);
}

/* A reservation outside the pool (below dhcpstart) is served too. */
static void test_server_reservation_outside_pool(void **state)
{
	struct lab *l = lab_open("dhcp-host=52:54:00:12:34:05,,10.0.2.5");

	(void)state;
	assert_int_equal(lease(l, 5), IP(10, 0, 2, 5));
	assert_int_equal(lease(l, 6), IP(10, 0, 2, 15));
	assert_int_equal(lease(l, 5), IP(10, 0, 2, 5));
	lab_close(l);
}

static void test_server_restrict(void **state)
{
	struct lab *l = lab_open("restrict=on");
	struct reply *r;

	(void)state;
	r = discover(l, 1, 0);
	assert_non_null(r);
	assert_int_equal(opt_ip4(r, DHCP_OPT_SUBNET_MASK), IP(255, 255, 255, 0));
	assert_false(r->has[DHCP_OPT_ROUTER]);
	assert_false(r->has[DHCP_OPT_DNS]);
	r = request(l, 1, IP(10, 0, 2, 15), 0);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPACK);
	assert_false(r->has[DHCP_OPT_ROUTER]);
	assert_false(r->has[DHCP_OPT_DNS]);
	lab_close(l);
}

static void test_server_nak(void **state)
{
	struct lab *l = lab_open("");
	struct reply *r;

	(void)state;
	r = request(l, 1, IP(192, 168, 1, 77), 0);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPNAK);
	/* NAKs are broadcast (RFC 2131 4.3.2), carry 54, no address. */
	assert_memory_equal(r->eth_dst, bcast_mac, 6);
	assert_int_equal(r->ip_dst, 0xffffffffu);
	assert_int_equal(r->yiaddr, 0);
	assert_int_equal(r->siaddr, 0);
	assert_int_equal(opt_ip4(r, DHCP_OPT_SERVER_ID), GW);
	assert_false(r->has[DHCP_OPT_LEASE_TIME]);
	assert_false(r->has[DHCP_OPT_SUBNET_MASK]);
	assert_false(r->has[DHCP_OPT_ROUTER]);
	/* Another client's bound address. */
	assert_int_equal(lease(l, 2), IP(10, 0, 2, 15));
	r = request(l, 3, IP(10, 0, 2, 15), 0);
	assert_int_equal(r->type, DHCPNAK);
	/* A REQUEST without any address. */
	{
		uint8_t mac[6];
		struct msg m;

		mac_of(mac, 4);
		dhcp_msg(&m, DHCPREQUEST, mac, 1);
		msg_end(&m);
		send_msg(l, &m);
		r = lab_reply(l);
		assert_non_null(r);
		assert_int_equal(r->type, DHCPNAK);
	}
	/* A REQUEST for another server is silently ignored. */
	{
		uint8_t mac[6];
		struct msg m;

		mac_of(mac, 5);
		dhcp_msg(&m, DHCPREQUEST, mac, 1);
		opt_ip(&m, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 16));
		opt_ip(&m, DHCP_OPT_SERVER_ID, IP(10, 0, 2, 1));
		msg_end(&m);
		send_msg(l, &m);
		assert_null(lab_reply(l));
	}
	assert_int_equal(dhcp_counter(l, "nak"), 3);
	lab_close(l);
}

/*
 * max-leases=2 in a pool of 240: a third client gets no offer (counted in
 * exhausted and limits.leases) while the first two renew; once one
 * releases, the third gets an address.  A reservation is never refused.
 */
static void test_server_max_leases(void **state)
{
	struct lab *l = lab_open("max-leases=2,dhcp-host=52:54:00:12:34:09,,10.0.2.30");
	uint32_t a;
	struct reply *r;

	(void)state;
	a = lease(l, 1);
	assert_int_equal(a, IP(10, 0, 2, 15));
	assert_int_equal(lease(l, 2), IP(10, 0, 2, 16));
	assert_null(discover(l, 3, 0));
	r = request(l, 3, IP(10, 0, 2, 17), 0);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPNAK);
	assert_int_equal(dhcp_counter(l, "exhausted"), 1);
	assert_non_null(strstr(lab_stats(l),
			       "\"leases\":{\"max\":2,\"hit\":2}"));
	/* holders renew; a reservation inside the pool is served */
	assert_int_equal(lease(l, 1), a);
	assert_int_equal(lease(l, 9), IP(10, 0, 2, 30));
	/* a release makes room (the reservation holds one: still full) */
	release(l, 1, a);
	assert_null(discover(l, 3, 0));
	release(l, 9, IP(10, 0, 2, 30));
	assert_int_not_equal(lease(l, 3), 0);
	lab_close(l);
}

static void test_server_exhaustion(void **state)
{
	/* /28: .0 net, .2 gw, .3 dns, .15 broadcast: pool .12-.14 */
	struct lab *l = lab_open("net=10.0.2.0/28,dhcpstart=10.0.2.12");
	struct reply *r;

	(void)state;
	assert_int_equal(lease(l, 1), IP(10, 0, 2, 12));
	assert_int_equal(lease(l, 2), IP(10, 0, 2, 13));
	r = discover(l, 3, 0);
	assert_non_null(r);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 14));
	assert_int_equal(opt_ip4(r, DHCP_OPT_SUBNET_MASK), IP(255, 255, 255, 240));
	assert_int_equal(opt_ip4(r, DHCP_OPT_BROADCAST), IP(10, 0, 2, 15));
	/* .14 is only offered, but held: the fourth gets nothing. */
	assert_null(discover(l, 4, 0));
	assert_null(discover(l, 4, 0));
	assert_int_equal(dhcp_counter(l, "exhausted"), 2);
	assert_int_equal(dhcp_counter(l, "offer"), 3);
	r = request(l, 4, IP(10, 0, 2, 14), 0);
	assert_int_equal(r->type, DHCPNAK);
	/* The offer lapses after its hold time: then the fourth gets it. */
	l->now += 31 * NS_PER_SEC;
	r = discover(l, 4, 0);
	assert_non_null(r);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 14));
	assert_int_equal(request(l, 4, IP(10, 0, 2, 14), 0)->type, DHCPACK);
	assert_null(discover(l, 3, 0));
	assert_int_equal(dhcp_counter(l, "exhausted"), 3);
	lab_close(l);
}

/*
 * With the pool full, an expired lease is the one given out (the old
 * holder, still in the router's neighbour table from before its lease
 * ended, does not keep the address "taken").
 */
static void test_server_lease_expiry(void **state)
{
	struct lab *l;
	struct reply *r;

	(void)state;
	l = lab_open("net=10.0.2.0/28,dhcpstart=10.0.2.12,dhcp-lease=60");
	assert_int_equal(lease(l, 1), IP(10, 0, 2, 12));
	l->now += 10 * NS_PER_SEC;
	assert_int_equal(lease(l, 2), IP(10, 0, 2, 13));
	l->now += 10 * NS_PER_SEC;
	assert_int_equal(lease(l, 3), IP(10, 0, 2, 14));
	assert_null(discover(l, 4, 0));
	/* 55 s after the first: still bound (lease 60 s) */
	l->now += 35 * NS_PER_SEC;
	assert_null(discover(l, 4, 0));
	/* client 2 renews at 60 s: a fresh 60 s */
	l->now += 5 * NS_PER_SEC;
	assert_int_equal(request(l, 2, IP(10, 0, 2, 13), 0)->type, DHCPACK);
	/* 61 s: only client 1's lease ran out */
	l->now += 1 * NS_PER_SEC;
	r = discover(l, 4, 0);
	assert_non_null(r);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 12));
	assert_int_equal(request(l, 4, IP(10, 0, 2, 12), 0)->type, DHCPACK);
	/* client 1 comes back: nothing left (3 leased) */
	assert_null(discover(l, 1, 0));
	assert_int_equal(json_leases(l), 3);
	lab_close(l);
}

static void test_server_decline(void **state)
{
	struct lab *l = lab_open("");
	uint8_t mac[6];
	struct msg m;

	(void)state;
	assert_int_equal(lease(l, 1), IP(10, 0, 2, 15));
	/* ARP probe found someone on .15: DECLINE; the client starts again
	 * and does not get .15; neither does anyone for a while. */
	mac_of(mac, 1);
	dhcp_msg(&m, DHCPDECLINE, mac, 1);
	opt_ip(&m, DHCP_OPT_REQUESTED_IP, IP(10, 0, 2, 15));
	opt_ip(&m, DHCP_OPT_SERVER_ID, GW);
	msg_end(&m);
	send_msg(l, &m);
	assert_null(lab_reply(l));
	assert_int_equal(dhcp_counter(l, "decline"), 1);
	assert_int_equal(lease(l, 1), IP(10, 0, 2, 16));
	assert_int_equal(lease(l, 2), IP(10, 0, 2, 17));
	assert_int_equal(json_leases(l), 2);
	lab_close(l);
}

/* An address a static guest answers ARP for is not handed out. */
static void test_server_skips_taken(void **state)
{
	static const uint8_t stat[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	struct lab *l = lab_open("");
	uint8_t f[64];
	struct reply *r;

	(void)state;
	/* gratuitous ARP: 10.0.2.15 is at 02:00:00:00:00:99 */
	memcpy(f, bcast_mac, 6);
	memcpy(f + 6, stat, 6);
	put16(f + 12, 0x0806);
	memcpy(f + 14, "\x00\x01\x08\x00\x06\x04\x00\x01", 8);
	memcpy(f + 22, stat, 6);
	put32(f + 28, IP(10, 0, 2, 15));
	memset(f + 32, 0, 6);
	put32(f + 38, IP(10, 0, 2, 15));
	lab_send(l, f, 42);
	r = discover(l, 1, 0);
	assert_non_null(r);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 16));
	lab_close(l);
}

/* The gateway and DNS addresses are the router's own: never leased, even
 * when dhcpstart= puts them inside the pool. */
static void test_server_pool_skips_router(void **state)
{
	struct lab *l = lab_open("dhcpstart=10.0.2.1");
	uint32_t ip;

	(void)state;
	for (unsigned i = 1; i <= 4; i++) {
		ip = lease(l, i);
		assert_true(ip != GW);
		assert_true(ip != DNS);
	}
	lab_close(l);
}

static void test_server_bootp(void **state)
{
	struct lab *l = lab_open("bootfile=boot.img");
	uint8_t mac[6];
	struct reply *r;
	struct msg m;

	(void)state;
	mac_of(mac, 1);
	msg_init(&m, BOOTREQUEST, mac, 0xb007, false);
	m.len = DHCP_MIN_LEN;
	send_msg(l, &m);
	assert_int_equal(l->nrx, 1);
	r = parse_reply(&l->rx[0], false);
	assert_int_equal(r->len, DHCP_MIN_LEN);
	assert_int_equal(r->xid, 0xb007);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));
	assert_int_equal(r->siaddr, GW);
	assert_string_equal((const char *)r->b + 108, "boot.img");
	assert_int_equal(dhcp_counter(l, "bootp"), 1);
	/* BOOTP leases are permanent: listed, and the same next time. */
	assert_true(json_lease(l, "10.0.2.15", "52:54:00:12:34:01", NULL));
	send_msg(l, &m);
	r = parse_reply(&l->rx[0], false);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 15));

	/* BOOTP with RFC 1048 vendor options: they fit BOOTP's 64 bytes. */
	mac_of(mac, 2);
	msg_init(&m, BOOTREQUEST, mac, 0xb008, true);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->len, DHCP_MIN_LEN);
	assert_int_equal(r->type, 0);
	assert_int_equal(r->yiaddr, IP(10, 0, 2, 16));
	assert_int_equal(opt_ip4(r, DHCP_OPT_SUBNET_MASK), IP(255, 255, 255, 0));
	assert_int_equal(opt_ip4(r, DHCP_OPT_ROUTER), GW);
	lab_close(l);
}

static void test_server_inform(void **state)
{
	struct lab *l = lab_open("dhcp-option=42,,10.0.2.9");
	uint8_t mac[6];
	struct reply *r;
	struct msg m;

	(void)state;
	mac_of(mac, 1);
	dhcp_msg(&m, DHCPINFORM, mac, 77);
	put32(m.b + 12, IP(10, 0, 2, 100));
	msg_end(&m);
	send_msg_to(l, &m, mac, gw_mac, IP(10, 0, 2, 100), GW);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->type, DHCPACK);
	assert_int_equal(r->ip_dst, IP(10, 0, 2, 100));
	assert_memory_equal(r->eth_dst, mac, 6);
	assert_int_equal(r->ciaddr, IP(10, 0, 2, 100));
	assert_int_equal(r->yiaddr, 0);
	assert_false(r->has[DHCP_OPT_LEASE_TIME]);
	assert_int_equal(opt_ip4(r, DHCP_OPT_ROUTER), GW);
	assert_int_equal(opt_ip4(r, 42), IP(10, 0, 2, 9));
	assert_int_equal(json_leases(l), 0);
	assert_int_equal(dhcp_counter(l, "inform"), 1);
	lab_close(l);
}

/* Options that do not fit the client's maximum message size (57) are left
 * out, never cut; the option area always ends with END. */
static void test_server_max_size(void **state)
{
	char spec[2048] = "mtu=1400";
	struct lab *l;
	uint8_t mac[6];
	struct reply *r;
	struct msg m;

	(void)state;
	for (int i = 0; i < 6; i++)
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec),
			 ",dhcp-option=%d,,%0100d", 224 + i, i);
	l = lab_open(spec);
	mac_of(mac, 1);
	dhcp_msg(&m, DHCPDISCOVER, mac, 5);
	opt(&m, DHCP_OPT_MAX_SIZE, "\x02\x40", 2);	/* 576 */
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_true(r->len <= 576 - 28);
	assert_true(r->has[DHCP_OPT_LEASE_TIME]);
	assert_false(r->has[229]);
	for (int i = 0; i < 6; i++)
		assert_true(!r->has[224 + i] || r->vlen[224 + i] == 100);
	/* Without option 57 the same 576 applies (RFC 2131 2). */
	dhcp_msg(&m, DHCPDISCOVER, mac, 6);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_true(r->len <= 576 - 28);
	/* With 1500, all of them, within the MTU. */
	dhcp_msg(&m, DHCPDISCOVER, mac, 7);
	opt(&m, DHCP_OPT_MAX_SIZE, "\x05\xdc", 2);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	for (int i = 0; i < 6; i++)
		assert_int_equal(r->vlen[224 + i], 100);
	assert_true(r->len <= 1400 - 28);
	lab_close(l);
}

/* A long search list is split into several option 119 instances
 * (RFC 3396); concatenated they decode to the list. */
static void test_server_long_search(void **state)
{
	char spec[4096] = "dhcp-lease=3600";
	const char *names[20];
	static char nm[20][64];
	uint8_t want[DHCP_SEARCH_MAX];
	struct lab *l;
	struct reply *r;
	uint8_t mac[6];
	struct msg m;
	int n;

	(void)state;
	for (int i = 0; i < 20; i++) {
		snprintf(nm[i], sizeof(nm[i]), "zone%02d.department%02d.test", i, i);
		names[i] = nm[i];
		snprintf(spec + strlen(spec), sizeof(spec) - strlen(spec),
			 ",dnssearch=%s", nm[i]);
	}
	n = dhcp_encode_search(names, 20, want, sizeof(want));
	assert_true(n > 255 && n < 1000);
	l = lab_open(spec);
	mac_of(mac, 1);
	dhcp_msg(&m, DHCPDISCOVER, mac, 5);
	opt(&m, DHCP_OPT_MAX_SIZE, "\x05\xdc", 2);
	msg_end(&m);
	send_msg(l, &m);
	r = lab_reply(l);
	assert_non_null(r);
	assert_int_equal(r->vlen[DHCP_OPT_DOMAIN_SEARCH], n);
	assert_memory_equal(r->val[DHCP_OPT_DOMAIN_SEARCH], want, n);
	lab_close(l);
}

static void test_server_malformed(void **state)
{
	struct lab *l = lab_open("");
	static uint8_t f[2100];
	unsigned long long bad = 0;
	uint8_t mac[6];
	struct msg m;
	size_t n;

	(void)state;
	mac_of(mac, 1);
	/* Too short for the fixed part. */
	dhcp_msg(&m, DHCPDISCOVER, mac, 1);
	m.len = 100;
	send_msg(l, &m);
	assert_int_equal(l->nrx, 0);
	assert_int_equal(dhcp_counter(l, "malformed"), ++bad);
	/* A BOOTREPLY, a wrong htype, a wrong hlen. */
	dhcp_msg(&m, DHCPDISCOVER, mac, 1);
	msg_end(&m);
	m.b[0] = BOOTREPLY;
	send_msg(l, &m);
	assert_int_equal(dhcp_counter(l, "malformed"), ++bad);
	m.b[0] = BOOTREQUEST;
	m.b[1] = 6;
	send_msg(l, &m);
	assert_int_equal(dhcp_counter(l, "malformed"), ++bad);
	m.b[1] = 1;
	m.b[2] = 8;
	send_msg(l, &m);
	assert_int_equal(dhcp_counter(l, "malformed"), ++bad);
	/* Option 53 out of range. */
	dhcp_msg(&m, 42, mac, 1);
	msg_end(&m);
	send_msg(l, &m);
	assert_int_equal(l->nrx, 0);
	assert_int_equal(dhcp_counter(l, "malformed"), ++bad);
	/* Relayed (giaddr set): not served. */
	dhcp_msg(&m, DHCPDISCOVER, mac, 1);
	put32(m.b + 24, IP(10, 0, 2, 1));
	msg_end(&m);
	send_msg(l, &m);
	assert_int_equal(l->nrx, 0);
	assert_int_equal(dhcp_counter(l, "malformed"), ++bad);
	/* A UDP length beyond the packet: dropped before DHCP. */
	dhcp_msg(&m, DHCPDISCOVER, mac, 1);
	msg_end(&m);
	n = udp_frame(f, bcast_mac, mac, 0, 0xffffffffu, 68, 67, m.b, m.len);
	put16(f + 14 + 20 + 4, (uint32_t)(8 + m.len + 1));
	lab_send(l, f, n);
	assert_int_equal(l->nrx, 0);
	/* ... and below the UDP header. */
	put16(f + 14 + 20 + 4, 7);
	lab_send(l, f, n);
	assert_int_equal(l->nrx, 0);
	assert_true(strstr(lab_stats(l), "\"l4_malformed\":2,") != NULL);
	/* Every truncation of a valid frame. */
	n = udp_frame(f, bcast_mac, mac, 0, 0xffffffffu, 68, 67, m.b, m.len);
	for (size_t k = 0; k < n; k++)
		lab_send(l, f, k);
	/* Random damage to a valid DISCOVER frame, 5000 times. */
	{
		uint32_t seed = 12345;
		static uint8_t g[2100];

		for (int i = 0; i < 5000; i++) {
			memcpy(g, f, n);
			for (int k = 0; k < 4; k++)
				g[xorshift(&seed) % n] = (uint8_t)xorshift(&seed);
			lab_send(l, g, n);
		}
	}
	/* Still serving (once the offers made to damaged MACs lapse). */
	assert_true(dhcp_counter(l, "malformed") > bad);
	l->now += 31 * NS_PER_SEC;
	assert_non_null(discover(l, 2, 0));
	lab_close(l);
}

/* Options that configure the server: bad values are refused by name. */
static void test_server_config_errors(void **state)
{
	static const char *const bad[] = {
		"dhcp-host=52:54:00:00:00:02,,192.168.0.5",	/* outside */
		"dhcp-host=52:54:00:00:00:02,,10.0.2.2",	/* gateway */
		"dhcp-host=52:54:00:00:00,,10.0.2.20",
		"dhcp-host=52:54:00:00:00:02",
		"dhcp-host=52:54:00:00:00:02,,10.0.2.20,,bad_name",
		"dhcp-option=53,,1",
		"dhcp-option=0,,1",
		"dhcp-option=255,,1",
		"dhcp-option=26,,70000",
		"dhcp-option=3,,10.0.2.x",
		"dhcp-option=77,,hex:zz",
		"dhcp-option=77,,",
		"dnssearch=a..b",
		"dnssearch=bad_name.test",
		"hostname=bad name",
		"dhcp-lease=10",
		"dhcp=maybe",
	};
	struct pb_config cfg = { .version = PB_CONFIG_VERSION,
				 .log_level = PB_LOG_ERR,
				 .log_fn = lab_log };
	char spec[256];
	pb_t *pb;

	(void)state;
	assert_int_equal(pb_new(&cfg, &pb), 0);
	assert_int_equal(pb_segment_add(pb, "switch,id=s"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(spec, sizeof(spec), "user,id=u%zu,%s", i, bad[i]);
		if (pb_netdev_add(pb, spec) >= 0)
			fail_msg("accepted: %s", spec);
		assert_true(pb_errmsg(pb)[0] != '\0');
	}
	assert_int_equal(pb_netdev_add(pb, "user,id=ok,dhcp-option=77,,hex:01:02:ff,"
					   "dhcp-option=15,,lab.test"), 0);
	pb_free(pb);
}

static void test_server_dhcp_off(void **state)
{
	struct lab *l = lab_open("dhcp=off");

	(void)state;
	assert_null(discover(l, 1, 0));
	assert_int_equal(dhcp_counter(l, "discover"), 0);
	lab_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_minimal_discover),
		cmocka_unit_test(test_parse_bootp),
		cmocka_unit_test(test_parse_truncated_fixed),
		cmocka_unit_test(test_parse_wrong_header),
		cmocka_unit_test(test_parse_msg_type),
		cmocka_unit_test(test_parse_truncated_tlv),
		cmocka_unit_test(test_parse_overload),
		cmocka_unit_test(test_parse_client_id),
		cmocka_unit_test(test_sanitize_name),
		cmocka_unit_test(test_parse_hostname),
		cmocka_unit_test(test_parse_fqdn),
		cmocka_unit_test(test_parse_random),
		cmocka_unit_test(test_search_one),
		cmocka_unit_test(test_search_compression),
		cmocka_unit_test(test_search_errors),
		cmocka_unit_test(test_server_offer_ack),
		cmocka_unit_test(test_server_defaults),
		cmocka_unit_test(test_server_five_clients),
		cmocka_unit_test(test_server_release),
		cmocka_unit_test(test_server_client_id),
		cmocka_unit_test(test_server_reservation),
		cmocka_unit_test(test_server_reservation_outside_pool),
		cmocka_unit_test(test_server_restrict),
		cmocka_unit_test(test_server_nak),
		cmocka_unit_test(test_server_exhaustion),
		cmocka_unit_test(test_server_max_leases),
		cmocka_unit_test(test_server_lease_expiry),
		cmocka_unit_test(test_server_decline),
		cmocka_unit_test(test_server_skips_taken),
		cmocka_unit_test(test_server_pool_skips_router),
		cmocka_unit_test(test_server_bootp),
		cmocka_unit_test(test_server_inform),
		cmocka_unit_test(test_server_max_size),
		cmocka_unit_test(test_server_long_search),
		cmocka_unit_test(test_server_malformed),
		cmocka_unit_test(test_server_config_errors),
		cmocka_unit_test(test_server_dhcp_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
