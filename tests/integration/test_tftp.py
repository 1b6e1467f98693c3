# SPDX-License-Identifier: MIT
"""TFTP at the gateway address (tftp=DIR): real clients (tftp-hpa, curl) and
a crafted client (tftp_guest.py) in a guest namespace behind a TAP port.

Covers: files of 0, 511, 512, 513 bytes and 10 MiB (sha256), several
blksizes, tsize, windowsize with and without loss, retransmission on
timeout, netascii, confinement to the root (.., absolute names, symlinks
out of the root, directories, FIFOs), WRQ refused, malformed requests,
a stranger on a transfer's port, the session cap, and the counters.

Needs root, /dev/net/tun, iproute2, curl and tftp-hpa (skips say which).
"""

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import pytest

import pb
from svclab import GW, ServiceLab

HERE = Path(__file__).resolve().parent
GUEST = (HERE / "tftp_guest.py").read_text()
MiB = 1 << 20


def _require():
    pb.require_netns()
    pb.require_tools("curl", "tftp")


def _data(seed, n):
    """n deterministic pseudo-random bytes."""
    out = bytearray()
    k = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d-%d" % (seed, k)).digest() * 64
        k += 1
    return bytes(out[:n])


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def _root(tmp_path, files):
    root = tmp_path / "root"
    root.mkdir()
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return root


def _client(lab, plan, timeout=120.0):
    r = lab.guest_py(0, GUEST, [GW, json.dumps(plan)], timeout=timeout)
    return json.loads(r.stdout)


def _req(op, name, mode=b"octet", opts=()):
    b = struct.pack("!H", op) + name + b"\0" + mode + b"\0"
    for k, v in opts:
        b += k + b"\0" + v + b"\0"
    return b


def _raw(lab, datagram):
    return _client(lab, {"op": "raw", "hex": datagram.hex()})


def _wait_idle(lab, timeout=20.0):
    """Poll until no TFTP session is left; returns the tftp counters."""
    last = {}

    def idle():
        last["t"] = lab.router()["tftp"]
        return last["t"]["sessions"] == 0
    pb.wait_until(idle, timeout, "no TFTP sessions left", interval=0.1)
    return last["t"]


SIZES = {"empty": 0, "f511": 511, "f512": 512, "f513": 513, "big": 10 * MiB}


def test_sizes_with_tftp_hpa_and_curl(tmp_path):
    """tftp-hpa (RFC 1350, no options) and curl (tsize, blksize) fetch files
    of every interesting size; 10 MiB also at several block sizes."""
    _require()
    files = {n: _data(i, size) for i, (n, size) in enumerate(SIZES.items())}
    root = _root(tmp_path, files)
    out = tmp_path / "out"
    out.mkdir()
    transfers = 0
    with ServiceLab(tmp_path, user=",tftp=%s" % root) as lab:
        for name, content in files.items():
            t0 = time.monotonic()
            lab.sh(0, "cd %s && tftp -m binary %s -c get %s hpa-%s"
                   % (out, GW, name, name), timeout=120)
            got = (out / ("hpa-" + name)).read_bytes()
            assert _sha(got) == _sha(content), "tftp-hpa: %s differs" % name
            print("tftp-hpa %s (%d bytes): %.2fs"
                  % (name, len(content), time.monotonic() - t0))
            lab.sh(0, "curl -sS -o %s/curl-%s tftp://%s/%s"
                   % (out, name, GW, name), timeout=120)
            got = (out / ("curl-" + name)).read_bytes()
            assert _sha(got) == _sha(content), "curl: %s differs" % name
            transfers += 2
        for bs in (1024, 1468, 8192, 65464):
            t0 = time.monotonic()
            lab.sh(0, "curl -sS --tftp-blksize %d -o %s/bs%d tftp://%s/big"
                   % (bs, out, bs, GW), timeout=180)
            got = (out / ("bs%d" % bs)).read_bytes()
            assert _sha(got) == _sha(files["big"]), "blksize %d" % bs
            print("curl blksize %d, 10 MiB: %.2fs"
                  % (bs, time.monotonic() - t0))
            transfers += 1
        # block numbers wrap past 65535 (75001 blocks of 8 bytes)
        wrap = _data(11, 600001)
        (root / "wrap").write_bytes(wrap)
        t0 = time.monotonic()
        lab.sh(0, "curl -sS --tftp-blksize 8 -o %s/wrap tftp://%s/wrap"
               % (out, GW), timeout=180)
        assert _sha((out / "wrap").read_bytes()) == _sha(wrap)
        lab.sh(0, "cd %s && tftp -m binary %s -c get wrap hpa-wrap"
               % (out, GW), timeout=180)
        assert _sha((out / "hpa-wrap").read_bytes()) == _sha(wrap)
        print("block number wrap (curl blksize 8, tftp-hpa): %.2fs"
              % (time.monotonic() - t0))
        transfers += 2
        t = _wait_idle(lab)
        assert t["completed"] == transfers, t
        assert t["rrq"] == transfers, t
        assert t["timeouts"] == 0 and t["busy"] == 0, t


