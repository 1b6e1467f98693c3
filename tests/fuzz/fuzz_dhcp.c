// SPDX-License-Identifier: MIT
/* fuzz_dhcp.c: libFuzzer harness for the DHCP message parser (dhcp_parse.c)
 * and the search-list encoder (dhcp_encode_search in dhcp.c). */

/*
 * Each input is used three ways:
 *
 *  1. a BOOTP/DHCP message (the UDP payload) for dhcp_parse(), in a buffer
 *     of exactly its size; on success the result must be within its
 *     bounds (client identifier 0 or 2-64 bytes, a hostname that is a DNS
 *     label, a message type 0-8, no options without the magic cookie), and
 *     anything shorter than the fixed part or not an Ethernet BOOTREQUEST
 *     must be refused;
 *  2. a name for dhcp_sanitize_name(), into an output buffer of exactly
 *     the size the first byte chooses (0-65): the result is terminated
 *     inside it, at most 63 characters of [a-z0-9-], with no dash at
 *     either end;
 *  3. a list of names separated by '\n' for dhcp_encode_search(), into
 *     1024 and 64-byte buffers: the output must decode (labels, and
 *     pointers only backwards) to the same names, -EINVAL only for names
 *     with an empty or overlong label or over 253 characters, and -ENOSPC
 *     only when the uncompressed list would not fit either.
 *
 * Build (libFuzzer), the parser alone:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iinclude -Isrc tests/fuzz/fuzz_dhcp.c src/dhcp_parse.c -o fd
 * dhcp_encode_search lives in dhcp.c with the server, which needs the rest
 * of the library: it is declared weak here and checked only when linked,
 * as when the harness is linked with every file of src/.  A build against
 * the library archive (make fuzz, -DPB_FUZZING) references it strongly so
 * that the archive member is pulled in.
 * Plain program (-DDHCP_FUZZ_MAIN, any compiler, no -fsanitize=fuzzer):
 * "fuzz_dhcp --seeds DIR" writes the synthetic part of the seed corpus,
 * "fuzz_dhcp FILE..." replays inputs.  The corpus's udhcpc-* and
 * dhclient-* seeds are real messages (UDP payloads) of busybox udhcpc 1.35
 * and ISC dhclient 4.4.3, captured from test_dhcp.py-style runs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "dhcp.h"

/* Present only when dhcp.c is linked in (see above). */
#ifdef PB_FUZZING
#define HAVE_SEARCH 1
#else
#pragma weak dhcp_encode_search
#define HAVE_SEARCH (&dhcp_encode_search != NULL)
#endif

