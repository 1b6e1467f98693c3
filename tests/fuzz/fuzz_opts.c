// SPDX-License-Identifier: MIT
/* fuzz_opts.c: libFuzzer harness for the option parser (QEMU -netdev
 * syntax, hostile config strings): parse, check against a key list, read
 * typed values; error messages must be terminated strings. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "type", "id", "server", "addr.port",
					    "mtu", "hostfwd", NULL };
	static const char *const rep[] = { "hostfwd", NULL };
	static const char *const choices[] = { "inet", "unix", "fd", NULL };
	static struct opts o;
	char s[OPTS_MAX_LEN + 16];
	char err[OPTS_ERR_LEN];
	const char *e;
	uint64_t u;
	bool b;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (opts_parse(&o, s, size && (data[0] & 1) ? "type" : NULL, err,
		       sizeof(err)) == 0) {
		if (o.n == 0 || o.n > OPTS_MAX_PAIRS)
			__builtin_trap();
		for (unsigned i = 0; i < o.n; i++)
			if (!o.pair[i].key || !o.pair[i].val ||
			    strlen(o.pair[i].key) > 63 + OPTS_MAX_LEN)
				__builtin_trap();
		opts_check(&o, "fuzz", keys, rep, err, sizeof(err));
		opts_get_bool(&o, "server", false, &b, err, sizeof(err));
		opts_get_uint(&o, "mtu", 576, 65520, 1500, &u, err, sizeof(err));
		opts_get_enum(&o, "addr.port", choices, NULL, &e, err,
			      sizeof(err));
	}
	if (strnlen(err, sizeof(err)) == sizeof(err))
		__builtin_trap();
	return 0;
}
