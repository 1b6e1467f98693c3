# SPDX-License-Identifier: MIT
"""The router's DNS at 10.0.2.3 against real clients and local upstreams.

Guests are network namespaces behind TAP ports on the default switch, with
the user-mode router `u` on the same switch; they are configured statically
(10.0.2.15+i/24 via 10.0.2.2) or by busybox udhcpc.  The client is dig
(bind9-dnsutils), or a UDP socket the test opens inside a guest namespace
when it must choose the query's ID, source port or bytes.

Upstreams are always ours, on loopback: dnsmasq (--no-resolv, test records)
or `FakeUpstream`, a few lines of Python in a thread of the test that
records every query it receives (transport, source, ID, name) and answers
as the test says.  The router is always given dns-upstream=127.0.0.1:PORT
or dns-resolv-conf= with a file the test wrote: never the host's
/etc/resolv.conf (this machine's resolver is private and must not be
asked).  The resolv.conf tests run patchbay and their dnsmasq servers inside
a namespace the test made, so port 53 on 127.0.0.1/127.0.0.2 is theirs.

What is asserted is what a user sees (the answer dig prints, its ID, the
transport) plus the router's "dns" counters (queries, local, forwarded,
answers, malformed, mismatched, timeouts, no_upstream, upstreams) and what
the upstream saw.  Every wait polls with a deadline; dig runs with
+time/+tries so no query can hang.

Needs root, /dev/net/tun, iproute2, dig, dnsmasq and busybox (udhcpc);
skips say which.
"""

import contextlib
import os
import re
import selectors
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

import pb

GW = "10.0.2.2"
DNS = "10.0.2.3"
LOOP = "127.0.0.1"


# --------------------------------------------------------------------------
# DNS messages (just what the tests need: one question, A and TXT answers)


def dns_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_query(qid, name, qtype=1, flags=0x0100, qdcount=1):
    """A query: header (RD set by default) + one question of class IN."""
    return struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, 0) + \
        dns_name(name) + struct.pack("!HH", qtype, 1)


def _skip_name(b, off):
    while True:
        n = b[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def dns_parse(b):
    """dict(id, flags, rcode, qd, an, name, qtype, qend, a=[addresses],
    txt=[strings]) of a message with one uncompressed question."""
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", b[:12])
    off = 12
    labels = []
    while b[off]:
        labels.append(b[off + 1:off + 1 + b[off]].decode("ascii", "replace"))
        off += 1 + b[off]
    off += 1
    qtype, _qclass = struct.unpack("!HH", b[off:off + 4])
    off += 4
    m = {"id": qid, "flags": flags, "rcode": flags & 0xF, "qd": qd, "an": an,
         "name": ".".join(labels), "qtype": qtype, "qend": off, "a": [],
         "txt": []}
    for _ in range(an):
        off = _skip_name(b, off)
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", b[off:off + 10])
        off += 10
        rdata = b[off:off + rdlen]
        off += rdlen
        if rtype == 1 and rdlen == 4:
            m["a"].append(socket.inet_ntoa(rdata))
        elif rtype == 16:
            m["txt"].append(rdata[1:1 + rdata[0]].decode())
    return m


def dns_reply(query, addrs=(), qid=None, rcode=0, name=None):
    """An answer to `query` (bytes): the same question (or one for `name`),
    one A record per address; ID `qid` or the query's own."""
    q = dns_parse(query)
    question = query[12:q["qend"]]
    if name is not None:
        question = dns_name(name) + struct.pack("!HH", q["qtype"], 1)
    flags = 0x8000 | (q["flags"] & 0x0100) | 0x0080 | rcode
    out = struct.pack("!HHHHHH", q["id"] if qid is None else qid, flags, 1,
                      len(addrs), 0, 0) + question
    for a in addrs:
        out += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + \
            socket.inet_aton(a)
    return out


# --------------------------------------------------------------------------
# Upstreams: FakeUpstream (Python, in a thread) and dnsmasq (a process)


class FakeUpstream:
    """A DNS server on 127.0.0.1:<port> in a thread of the test.

    Records every query as dict(proto, src=(addr, port), id, name, qtype,
    raw).  `handler(up, raw, src)` decides what to do (default: answer with
    answer_for(name), 192.0.2.1 unless the test says otherwise);
    silent=True never answers.  tcp=True listens on TCP at the same port
    too (queries read and answered one per connection round).  Use as a
    context manager; the thread and sockets are gone on exit.
    """

    def __init__(self, handler=None, silent=False, tcp=False, answer_for=None):
        self.handler = handler
        self.silent = silent
        self.answer_for = answer_for or (lambda name: ["192.0.2.1"])
        self.queries = []
        self.errors = []
        self.tcp_closed = 0     # TCP connections it ended (idle 3 s)
        self.lock = threading.Lock()
        self.tcp = None
        for _ in range(20):
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind((LOOP, 0))
            self.port = self.udp.getsockname()[1]
            if not tcp:
                break
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                t.bind((LOOP, self.port))
            except OSError:
                t.close()
                self.udp.close()
                continue
            t.listen(8)
            self.tcp = t
            break
        else:
            raise AssertionError("no UDP+TCP port pair free on loopback")
        self._rd, self._wr = os.pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="fake-upstream:%d" % self.port)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        os.write(self._wr, b"x")
        self._thread.join(timeout=pb.scaled(10))
        alive = self._thread.is_alive()
        for s in (self.udp, self.tcp):
            if s is not None:
                s.close()
        os.close(self._rd)
        os.close(self._wr)
        assert not alive, "fake upstream thread did not stop"
        if exc[0] is None:
            assert not self.errors, "fake upstream: %r" % self.errors
        return False

    @property
    def addr(self):
        return "%s:%d" % (LOOP, self.port)

    def seen(self, name=None, proto=None):
        with self.lock:
            return [q for q in self.queries
                    if (name is None or q["name"] == name) and
                    (proto is None or q["proto"] == proto)]

    def reply(self, raw, src):
        """The default answer, sent from the query's socket (UDP)."""
        q = dns_parse(raw)
        self.udp.sendto(dns_reply(raw, self.answer_for(q["name"])), src)

    def _record(self, proto, raw, src):
        q = dns_parse(raw)
        q.update(proto=proto, src=src, raw=raw)
        with self.lock:
            self.queries.append(q)

    def _tcp_conn(self, c):
        c.settimeout(pb.scaled(3))
        src = c.getpeername()
        buf = b""
        try:
            while True:
                while len(buf) < 2 or len(buf) < 2 + \
                        struct.unpack("!H", buf[:2])[0]:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                n = struct.unpack("!H", buf[:2])[0]
                raw, buf = buf[2:2 + n], buf[2 + n:]
                self._record("tcp", raw, src)
                if not self.silent:
                    q = dns_parse(raw)
                    ans = dns_reply(raw, self.answer_for(q["name"]))
                    c.sendall(struct.pack("!H", len(ans)) + ans)
        except (OSError, socket.timeout):
            return
        finally:
            c.close()
            with self.lock:
                self.tcp_closed += 1

    def _serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self._rd, selectors.EVENT_READ, "stop")
        sel.register(self.udp, selectors.EVENT_READ, "udp")
        if self.tcp is not None:
            sel.register(self.tcp, selectors.EVENT_READ, "tcp")
        try:
            while True:
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "stop":
                        return
                    try:
                        if key.data == "udp":
                            raw, src = self.udp.recvfrom(65536)
                            self._record("udp", raw, src)
                            if self.silent:
                                continue
                            if self.handler:
                                self.handler(self, raw, src)
                            else:
                                self.reply(raw, src)
                        else:
                            c, _ = self.tcp.accept()
                            self._tcp_conn(c)
                    except Exception as e:  # noqa: BLE001 - reported
                        with self.lock:
                            self.errors.append(repr(e))
        finally:
            sel.close()