def test_options_windowsize_tsize_and_loss(tmp_path):
    """Crafted requests: the OACK carries what we asked (within limits), a
    window is never exceeded, lost blocks come again, and a silent client
    gets the block again after the negotiated timeout."""
    _require()
    big = _data(7, 10 * MiB)
    mid = _data(8, 200 * 1024 + 17)
    root = _root(tmp_path, {"big": big, "mid": mid})
    with ServiceLab(tmp_path, user=",tftp=%s" % root) as lab:
        t0 = time.monotonic()
        r = _client(lab, {"op": "get", "name": "big", "opts": {
            "blksize": 1468, "tsize": 0, "windowsize": 16}})
        print("windowsize 16, blksize 1468, 10 MiB: %.2fs"
              % (time.monotonic() - t0))
        assert r["oack"] == {"blksize": "1468", "tsize": str(len(big)),
                             "windowsize": "16"}, r
        assert r["sha256"] == _sha(big) and r["size"] == len(big)
        assert 1 <= r["max_ahead"] <= 16, r

        r = _client(lab, {"op": "get", "name": "big", "opts": {
            "blksize": 65464, "windowsize": 4}})
        assert r["oack"] == {"blksize": "65464", "windowsize": "4"}, r
        assert r["sha256"] == _sha(big)

        # limits: blksize above 65464 and windowsize above 64 are lowered
        r = _client(lab, {"op": "get", "name": "mid", "opts": {
            "BLKSIZE": 100000, "WindowSize": 1000, "tsize": 0}})
        assert r["oack"] == {"blksize": "65464", "windowsize": "64",
                             "tsize": str(len(mid))}, r
        assert r["sha256"] == _sha(mid)

        # loss inside windows: the client ACKs the last block it has and
        # the server goes on from there
        r = _client(lab, {"op": "get", "name": "mid", "lose": [3, 10, 11, 40,
                                                               64, 200],
                          "opts": {"windowsize": 8}})
        assert r["oack"] == {"windowsize": "8"}, r
        assert r["sha256"] == _sha(mid), r
        assert r["first_gap"] == 3 and r["max_ahead"] <= 8, r

        # unknown options alone: no OACK, data at once
        r = _client(lab, {"op": "get", "name": "mid",
                          "opts": {"foo": "bar", "multicast": ""}})
        assert r["oack"] is None and r["sha256"] == _sha(mid), r

        # a client that does not ACK gets block 1 again after "timeout"
        before = lab.router()["tftp"]["retransmits"]
        r = _client(lab, {"op": "get", "name": "mid", "wait_first": 3,
                          "opts": {"timeout": 1}})
        assert r["oack"] == {"timeout": "1"}, r
        assert r["sha256"] == _sha(mid)
        assert 0.7 <= r["resend_after"] <= 2.5, r
        t = _wait_idle(lab)
        assert t["retransmits"] > before, t
        assert t["completed"] == 6 and t["timeouts"] == 0, t


