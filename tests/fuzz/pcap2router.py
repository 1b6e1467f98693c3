#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn a capture of a real guest session into a fuzz_router seed.

    tests/fuzz/pcap2router.py SESSION.pcap OUT [CONFIG]

Keeps the frames the guest sent (every source MAC but the router's,
52:55:0a:00:02:02 by default) in order and writes them in fuzz_router's
input format: a config byte, then each frame as a big-endian 16-bit length
and its bytes.  The seed tests/fuzz/corpus/router/session-* came from
`patchbay run --capture` around udhcpc, ping (also fragmented), dig against
10.0.2.3, curl to a loopback HTTP server through 10.0.2.2 and ping -6.
"""

import struct
import sys

ROUTER_MAC = bytes.fromhex("52550a000202")


def frames(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = struct.unpack("<I", head[:4])[0]
        order = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            _, _, incl, _ = struct.unpack(order + "IIII", rec)
            yield f.read(incl)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    config = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    out = bytearray([config])
    n = 0
    for fr in frames(sys.argv[1]):
        if len(fr) >= 14 and fr[6:12] != ROUTER_MAC and len(fr) < 0x8000:
            out += struct.pack(">H", len(fr)) + fr
            n += 1
    with open(sys.argv[2], "wb") as f:
        f.write(out)
    print("%d guest frames, %d bytes" % (n, len(out)))


if __name__ == "__main__":
    main()