class Dnsmasq:
    """dnsmasq as a local upstream: --no-resolv --no-hosts, only our
    records, on addr:port (UDP and TCP), optionally inside namespace ns.
    -d (debug) keeps it in the foreground and without TCP child processes,
    so the PID we started is the whole server.  Queries are logged to a
    file (seen()).  Ready once it answers a probe name."""

    PROBE = "probe.pb-ready.test"

    def __init__(self, tmpdir, args=(), addr=LOOP, port=None, ns=None,
                 tag="dm"):
        pb.require_tools("dnsmasq", "dig")
        self.args, self.addr, self.ns = list(args), addr, ns
        self.port = port
        self.log_path = Path(str(tmpdir)) / ("%s.%d.log" % (tag, id(self)))
        self.proc = None

    def _cmd(self):
        return ["dnsmasq", "-d", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--listen-address=%s" % self.addr,
                "--bind-interfaces", "--port=%d" % self.port,
                "--log-queries", "--log-facility=-",
                "--address=/pb-ready.test/192.0.2.254"] + self.args

    def _probe(self):
        cmd = ["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port),
               "@" + self.addr, self.PROBE]
        r = (pb.ns_exec(self.ns, cmd, check=False) if self.ns
             else pb.run(cmd, check=False))
        return r.stdout.strip() == "192.0.2.254"

    def __enter__(self):
        fixed = self.port is not None
        for _ in range(1 if fixed else 10):
            if not fixed:
                self.port = pb.free_port(socket.SOCK_DGRAM, self.addr)
            out = open(self.log_path, "wb")
            try:
                if self.ns:
                    self.proc = pb.ns_popen(self.ns, self._cmd(), stdout=out,
                                            stderr=subprocess.STDOUT)
                else:
                    self.proc = pb.popen(self._cmd(), stdout=out,
                                         stderr=subprocess.STDOUT)
            finally:
                out.close()

            def up():
                if self.proc.poll() is not None:
                    return "exited"
                return self._probe()
            state = pb.wait_until(up, 10, "dnsmasq on %s:%d"
                                  % (self.addr, self.port))
            if state is True:
                return self
            # the port was taken (TCP side, usually): try another one
        raise AssertionError("dnsmasq did not start; log:\n%s" % self.log())

    def __exit__(self, *exc):
        if self.proc is not None:
            pb.stop_proc(self.proc)
        return False

    @property
    def upstream(self):
        return "%s:%d" % (self.addr, self.port)

    def log(self):
        return self.log_path.read_text(errors="replace") \
            if self.log_path.exists() else ""

    def seen(self, name=None):
        """Names of the queries it received (probes excluded)."""
        out = []
        for m in re.finditer(r"query\[(\w+)\] (\S+) from", self.log()):
            if m.group(2) == self.PROBE:
                continue
            if name is None or m.group(2).lower() == name.lower():
                out.append((m.group(1), m.group(2)))
        return out


# --------------------------------------------------------------------------
# dig


def dig(ns, *args, server=DNS, time_s=1, tries=2, check=True, timeout=None):
    """Run dig @server inside ns (+time/+tries bound it); parsed result."""
    pb.require_tools("dig")
    cmd = ["dig", "@" + server, "+time=%d" % time_s, "+tries=%d" % tries]
    cmd += list(args)
    t0 = time.monotonic()
    r = pb.ns_exec(ns, cmd, check=False,
                   timeout=timeout or (time_s * tries * 3 + 15))
    res = parse_dig(r.stdout)
    res["rc"] = r.returncode
    res["elapsed"] = time.monotonic() - t0
    res["out"] = r.stdout + r.stderr
    if check:
        assert r.returncode == 0 and res["status"], \
            "dig %s failed (rc=%d):\n%s" % (" ".join(args), r.returncode,
                                           res["out"])
    return res


def parse_dig(out):
    """status, id, flags, answers [(name, type, data)], proto (UDP/TCP),
    truncated (dig retried over TCP)."""
    res = {"status": None, "id": None, "flags": [], "answers": [],
           "proto": None, "truncated": "Truncated, retrying in TCP" in out}
    m = None
    for m in re.finditer(r"status: (\w+), id: (\d+)", out):
        pass
    if m:
        res["status"], res["id"] = m.group(1), int(m.group(2))
    f = re.findall(r";; flags: ([a-z ]*);", out)
    if f:
        res["flags"] = f[-1].split()
    m = re.search(r";; SERVER: \S+ \((UDP|TCP)\)", out)
    if m:
        res["proto"] = m.group(1)
    in_answer = False
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            in_answer = True
            continue
        if in_answer:
            if not line.strip() or line.startswith(";"):
                in_answer = False
                continue
            parts = line.split(None, 4)
            res["answers"].append((parts[0].rstrip(".").lower(), parts[3],
                                   parts[4]))
    return res


def addrs(res):
    return [d for _, t, d in res["answers"] if t == "A"]


# --------------------------------------------------------------------------
# The lab


