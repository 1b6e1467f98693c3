// SPDX-License-Identifier: MIT
/* framer.c: split a byte stream into QEMU stream records. */
#include <errno.h>

#include "framer.h"
#include "pkt.h"
#include "util.h"

int framer_next(const uint8_t *buf, size_t len, const uint8_t **frame,
		uint32_t *flen, size_t *consumed)
{
	struct cursor c = cur_init(buf, len);
	uint32_t n;

	if (!cur_be32(&c, &n))
		return 0;
	*flen = n;
	if (n == 0 || n > FRAME_MAX)
		return -EPROTO;
	*frame = (const uint8_t *)cur_pull(&c, n);
	if (!*frame)
		return 0;
	*consumed = FRAMER_HDR + n;
	return 1;
}