static bool label_ok(const char *s)
{
	size_t n = strlen(s);

	if (n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return n == 0 || (s[0] != '-' && s[n - 1] != '-');
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct dhcp_msg m;
	int rc = dhcp_parse(data, size, &m);

	if (size < DHCP_FIXED || data[0] != BOOTREQUEST || data[1] != 1 ||
	    data[2] != 6) {
		CHECK(rc == -EBADMSG);
		return;
	}
	CHECK(rc == 0 || rc == -EBADMSG);
	if (rc)
		return;
	CHECK(m.op == BOOTREQUEST && m.htype == 1 && m.hlen == 6);
	CHECK(!memcmp(m.chaddr, data + 28, 16));
	CHECK(!memcmp(&m.xid, data + 4, 4));
	CHECK(m.type <= DHCPINFORM);
	CHECK(m.client_id_len == 0 ||
	      (m.client_id_len >= 2 && m.client_id_len <= DHCP_CLIENT_ID_MAX));
	CHECK(memchr(m.hostname, 0, sizeof(m.hostname)) != NULL);
	CHECK(label_ok(m.hostname));
	if (!m.has_magic) {
		CHECK(m.type == DHCP_NONE && !m.requested_ip && !m.server_id &&
		      !m.client_id_len && !m.hostname[0] && !m.max_size);
	}
	CHECK(m.has_magic == (size >= DHCP_FIXED + 4 &&
			      data[236] == 0x63 && data[237] == 0x82 &&
			      data[238] == 0x53 && data[239] == 0x63));
}

static void check_sanitize(const uint8_t *data, size_t size)
{
	size_t osz = size ? data[0] % 66 : 64;
	char *out = malloc(osz ? osz : 1);

	CHECK(out != NULL);
	dhcp_sanitize_name(data, size, out, osz);
	if (osz) {
		CHECK(memchr(out, 0, osz) != NULL);
		CHECK(strlen(out) < osz);
		CHECK(label_ok(out));
	}
	free(out);
}

#define NAMES_MAX 64

/* What dhcp_encode_search must refuse as a name (RFC 1035 2.3.4). */
static bool name_bad(const char *s)
{
	size_t n = strlen(s), l = 0;

	if (n == 0 || n > 253)
		return true;
	for (size_t i = 0; i <= n; i++) {
		if (s[i] == '.' || s[i] == '\0') {
			/* one trailing dot is allowed: "com." */
			if (l == 0 && !(s[i] == '\0' && i > 0 && s[i - 1] == '.'))
				return true;
			if (l > 63)
				return true;
			l = 0;
		} else {
			l++;
		}
	}
	return false;
}

/* Uncompressed RFC 1035 length of a valid name. */
static size_t name_wire_len(const char *s)
{
	size_t n = strlen(s);

	if (s[n - 1] == '.')
		n--;
	return n + 2;
}

/* Decode the name at *pos of out[0..len) into buf ("a.b"); pointers must
 * point before the name's start.  Returns false if malformed. */
static bool decode_name(const uint8_t *out, size_t len, size_t *pos,
			char *buf, size_t bufsz)
{
	size_t p = *pos, start = *pos, o = 0;
	bool jumped = false;
	int hops = 0;

	for (;;) {
		uint8_t l;

		if (p >= len)
			return false;
		l = out[p];
		if (l == 0) {
			if (!jumped)
				*pos = p + 1;
			break;
		}
		if ((l & 0xc0) == 0xc0) {
			size_t t;

			if (p + 1 >= len)
				return false;
			t = (size_t)(l & 0x3f) << 8 | out[p + 1];
			if (t >= start || ++hops > 128)
				return false;
			if (!jumped)
				*pos = p + 2;
			jumped = true;
			p = t;
			continue;
		}
		if (l > 63 || p + 1 + l > len)
			return false;
		if (o + l + 2 > bufsz)
			return false;
		if (o)
			buf[o++] = '.';
		memcpy(buf + o, out + p + 1, l);
		o += l;
		p += 1 + l;
	}
	buf[o] = '\0';
	return true;
}

static void check_search_size(const char *const *names, unsigned n,
			      size_t size, bool any_bad, size_t raw)
{
	uint8_t *out = malloc(size ? size : 1);
	char dec[300];
	size_t pos = 0;
	int rc;

	CHECK(out != NULL);
	rc = dhcp_encode_search(names, n, out, size);
	if (any_bad) {
		/* -ENOSPC may come first if a good name before it overflows */
		CHECK(rc == -EINVAL || rc == -ENOSPC);
		free(out);
		return;
	}
	if (rc == -ENOSPC) {
		CHECK(raw > size);
		free(out);
		return;
	}
	CHECK(rc >= 0 && (size_t)rc <= size && (size_t)rc <= raw);
	for (unsigned i = 0; i < n; i++) {
		size_t l;

		CHECK(decode_name(out, (size_t)rc, &pos, dec, sizeof(dec)));
		l = strlen(names[i]);
		if (names[i][l - 1] == '.')
			l--;
		CHECK(strlen(dec) == l && !strncasecmp(dec, names[i], l));
	}
	CHECK(pos == (size_t)rc);
	free(out);
}

static void check_search(const uint8_t *data, size_t size)
{
	static char buf[NAMES_MAX][300];
	const char *names[NAMES_MAX];
	unsigned n = 0;
	size_t i = 0, raw = 0;
	bool any_bad = false;

	while (i < size && n < NAMES_MAX) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t l = nl ? (size_t)(nl - (data + i)) : size - i;

		if (l >= sizeof(buf[0]))
			l = sizeof(buf[0]) - 1;
		memcpy(buf[n], data + i, l);
		buf[n][l] = '\0';	/* an embedded NUL ends it earlier */
		names[n] = buf[n];
		if (name_bad(buf[n]))
			any_bad = true;
		else
			raw += name_wire_len(buf[n]);
		n++;
		i = nl ? (size_t)(nl - data) + 1 : size;
	}
	if (n == 0)
		return;
	check_search_size(names, n, DHCP_SEARCH_MAX, any_bad, raw);
	check_search_size(names, n, 64, any_bad, raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_sanitize(data, size);
	if (HAVE_SEARCH)
		check_search(data, size);
	return 0;
}

#ifdef DHCP_FUZZ_MAIN
/* ---- seed corpus and replay ------------------------------------------- */

struct seed {
	uint8_t b[1024];
	size_t n;
};

static void s_fixed(struct seed *s, uint8_t type, uint32_t xid, bool magic)
{
	memset(s, 0, sizeof(*s));
	s->b[0] = BOOTREQUEST;
	s->b[1] = 1;
	s->b[2] = 6;
	s->b[4] = (uint8_t)(xid >> 24);
	s->b[5] = (uint8_t)(xid >> 16);
	s->b[6] = (uint8_t)(xid >> 8);
	s->b[7] = (uint8_t)xid;
	memcpy(s->b + 28, "\x52\x54\x00\x12\x34\x56", 6);
	s->n = DHCP_FIXED;
	if (magic) {
		memcpy(s->b + s->n, "\x63\x82\x53\x63", 4);
		s->n += 4;
	}
	if (type) {
		s->b[s->n++] = DHCP_OPT_MSG_TYPE;
		s->b[s->n++] = 1;
		s->b[s->n++] = type;
	}
}

static void s_opt(struct seed *s, uint8_t code, const void *v, size_t len)
{
	CHECK(s->n + 2 + len <= sizeof(s->b));
	s->b[s->n++] = code;
	s->b[s->n++] = (uint8_t)len;
	memcpy(s->b + s->n, v, len);
	s->n += len;
}

static void s_end(struct seed *s)
{
	s->b[s->n++] = DHCP_OPT_END;
	if (s->n < DHCP_MIN_LEN)
		s->n = DHCP_MIN_LEN;
}

static void s_write_raw(const char *dir, const char *name, const void *p,
			size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(p, 1, n, f) == n);
	CHECK(fclose(f) == 0);
	LLVMFuzzerTestOneInput(p, n);	/* a seed must itself pass */
}