class NsDaemon(pb.Daemon):
    """A Daemon whose patchbay runs inside namespace `ns` (ip netns exec
    execs, so the PID is patchbay's own)."""

    def __init__(self, ns, *a, **kw):
        super().__init__(*a, **kw)
        self.ns = ns

    def argv(self):
        return ["ip", "netns", "exec", self.ns] + super().argv()


UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
deconfig) ip addr flush dev "$interface"; ip link set dev "$interface" up ;;
bound|renew)
	ip addr replace "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route replace default via "$router" dev "$interface"
	;;
esac
exit 0
"""


class DnsLab:
    """patchbay with the router `u` (user,id=u,<user>) and n guests, each a
    namespace with a TAP port.  static=True: guest i is 10.0.2.(15+i)/24
    via 10.0.2.2; False: the TAP is up without an address (udhcpc()).
    host_ns: run patchbay inside that namespace (its loopback is then the
    guests' 10.0.2.2 and the upstreams' home)."""

    def __init__(self, tmpdir, user, n=1, static=True, host_ns=None):
        # Never let a test fall back to the host's /etc/resolv.conf.
        assert "dns-upstream=" in user or "dns-resolv-conf=" in user, user
        self.tmpdir, self.user, self.n = tmpdir, user, n
        self.static, self.host_ns = static, host_ns
        self.ns, self.ifname, self.ip = [], [], []
        self.daemon = None
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        pb.require_netns()
        try:
            args = ["--netdev", "user,id=u," + self.user]
            for i in range(self.n):
                ns = self._stack.enter_context(pb.netns("g%d" % (i + 1)))
                self.ns.append(ns)
                self.ifname.append(pb.unique("pbq"))
                args += ["--netdev", pb.tap_netdev("t%d" % (i + 1),
                                                   self.ifname[i], ns)]
            if self.host_ns:
                d = NsDaemon(self.host_ns, args, self.tmpdir)
            else:
                d = pb.Daemon(args, self.tmpdir)
            self.daemon = self._stack.enter_context(d)
            for i in range(self.n):
                ns, ifn = self.ns[i], self.ifname[i]
                if self.static:
                    ip = "10.0.2.%d" % (15 + i)
                    pb.setup_tap(ns, ifn, ip + "/24")
                    pb.ns_exec(ns, ["ip", "route", "add", "default", "via",
                                    GW])
                    self.ip.append(ip)
                else:
                    pb.wait_until(lambda: pb.link_exists(ns, ifn), 10,
                                  "interface %s in %s" % (ifn, ns))
                    pb.ns_exec(ns, ["sysctl", "-q", "-w",
                                    "net.ipv6.conf.%s.disable_ipv6=1" % ifn],
                               check=False)
                    pb.ns_exec(ns, ["ip", "link", "set", "dev", ifn, "up"])
                    self.ip.append(None)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def router(self, stats=None):
        s = stats if stats is not None else self.daemon.stats()
        port = pb.find_port(s, "u")
        assert port is not None and "router" in port, s
        return port["router"]

    def dns(self):
        return self.router()["dns"]

    def udhcpc(self, i, hostname=None):
        """Lease an address for guest i with busybox udhcpc (one shot, -q);
        returns the address."""
        out = pb.run(["busybox", "--list"], check=False).stdout.split()
        if "udhcpc" not in out:
            pytest.skip("needs busybox with the udhcpc applet")
        script = Path(str(self.tmpdir)) / "udhcpc.sh"
        if not script.exists():
            script.write_text(UDHCPC_SCRIPT)
            script.chmod(0o755)
        cmd = ["busybox", "udhcpc", "-i", self.ifname[i], "-f", "-n", "-q",
               "-t", "3", "-T", "1", "-s", str(script)]
        if hostname:
            cmd += ["-x", "hostname:%s" % hostname]
        p = pb.ns_popen(self.ns[i], cmd, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
        try:
            out, _ = p.communicate(timeout=pb.scaled(20))
        except subprocess.TimeoutExpired:
            pb.stop_proc(p)
            raise AssertionError("udhcpc in %s did not finish" % self.ns[i])
        assert p.returncode == 0, "udhcpc failed: %s" % out
        js = pb.ns_exec(self.ns[i], ["ip", "-4", "-o", "addr", "show", "dev",
                                     self.ifname[i]]).stdout
        m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", js)
        assert m, js
        self.ip[i] = m.group(1)
        return self.ip[i]

    def sock(self, i, port=0):
        """A UDP socket inside guest i, bound to port (0: any)."""
        s = pb.ns_socket(self.ns[i], socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        return s


def delta(after, before, *keys):
    return {k: after[k] - before[k] for k in keys}


def recv_dns(s, timeout=3.0):
    """The next DNS message on guest socket s (parsed, with "raw" and
    "src"), or None on timeout.  Nothing is skipped: the caller asserts
    that it is the answer it expects."""
    s.settimeout(pb.scaled(timeout))
    try:
        raw, src = s.recvfrom(65536)
    except socket.timeout:
        return None
    m = dns_parse(raw)
    m["raw"], m["src"] = raw, src
    return m


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# 1. Forwarding over UDP and TCP to dnsmasq


def test_udp_and_tcp_through_dnsmasq(tmp_path):
    """A, TXT and NXDOMAIN answers of a loopback dnsmasq reach dig in a
    guest, over UDP and over TCP, with the flags and ID dig expects; the
    counters count the UDP queries as forwarded and answered, and the TCP
    ones as TCP connections of the router."""
    with Dnsmasq(tmp_path, ["--address=/example.test/192.0.2.7",
                            "--txt-record=t.example.test,hello patchbay",
                            "--local=/nx.test/"]) as dm:
        with DnsLab(tmp_path, "dns-upstream=" + dm.upstream) as lab:
            g = lab.ns[0]
            before = lab.router()
            r = dig(g, "www.example.test")
            assert r["status"] == "NOERROR" and r["proto"] == "UDP", r["out"]
            assert addrs(r) == ["192.0.2.7"], r["out"]
            assert "qr" in r["flags"] and "rd" in r["flags"], r["out"]
            r = dig(g, "t.example.test", "TXT")
            assert r["answers"] == [("t.example.test", "TXT",
                                     '"hello patchbay"')], r["out"]
            r = dig(g, "nothing.nx.test")
            assert r["status"] == "NXDOMAIN" and not r["answers"], r["out"]
            mid = lab.router()
            d = delta(mid["dns"], before["dns"], "queries", "forwarded",
                      "answers", "local", "malformed", "mismatched",
                      "timeouts")
            assert d == {"queries": 3, "forwarded": 3, "answers": 3,
                         "local": 0, "malformed": 0, "mismatched": 0,
                         "timeouts": 0}, d
            assert mid["dns"]["upstreams"] == 1, mid["dns"]

            r = dig(g, "+tcp", "tcp.example.test")
            assert r["proto"] == "TCP" and addrs(r) == ["192.0.2.7"], r["out"]
            r = dig(g, "+tcp", "t.example.test", "TXT")
            assert r["proto"] == "TCP" and r["answers"] == \
                [("t.example.test", "TXT", '"hello patchbay"')], r["out"]
            r = dig(g, "+tcp", "nothing.nx.test")
            assert r["proto"] == "TCP" and r["status"] == "NXDOMAIN", r["out"]
            after = lab.router()
            assert after["tcp_opened"] - mid["tcp_opened"] == 3, \
                (mid, after)
            # the router's DNS-over-TCP sessions relayed them
            d = delta(after["dns"], mid["dns"], "queries", "forwarded",
                      "answers", "local", "tcp_sessions", "tcp_limited")
            assert d == {"queries": 3, "forwarded": 3, "answers": 3,
                         "local": 0, "tcp_sessions": 3, "tcp_limited": 0}, d
            # dnsmasq saw every query (3 over UDP, 3 over TCP)
            assert len(dm.seen()) == 6, dm.seen()


# --------------------------------------------------------------------------
# 2. A large answer: truncated over UDP, complete over TCP


def test_large_answer_retried_over_tcp(tmp_path):
    """60 TXT records (~3.5 KB).  Without EDNS dnsmasq truncates the UDP
    answer to 512 bytes (TC); the router relays it as it is, dig retries
    over TCP through the router and gets all 60.  With EDNS and a 4096
    byte buffer the same answer comes whole over UDP (IP fragments on
    the TAP)."""
    n = 60
    recs = ["--txt-record=big.example.test,record-%02d-%s" % (i, "x" * 40)
            for i in range(n)]
    want = sorted('"record-%02d-%s"' % (i, "x" * 40) for i in range(n))
    with Dnsmasq(tmp_path, recs + ["--edns-packet-max=4096"]) as dm:
        with DnsLab(tmp_path, "dns-upstream=" + dm.upstream) as lab:
            g = lab.ns[0]
            before = lab.router()
            t0 = time.monotonic()
            r = dig(g, "+noedns", "big.example.test", "TXT", time_s=2)
            assert r["truncated"], r["out"]
            assert r["proto"] == "TCP", r["out"]
            assert sorted(d for _, t, d in r["answers"] if t == "TXT") \
                == want, r["out"]
            print("truncated UDP + TCP retry: %.2fs"
                  % (time.monotonic() - t0))
            after = lab.router()
            d = delta(after["dns"], before["dns"], "forwarded", "answers",
                      "mismatched")
            # the UDP query, relayed with TC set; then the same query on
            # one TCP connection, relayed by a DNS-over-TCP session
            assert d == {"forwarded": 2, "answers": 2, "mismatched": 0}, d
            assert after["dns"]["tcp_sessions"] - \
                before["dns"]["tcp_sessions"] == 1, after["dns"]
            assert after["tcp_opened"] - before["tcp_opened"] == 1, after
            assert dm.seen() == [("TXT", "big.example.test")] * 2, dm.seen()

            # The same answer in one UDP datagram (EDNS, 4096 bytes).
            r = dig(g, "+bufsize=4096", "big.example.test", "TXT", time_s=2)
            assert not r["truncated"] and r["proto"] == "UDP", r["out"]
            assert sorted(d for _, t, d in r["answers"] if t == "TXT") \
                == want, r["out"]
            m = re.search(r"MSG SIZE\s+rcvd: (\d+)", r["out"])
            assert m and int(m.group(1)) > 3000, r["out"]
            assert lab.router()["tcp_opened"] == after["tcp_opened"]


# --------------------------------------------------------------------------
# 3. Failover


def _dead_udp_port():
    """A loopback UDP port nothing listens on (ICMP port unreachable)."""
    return pb.free_port(socket.SOCK_DGRAM)


def test_failover_on_icmp_refused(tmp_path):
    """First upstream a loopback port where nothing listens (ICMP port
    unreachable at once), second dnsmasq: dig's retry gets the answer, a
    later query goes straight to the second upstream (the choice is
    router-wide), and the router does not spin meanwhile."""
    with Dnsmasq(tmp_path, ["--address=/example.test/192.0.2.7"]) as dm:
        dead = _dead_udp_port()
        user = "dns-upstream=%s:%d,dns-upstream=%s" % (LOOP, dead,
                                                          dm.upstream)
        with DnsLab(tmp_path, user) as lab:
            g = lab.ns[0]
            pid = lab.daemon.proc.pid
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            r = dig(g, "one.example.test", time_s=1, tries=4)
            assert addrs(r) == ["192.0.2.7"], r["out"]
            assert r["elapsed"] < pb.scaled(5), r["elapsed"]
            # Router-wide: new queries (new guest sockets) go to the
            # working upstream first time.
            for i in range(3):
                r = dig(g, "again%d.example.test" % i, time_s=1, tries=1)
                assert addrs(r) == ["192.0.2.7"], r["out"]
            d = lab.dns()
            assert d["answers"] >= 4 and d["upstreams"] == 2, d
            assert len(dm.seen()) == 4, dm.seen()
            cpu = cpu_seconds(pid) - cpu0
            wall = time.monotonic() - t0
            print("failover (ICMP): cpu %.2fs over %.2fs" % (cpu, wall))
            assert cpu < 0.25 * wall + 0.1, \
                "patchbay used %.2fs CPU in %.2fs" % (cpu, wall)
            moves = lab.daemon.log_lines("does not answer")
            assert len(moves) == 1, moves
            assert "suppressed" not in lab.daemon.log()


def test_failover_on_timeout(tmp_path):
    """First upstream a UDP socket that receives and never answers, second
    dnsmasq: after the router's timeout (2 s) it moves to the second, and
    dig's next retry is answered; the whole exchange is bounded (~10 s);
    later queries no longer go to the silent one."""
    with FakeUpstream(silent=True) as silent, \
            Dnsmasq(tmp_path, ["--address=/example.test/192.0.2.7"]) as dm:
        user = "dns-upstream=%s,dns-upstream=%s" % (silent.addr, dm.upstream)
        with DnsLab(tmp_path, user) as lab:
            g = lab.ns[0]
            t0 = time.monotonic()
            r = dig(g, "slow.example.test", time_s=1, tries=8, timeout=20)
            took = time.monotonic() - t0
            print("failover (timeout): answered after %.2fs" % took)
            assert addrs(r) == ["192.0.2.7"], r["out"]
            assert took < pb.scaled(10), took
            assert silent.seen("slow.example.test"), silent.queries
            d = lab.dns()
            assert d["timeouts"] >= 1 and d["answers"] == 1, d
            n_silent = len(silent.seen())
            r = dig(g, "fast.example.test", time_s=1, tries=1)
            assert addrs(r) == ["192.0.2.7"], r["out"]
            assert r["elapsed"] < pb.scaled(1.5), r["elapsed"]
            assert len(silent.seen()) == n_silent, silent.queries
            assert len(lab.daemon.log_lines("does not answer")) == 1, \
                lab.daemon.log_lines("dns")


# --------------------------------------------------------------------------
# 4. Fresh IDs and source ports; strict matching


def test_fresh_ids_and_source_ports(tmp_path):
    """Two guest sockets (ports 1053 and 1054, below the kernel's
    ephemeral range) each send 20 queries with IDs 1..20.  The upstream
    sees other IDs (random: nearly all distinct) from other source ports
    (one per guest socket, different from each other); every guest gets
    its own ID back with the answer to its own question."""
    def answer_for(name):
        m = re.match(r"q(\d+)-(\d)\.ids\.test$", name)
        return ["192.0.%s.%s" % (m.group(2), m.group(1))] if m else []

    n = 20
    with FakeUpstream(answer_for=answer_for) as up:
        with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
            socks = [lab.sock(0, 1053), lab.sock(0, 1054)]
            try:
                for k, s in enumerate(socks):
                    for i in range(1, n + 1):
                        name = "q%d-%d.ids.test" % (i, k)
                        s.sendto(dns_query(i, name), (DNS, 53))
                        m = recv_dns(s)
                        assert m is not None, "no answer to %s" % name
                        assert m["id"] == i and m["name"] == name, m
                        assert m["a"] == ["192.0.%d.%d" % (k, i)], m
                        assert m["src"] == (DNS, 53), m
            finally:
                for s in socks:
                    s.close()
            got = up.seen()
            assert len(got) == 2 * n, got
            assert not up.errors, up.errors
            ports = {}
            for q in got:
                i = int(q["name"].split("-")[0][1:])
                k = int(q["name"].split("-")[1][0])
                ports.setdefault(k, set()).add(q["src"][1])
                q["guest_id"] = i
            # one upstream socket per guest socket, not the guest's port
            assert all(len(p) == 1 for p in ports.values()), ports
            p0, p1 = ports[0].pop(), ports[1].pop()
            assert p0 != p1 and {p0, p1}.isdisjoint({1053, 1054}), (p0, p1)
            ids = [q["id"] for q in got]
            same = [q for q in got if q["id"] == q["guest_id"]]
            assert len(same) <= 1, same       # 40 random IDs: ~0.06% for one
            assert len(set(ids)) >= 2 * n - 3, ids
            d = lab.dns()
            assert (d["forwarded"], d["answers"], d["mismatched"]) == \
                (2 * n, 2 * n, 0), d


def test_spoofed_answers_not_relayed(tmp_path):
    """For one query the upstream first sends, to the router's source port:
    an answer with the right ID from another port (the router's connected
    socket never receives it), one from the right port with a wrong ID, one
    with the right ID but another question, then the real answer, then the
    real answer again.  The guest gets exactly the real answer once: the
    wrong ID, wrong question and duplicate are counted as mismatched; the
    next query's answer is the next thing the guest receives."""
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind((LOOP, 0))

    def spoof(up, raw, src):
        q = dns_parse(raw)
        if q["name"] != "target.spoof.test":
            up.reply(raw, src)
            return
        bad = ["192.0.2.66"]
        other.sendto(dns_reply(raw, bad), src)                    # port
        up.udp.sendto(dns_reply(raw, bad, qid=q["id"] ^ 0x5A5A), src)  # ID
        up.udp.sendto(dns_reply(raw, bad, name="other.spoof.test"), src)
        up.udp.sendto(dns_reply(raw, ["192.0.2.1"]), src)         # real
        up.udp.sendto(dns_reply(raw, ["192.0.2.1"]), src)         # again

    try:
        with FakeUpstream(handler=spoof) as up:
            with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
                before = lab.dns()
                s = lab.sock(0)
                try:
                    s.sendto(dns_query(0x4242, "target.spoof.test"),
                             (DNS, 53))
                    m = recv_dns(s)
                    assert m is not None, "no answer relayed"
                    assert (m["id"], m["name"], m["a"]) == \
                        (0x4242, "target.spoof.test", ["192.0.2.1"]), m
                    s.sendto(dns_query(0x4343, "next.spoof.test"), (DNS, 53))
                    m = recv_dns(s)
                    assert m is not None, "no answer to the next query"
                    assert (m["id"], m["name"], m["a"]) == \
                        (0x4343, "next.spoof.test", ["192.0.2.1"]), m
                finally:
                    s.close()
                def counted():
                    x = lab.dns()
                    return x if x["mismatched"] - before["mismatched"] >= 3 \
                        else None
                d = delta(pb.wait_until(counted, 5, "mismatched counted"),
                          before, "forwarded", "answers", "mismatched")
                assert d == {"forwarded": 2, "answers": 2, "mismatched": 3}, d
                assert not up.errors, up.errors
    finally:
        other.close()


