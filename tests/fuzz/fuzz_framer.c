// SPDX-License-Identifier: MIT
/* fuzz_framer.c: libFuzzer harness for the stream framer (QEMU stream and
 * socket records): walk any byte stream, cut at every split point a
 * reader could see, and check each record stays inside the input. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "framer.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		const uint8_t *frame;
		uint32_t flen;
		size_t used;
		int r = framer_next(data + off, size - off, &frame, &flen, &used);

		if (r == 0)
			break;
		if (r < 0) {
			if (flen != 0 && flen <= FRAME_MAX)
				__builtin_trap();	/* a good length refused */
			break;
		}
		if (used != FRAMER_HDR + flen || flen == 0 || flen > FRAME_MAX ||
		    frame != data + off + FRAMER_HDR ||
		    off + used > size)
			__builtin_trap();
		off += used;
	}
	return 0;
}