static void s_write(const char *dir, const char *name, const struct seed *s)
{
	s_write_raw(dir, name, s->b, s->n);
}

static void write_seeds(const char *dir)
{
	static const char search[] = "example.com\nlab.example.com\nEXAMPLE.com.";
	struct seed s;

	/* What udhcpc sends: 53, 61, 12, 55, 57. */
	s_fixed(&s, DHCPDISCOVER, 0x11111111, true);
	s_opt(&s, DHCP_OPT_CLIENT_ID, "\x01\x52\x54\x00\x12\x34\x56", 7);
	s_opt(&s, DHCP_OPT_HOSTNAME, "Guest_1.lan", 11);
	s_opt(&s, DHCP_OPT_PARAM_LIST, "\x01\x03\x06\x0c\x0f\x1a\x1c\x2a\x77", 9);
	s_opt(&s, DHCP_OPT_MAX_SIZE, "\x02\x40", 2);
	s_end(&s);
	s_write(dir, "discover", &s);

	s_fixed(&s, DHCPREQUEST, 0x11111112, true);
	s_opt(&s, DHCP_OPT_REQUESTED_IP, "\x0a\x00\x02\x0f", 4);
	s_opt(&s, DHCP_OPT_SERVER_ID, "\x0a\x00\x02\x02", 4);
	s_opt(&s, DHCP_OPT_FQDN, "\x05\x00\x00\x06laptop\x03lan\x00", 15);
	s_end(&s);
	s_write(dir, "request-fqdn-wire", &s);

	s_fixed(&s, DHCPREQUEST, 0x11111113, true);
	s.b[12] = 10;
	s.b[13] = 0;
	s.b[14] = 2;
	s.b[15] = 15;
	s_opt(&s, DHCP_OPT_FQDN, "\x01\x00\x00laptop.example.com", 21);
	s_end(&s);
	s_write(dir, "renew-fqdn-ascii", &s);

	/* Overload: options in file and sname. */
	s_fixed(&s, DHCPDISCOVER, 0x11111114, true);
	s_opt(&s, DHCP_OPT_OVERLOAD, "\x03", 1);
	s_end(&s);
	memcpy(s.b + 108, "\x0c\x04" "file" "\x32\x04\x0a\x00\x02\x21\xff", 13);
	memcpy(s.b + 44, "\x3d\x03\x00\x01\x02\xff", 6);
	s_write(dir, "overload", &s);

	s_fixed(&s, 0, 0x11111115, false);
	s.n = DHCP_MIN_LEN;
	s_write(dir, "bootp", &s);

	s_fixed(&s, DHCPRELEASE, 0x11111116, true);
	s_opt(&s, DHCP_OPT_SERVER_ID, "\x0a\x00\x02\x02", 4);
	/* a truncated TLV at the end */
	s.b[s.n++] = DHCP_OPT_HOSTNAME;
	s.b[s.n++] = 40;
	s.b[s.n++] = 'x';
	s_write(dir, "truncated-tlv", &s);

	s_write_raw(dir, "search", search, sizeof(search) - 1);
}

#include "replay.h"

int main(int argc, char **argv)
{
	return fuzz_main(argc, argv, write_seeds);
}
#endif