# --------------------------------------------------------------------------
# 5. Local names


def test_dhcp_hostname_resolves_from_another_guest(tmp_path):
    """Guest 1 leases with hostname alpha; guest 2 (another lease) resolves
    alpha.lab.test and alpha (any case) to guest 1's address, answered by
    the router (AA, never asked upstream); AAAA for it is NODATA; the
    address answers a ping by that name."""
    with Dnsmasq(tmp_path, ["--address=/example.test/192.0.2.7"]) as dm:
        with DnsLab(tmp_path, "domainname=lab.test,dns-upstream=" +
                    dm.upstream, n=2, static=False) as lab:
            a = lab.udhcpc(0, hostname="alpha")
            b = lab.udhcpc(1)
            assert a != b, (a, b)
            g = lab.ns[1]
            before = lab.dns()
            for name in ("alpha.lab.test", "alpha", "ALPHA.Lab.Test",
                         "alpha.patchbay.internal"):
                r = dig(g, name)
                assert r["status"] == "NOERROR", r["out"]
                assert addrs(r) == [a], r["out"]
                assert "aa" in r["flags"], r["out"]
            r = dig(g, "alpha.lab.test", "AAAA")
            assert r["status"] == "NOERROR" and not r["answers"], r["out"]
            # the guest itself resolves its own name too
            assert addrs(dig(lab.ns[0], "alpha.lab.test")) == [a]
            # and other names still go upstream
            assert addrs(dig(g, "www.example.test")) == ["192.0.2.7"]
            d = delta(lab.dns(), before, "local", "forwarded")
            assert d == {"local": 6, "forwarded": 1}, d
            assert dm.seen() == [("A", "www.example.test")], dm.seen()
            pb.ping(g, a, count=1)


