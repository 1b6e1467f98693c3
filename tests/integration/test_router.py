# SPDX-License-Identifier: MIT
"""The user-mode router (-netdev user) with real guests: Linux network
namespaces behind TAP ports, configured statically as QEMU's slirp would
hand out (10.0.2.15/24 and .16, default route via the gateway 10.0.2.2).

The gateway 10.0.2.2 maps to the host's 127.0.0.1: every server these tests
start listens on 127.0.0.1 in the test's own network namespace, and guests
reach it through the router.  Nothing is ever addressed anywhere else (see
TESTING.md, "Network safety").

Guest-side sockets are made in the guest's namespace from the test process
itself (pb.ns_socket); bulk transfers use curl in the guest against a small
HTTP server (a Python subprocess on 127.0.0.1) that streams deterministic
data, so nothing big is written to disk and both ends hash on the fly.

Needs root, /dev/net/tun, iproute2, ping, curl (skips say which).
"""

import errno
import hashlib
import json
import os
import random
import re
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

import pb

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

NET = "10.0.2.0/24"
GW = "10.0.2.2"
DNS = "10.0.2.3"
GUEST_IPS = ["10.0.2.15", "10.0.2.16", "10.0.2.17"]
PY = sys.executable or "/usr/bin/python3"

# --------------------------------------------------------------------------
# Deterministic data: a 1 MiB block from a seeded PRNG, rotated differently
# for every chunk (so misordered or repeated chunks change the hash).  The
# same source runs in the test, the HTTP server and the guest's generator.

GEN_SRC = r'''
import hashlib, random

def gen_chunks(seed, n, bs=1 << 20):
    blk = random.Random(seed).randbytes(bs)
    i, left = 0, n
    while left > 0:
        k = (i * 7919 + seed) % bs
        c = blk[k:] + blk[:k]
        if left < bs:
            c = c[:left]
        yield c
        left -= len(c)
        i += 1

def gen_sha256(seed, n):
    h = hashlib.sha256()
    for c in gen_chunks(seed, n):
        h.update(c)
    return h.hexdigest()
'''
_gen = {}
exec(GEN_SRC, _gen)  # the same code the server and the guest run
gen_chunks, gen_sha256 = _gen["gen_chunks"], _gen["gen_sha256"]

# A threaded HTTP/1.1 server on 127.0.0.1:
#   GET /gen/SEED/NBYTES  -> NBYTES of gen_chunks(SEED)
#   GET /slow/NBYTES      -> as /gen/1, but in 64 KiB writes
#   PUT|POST /sink        -> hashes the body (Content-Length or chunked);
#                            answers {"bytes": N, "sha256": HEX}
# It binds port 0 and publishes the port in PORTFILE (atomically).
HTTP_SERVER_SRC = GEN_SRC + r'''
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("http: " + (fmt % args) + "\n")

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[0] != "gen" or len(parts) != 3:
            self.send_error(404)
            return
        seed, n = int(parts[1]), int(parts[2])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        for c in gen_chunks(seed, n):
            self.wfile.write(c)
        self.wfile.flush()

    def _body(self):
        h = hashlib.sha256()
        total = 0
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    d = self.rfile.read(min(left, 1 << 20))
                    if not d:
                        raise EOFError("short chunk")
                    h.update(d)
                    total += len(d)
                    left -= len(d)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                d = self.rfile.read(min(left, 1 << 20))
                if not d:
                    raise EOFError("short body")
                h.update(d)
                total += len(d)
                left -= len(d)
        return total, h.hexdigest()

    def do_PUT(self):
        total, digest = self._body()
        body = json.dumps({"bytes": total, "sha256": digest}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT

class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

srv = S(("127.0.0.1", 0), H)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, sys.argv[1])
srv.serve_forever()
'''

# Writes NBYTES of gen_chunks(SEED) to stdout (runs in the guest).
GEN_MAIN_SRC = GEN_SRC + r'''
import sys
out = sys.stdout.buffer
for c in gen_chunks(int(sys.argv[1]), int(sys.argv[2])):
    out.write(c)
out.flush()
'''


class HttpServer:
    """The HTTP server above as a subprocess on 127.0.0.1 (ended by PID)."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.portfile = tmp_path / ("http.%d.port" % next(_seq))
        self.script = tmp_path / "httpserver.py"
        self.script.write_text(HTTP_SERVER_SRC)
        self.log = open(tmp_path / "http.log", "ab")
        self.proc = None
        self.port = None

    def __enter__(self):
        self.proc = pb.popen([PY, str(self.script), str(self.portfile)],
                             stdout=self.log, stderr=self.log)
        self.port = int(pb.wait_until(
            lambda: self.portfile.exists() and self.portfile.read_text(),
            10, "HTTP server port file"))

        def accepts():
            assert self.proc.poll() is None, "HTTP server exited"
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        pb.wait_until(accepts, 10, "HTTP server on 127.0.0.1:%d" % self.port)
        return self

    def __exit__(self, *exc):
        pb.stop_proc(self.proc)
        self.log.close()
        return False


_seq = iter(range(1, 1 << 30))


class RouterLab:
    """A daemon with a user-mode router (netdev u0) and n TAP guests in
    fresh namespaces on one switch, addressed like QEMU's slirp guests.

        with RouterLab(tmp_path, 2, user=",restrict=on") as lab:
            lab.ns[0], lab.ip[1], lab.daemon, lab.router(), lab.sock(0)
    """

    def __init__(self, tmp_path, n=1, user="", extra_args=(),
                 ready_timeout=10.0):
        self.tmp_path = tmp_path
        self.n = n
        self.user = user
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.ns, self.ifname, self.ids, self.ip = [], [], [], []
        self.daemon = None
        self._stack = None

    def __enter__(self):
        import contextlib
        pb.require_netns()
        self._stack = contextlib.ExitStack()
        try:
            args = ["-netdev", "user,id=u0" + self.user]
            for i in range(self.n):
                ns = self._stack.enter_context(pb.netns("r%d" % (i + 1)))
                self.ns.append(ns)
                self.ifname.append(pb.unique("pbr"))
                self.ids.append("g%d" % (i + 1))
                self.ip.append(GUEST_IPS[i])
                args += ["-netdev", pb.tap_netdev(self.ids[i],
                                                  self.ifname[i], ns)]
            args += self.extra_args
            self.daemon = self._stack.enter_context(
                pb.Daemon(args, self.tmp_path,
                          ready_timeout=self.ready_timeout))
            for i in range(self.n):
                pb.setup_tap(self.ns[i], self.ifname[i], self.ip[i] + "/24")
                pb.ns_exec(self.ns[i], ["ip", "route", "add", "default",
                                        "via", GW])
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def router(self, stats=None):
        s = stats if stats is not None else self.daemon.stats()
        p = pb.find_port(s, "u0")
        assert p is not None and "router" in p, s
        return p["router"]

    def sock(self, i=0, type=socket.SOCK_STREAM, proto=0,
             family=socket.AF_INET):
        return pb.ns_socket(self.ns[i], family, type, proto)

    def sh(self, i, script, timeout=60.0, check=True):
        """bash -o pipefail -c script in guest i."""
        return pb.ns_exec(self.ns[i], ["bash", "-o", "pipefail", "-c",
                                       script], timeout=timeout, check=check)

    def sh_popen(self, i, script, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return pb.ns_popen(self.ns[i], ["bash", "-o", "pipefail", "-c",
                                        script], **kw)

    def wait_flows(self, n=0, timeout=15.0):
        """Poll until the router's flow count is n; returns the stats."""
        last = {}

        def done():
            last["r"] = self.router()
            return last["r"]["flows"] == n
        try:
            pb.wait_until(done, timeout, "router flows == %d" % n,
                          interval=0.1)
        except AssertionError as e:
            raise AssertionError("%s; last router counters: %s"
                                 % (e, json.dumps(last.get("r"))))
        return last["r"]