def test_netascii(tmp_path):
    """netascii: LF -> CR LF and CR -> CR NUL on the wire (also across block
    boundaries); tftp-hpa turns it back into the original file."""
    _require()
    text = (b"x" * 511 + b"\n" + b"y\r" * 300 + b"\n" * 600 + b"a\r\nb" +
            b"z" * 510 + b"\r" + b"tail")
    wire = text.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")
    root = _root(tmp_path, {"t.txt": text})
    out = tmp_path / "out"
    out.mkdir()
    with ServiceLab(tmp_path, user=",tftp=%s" % root) as lab:
        r = _client(lab, {"op": "get", "name": "t.txt", "mode": "netascii"})
        assert r["size"] == len(wire) and r["sha256"] == _sha(wire), r
        # tsize is not offered in netascii mode (its size is unknown)
        r = _client(lab, {"op": "get", "name": "t.txt", "mode": "NetASCII",
                          "opts": {"tsize": 0, "windowsize": 3}})
        assert r["oack"] == {"windowsize": "3"}, r
        assert r["sha256"] == _sha(wire), r
        lab.sh(0, "cd %s && tftp -m netascii %s -c get t.txt t.txt"
               % (out, GW))
        assert (out / "t.txt").read_bytes() == text


def test_confined_to_root(tmp_path):
    """No way out of the root: "..", absolute names, symlinks pointing out
    (absolute and relative) are resolved inside the root or refused;
    directories and FIFOs are refused; symlinks inside the root work."""
    _require()
    secret = b"SECRET-OUTSIDE-THE-ROOT\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(secret)
    inside = _data(3, 3000)
    root = _root(tmp_path, {"in": inside, "sub/deep": inside})
    os.symlink(str(outside / "secret"), root / "abs-out")
    os.symlink("../outside/secret", root / "rel-out")
    os.symlink("sub/../../outside/secret", root / "rel-out2")
    os.symlink("/in", root / "abs-in")          # absolute, but inside
    os.symlink("sub/deep", root / "rel-in")
    os.symlink("/proc/self/root/etc/passwd", root / "magic")
    os.mkfifo(root / "fifo")
    out = tmp_path / "out"
    out.mkdir()
    with ServiceLab(tmp_path, user=",tftp=%s" % root) as lab:
        refused = {
            "../outside/secret": 2, "/../outside/secret": 2,
            "sub/../../outside/secret": 2, "..": 2, "../etc/passwd": 2,
            "abs-out": 1, "rel-out": 1, "rel-out2": 1, "magic": (1, 2),
            "sub": 2, "/": 1, "fifo": 2, "nonexistent": 1, "in/x": 1,
        }
        for name, code in refused.items():
            r = _client(lab, {"op": "get", "name": name})
            want = code if isinstance(code, tuple) else (code,)
            assert r["error"] and r["error"][0] in want, (name, r)
        for name in ("in", "/in", "//sub//deep", "./sub/./deep", "abs-in",
                     "rel-in", "/sub/deep"):
            r = _client(lab, {"op": "get", "name": name})
            assert r.get("sha256") == _sha(inside), (name, r)
        # real clients, asked to climb out
        r = lab.sh(0, "cd %s && tftp -m binary %s -c get ../outside/secret "
                   "hpa-secret" % (out, GW), check=False)
        got = out / "hpa-secret"
        assert not got.exists() or got.read_bytes() != secret, r
        r = lab.sh(0, "curl -sS --path-as-is -o %s/curl-secret "
                   "tftp://%s/../outside/secret" % (out, GW), check=False)
        assert r.returncode != 0, r
        got = out / "curl-secret"
        assert not got.exists() or got.read_bytes() != secret
        t = _wait_idle(lab)
        assert t["access_violation"] >= 7 and t["not_found"] >= 6, t
        lab.daemon.assert_alive()