def test_host_name_and_local_zone(tmp_path):
    """host.patchbay.internal is the gateway (10.0.2.2); other names under
    patchbay.internal get NXDOMAIN from the router itself; none of them
    reaches the upstream."""
    with FakeUpstream(tcp=True) as up:
        with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
            g = lab.ns[0]
            for name in ("host.patchbay.internal", "HOST.Patchbay.INTERNAL"):
                r = dig(g, name)
                assert r["status"] == "NOERROR", r["out"]
                assert addrs(r) == [GW], r["out"]
                assert "aa" in r["flags"], r["out"]
            for name in ("nope.patchbay.internal", "a.b.patchbay.internal",
                         "patchbay.internal.x.patchbay.internal"):
                r = dig(g, name)
                assert r["status"] == "NXDOMAIN" and not r["answers"], \
                    r["out"]
            r = dig(g, "host.patchbay.internal", "MX")
            assert r["status"] == "NOERROR" and not r["answers"], r["out"]
            d = lab.dns()
            assert (d["local"], d["forwarded"]) == (6, 0), d
            assert up.seen() == [], up.queries
            # reachable by that name
            pb.ping(g, GW, count=1)


def test_local_names_over_tcp(tmp_path):
    """The same local names over TCP: answered by the router, not sent to
    the upstream."""
    with FakeUpstream(tcp=True) as up:
        with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
            g = lab.ns[0]
            r = dig(g, "+tcp", "host.patchbay.internal")
            assert addrs(r) == [GW], r["out"]
            r = dig(g, "+tcp", "nope.patchbay.internal")
            assert r["status"] == "NXDOMAIN", r["out"]
            assert up.seen() == [], [(q["proto"], q["name"])
                                     for q in up.queries]