def _delta(after, before, path):
    a, b = after, before
    for k in path.split("."):
        a, b = a[k], b[k]
    return a - b


def _drops_delta(after, before):
    return {k: after["drops"][k] - before["drops"][k]
            for k in after["drops"] if after["drops"][k] != before["drops"][k]}


class Bg:
    """Run fn(*args) in a thread; .result() joins (bounded) and returns its
    value or re-raises its exception."""

    def __init__(self, fn, *args):
        self.box = {}

        def body():
            try:
                self.box["v"] = fn(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised in result
                self.box["e"] = e
        self.t = threading.Thread(target=body, daemon=True)
        self.t.start()

    def result(self, timeout=60.0):
        self.t.join(pb.scaled(timeout))
        if self.t.is_alive():
            raise AssertionError("background task still running after %.0fs"
                                 % pb.scaled(timeout))
        if "e" in self.box:
            raise self.box["e"]
        return self.box.get("v")


def recv_all(s, timeout=30.0, limit=64 * MiB):
    """Read until EOF (bounded in time and size)."""
    deadline = time.monotonic() + pb.scaled(timeout)
    s.settimeout(pb.scaled(timeout))
    out = bytearray()
    while True:
        if time.monotonic() > deadline:
            raise AssertionError("no EOF within %.0fs (%d bytes read)"
                                 % (pb.scaled(timeout), len(out)))
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("no data/EOF for %.0fs after %d bytes"
                                 % (pb.scaled(timeout), len(out)))
        if not d:
            return bytes(out)
        out += d
        assert len(out) <= limit, "more than %d bytes" % limit


def recv_exact(s, n, timeout=30.0):
    s.settimeout(pb.scaled(timeout))
    out = bytearray()
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise AssertionError("EOF after %d of %d bytes" % (len(out), n))
        out += d
    return bytes(out)


def closed_port(kind=socket.SOCK_STREAM):
    """A loopback port nothing listens on (bound, then released)."""
    return pb.free_port(kind)


def host_listener(backlog=128):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(backlog)
    return ls


def accept(ls, timeout=10.0):
    ls.settimeout(pb.scaled(timeout))
    c, addr = ls.accept()
    c.settimeout(pb.scaled(30))
    return c, addr


pattern = pb.pattern


def assert_reset(s, timeout=5.0, what="connection"):
    """The socket sees a reset (ECONNRESET) within timeout, not EOF."""
    s.settimeout(pb.scaled(timeout))
    deadline = time.monotonic() + pb.scaled(timeout)
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return
        except socket.timeout:
            raise AssertionError("%s: no reset within %.0fs"
                                 % (what, pb.scaled(timeout)))
        if not d:
            raise AssertionError("%s: orderly EOF instead of a reset" % what)
        if time.monotonic() > deadline:
            raise AssertionError("%s: still receiving data, no reset" % what)


def _curl_sha(lab, i, url, timeout=120.0):
    """Download url in guest i, hashing on the fly.  Returns (sha256,
    bytes, seconds)."""
    t0 = time.monotonic()
    r = lab.sh(i, "curl -sS --fail --max-time %d -w '%%{stderr}%%{size_download}\\n' "
               "'%s' | sha256sum" % (int(pb.scaled(timeout)), url),
               timeout=timeout + 10)
    dt = time.monotonic() - t0
    size = int(r.stderr.strip().splitlines()[-1])
    return r.stdout.split()[0], size, dt


def _curl_upload(lab, i, url, seed, n, timeout=120.0):
    """Stream n generated bytes from guest i with curl -T; returns (server's
    answer dict, seconds)."""
    gen = lab.tmp_path / "gen.py"
    if not gen.exists():
        gen.write_text(GEN_MAIN_SRC)
    t0 = time.monotonic()
    r = lab.sh(i, "'%s' '%s' %d %d | curl -sS --fail --max-time %d -T - '%s'"
               % (PY, gen, seed, n, int(pb.scaled(timeout)), url),
               timeout=timeout + 10)
    return json.loads(r.stdout), time.monotonic() - t0


# --------------------------------------------------------------------------
# 1. Bulk TCP through the gateway


def test_download_1gib_upload_256mib(tmp_path):
    """A guest downloads 1 GiB from an HTTP server on the host's 127.0.0.1
    through 10.0.2.2 and uploads 256 MiB; both arrive intact (sha256)."""
    pb.require_tools("curl", "sha256sum", "bash")
    down, up = 1 * GiB, 256 * MiB
    want_down = Bg(gen_sha256, 11, down)
    want_up = Bg(gen_sha256, 12, up)
    with RouterLab(tmp_path) as lab, HttpServer(tmp_path) as http:
        url = "http://%s:%d" % (GW, http.port)
        got, size, dt = _curl_sha(lab, 0, "%s/gen/11/%d" % (url, down),
                                  timeout=90)
        print("download: %d bytes in %.2fs = %.0f MiB/s"
              % (size, dt, size / dt / MiB))
        assert size == down
        assert got == want_down.result()

        ans, dt = _curl_upload(lab, 0, url + "/sink", 12, up, timeout=60)
        print("upload: %d bytes in %.2fs = %.0f MiB/s"
              % (ans["bytes"], dt, ans["bytes"] / dt / MiB))
        assert ans["bytes"] == up
        assert ans["sha256"] == want_up.result()

        r = lab.router()
        assert r["tcp_opened"] >= 2, r
        assert r["drops"]["tcp_out_of_window"] < 1000, r


def test_upload_resumes_after_slow_reader(tmp_path):
    """The host server does not read at first: the router's window to the
    guest closes.  Once the server reads, the window must open again and
    the upload completes (16 MiB, intact)."""
    n = 16 * MiB
    hs = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Small buffers so the pipeline fills quickly (accepted sockets
    # inherit them).
    hs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
    hs.bind(("127.0.0.1", 0))
    hs.listen(1)
    try:
        with RouterLab(tmp_path) as lab:
            c = lab.sock(0)
            c.settimeout(pb.scaled(10))
            c.connect((GW, hs.getsockname()[1]))
            a, _ = accept(hs)
            data = pattern(n, "slow-reader")

            def send():
                c.settimeout(pb.scaled(60))
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
            tx = Bg(send)
            lport = c.getsockname()[1]

            def window_closed():
                out = pb.ns_exec(lab.ns[0], ["ss", "-tni", "sport", "=",
                                             ":%d" % lport]).stdout
                # ss prints snd_wnd only when it is not 0; a guest facing
                # a closed window probes it with growing backoff.
                m = re.search(r"snd_wnd:(\d+)", out)
                return "backoff:" in out and (m is None or m.group(1) == "0")
            # Not reading until the router has closed its window to the
            # guest (everything between is full).
            pb.wait_until(window_closed, 15,
                          "the router's window to the guest to close")
            r0 = lab.router()
            t0 = time.monotonic()
            got = hashlib.sha256()
            total = 0
            a.settimeout(pb.scaled(10))
            while True:
                try:
                    d = a.recv(1 << 20)
                except socket.timeout:
                    raise AssertionError(
                        "upload stalled after %d of %d bytes (router: %s)"
                        % (total, n, json.dumps(lab.router())))
                if not d:
                    break
                got.update(d)
                total += len(d)
            tx.result()
            print("16 MiB after a slow start: %.2fs once reading; router "
                  "before: flows %d" % (time.monotonic() - t0, r0["flows"]))
            assert total == n
            assert got.digest() == hashlib.sha256(data).digest()
            a.close()
            c.close()
    finally:
        hs.close()


# --------------------------------------------------------------------------
# 2. hostfwd


def test_hostfwd_tcp_and_udp(tmp_path):
    """Three TCP forwards and one UDP forward at once: host clients on
    127.0.0.1 reach servers in the guest, which see them as 10.0.2.2."""
    hp = [pb.free_port() for _ in range(3)]
    hu = pb.free_port(socket.SOCK_DGRAM)
    gp = [8001, 8002, 8003]
    gu = 5353
    user = "".join(",hostfwd=tcp:127.0.0.1:%d-:%d" % (h, g)
                   for h, g in zip(hp, gp))
    # One with the guest address spelled out.
    user = user.replace("-:8003", "-10.0.2.15:8003")
    user += ",hostfwd=udp:127.0.0.1:%d-:%d" % (hu, gu)
    with RouterLab(tmp_path, user=user) as lab:
        for h in hp:
            lab.daemon.wait_for_log("hostfwd tcp 127.0.0.1:%d" % h)
        listeners = []
        for g in gp:
            ls = lab.sock(0)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("0.0.0.0", g))
            ls.listen(16)
            listeners.append(ls)
        us = lab.sock(0, socket.SOCK_DGRAM)
        us.bind(("0.0.0.0", gu))

        # Two clients per TCP forward, all open at the same time.
        clients = []
        for k, h in enumerate(hp):
            for j in range(2):
                c = socket.create_connection(("127.0.0.1", h),
                                             timeout=pb.scaled(10))
                clients.append((k, j, c))
        served = []
        for k, ls in enumerate(listeners):
            for _ in range(2):
                a, addr = accept(ls)
                assert addr[0] == GW, addr
                served.append((k, a))
        for k, j, c in clients:
            c.sendall(b"hello %d.%d\n" % (k, j))
        for k, a in served:
            msg = recv_exact(a, len(b"hello 0.0\n"))
            assert msg.startswith(b"hello %d." % k), (k, msg)
            a.sendall(b"port %d says " % gp[k] + msg + pattern(256 * KiB, msg.decode()))
            a.shutdown(socket.SHUT_WR)
        for k, j, c in clients:
            msg = b"hello %d.%d\n" % (k, j)
            data = recv_all(c)
            want = b"port %d says " % gp[k] + msg + pattern(256 * KiB, msg.decode())
            assert data == want, (k, j, len(data))
            c.close()
        for _, a in served:
            assert recv_all(a) == b""
            a.close()

        # UDP: two host clients, replies go back to each.
        for j in range(2):
            hc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            hc.settimeout(pb.scaled(5))
            hc.bind(("127.0.0.1", 0))
            us.settimeout(pb.scaled(5))
            got = None
            # The first datagram may be spent on ARP for the guest: retry.
            deadline = time.monotonic() + pb.scaled(5)
            while got is None:
                hc.sendto(b"udp %d" % j, ("127.0.0.1", hu))
                us.settimeout(0.5)
                try:
                    got = us.recvfrom(2048)
                except socket.timeout:
                    assert time.monotonic() < deadline, "UDP hostfwd silent"
            data, src = got
            assert data == b"udp %d" % j and src[0] == GW, got
            us.sendto(b"reply " + data, src)
            assert hc.recvfrom(2048)[0] == b"reply udp %d" % j
            hc.close()
        for ls in listeners:
            ls.close()
        us.close()
        r = lab.router()
        assert r["tcp_opened"] >= 6, r
        assert r["udp_opened"] >= 2, r


# --------------------------------------------------------------------------
# 3. guestfwd


def _procs_with(marker, exclude=()):
    """PIDs whose command line contains marker (the daemon's own command
    line names the guestfwd commands too: pass its PID in exclude)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in exclude:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def test_guestfwd_cmd_and_socket(tmp_path):
    """guestfwd to commands (echo, cat as an echo server, a command with a
    comma written ",,") and to host sockets (TCP on 127.0.0.1, unix)."""
    marker = "pbgf%d" % os.getpid()
    hs = host_listener()
    hport = hs.getsockname()[1]
    upath = pb.sock_path(tmp_path, "gf.sock")
    us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    us.bind(upath)
    us.listen(4)
    user = (",guestfwd=tcp:10.0.2.100:4000-cmd:echo hi; : %s" % marker +
            ",guestfwd=tcp:10.0.2.100:4001-cmd:cat; : %s" % marker +
            ",guestfwd=tcp:10.0.2.100:4002-cmd:printf %%s a,,b; : %s" % marker +
            ",guestfwd=tcp:10.0.2.101:5000-127.0.0.1:%d" % hport +
            ",guestfwd=tcp:10.0.2.101:5001-unix:%s" % upath)
    try:
        with RouterLab(tmp_path, user=user) as lab:
            def conn(port, ip="10.0.2.100"):
                c = lab.sock(0)
                c.settimeout(pb.scaled(10))
                c.connect((ip, port))
                return c

            c = conn(4000)
            assert recv_all(c) == b"hi\n"
            c.close()

            c = conn(4002)
            assert recv_all(c) == b"a,b"
            c.close()

            # cat: an echo server; 4 MiB through it, written while read.
            data = pattern(4 * MiB, "cat")
            c = conn(4001)

            def send():
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
            tx = Bg(send)
            assert recv_all(c) == data
            tx.result()
            c.close()

            # Several cat sessions at once.
            cs = [conn(4001) for _ in range(5)]
            for k, c in enumerate(cs):
                c.sendall(b"session %d" % k)
            for k, c in enumerate(cs):
                assert recv_exact(c, len(b"session %d" % k)) == b"session %d" % k
                c.close()

            # A host TCP socket.
            c = conn(5000, "10.0.2.101")
            a, _ = accept(hs)
            c.sendall(b"to host")
            assert recv_exact(a, 7) == b"to host"
            a.sendall(pattern(MiB, "gf-inet"))
            a.close()
            assert recv_all(c) == pattern(MiB, "gf-inet")
            c.close()

            # A unix socket.
            c = conn(5001, "10.0.2.101")
            a, _ = accept(us)
            a.sendall(b"from unix")
            assert recv_exact(c, 9) == b"from unix"
            c.sendall(b"to unix")
            c.shutdown(socket.SHUT_WR)
            assert recv_all(a) == b"to unix"
            a.close()
            assert recv_all(c) == b""
            c.close()

            # A port of the guestfwd address without a forward: refused.
            c = lab.sock(0)
            c.settimeout(pb.scaled(5))
            with pytest.raises(ConnectionRefusedError):
                c.connect(("10.0.2.100", 4999))
            c.close()

            # Every command ended once its connection closed.
            pb.wait_until(lambda: not _procs_with(
                marker, exclude=(lab.daemon.pid,)), 10,
                "guestfwd commands to exit")
            assert "guestfwd: started" in lab.daemon.log()
            lab.wait_flows(0)
    finally:
        hs.close()
        us.close()
        for pid in _procs_with(marker):
            try:
                os.kill(pid, 9)
            except OSError:
                pass


# --------------------------------------------------------------------------
# 4. UDP and fragmentation


def _udp_server(rcvbuf):
    """A UDP socket on 127.0.0.1 for the guests' datagrams, and its port."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(pb.scaled(5))
    return srv, srv.getsockname()[1]


def _until_refused(c, send, what):
    """Call send() (true: it saw the refusal itself) until the connected
    UDP socket c reports ECONNREFUSED (an ICMP port unreachable came)."""
    c.settimeout(0.5)
    deadline = time.monotonic() + pb.scaled(5)
    while not send():
        try:
            c.recv(100)
            raise AssertionError("closed port answered")
        except ConnectionRefusedError:
            return
        except socket.timeout:
            assert time.monotonic() < deadline, what


def test_udp_echo_fragmented_and_port_unreachable(tmp_path):
    """UDP through 10.0.2.2 to an echo server on 127.0.0.1 with datagrams of
    1, 1472, 8000 and 65507 bytes (IP fragments both ways); a closed UDP
    port gives the guest ECONNREFUSED on its connected socket."""
    srv, port = _udp_server(1 << 20)
    try:
        with RouterLab(tmp_path) as lab:
            g = lab.sock(0, socket.SOCK_DGRAM)
            g.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            g.settimeout(pb.scaled(5))
            before = lab.router()
            for n in (1, 1472, 8000, 65507, 65507, 8000, 1):
                data = pattern(n, "udp%d" % n)
                g.sendto(data, (GW, port))
                got, src = srv.recvfrom(70000)
                assert len(got) == n and got == data, (n, len(got))
                # Echo back, changed, so the reply is not the request.
                reply = data[::-1]
                srv.sendto(reply, src)
                back, frm = g.recvfrom(70000)
                assert frm == (GW, port), frm
                assert len(back) == n and back == reply, (n, len(back))
            after = lab.router()
            ra, rb = after["reassembly"], before["reassembly"]
            # 8000 and 65507 twice each came as fragments.
            assert ra["completed"] - rb["completed"] >= 4, ra
            assert after["udp_opened"] >= 1, after
            g.close()

            # ICMP port unreachable for a closed port.
            dead = closed_port(socket.SOCK_DGRAM)
            c = lab.sock(0, socket.SOCK_DGRAM)
            c.connect((GW, dead))
            _until_refused(c, lambda: c.send(b"anyone?") < 0,
                           "no ICMP port unreachable for a closed UDP port")
            c.close()
    finally:
        srv.close()


def test_udp_burst_sent_together_intact(tmp_path):
    """Datagrams of one flow that reach patchbay together (the daemon is
    stopped while the guest sends, so they queue on the TAP) leave with one
    system call each run (UDP_SEGMENT: udp_gso_sends counts them), yet the
    host receives every datagram as sent, in order; a burst to a closed port
    still turns into ICMP port unreachable for the guest."""
    srv, port = _udp_server(4 << 20)
    sizes = [1200] * 40 + [700] + [1472] * 20 + [1] * 5 + [3000, 1200]
    try:
        with RouterLab(tmp_path) as lab:
            g = lab.sock(0, socket.SOCK_DGRAM)
            g.connect((GW, port))
            g.send(b"hello")                    # the flow exists first
            assert srv.recvfrom(100)[0] == b"hello"
            before = lab.router()
            os.kill(lab.daemon.proc.pid, signal.SIGSTOP)
            try:
                for i, n in enumerate(sizes):
                    g.send(pattern(n, "burst%d" % i))
            finally:
                os.kill(lab.daemon.proc.pid, signal.SIGCONT)
            for i, n in enumerate(sizes):
                got = srv.recvfrom(70000)[0]
                assert got == pattern(n, "burst%d" % i), (i, n, len(got))
            after = lab.router()
            assert after["udp_gso_sends"] > before["udp_gso_sends"], after
            assert after["udp_gso_datagrams"] - before["udp_gso_datagrams"] \
                >= 40, after
            g.close()

            # The same to a closed port: ECONNREFUSED comes back.
            dead = closed_port(socket.SOCK_DGRAM)
            c = lab.sock(0, socket.SOCK_DGRAM)
            c.connect((GW, dead))

            def burst():
                os.kill(lab.daemon.proc.pid, signal.SIGSTOP)
                try:
                    for _ in range(20):
                        c.send(b"x" * 1000)
                except ConnectionRefusedError:
                    return True
                finally:
                    os.kill(lab.daemon.proc.pid, signal.SIGCONT)
                return False

            _until_refused(c, burst, "no ICMP port unreachable after a burst")
            c.close()
    finally:
        srv.close()


def test_udp_segmentation_offload_to_host(tmp_path):
    """A guest application that sends with UDP_SEGMENT: its super-datagrams
    come through the TAP whole (USO), are cut for the router, and go on to
    the host socket together again (UDP_SEGMENT); the host receives every
    datagram as written, in order."""
    pb.require_tap_uso()
    srv, port = _udp_server(4 << 20)
    try:
        with RouterLab(tmp_path) as lab:
            g = lab.sock(0, socket.SOCK_DGRAM)
            g.connect((GW, port))
            before = lab.router()
            pb.uso_burst(g, srv, "r-")
            after = lab.router()
            g.close()
            assert after["udp_gso_datagrams"] - before["udp_gso_datagrams"] \
                >= 100, after
    finally:
        srv.close()


# --------------------------------------------------------------------------
# 5. ping and refused connections


def test_ping_gateway_dns_and_refused_connect(tmp_path):
    pb.require_tools("ping")
    with RouterLab(tmp_path) as lab:
        out = pb.ping(lab.ns[0], GW, count=3, interval=0.2).stdout
        assert " 0% packet loss" in out, out
        out = pb.ping(lab.ns[0], DNS, count=3, interval=0.2).stdout
        assert " 0% packet loss" in out, out
        # Larger pings need fragments both ways.
        out = pb.ns_exec(lab.ns[0], ["ping", "-c", "2", "-s", "4000", "-i",
                                     "0.2", "-w", "10", GW],
                         timeout=20).stdout
        assert " 0% packet loss" in out, out

        dead = closed_port()
        before = lab.router()
        c = lab.sock(0)
        c.settimeout(5)
        t0 = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            c.connect((GW, dead))
        dt = time.monotonic() - t0
        print("refused after %.3fs" % dt)
        assert dt < 1.0, "ECONNREFUSED took %.2fs" % dt
        c.close()
        after = lab.router()
        assert after["tcp_refused"] - before["tcp_refused"] == 1, after


# --------------------------------------------------------------------------
# 6. Half-close and resets, outbound and through a hostfwd


def _pair(lab, how, hs, hfport, gls):
    """A connected (guest socket, host socket) pair: 'out' = guest connects
    to the host listener hs via 10.0.2.2; 'in' = host connects to hostfwd
    port hfport, accepted by guest listener gls."""
    if how == "out":
        g = lab.sock(0)
        g.settimeout(pb.scaled(10))
        g.connect((GW, hs.getsockname()[1]))
        h, _ = accept(hs)
    else:
        h = socket.create_connection(("127.0.0.1", hfport),
                                     timeout=pb.scaled(10))
        g, _ = accept(gls)
    g.settimeout(pb.scaled(30))
    h.settimeout(pb.scaled(30))
    return g, h


@pytest.mark.parametrize("how", ["out", "in"])
def test_half_close_and_reset(tmp_path, how):
    """Half-close both ways keeps the other direction open for more data;
    SO_LINGER 0 close on either side is a reset on the other."""
    hfport = pb.free_port()
    gport = 9000
    hs = host_listener()
    user = ",hostfwd=tcp:127.0.0.1:%d-:%d" % (hfport, gport)
    try:
        with RouterLab(tmp_path, user=user) as lab:
            gls = lab.sock(0)
            gls.bind(("0.0.0.0", gport))
            gls.listen(8)
            big = 2 * MiB

            # a. Guest closes its sending side, then receives the reply.
            g, h = _pair(lab, how, hs, hfport, gls)
            g.sendall(b"request")
            g.shutdown(socket.SHUT_WR)
            assert recv_all(h) == b"request"
            reply = pattern(big, "a")
            tx = Bg(lambda: (h.sendall(reply), h.close()))
            assert recv_all(g) == reply
            tx.result()
            g.close()

            # b. Host closes its sending side, then receives the guest's.
            g, h = _pair(lab, how, hs, hfport, gls)
            h.sendall(b"banner")
            h.shutdown(socket.SHUT_WR)
            assert recv_all(g) == b"banner"
            data = pattern(big, "b")
            tx = Bg(lambda: (g.sendall(data), g.close()))
            assert recv_all(h) == data
            tx.result()
            h.close()

            # c. Host aborts: the guest sees a reset.
            g, h = _pair(lab, how, hs, hfport, gls)
            h.sendall(b"x")
            assert recv_exact(g, 1) == b"x"
            h.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            h.close()
            assert_reset(g, what="guest after host abort")
            g.close()

            # d. Guest aborts: the host sees a reset.
            g, h = _pair(lab, how, hs, hfport, gls)
            g.sendall(b"y")
            assert recv_exact(h, 1) == b"y"
            g.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            g.close()
            assert_reset(h, what="host after guest abort")
            h.close()

            gls.close()
            r = lab.wait_flows(0)
            assert r["tcp_reset"] >= 2, r
    finally:
        hs.close()


# --------------------------------------------------------------------------
# 7. Many concurrent connections


def test_2000_concurrent_connections(tmp_path):
    """2,000 guest connections open at once, 10 KiB each way on each; all
    complete; then the flow table empties and the daemon's fds return to
    their baseline."""
    n, size = 2000, 10 * KiB
    pb.raise_nofile(3 * n + 200)
    hs = host_listener(backlog=4096)
    hs.setblocking(False)
    port = hs.getsockname()[1]
    try:
        with RouterLab(tmp_path) as lab:
            pid = lab.daemon.pid
            # The daemon's limit bounds how many host sockets it can have.
            with open("/proc/%d/limits" % pid) as f:
                lim = [ln for ln in f if ln.startswith("Max open files")]
            print(lim[0].strip() if lim else "no limits line")
            # Warm up ARP so the baseline is taken in steady state.
            c = lab.sock(0)
            c.settimeout(5)
            c.connect((GW, port))
            c.close()
            pb.wait_until(lambda: _accept_drain(hs), 5, "warm-up accept")
            lab.wait_flows(0)
            baseline = pb.fd_count(pid)

            t0 = time.monotonic()
            res = _many_connections(lab, hs, port, n, size, timeout=90)
            dt = time.monotonic() - t0
            print("%d connections x %d bytes each way in %.2fs; peak flows "
                  "%s" % (n, size, dt, res["peak_flows"]))
            assert res["ok"] == n and not res["server_errors"], (
                "%d of %d ok; client errors (%d, first 10): %s; server-side "
                "errors (%d, first 10): %s" % (
                    res["ok"], n, len(res["errors"]), res["errors"][:10],
                    len(res["server_errors"]), res["server_errors"][:10]))

            t1 = time.monotonic()
            r = lab.wait_flows(0, timeout=20)
            print("flows back to 0 after %.2fs" % (time.monotonic() - t1))
            pb.wait_until(lambda: pb.fd_count(pid) <= baseline, 10,
                          "daemon fd count back to %d" % baseline)
            assert r["tcp_opened"] >= n + 1, r
            assert r["drops"]["host_socket"] == 0, r
            assert r["drops"]["flow_table_full"] == 0, r
    finally:
        hs.close()


def test_fd_exhaustion_refuses_and_survives(tmp_path):
    """The daemon runs with a soft limit of 1024 descriptors (a common
    default) and 2,000 guest connections arrive at once: it refuses what
    it cannot open (RST, counted in drops.host_socket), survives, and
    serves again afterwards."""
    import resource
    n, size = 2000, 10 * KiB
    pb.raise_nofile(3 * n + 200)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hs = host_listener(backlog=4096)
    hs.setblocking(False)
    port = hs.getsockname()[1]
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        try:
            lab = RouterLab(tmp_path).__enter__()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            res = _many_connections(lab, hs, port, n, size, timeout=60)
            lab.daemon.assert_alive()
            r = lab.router()
            kinds = {}
            for e in res["errors"]:
                k = e.split(": ", 1)[1]
                kinds[k] = kinds.get(k, 0) + 1
            print("ok %d, client errors %s, host_socket drops %d"
                  % (res["ok"], kinds, r["drops"]["host_socket"]))
            # Every failure is a clean refusal, and each one is counted.
            assert set(kinds) <= {"Connection refused"}, res["errors"][:10]
            assert r["drops"]["host_socket"] >= len(res["errors"]), r
            assert res["ok"] + len(res["errors"]) == n
            # Still serving.
            c = lab.sock(0)
            c.settimeout(pb.scaled(10))
            c.connect((GW, port))
            c.sendall(b"ping")
            c.close()
            # And it shuts down cleanly (exit status 0) in the aftermath
            # of all that: connections closing, flows retransmitting.
            lab.daemon.stop()
        finally:
            lab.__exit__(*sys.exc_info())
    finally:
        hs.close()


def _accept_drain(hs):
    try:
        c, _ = hs.accept()
    except BlockingIOError:
        return False
    c.close()
    return True


def _many_connections(lab, hs, port, n, size, timeout):
    """Drive n guest clients and their host-side peers in one selector
    loop: each client sends `size` bytes tagged with its index; the host
    side reads them and answers with the bytes reversed, then closes.
    Returns {"ok": clients that got the right answer, "errors": [...],
    "server_errors": [...], "peak_flows": N}; failures are collected, not
    raised, so one report shows them all."""
    sel = selectors.DefaultSelector()
    payload = [pattern(size, "c%d" % i) for i in range(n)]

    def make():
        out = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            out.append(s)
        return out
    clients = pb.ns_call(lab.ns[0], make)
    st = {"ok": 0, "errors": [], "server_errors": [], "peak_flows": 0}
    cstate = {}
    for i, s in enumerate(clients):
        err = s.connect_ex((GW, port))
        assert err in (0, errno.EINPROGRESS), os.strerror(err)
        cstate[s] = {"i": i, "sent": 0, "got": bytearray()}
        sel.register(s, selectors.EVENT_WRITE, ("c", s))
    sel.register(hs, selectors.EVENT_READ, ("l", hs))
    sstate = {}
    deadline = time.monotonic() + pb.scaled(timeout)
    last_stats = 0.0

    def client_done(s, error=None):
        cs = cstate.pop(s)
        sel.unregister(s)
        s.close()
        if error:
            st["errors"].append("client %d (sent %d, got %d): %s"
                                % (cs["i"], cs["sent"], len(cs["got"]),
                                   error))
        else:
            st["ok"] += 1

    def server_done(s, error=None):
        ss = sstate.pop(s)
        sel.unregister(s)
        s.close()
        if error:
            st["server_errors"].append("server side (read %d, wrote %d): %s"
                                       % (len(ss["buf"]), ss["off"], error))
    try:
        while cstate:
            now = time.monotonic()
            if now > deadline:
                st["errors"].append(
                    "%d clients unfinished after %.0fs (first: %s); "
                    "server sides open: %d" % (
                        len(cstate), pb.scaled(timeout),
                        sorted(v["i"] for v in cstate.values())[:10],
                        len(sstate)))
                break
            if now - last_stats > 1.0:
                st["peak_flows"] = max(st["peak_flows"],
                                       lab.router()["flows"])
                last_stats = now
            for key, ev in sel.select(0.5):
                kind, s = key.data
                if kind == "l":
                    while True:
                        try:
                            a, _ = s.accept()
                        except BlockingIOError:
                            break
                        a.setblocking(False)
                        sstate[a] = {"buf": bytearray(), "out": None,
                                     "off": 0}
                        sel.register(a, selectors.EVENT_READ, ("s", a))
                elif kind == "s":
                    if s not in sstate:
                        continue
                    ss = sstate[s]
                    try:
                        if ss["out"] is None:
                            d = s.recv(65536)
                            if not d:
                                server_done(s, "EOF before the request")
                                continue
                            ss["buf"] += d
                            if len(ss["buf"]) >= size:
                                ss["out"] = bytes(ss["buf"][::-1])
                                sel.modify(s, selectors.EVENT_WRITE,
                                           ("s", s))
                        else:
                            ss["off"] += s.send(ss["out"][ss["off"]:])
                            if ss["off"] >= len(ss["out"]):
                                server_done(s)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        server_done(s, repr(e))
                else:
                    if s not in cstate:
                        continue
                    cs = cstate[s]
                    try:
                        if cs["sent"] < size:
                            e = s.getsockopt(socket.SOL_SOCKET,
                                             socket.SO_ERROR)
                            if e:
                                client_done(s, os.strerror(e))
                                continue
                            cs["sent"] += s.send(
                                payload[cs["i"]][cs["sent"]:])
                            if cs["sent"] == size:
                                sel.modify(s, selectors.EVENT_READ,
                                           ("c", s))
                        else:
                            d = s.recv(65536)
                            if d:
                                cs["got"] += d
                                continue
                            if bytes(cs["got"]) != payload[cs["i"]][::-1]:
                                client_done(s, "wrong answer")
                            else:
                                client_done(s)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        client_done(s, repr(e))
    finally:
        for s in list(cstate) + list(sstate):
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        try:
            sel.unregister(hs)
        except (KeyError, ValueError):
            pass
        sel.close()
    return st


# --------------------------------------------------------------------------
# 8. Two guests


def test_two_guests_download_and_talk_directly(tmp_path):
    """Two guests on one segment download through the router at the same
    time, and meanwhile reach each other directly through the switch."""
    pb.require_tools("curl", "sha256sum", "bash", "ping")
    n = 256 * MiB
    want = [Bg(gen_sha256, 21, n), Bg(gen_sha256, 22, n)]
    with RouterLab(tmp_path, 2) as lab, HttpServer(tmp_path) as http:
        url = "http://%s:%d/gen/%%d/%d" % (GW, http.port, n)
        t0 = time.monotonic()
        dl = [lab.sh_popen(i, "curl -sS --fail --max-time %d '%s' | sha256sum"
                           % (int(pb.scaled(90)), url % (21 + i)))
              for i in range(2)]
        try:
            # Directly between the guests, while the downloads run.
            out = pb.ping(lab.ns[0], lab.ip[1], count=5, interval=0.05).stdout
            assert " 0% packet loss" in out, out
            out = pb.ping(lab.ns[1], lab.ip[0], count=5, interval=0.05).stdout
            assert " 0% packet loss" in out, out
            ls = lab.sock(1)
            ls.bind((lab.ip[1], 7000))
            ls.listen(1)
            c = lab.sock(0)
            c.settimeout(pb.scaled(10))
            c.connect((lab.ip[1], 7000))
            a, addr = accept(ls)
            assert addr[0] == lab.ip[0], addr
            data = pattern(32 * MiB, "g2g")
            tx = Bg(lambda: (c.sendall(data), c.close()))
            assert hashlib.sha256(recv_all(a)).digest() == \
                hashlib.sha256(data).digest()
            tx.result()
            a.close()
            ls.close()
            for i, p in enumerate(dl):
                out, err = p.communicate(timeout=pb.scaled(120))
                assert p.returncode == 0, "guest %d curl: %s" % (i, err)
                assert out.split()[0].decode() == want[i].result(), i
        finally:
            for p in dl:
                pb.stop_proc(p)
        dt = time.monotonic() - t0
        print("2 x %d MiB downloads + 32 MiB guest-to-guest in %.2fs"
              % (n // MiB, dt))
        s = lab.daemon.stats()
        seg = s["segments"][0]
        # Guest-to-guest frames were switched, not routed: the router saw
        # no frames addressed to the other guest.
        assert lab.router(s)["drops"]["not_for_us"] < 100, lab.router(s)
        # (TAPs hand over TCP super-segments of up to 64 KiB: count those.)
        assert seg["forwarded"] > 32 * MiB // 65550, seg


# --------------------------------------------------------------------------
# 9. restrict=on


def test_restrict(tmp_path):
    """restrict=on: the guest cannot reach the host through 10.0.2.2 (TCP
    refused or reset, UDP dropped); hostfwd and guestfwd still work; the
    router's own address still answers ping."""
    pb.require_tools("ping")
    hs = host_listener()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    hfport = pb.free_port()
    user = (",restrict=on,hostfwd=tcp:127.0.0.1:%d-:9100" % hfport +
            ",guestfwd=tcp:10.0.2.100:4000-cmd:echo restricted-ok")
    try:
        with RouterLab(tmp_path, user=user) as lab:
            out = pb.ping(lab.ns[0], GW, count=3, interval=0.2).stdout
            assert " 0% packet loss" in out, out

            before = lab.router()
            c = lab.sock(0)
            c.settimeout(pb.scaled(5))
            t0 = time.monotonic()
            with pytest.raises((ConnectionRefusedError,
                                ConnectionResetError)):
                c.connect((GW, hs.getsockname()[1]))
            print("outbound refused after %.3fs" % (time.monotonic() - t0))
            c.close()
            g = lab.sock(0, socket.SOCK_DGRAM)
            g.sendto(b"let me out", (GW, udp.getsockname()[1]))
            # Nothing may arrive at the host (bounded look).
            udp.settimeout(0.5)
            with pytest.raises(socket.timeout):
                udp.recvfrom(100)
            hs.settimeout(0.1)
            with pytest.raises(socket.timeout):
                hs.accept()
            g.close()
            after = lab.router()
            assert after["drops"]["restricted"] > \
                before["drops"]["restricted"], after
            assert after["tcp_opened"] == before["tcp_opened"], after

            # Forwards still work.
            ls = lab.sock(0)
            ls.bind(("0.0.0.0", 9100))
            ls.listen(1)
            h = socket.create_connection(("127.0.0.1", hfport),
                                         timeout=pb.scaled(10))
            a, _ = accept(ls)
            h.sendall(b"in")
            assert recv_exact(a, 2) == b"in"
            a.sendall(b"out")
            assert recv_exact(h, 3) == b"out"
            a.close()
            h.close()
            ls.close()
            c = lab.sock(0)
            c.settimeout(pb.scaled(10))
            c.connect(("10.0.2.100", 4000))
            assert recv_all(c) == b"restricted-ok\n"
            c.close()
    finally:
        hs.close()
        udp.close()


# --------------------------------------------------------------------------
# 10. Bad input from a guest


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def _ip4(src, dst, proto, payload, ttl=64, ident=1, frag=0, tos=0,
         total=None, ihl=5, csum=None, opts=b""):
    tl = total if total is not None else 4 * ihl + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, tl, ident, frag, ttl,
                    proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    h += opts
    c = _csum(h) if csum is None else csum
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def _l4_csum(src, dst, proto, seg):
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack("!BBH", 0, proto, len(seg))
    return _csum(ph + seg)


def _tcp(src, dst, sport, dport, flags, seq=1000, ack=0, opts=b"",
         payload=b"", doff=None, csum=None, win=65535):
    d = doff if doff is not None else (20 + len(opts)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, d << 4, flags,
                      win, 0, 0) + opts + payload
    c = _l4_csum(src, dst, 6, seg) if csum is None else csum
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def _udp(src, dst, sport, dport, payload, length=None):
    ln = length if length is not None else 8 + len(payload)
    seg = struct.pack("!HHHH", sport, dport, ln, 0) + payload
    c = _l4_csum(src, dst, 17, seg) or 0xffff
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def _icmp_echo(ident, seq, payload=b"bad-input"):
    m = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return m[:2] + struct.pack("!H", _csum(m)) + m[4:]


class RawGuest:
    """An AF_PACKET socket on guest i's interface: send crafted frames to
    the router, read what comes back."""

    def __init__(self, lab, i=0):
        self.lab = lab
        self.s = pb.ns_call(lab.ns[i], socket.socket, socket.AF_PACKET,
                            socket.SOCK_RAW, socket.htons(0x0003))
        self.s.bind((lab.ifname[i], 0))
        self.mac = pb.mac_bytes(pb.link_mac(lab.ns[i], lab.ifname[i]))
        pb.ping(lab.ns[i], GW, count=1)
        out = pb.ns_exec(lab.ns[i], ["ip", "-j", "neigh", "show", GW, "dev",
                                     lab.ifname[i]]).stdout
        self.rmac = pb.mac_bytes(json.loads(out)[0]["lladdr"])
        self.ip = lab.ip[i]

    def send_ip(self, ip_packet, ethertype=0x0800):
        self.s.send(self.rmac + self.mac + struct.pack("!H", ethertype) +
                    ip_packet)

    def recv_match(self, pred, timeout=3.0):
        """First received frame for which pred(frame) is truthy, or None."""
        deadline = time.monotonic() + pb.scaled(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                f = self.s.recv(70000)
            except socket.timeout:
                return None
            v = pred(f)
            if v:
                return v

    def close(self):
        self.s.close()


def _tcp_reply_to(sport):
    """Predicate: a TCP segment from 10.0.2.2 to our port sport; returns
    its flags."""
    def pred(f):
        if len(f) < 54 or f[12:14] != b"\x08\x00" or f[23] != 6:
            return None
        ihl = (f[14] & 15) * 4
        t = f[14 + ihl:]
        if socket.inet_ntoa(f[26:30]) != GW or \
                struct.unpack("!H", t[2:4])[0] != sport:
            return None
        return t[13] | 0x100  # never 0
    return pred


def test_bad_input_counted_and_harmless(tmp_path):
    """Malformed frames from a guest are dropped and counted; afterwards
    the router still works normally."""
    pb.require_tools("curl", "sha256sum", "bash", "ping")
    hs = host_listener()
    hport = hs.getsockname()[1]
    try:
        with RouterLab(tmp_path) as lab, HttpServer(tmp_path) as http:
            raw = RawGuest(lab)
            src = raw.ip
            good_icmp = _icmp_echo(0x4242, 1)
            cases = [
                # (name, packet, ethertype, counter that must grow)
                ("truncated IPv4 header",
                 _ip4(src, GW, 1, good_icmp)[:12], 0x0800,
                 "drops.ip_malformed"),
                ("IHL below 5",
                 _ip4(src, GW, 1, good_icmp, ihl=4)[:16] + good_icmp,
                 0x0800, "drops.ip_malformed"),
                ("total length beyond the frame",
                 _ip4(src, GW, 1, good_icmp, total=1400), 0x0800,
                 "drops.ip_malformed"),
                ("total length below the header",
                 _ip4(src, GW, 1, good_icmp, total=12), 0x0800,
                 "drops.ip_malformed"),
                ("bad IP checksum",
                 _ip4(src, GW, 1, good_icmp, csum=0x1234), 0x0800,
                 "drops.ip_checksum"),
                ("IP version 6 in an IPv4 ethertype",
                 b"\x60" + _ip4(src, GW, 1, good_icmp)[1:], 0x0800,
                 "drops.ip_malformed"),
                ("TCP data offset beyond the segment",
                 _ip4(src, GW, 6, _tcp(src, GW, 40001, hport, 0x02,
                                       doff=15)), 0x0800,
                 "drops.l4_malformed"),
                ("TCP data offset below 5",
                 _ip4(src, GW, 6, _tcp(src, GW, 40002, hport, 0x02,
                                       doff=2)), 0x0800,
                 "drops.l4_malformed"),
                ("TCP header cut short",
                 _ip4(src, GW, 6, _tcp(src, GW, 40003, hport, 0x02)[:12]),
                 0x0800, "drops.l4_malformed"),
                ("bad TCP checksum",
                 _ip4(src, GW, 6, _tcp(src, GW, 40004, hport, 0x02,
                                       csum=0xdead)), 0x0800,
                 "drops.l4_checksum"),
                ("UDP length beyond the datagram",
                 _ip4(src, GW, 17, _udp(src, GW, 40005, 9, b"x" * 10,
                                        length=500)), 0x0800,
                 "drops.l4_malformed"),
                ("UDP length below 8",
                 _ip4(src, GW, 17, _udp(src, GW, 40006, 9, b"x" * 10,
                                        length=4)), 0x0800,
                 "drops.l4_malformed"),
                ("unknown ethertype", b"\x00" * 46, 0x88B5,
                 "drops.ethertype"),
                ("ARP with a wrong hardware length",
                 struct.pack("!HHBBH", 1, 0x0800, 7, 4, 1) + raw.mac +
                 b"\0" + socket.inet_aton(src) + b"\0" * 7 +
                 socket.inet_aton(GW), 0x0806, "drops.arp_malformed"),
            ]
            failures = []
            for name, pkt, et, counter in cases:
                before = lab.router()
                raw.send_ip(pkt, et)
                got = {}

                def grew():
                    got["r"] = lab.router()
                    return _delta(got["r"], before, counter) >= 1
                try:
                    pb.wait_until(grew, 3, counter, interval=0.05)
                except AssertionError:
                    failures.append("%s: %s did not grow; changed drops: %s"
                                    % (name, counter,
                                       _drops_delta(got["r"], before)))
                lab.daemon.assert_alive()

            # TCP SYNs with bogus option lengths are handled (answered),
            # never crash the router, and leave no flow behind.
            bogus_opts = [
                b"\x02\x00\x05\xb4",            # MSS with length 0
                b"\x02\x01\x05\xb4",            # MSS with length 1
                b"\x02\x28\x05\xb4",            # MSS claiming 40 bytes
                b"\x03\x02\x07\x00",            # window scale, length 2
                b"\x01\x01\x01\xff",            # NOPs, then a lone kind
                b"\x08\xff\x00\x00" * 2,        # timestamp of 255 bytes
                b"\x02\x04\x00\x00",            # MSS 0
                b"\x03\x03\xff\x00",            # window scale 255
            ]
            for k, opts in enumerate(bogus_opts):
                sport = 41000 + k
                raw.send_ip(_ip4(src, GW, 6, _tcp(src, GW, sport, hport,
                                                  0x02, opts=opts)))
                fl = raw.recv_match(_tcp_reply_to(sport), timeout=3)
                if fl is None:
                    failures.append("SYN with options %s: no answer"
                                    % opts.hex())
                elif (fl & 0x12) != 0x12:
                    failures.append("SYN with options %s: answer flags %#x"
                                    " (want SYN-ACK: the host listens)"
                                    % (opts.hex(), fl & 0xff))
                lab.daemon.assert_alive()
            # The host accepted those; the guest kernel resets them (it
            # has no such sockets).
            hs.setblocking(False)
            while _accept_drain(hs):
                pass

            # A bounded storm of random garbage, all addressed to the
            # gateway (so even a bug can only reach 127.0.0.1).
            rnd = random.Random(1234)
            for k in range(3000):
                proto = rnd.choice([1, 6, 17, rnd.randrange(256)])
                body = bytes(rnd.randrange(256) for _ in
                             range(rnd.randrange(0, 120)))
                if proto == 6 and rnd.random() < 0.5:
                    body = _tcp(src, GW, rnd.randrange(1024, 65536),
                                hport, rnd.randrange(256),
                                opts=body[:rnd.randrange(0, 41) & ~3],
                                payload=body[40:])
                frag = rnd.choice([0, 0, 0x4000, 0x2000 | rnd.randrange(64),
                                   rnd.randrange(0x10000)])
                pkt = _ip4(src, GW, proto, body, frag=frag,
                           ident=rnd.randrange(65536),
                           ttl=rnd.choice([0, 1, 64]),
                           total=rnd.choice([None, None,
                                             rnd.randrange(0x10000)]))
                raw.send_ip(pkt)
                if k % 500 == 0:
                    lab.daemon.assert_alive()
            lab.daemon.assert_alive()
            raw.close()

            # Afterwards: a normal download works.
            n = 64 * MiB
            got, size, dt = _curl_sha(lab, 0, "http://%s:%d/gen/5/%d"
                                      % (GW, http.port, n), timeout=60)
            assert size == n and got == gen_sha256(5, n)

            # And fragmented UDP gets through again, at the latest once
            # the garbage fragments have expired from the reassembler.
            echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            g = lab.sock(0, socket.SOCK_DGRAM)
            try:
                echo.bind(("127.0.0.1", 0))
                echo.settimeout(0.25)
                data = pattern(8000, "after-storm")
                t0 = time.monotonic()
                deadline = t0 + pb.scaled(20)
                while True:
                    g.sendto(data, (GW, echo.getsockname()[1]))
                    try:
                        if echo.recvfrom(70000)[0] == data:
                            break
                    except socket.timeout:
                        pass
                    if time.monotonic() > deadline:
                        failures.append("fragmented UDP still dropped %.0fs"
                                        " after the storm" % pb.scaled(20))
                        break
                print("fragmented UDP through %.1fs after the storm"
                      % (time.monotonic() - t0))
            finally:
                echo.close()
                g.close()
            r = lab.router()
            print("router counters after bad input: %s" % json.dumps(
                {"drops": {k: v for k, v in r["drops"].items() if v},
                 "reassembly": r["reassembly"]}))
            assert not failures, "\n".join(failures)
    finally:
        hs.close()


def test_syn_flood_past_max_flows(tmp_path):
    """max-flows=64: 64 connections open and keep working, the 65th is
    refused with RST and counted in drops.flow_table_full; once the flood
    is over the router serves again."""
    pb.require_tools("curl", "sha256sum", "bash")
    hs = host_listener(backlog=512)
    port = hs.getsockname()[1]
    try:
        with RouterLab(tmp_path, user=",max-flows=64,max-flows-per-guest=64") \
                as lab, \
                HttpServer(tmp_path) as http:
            r = lab.router()
            assert r["flows_max"] == 64, r
            conns = []
            for k in range(64):
                c = lab.sock(0)
                c.settimeout(pb.scaled(10))
                c.connect((GW, port))
                a, _ = accept(hs)
                conns.append((c, a))
            assert lab.router()["flows"] == 64
            before = lab.router()

            # The flood: more connection attempts than the table holds.
            refused = 0
            t0 = time.monotonic()
            for k in range(50):
                c = lab.sock(0)
                c.settimeout(pb.scaled(5))
                try:
                    c.connect((GW, port))
                    raise AssertionError("connection %d beyond max-flows "
                                         "was accepted" % (65 + k))
                except (ConnectionRefusedError, ConnectionResetError):
                    refused += 1
                finally:
                    c.close()
            print("50 refusals in %.3fs" % (time.monotonic() - t0))
            after = lab.router()
            assert refused == 50
            assert _delta(after, before, "drops.flow_table_full") >= 50, after
            hs.settimeout(0.1)
            with pytest.raises(socket.timeout):
                hs.accept()

            # The 64 existing flows still carry data both ways.
            for k, (c, a) in enumerate(conns):
                c.sendall(b"still here %d" % k)
                a.sendall(b"and me %d" % k)
            for k, (c, a) in enumerate(conns):
                assert recv_exact(a, len(b"still here %d" % k)) == \
                    b"still here %d" % k
                assert recv_exact(c, len(b"and me %d" % k)) == b"and me %d" % k
            for c, a in conns:
                c.close()
                a.close()
            lab.wait_flows(0)

            n = 16 * MiB
            got, size, _ = _curl_sha(lab, 0, "http://%s:%d/gen/3/%d"
                                     % (GW, http.port, n), timeout=60)
            assert size == n and got == gen_sha256(3, n)
    finally:
        hs.close()


# --------------------------------------------------------------------------
# A guest that reuses its source port at once (as Linux may right after a
# close): the lingering flow of the old connection must not delay the new
# one (RFC 6191 accepts a new SYN in TIME-WAIT).


def test_port_reuse_right_after_close(tmp_path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    try:
        with RouterLab(tmp_path) as lab:
            sport = pb.free_port()
            for k in range(5):
                c = lab.sock(0)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                c.bind(("0.0.0.0", sport))
                c.settimeout(5)
                t0 = time.monotonic()
                c.connect((GW, port))
                dt = time.monotonic() - t0
                a, _ = srv.accept()
                c.sendall(b"round %d" % k)
                assert a.recv(100) == b"round %d" % k
                # the host closes first (so the guest's side does not
                # stay in TIME-WAIT and may bind the port again); both
                # FINs done, the router's flow lingers
                a.close()
                assert c.recv(100) == b""
                c.close()
                # without the TIME-WAIT rule the next SYN would wait for
                # the guest's 1 s retransmission
                assert dt < 0.5, "connect %d took %.2fs" % (k, dt)
    finally:
        srv.close()
