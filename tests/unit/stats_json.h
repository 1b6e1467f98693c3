/* SPDX-License-Identifier: MIT */
/* stats_json.h: unit-test helper: an instance's stats JSON as one compact
 * string (whitespace outside strings removed), for counter lookups. */
#ifndef PB_TEST_STATS_JSON_H
#define PB_TEST_STATS_JSON_H

#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "patchbay.h"

/* Valid until the next call (one static buffer). */
static inline char *stats_compact(pb_t *pb)
{
	static char buf[1 << 16];
	int fd = memfd_create("stats", 0);
	bool in_str = false, esc = false;
	ssize_t n;
	size_t o = 0;

	assert_true(fd >= 0);
	assert_int_equal(pb_stats_json(pb, fd), 0);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	assert_true(n > 0 && (size_t)n < sizeof(buf) - 1);
	for (ssize_t i = 0; i < n; i++) {
		char c = buf[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
			continue;
		}
		buf[o++] = c;
	}
	buf[o] = '\0';
	return buf;
}

#endif