def _tcp_dns(ns):
    """A TCP connection from ns to the router's DNS address."""
    c = pb.ns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(pb.scaled(5))
    c.connect((DNS, 53))
    return c


def _framed(m):
    return struct.pack("!H", len(m)) + m


def _read_answers(c, n):
    """n length-prefixed messages from c, parsed."""
    buf, out = b"", []
    while len(out) < n:
        while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
            d = c.recv(65536)
            assert d, "closed after %d of %d answers" % (len(out), n)
            buf += d
        k = struct.unpack("!H", buf[:2])[0]
        out.append(dns_parse(buf[2:2 + k]))
        buf = buf[2 + k:]
    assert buf == b"", buf
    return out


def _closed(c):
    """True once the peer closed (EOF or reset)."""
    try:
        return c.recv(100) == b""
    except ConnectionResetError:
        return True


def test_dns_tcp_session_pipelined_mixed(tmp_path):
    """One TCP connection, queries written back to back and split across
    segments at odd places: local names answered by the router, the rest
    relayed to the upstream over one TCP connection; every answer whole,
    with its query's ID; the upstream sees only its queries."""
    with FakeUpstream(tcp=True, answer_for=lambda n: ["192.0.2.9"]) as up:
        with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
            g = lab.ns[0]
            before = lab.router()["dns"]
            qs = [(0x1111, "host.patchbay.internal"), (0x2222, "a.example"),
                  (0x3333, "nope.patchbay.internal"), (0x4444, "b.example"),
                  (0x5555, "host.patchbay.internal")]
            stream = b"".join(_framed(dns_query(i, n)) for i, n in qs)
            c = _tcp_dns(g)
            # cut inside a length prefix and inside a message
            for a, b in ((0, 1), (1, 30), (30, 31), (31, len(stream))):
                c.sendall(stream[a:b])
            got = {m["id"]: m for m in _read_answers(c, len(qs))}
            assert sorted(got) == sorted(i for i, _ in qs), got
            assert got[0x1111]["a"] == [GW] and got[0x5555]["a"] == [GW]
            assert got[0x3333]["rcode"] == 3, got[0x3333]
            assert got[0x2222]["a"] == ["192.0.2.9"], got[0x2222]
            assert got[0x4444]["a"] == ["192.0.2.9"], got[0x4444]
            c.close()
            assert sorted(q["name"] for q in up.seen()) == \
                ["a.example", "b.example"], up.queries
            assert all(q["proto"] == "tcp" for q in up.seen()), up.queries
            after = lab.router()["dns"]
            d = delta(after, before, "queries", "local", "forwarded",
                      "answers", "tcp_sessions", "malformed")
            assert d == {"queries": 5, "local": 3, "forwarded": 2,
                         "answers": 2, "tcp_sessions": 1,
                         "malformed": 0}, d


def test_dns_tcp_upstream_closes_idle_connection(tmp_path):
    """The upstream closes its idle TCP connection (after 3 seconds, as
    resolvers do): the next query on the guest's open session goes over a
    new connection and is answered."""
    with FakeUpstream(tcp=True, answer_for=lambda n: ["192.0.2.5"]) as up:
        with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
            c = _tcp_dns(lab.ns[0])
            c.settimeout(pb.scaled(8))
            c.sendall(_framed(dns_query(0x101, "one.example")))
            assert _read_answers(c, 1)[0]["a"] == ["192.0.2.5"]
            pb.wait_until(lambda: up.tcp_closed >= 1, 10,
                          "the upstream closing its idle connection")
            c.sendall(_framed(dns_query(0x102, "two.example")))
            m = _read_answers(c, 1)[0]
            assert m["id"] == 0x102 and m["a"] == ["192.0.2.5"], m
            c.close()
            assert [q["name"] for q in up.seen()] == \
                ["one.example", "two.example"]
            assert len({q["src"] for q in up.seen()}) == 2, up.queries


