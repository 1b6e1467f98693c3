// SPDX-License-Identifier: MIT
/* fuzz_dns.c: libFuzzer harness for the DNS query parser (guest queries
 * and upstream answers go through it): labels, lengths, question bounds. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_q q;

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