def test_wrq_and_bad_requests_refused(tmp_path):
    """Writes are refused with ERROR 2; malformed requests get ERROR 4,
    bad option values ERROR 8; a stranger writing to a transfer's port gets
    ERROR 5 and the transfer goes on; every case is counted."""
    _require()
    mid = _data(9, 5000)
    root = _root(tmp_path, {"mid": mid})
    src = tmp_path / "upload"
    src.write_bytes(b"data")
    with ServiceLab(tmp_path, user=",tftp=%s" % root) as lab:
        r = lab.sh(0, "cd %s && tftp -m binary %s -c put upload new"
                   % (tmp_path, GW), check=False)
        assert not (root / "new").exists()
        assert "Read-only" in r.stdout + r.stderr or r.returncode != 0, r
        cases = [
            (_req(2, b"new"), 2),                       # WRQ
            (struct.pack("!H", 9) + b"x\0octet\0", 4),  # unknown opcode
            (struct.pack("!H", 3) + b"\0\1data", 4),    # DATA to port 69
            (b"\0", 4),                                 # too short
            (struct.pack("!H", 1) + b"mid", 4),         # name without NUL
            (struct.pack("!H", 1) + b"mid\0octet", 4),  # mode without NUL
            (struct.pack("!H", 1) + b"\0octet\0", 4),   # empty name
            (_req(1, b"mid", b"mail"), 4),              # obsolete mode
            (_req(1, b"mid", b"binary"), 4),            # unknown mode
            (_req(1, b"mid") + b"blksize\0", 4),        # option, no value
            (_req(1, b"mid") + b"blksize", 4),          # no NUL at all
            (_req(1, b"mid", opts=[(b"blksize", b"7")]), 8),
            (_req(1, b"mid", opts=[(b"blksize", b"abc")]), 8),
            (_req(1, b"mid", opts=[(b"blksize", b"")]), 8),
            (_req(1, b"mid", opts=[(b"blksize", b"-512")]), 8),
            (_req(1, b"mid", opts=[(b"windowsize", b"0")]), 8),
            (_req(1, b"mid", opts=[(b"timeout", b"0")]), 8),
            (_req(1, b"mid", opts=[(b"timeout", b"256")]), 8),
            (_req(1, b"mid", opts=[(b"tsize", b"1x")]), 8),
            (_req(1, b"x" * 600), 2),                   # name too long
        ]
        for datagram, code in cases:
            r = _raw(lab, datagram)
            assert r["opcode"] == 5 and r["code"] == code, (datagram, r)
        r = _client(lab, {"op": "stranger", "name": "mid"})
        assert r["stranger"]["opcode"] == 5, r
        assert r["stranger"]["code"] == 5, r
        assert r["sha256"] == _sha(mid), r
        t = _wait_idle(lab)
        assert t["wrq_refused"] == 2, t
        assert t["illegal_op"] == 10, t
        assert t["option_negotiation"] == 8, t
        assert t["unknown_tid"] == 1 and t["completed"] == 1, t
        lab.daemon.assert_alive()


def test_session_cap_and_expiry(tmp_path):
    """64 transfers at once (max-tftp-sessions' default; this one guest may
    have them all); the 65th is told the server is busy; silent clients'
    sessions end after bounded retries; then TFTP works again."""
    _require()
    mid = _data(10, 4000)
    root = _root(tmp_path, {"mid": mid})
    with ServiceLab(tmp_path, user=",tftp=%s,max-tftp-per-guest=64"
                    % root) as lab:
        r = _client(lab, {"op": "hold", "name": "mid", "n": 65})
        ops = [a[0] for a in r["answers"]]
        assert ops.count(3) == 64, r
        assert r["answers"][-1] == [5, 0], r
        t = lab.router()["tftp"]
        assert t["sessions"] == 64 and t["busy"] == 1, t
        assert lab.router()["limits"]["tftp_sessions"] == \
            {"max": 64, "hit": 1}
        t0 = time.monotonic()
        t = _wait_idle(lab, timeout=30)
        print("64 silent sessions expired in %.1fs" % (time.monotonic() - t0))
        assert t["timeouts"] == 64, t
        r = _client(lab, {"op": "get", "name": "mid"})
        assert r["sha256"] == _sha(mid)


def test_bad_tftp_root_is_a_startup_error(tmp_path):
    missing = tmp_path / "missing"
    r = pb.run_patchbay(["-netdev", "user,id=u0,tftp=%s" % missing])
    assert r.returncode != 0
    assert "tftp" in r.stderr and str(missing) in r.stderr, r.stderr
    f = tmp_path / "file"
    f.write_text("x")
    r = pb.run_patchbay(["-netdev", "user,id=u0,tftp=%s" % f])
    assert r.returncode != 0 and "tftp" in r.stderr, r.stderr
