# SPDX-License-Identifier: MIT
"""A small TFTP client for test_tftp.py, run inside a guest namespace:
python3 tftp_guest.py SERVER PLAN_JSON; prints one JSON result.

It does what curl and tftp-hpa do not: windowsize (RFC 7440), raw and
malformed requests, simulated loss, a stalled client, a stranger writing to
a transfer's port.  Plans (JSON objects, "op" selects):

  get     name, mode ("octet"|"netascii"), opts {name: value}, lose [blocks
          to pretend lost the first time they arrive], wait_first (seconds
          to sit on the first data block before acknowledging it)
          -> {oack, error, sha256, size, blocks, max_ahead, resent,
              first_gap}
  raw     hex (datagram to port 69) -> {opcode, code, msg} of the answer
          (opcode None: no answer within 3 s)
  stranger name: start a transfer, write to its transfer ID from another
          port, then finish it -> {stranger: answer, sha256, size}
  hold    name, n: n requests from n sockets, nothing acknowledged
          -> {answers: [opcode, code] per request}
"""

import hashlib
import json
import socket
import struct
import sys
import time

SERVER = sys.argv[1]
PLAN = json.loads(sys.argv[2])
RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6


def rrq(name, mode="octet", opts=None):
    b = struct.pack("!H", RRQ) + name.encode() + b"\0" + mode.encode() + b"\0"
    for k, v in (opts or {}).items():
        b += k.encode() + b"\0" + str(v).encode() + b"\0"
    return b


def parse(pkt):
    op = struct.unpack("!H", pkt[:2])[0] if len(pkt) >= 2 else None
    if op == ERROR:
        code = struct.unpack("!H", pkt[2:4])[0]
        return {"opcode": op, "code": code,
                "msg": pkt[4:].split(b"\0")[0].decode(errors="replace")}
    if op == OACK:
        parts = pkt[2:].split(b"\0")[:-1]
        return {"opcode": op, "opts": {parts[i].decode().lower():
                                        parts[i + 1].decode()
                                        for i in range(0, len(parts) - 1, 2)}}
    if op == DATA:
        return {"opcode": op, "block": struct.unpack("!H", pkt[2:4])[0],
                "data": pkt[4:]}
    return {"opcode": op}


def sock(timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # room for a whole window of 64 KiB blocks (root may exceed rmem_max)
    s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33),
                 8 << 20)
    s.bind(("0.0.0.0", 0))
    s.settimeout(timeout)
    return s


def ack(s, peer, n):
    s.sendto(struct.pack("!HH", ACK, n & 0xffff), peer)


def get(plan):
    s = sock()
    opts = plan.get("opts", {})
    s.sendto(rrq(plan["name"], plan.get("mode", "octet"), opts),
             (SERVER, 69))
    res = {"oack": None, "error": None, "blocks": 0, "max_ahead": 0,
           "resent": 0, "first_gap": None}
    pkt, peer = s.recvfrom(70000)
    p = parse(pkt)
    blksize, window = 512, 1
    if p["opcode"] == ERROR:
        res["error"] = [p["code"], p["msg"]]
        return res
    if p["opcode"] == OACK:
        res["oack"] = p["opts"]
        blksize = int(p["opts"].get("blksize", 512))
        window = int(p["opts"].get("windowsize", 1))
        ack(s, peer, 0)
        pkt, peer2 = s.recvfrom(70000)
        assert peer2 == peer, "data from another port than the OACK"
        p = parse(pkt)
    lose = set(plan.get("lose", []))
    h = hashlib.sha256()
    size = 0
    expected = 1            # next block we need (absolute, from 1)
    in_window = 0           # blocks taken since our last ACK
    gap_acked = False
    deadline = time.monotonic() + 120
    waited = False
    s.settimeout(0.5)       # our own retransmission timer: re-ACK
    while time.monotonic() < deadline:
        if p is not None:
            if p["opcode"] == ERROR:
                res["error"] = [p["code"], p["msg"]]
                return res
            assert p["opcode"] == DATA, p
            k = p["block"]
            ahead = (k - (expected - 1)) & 0xffff   # 1: the next one
            if ahead == 0 or ahead >= 0x8000:
                res["resent"] += 1                  # one we already have
            else:
                res["max_ahead"] = max(res["max_ahead"], ahead)
            if k == expected & 0xffff and expected in lose:
                lose.discard(expected)          # "lost": ignore this copy
                if res["first_gap"] is None:
                    res["first_gap"] = expected
            elif k == expected & 0xffff:
                if expected == 1 and plan.get("wait_first") and not waited:
                    waited = True
                    t0 = time.monotonic()
                    # sit on it: the server must send block 1 again
                    s.settimeout(plan["wait_first"] + 5)
                    pkt2, _ = s.recvfrom(70000)
                    p2 = parse(pkt2)
                    res["resend_after"] = time.monotonic() - t0
                    assert p2["opcode"] == DATA and p2["block"] == 1, p2
                    s.settimeout(0.5)
                h.update(p["data"])
                size += len(p["data"])
                res["blocks"] += 1
                expected += 1
                in_window += 1
                gap_acked = False
                if len(p["data"]) < blksize:
                    ack(s, peer, expected - 1)
                    res["sha256"] = h.hexdigest()
                    res["size"] = size
                    return res
                if in_window >= window:
                    ack(s, peer, expected - 1)
                    in_window = 0
            elif not gap_acked:
                # a gap: tell the server where we are (RFC 7440)
                ack(s, peer, expected - 1)
                in_window = 0
                gap_acked = True
        try:
            pkt, peer2 = s.recvfrom(70000)
            assert peer2 == peer
            p = parse(pkt)
        except socket.timeout:
            ack(s, peer, expected - 1)
            in_window = 0
            p = None
    raise AssertionError("transfer did not finish")


def raw(plan):
    s = sock()
    s.sendto(bytes.fromhex(plan["hex"]), (SERVER, 69))
    try:
        pkt, _ = s.recvfrom(70000)
    except socket.timeout:
        return {"opcode": None}
    p = parse(pkt)
    p.pop("data", None)
    return p


def stranger(plan):
    s = sock()
    s.sendto(rrq(plan["name"]), (SERVER, 69))
    pkt, peer = s.recvfrom(70000)
    p = parse(pkt)
    assert p["opcode"] == DATA and p["block"] == 1, p
    other = sock()
    other.sendto(struct.pack("!HH", ACK, 1), peer)
    q, _ = other.recvfrom(70000)
    res = {"stranger": parse(q)}
    h = hashlib.sha256(p["data"])
    size = len(p["data"])
    k = 1
    while len(p["data"]) == 512:
        ack(s, peer, k)
        pkt, _ = s.recvfrom(70000)
        p = parse(pkt)
        assert p["opcode"] == DATA and p["block"] == (k + 1) & 0xffff, p
        k += 1
        h.update(p["data"])
        size += len(p["data"])
    ack(s, peer, k)
    res.update(sha256=h.hexdigest(), size=size)
    return res


def hold(plan):
    socks = []
    answers = []
    for _ in range(plan["n"]):
        s = sock()
        s.sendto(rrq(plan["name"]), (SERVER, 69))
        socks.append(s)
    for s in socks:
        p = parse(s.recvfrom(70000)[0])
        answers.append([p["opcode"], p.get("code")])
    return {"answers": answers}


OPS = {"get": get, "raw": raw, "stranger": stranger, "hold": hold}
print(json.dumps(OPS[PLAN["op"]](PLAN)))
