// SPDX-License-Identifier: MIT
/* fuzz_ip6.c: libFuzzer harness for the IPv6 extension header walker and
 * the DHCPv6 parser. */
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "dhcp6.h"
#include "ip6.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dhcp6_msg m;
	struct cursor c;
	uint8_t nh, code;
	size_t off = 40;
	bool icmp;

	if (size < 1)
		return 0;
	c = cur_init(data + 1, size - 1);
	nh = data[0];
	if (ip6_walk_ext(&c, &nh, &off, &code, &icmp, data[0] & 1) == 0) {
		/* the walk consumed exactly what it says */
		if (off - 40 != (size - 1) - c.rem)
			__builtin_trap();
	}
	if (dhcp6_parse(data, size, &m) == 0 && m.duid_len > DHCP6_DUID_MAX)
		__builtin_trap();
	return 0;
}
