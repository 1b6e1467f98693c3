// SPDX-License-Identifier: MIT
/* fuzz_dns.c: libFuzzer harness for the DNS query parser (guest queries
 * and upstream answers go through it): labels, lengths, question bounds;
 * and for the reassembly of DNS-over-TCP messages from a stream
 * (dns_tcp_take), checked against a plain reading of the same bytes. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dns.h"

#define TAKE_MAX 300 /* small: lengths over it are common */

/*
 * The input as a TCP stream, fed in chunks whose sizes come from a
 * generator seeded by its first byte: every message dns_tcp_take()
 * completes must be the next one a plain reading of the stream finds, and
 * it must fail exactly where that reading meets a length of 0 or over
 * TAKE_MAX.
 */
static void check_take(const uint8_t *data, size_t size)
{
	uint8_t msg[2 + TAKE_MAX];
	size_t have = 0, pos = 1, ref = 1;
	uint32_t seed = size ? data[0] * 2654435761u + 1 : 1;

	while (pos < size) {
		size_t n;
		bool done;
		int took;

		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		n = 1 + seed % 40;
		if (n > size - pos)
			n = size - pos;
		took = dns_tcp_take(msg, &have, TAKE_MAX, data + pos, n, &done);
		if (took < 0) {
			size_t len;

			/* the plain reading: the length at ref is bad */
			CHECK(size - ref >= 2);
			len = (size_t)(data[ref] << 8 | data[ref + 1]);
			CHECK(len == 0 || len > TAKE_MAX);
			CHECK(have >= 2 && pos + n >= ref + 2);
			return;
		}
		CHECK((size_t)took <= n && (took > 0 || n == 0));
		pos += (size_t)took;
		if (done) {
			size_t len = (size_t)(data[ref] << 8 | data[ref + 1]);

			CHECK(have == 2 + len && len >= 1 && len <= TAKE_MAX);
			CHECK(ref + have == pos);
			CHECK(!memcmp(msg, data + ref, have));
			ref = pos;
			have = 0;
		} else {
			CHECK((size_t)took == n);
		}
	}
	CHECK(have == size - ref || size == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_q q;

	check_take(data, size);

	if (dns_parse_query(data, size, &q) == 0) {
		size_t n = strnlen(q.name, sizeof(q.name));

		if (n == sizeof(q.name) || q.qend < DNS_HDR + 5 || q.qend > size)
			__builtin_trap();
		for (size_t i = 0; i < n; i++)
			if (q.name[i] >= 'A' && q.name[i] <= 'Z')
				__builtin_trap();	/* names are lower case */
	}
	return 0;
}