def test_dns_tcp_session_bad_input_and_limits(tmp_path):
    """A zero length, a length over 4096, a response instead of a query and
    garbage each end their session (counted malformed) and nothing reaches
    the upstream; a dead upstream gives SERVFAIL while local names are still
    answered; a guest gets at most 8 sessions at once (the ninth is reset
    and counted); an idle session is closed after 10 seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as dead:
        dead.bind((LOOP, 0))        # bound, not listening: refused
        dead_port = dead.getsockname()[1]
        with DnsLab(tmp_path, "dns-upstream=%s:%d" % (LOOP, dead_port)) \
                as lab:
            g = lab.ns[0]
            before = lab.router()["dns"]
            bad = [b"\0\0",
                   struct.pack("!H", 5000) + b"x" * 100,
                   _framed(dns_query(7, "host.patchbay.internal",
                                     flags=0x8180)),
                   _framed(b"\xff" * 40)]
            for raw in bad:
                c = _tcp_dns(g)
                c.sendall(raw)
                pb.wait_until(lambda: _closed(c), 5, "session closed on %r"
                              % raw[:8], interval=0.05)
                c.close()
            d = delta(lab.router()["dns"], before, "malformed",
                      "forwarded")
            assert d == {"malformed": 4, "forwarded": 0}, d

            # dead upstream: SERVFAIL over TCP; local names still work
            c = _tcp_dns(g)
            c.sendall(_framed(dns_query(0x99, "x.example")) +
                      _framed(dns_query(0x9a, "host.patchbay.internal")))
            got = {m["id"]: m for m in _read_answers(c, 2)}
            assert got[0x99]["rcode"] == 2, got
            assert got[0x9a]["a"] == [GW], got
            c.close()

            # 8 sessions of one guest at once, then resets
            conns = [_tcp_dns(g) for _ in range(8)]
            lim0 = lab.router()["dns"]["tcp_limited"]
            extra = pb.ns_socket(g, socket.AF_INET, socket.SOCK_STREAM)
            extra.settimeout(pb.scaled(5))
            with pytest.raises(ConnectionRefusedError):
                extra.connect((DNS, 53))
            extra.close()
            assert lab.router()["dns"]["tcp_limited"] == lim0 + 1
            # each of the 8 still answers
            for k, c in enumerate(conns):
                c.sendall(_framed(dns_query(k, "host.patchbay.internal")))
                assert _read_answers(c, 1)[0]["id"] == k
            for c in conns[1:]:
                c.close()
            # the one left idle is closed by the router
            t0 = time.monotonic()
            conns[0].settimeout(pb.scaled(20))
            assert _closed(conns[0])
            idle = time.monotonic() - t0
            conns[0].close()
            print("idle DNS-over-TCP session closed after %.1fs" % idle)
            assert 5 <= idle <= 15, idle
            lab.daemon.assert_alive()


# --------------------------------------------------------------------------
# 6. resolv.conf


def _write_resolv(path, text):
    """Replace the file atomically (as resolvconf and NetworkManager do)."""
    tmp = Path(str(path) + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_resolv_conf_read_and_reread(tmp_path):
    """dns-resolv-conf= a file the test wrote: its nameservers (port 53)
    are used; IPv6 nameservers, comments and options are ignored; when it
    changes the router re-reads it and new queries go to the new server;
    with no nameserver at all the guest gets SERVFAIL (no_upstream).  All
    inside a namespace the test made, so port 53 is ours."""
    pb.require_netns()
    resolv = tmp_path / "resolv.conf"
    _write_resolv(resolv, "# test-made\nsearch example.test\n"
                  "nameserver ::1\nnameserver 127.0.0.1\noptions ndots:1\n")
    with pb.netns("host") as hns, \
            Dnsmasq(tmp_path, ["--address=/which.test/192.0.2.1"],
                    addr="127.0.0.1", port=53, ns=hns, tag="one") as one, \
            Dnsmasq(tmp_path, ["--address=/which.test/192.0.2.2"],
                    addr="127.0.0.2", port=53, ns=hns, tag="two") as two:
        with DnsLab(tmp_path, "dns-resolv-conf=%s" % resolv,
                    host_ns=hns) as lab:
            g = lab.ns[0]
            assert addrs(dig(g, "a.which.test")) == ["192.0.2.1"]
            d = lab.dns()
            assert d["upstreams"] == 1 and d["answers"] == 1, d
            assert len(one.seen()) == 1 and not two.seen()

            _write_resolv(resolv, "nameserver 127.0.0.2\n")
            t0 = time.monotonic()

            def moved():
                r = dig(g, "b.which.test", tries=1)
                return addrs(r) == ["192.0.2.2"]
            pb.wait_until(moved, 5, "queries going to the new nameserver")
            print("resolv.conf change picked up after %.2fs"
                  % (time.monotonic() - t0))
            n_one = len(one.seen())
            assert addrs(dig(g, "c.which.test")) == ["192.0.2.2"]
            assert len(one.seen()) == n_one
            assert lab.dns()["upstreams"] == 1
            # TCP follows the file too
            assert addrs(dig(g, "+tcp", "d.which.test")) == ["192.0.2.2"]

            # No nameserver left: SERVFAIL from the router itself.
            _write_resolv(resolv, "# nothing here\n")

            def servfail():
                return dig(g, "e.which.test", tries=1)["status"] == \
                    "SERVFAIL"
            pb.wait_until(servfail, 5, "SERVFAIL without nameservers")
            d = lab.dns()
            assert d["no_upstream"] >= 1 and d["upstreams"] == 0, d
            n_seen = len(one.seen()) + len(two.seen())
            r = dig(g, "f.which.test", tries=1)
            assert r["status"] == "SERVFAIL" and not r["answers"], r["out"]
            assert lab.dns()["no_upstream"] == d["no_upstream"] + 1
            assert len(one.seen()) + len(two.seen()) == n_seen

            _write_resolv(resolv, "nameserver 127.0.0.1\n")
            pb.wait_until(lambda: addrs(dig(g, "g.which.test", tries=1))
                          == ["192.0.2.1"], 5, "nameserver back")


def test_resolv_conf_change_moves_existing_socket(tmp_path):
    """A guest resolver that keeps one socket (one UDP flow) also follows
    a change of resolv.conf."""
    pb.require_netns()
    resolv = tmp_path / "resolv.conf"
    _write_resolv(resolv, "nameserver 127.0.0.1\n")
    with pb.netns("host") as hns, \
            Dnsmasq(tmp_path, ["--address=/which.test/192.0.2.1"],
                    addr="127.0.0.1", port=53, ns=hns, tag="one"), \
            Dnsmasq(tmp_path, ["--address=/which.test/192.0.2.2"],
                    addr="127.0.0.2", port=53, ns=hns, tag="two"):
        with DnsLab(tmp_path, "dns-resolv-conf=%s" % resolv,
                    host_ns=hns) as lab:
            s = lab.sock(0, 1053)
            try:
                s.sendto(dns_query(1, "a.which.test"), (DNS, 53))
                m = recv_dns(s)
                assert m and m["a"] == ["192.0.2.1"], m
                _write_resolv(resolv, "nameserver 127.0.0.2\n")
                # the same socket asks again (polled, with a deadline)
                qids = iter(range(2, 1000))

                def moved():
                    qid = next(qids)
                    s.sendto(dns_query(qid, "b.which.test"), (DNS, 53))
                    m = recv_dns(s, timeout=1)
                    assert m is not None and m["id"] == qid, m
                    return m["a"] == ["192.0.2.2"]
                pb.wait_until(moved, 5, "the socket's queries going to the "
                              "new nameserver")
            finally:
                s.close()


# --------------------------------------------------------------------------
# 7. Bad queries


def _pointer_loop_query(qid):
    # header, then a question name that is a compression pointer to itself
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + \
        b"\xc0\x0c" + struct.pack("!HH", 1, 1)


def test_malformed_queries_counted_and_next_works(tmp_path):
    """Garbage, a short header, a query with QR set, qdcount 0 and 2, a
    compression pointer loop in the question, a label over 63 bytes, a
    name over 255 bytes, a question cut short: each is counted as
    malformed, none is answered or forwarded, and the next good query
    from the same socket still works."""
    bad = [
        ("garbage", b"\xde\xad\xbe\xef" * 10),
        ("short header", b"\x12\x34\x01"),
        ("empty", b""),
        ("QR set", dns_query(0x1001, "qr.bad.test", flags=0x8100)),
        ("qdcount 0", struct.pack("!HHHHHH", 0x1002, 0x0100, 0, 0, 0, 0)),
        ("qdcount 2", dns_query(0x1003, "two.bad.test", qdcount=2) +
         dns_name("second.bad.test") + struct.pack("!HH", 1, 1)),
        ("pointer loop", _pointer_loop_query(0x1004)),
        ("label > 63", struct.pack("!HHHHHH", 0x1005, 0x0100, 1, 0, 0, 0) +
         bytes([64]) + b"a" * 64 + b"\0" + struct.pack("!HH", 1, 1)),
        ("name > 255", struct.pack("!HHHHHH", 0x1006, 0x0100, 1, 0, 0, 0) +
         (bytes([63]) + b"b" * 63) * 5 + b"\0" + struct.pack("!HH", 1, 1)),
        ("cut short", dns_query(0x1007, "cut.bad.test")[:-3]),
    ]
    with FakeUpstream() as up:
        with DnsLab(tmp_path, "dns-upstream=" + up.addr) as lab:
            before = lab.dns()
            s = lab.sock(0)
            try:
                for i, (what, msg) in enumerate(bad):
                    s.sendto(msg, (DNS, 53))
                    # the good query right after: its answer must be the
                    # next (and only) thing the guest receives
                    s.sendto(dns_query(0x2000 + i, "good%d.test" % i),
                             (DNS, 53))
                    m = recv_dns(s)
                    assert m is not None, "no answer after %s" % what
                    assert m["id"] == 0x2000 + i and \
                        m["a"] == ["192.0.2.1"], (what, m)
            finally:
                s.close()
            d = delta(lab.dns(), before, "queries", "malformed", "forwarded",
                      "answers")
            assert d == {"queries": 2 * len(bad), "malformed": len(bad),
                         "forwarded": len(bad), "answers": len(bad)}, d
            assert sorted(q["name"] for q in up.seen()) == \
                sorted("good%d.test" % i for i in range(len(bad))), \
                up.queries
            lab.daemon.assert_alive()
            # dig still fine
            assert addrs(dig(lab.ns[0], "after.bad.test")) == ["192.0.2.1"]


# --------------------------------------------------------------------------
# 8. restrict=on


def test_restrict_refuses_dns_over_udp(tmp_path):
    """restrict=on: a UDP query (forwarded or local name) gets no answer
    and nothing reaches the upstream; dropped as restricted."""
    with FakeUpstream(tcp=True) as up:
        with DnsLab(tmp_path, "restrict=on,dns-upstream=" + up.addr) as lab:
            g = lab.ns[0]
            for name in ("www.example.test", "host.patchbay.internal"):
                r = dig(g, name, tries=1, check=False)
                assert r["rc"] == 9 and not r["answers"], r["out"]
            router = lab.router()
            assert router["dns"]["forwarded"] == 0, router["dns"]
            assert router["drops"]["restricted"] >= 2, router["drops"]
            assert up.seen() == [], up.queries


def test_restrict_refuses_dns_over_tcp(tmp_path):
    """restrict=on: a TCP query does not reach the upstream either."""
    with FakeUpstream(tcp=True) as up:
        with DnsLab(tmp_path, "restrict=on,dns-upstream=" + up.addr) as lab:
            r = dig(lab.ns[0], "+tcp", "www.example.test", tries=1,
                    check=False)
            assert not r["answers"], r["out"]
            assert up.seen() == [], [(q["proto"], q["name"])
                                     for q in up.queries]


# --------------------------------------------------------------------------
# 9. Options


@pytest.mark.parametrize("net,msg", [
    ("dns-upstream=127.0.0.1:1,dns-resolv-conf=/nonexistent/resolv.conf",
     "not both"),
    ("dns-upstream=localhost", "dns-upstream"),
    ("dns-upstream=127.0.0.1:0", "dns-upstream"),
    ("dns-upstream=127.0.0.1:65536", "dns-upstream"),
    (",".join(["dns-upstream=127.0.0.1:%d" % (1000 + i) for i in range(9)]),
     "at most"),
], ids=["upstream-and-resolv-conf", "hostname", "port-0", "port-65536",
        "nine-upstreams"])
def test_bad_dns_options(net, msg):
    """Bad DNS options stop the daemon at start with a message naming the
    problem (nothing is started, nothing is asked)."""
    r = pb.run_patchbay(["--netdev", "user,id=u," + net])
    assert r.returncode != 0, r
    assert msg in r.stderr, r.stderr
