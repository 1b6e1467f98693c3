# SPDX-License-Identifier: MIT
"""Table limits (issue 8, "Limits") with real guests: Linux network
namespaces behind TAP ports on the router's segment (test_router's
RouterLab: guests 10.0.2.15 and .16, gateway 10.0.2.2 = the host's
127.0.0.1).  One guest going past its share is refused and counted in the
router's "limits" stats, while the other guest and the flows already open
carry on.  Bad limit values are start-up errors naming the option.

Every server listens on 127.0.0.1 in the test's own namespace; nothing is
addressed anywhere else.  Needs root and /dev/net/tun (skips say which).
"""

import contextlib
import errno
import json
import os
import socket
import struct
import time

import pytest

import pb
from test_router import GW, RouterLab, accept, host_listener, recv_exact

# A loopback port nobody serves: the router's DNS upstream, never used.
DNS_OFF = ",dns-upstream=127.0.0.1:9"


def limit(r, name):
    return r["limits"][name]


def connect_or_refused(sock, addr, timeout=10.0):
    """True if connected, False if refused (RST)."""
    sock.settimeout(pb.scaled(timeout))
    try:
        sock.connect(addr)
        return True
    except (ConnectionRefusedError, ConnectionResetError):
        return False


def test_flows_per_guest(tmp_path):
    """max-flows-per-guest=8: guest A's 9th connection is refused with RST
    and counted; guest B still connects; A's 8 connections carry data."""
    hs = host_listener(backlog=64)
    port = hs.getsockname()[1]
    try:
        with RouterLab(tmp_path, 2, user=",max-flows=64,"
                       "max-flows-per-guest=8" + DNS_OFF) as lab:
            r = lab.router()
            assert limit(r, "flows_per_guest")["max"] == 8, r["limits"]
            conns = []
            for _ in range(8):
                c = lab.sock(0)
                assert connect_or_refused(c, (GW, port))
                conns.append((c, accept(hs)[0]))
            refused = 0
            for _ in range(3):
                with contextlib.closing(lab.sock(0)) as c:
                    refused += not connect_or_refused(c, (GW, port))
            assert refused == 3
            r = lab.router()
            assert limit(r, "flows_per_guest")["hit"] == 3, r["limits"]
            assert limit(r, "flows")["hit"] == 0, r["limits"]
            assert r["flows_guests"] == 1, r
            # guest B has its own share
            for _ in range(8):
                c = lab.sock(1)
                assert connect_or_refused(c, (GW, port)), \
                    "guest B refused while A holds its share"
                conns.append((c, accept(hs)[0]))
            r = lab.router()
            assert r["flows"] == 16 and r["flows_guests"] == 2, r
            for k, (c, a) in enumerate(conns):
                c.sendall(b"ping %d" % k)
                assert recv_exact(a, len(b"ping %d" % k)) == b"ping %d" % k
                a.sendall(b"pong %d" % k)
                assert recv_exact(c, len(b"pong %d" % k)) == b"pong %d" % k
            for c, a in conns:
                c.close()
                a.close()
            lab.wait_flows(0)
            # A's share is back once its flows are gone
            with contextlib.closing(lab.sock(0)) as c:
                assert connect_or_refused(c, (GW, port))
                accept(hs)[0].close()
    finally:
        hs.close()


def test_syn_flood_half_open(tmp_path):
    """A SYN flood from guest A to a host port that never accepts (its
    backlog full, so the router's connect()s stay pending) is held to A's
    share of max-tcp-half-open (a quarter: 1 of 4): the rest get RST at
    once and are counted.  An established connection of guest B carries
    data throughout, and B still opens new connections."""
    hs = host_listener(backlog=64)
    stuck = host_listener(backlog=0)    # never accepted
    try:
        with RouterLab(tmp_path, 2, user=",max-tcp-half-open=4,"
                       "max-flows-per-guest=64" + DNS_OFF) as lab:
            b = lab.sock(1)
            assert connect_or_refused(b, (GW, hs.getsockname()[1]))
            ba = accept(hs)[0]
            # Fill the listener's accept queue (backlog 0 holds one or
            # two): later connect()s to it stay pending in the kernel.
            fill = []
            for _ in range(3):
                s = socket.socket()
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.connect(stuck.getsockname())
                fill.append(s)
            flood, refused = [], 0
            for _ in range(24):
                c = lab.sock(0)
                c.setblocking(False)
                err = c.connect_ex((GW, stuck.getsockname()[1]))
                assert err in (0, errno.EINPROGRESS), err
                flood.append(c)
            # each refused attempt sees RST; the pending ones stay pending
            def hits(r):
                return (r["limits"]["tcp_half_open"]["hit"] +
                        r["limits"]["tcp_half_open_per_guest"]["hit"])

            def settled():
                return hits(lab.router()) >= 18
            pb.wait_until(settled, pb.scaled(15), "half-open refusals")
            for c in flood:
                e = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                refused += e == errno.ECONNREFUSED
            r = lab.router()
            assert r["tcp_half_open"] <= 1, r
            assert limit(r, "tcp_half_open")["max"] == 4
            assert limit(r, "tcp_half_open_per_guest")["max"] == 1
            assert limit(r, "tcp_half_open_per_guest")["hit"] >= 18, r
            # B is not held back by A's flood: a new connection of its own
            b2 = lab.sock(1)
            assert connect_or_refused(b2, (GW, hs.getsockname()[1]))
            b2a = accept(hs)[0]
            b2.sendall(b"new")
            assert recv_exact(b2a, 3) == b"new"
            b2.close()
            b2a.close()
            assert refused >= 18, (refused, r["limits"])
            assert r["drops"]["flow_table_full"] >= 18, r["drops"]
            # B's connection was never disturbed
            for k in range(5):
                b.sendall(b"still %d" % k)
                assert recv_exact(ba, len(b"still %d" % k)) == b"still %d" % k
                ba.sendall(b"back %d" % k)
                assert recv_exact(b, len(b"back %d" % k)) == b"back %d" % k
            for c in flood + fill:
                c.close()
            b.close()
            ba.close()
    finally:
        hs.close()
        stuck.close()


def test_tftp_per_guest(tmp_path):
    """max-tftp-per-guest=2: guest A's third transfer at once gets TFTP
    ERROR "Server busy" and is counted; guest B's transfer starts."""
    root = tmp_path / "tftp"
    root.mkdir()
    (root / "f").write_bytes(os.urandom(4096))
    rrq = struct.pack("!H", 1) + b"f\0octet\0"
    with RouterLab(tmp_path, 2, user=",tftp=%s,max-tftp-sessions=8,"
                   "max-tftp-per-guest=2" % root + DNS_OFF) as lab:
        socks = []

        def request(i):
            s = lab.sock(i, socket.SOCK_DGRAM)
            s.settimeout(pb.scaled(10))
            s.sendto(rrq, (GW, 69))
            socks.append(s)
            return struct.unpack("!HH", s.recv(1024)[:4])

        try:
            assert request(0) == (3, 1)     # DATA block 1
            assert request(0) == (3, 1)
            assert request(0) == (5, 0)     # ERROR 0: server busy
            assert request(1) == (3, 1)
            r = lab.router()
            assert limit(r, "tftp_per_guest") == {"max": 2, "hit": 1}, \
                r["limits"]
            assert r["tftp"]["busy"] == 1 and r["tftp"]["sessions"] == 3, \
                r["tftp"]
        finally:
            for s in socks:
                s.close()


def test_frags_per_guest(tmp_path):
    """max-frags-per-guest=2: guest A's first fragments of three datagrams
    it never completes hold two slots, the third is refused and counted;
    guest B's fragmented datagram is still reassembled and delivered."""
    us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    us.bind(("127.0.0.1", 0))
    us.settimeout(pb.scaled(10))
    port = us.getsockname()[1]
    try:
        with RouterLab(tmp_path, 2, user=",max-frags=8,"
                       "max-frags-per-guest=2" + DNS_OFF) as lab:
            raw = lab.sock(0, socket.SOCK_RAW, socket.IPPROTO_RAW)
            src = socket.inet_aton(lab.ip[0])
            for ident in (101, 102, 103):
                payload = struct.pack("!HHHH", 40000, port, 1008, 0) + \
                    b"x" * 16
                hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 24, ident,
                                  0x2000, 64, 17, 0, src,
                                  socket.inet_aton(GW))
                raw.sendto(hdr + payload, (GW, 0))
            raw.close()

            def counted():
                return limit(lab.router(), "frags_per_guest")["hit"] >= 1
            pb.wait_until(counted, pb.scaled(10), "frags_per_guest hit")
            r = lab.router()
            assert r["reassembly"]["pending"] == 2, r["reassembly"]
            assert r["reassembly"]["source_full"] == 1, r["reassembly"]
            # B: a 3000-byte datagram, fragmented by B's kernel
            b = lab.sock(1, socket.SOCK_DGRAM)
            data = os.urandom(3000)
            b.sendto(data, (GW, port))
            got, _ = us.recvfrom(65535)
            assert got == data
            b.close()
            r = lab.router()
            assert r["reassembly"]["completed"] >= 1, r["reassembly"]
    finally:
        us.close()


def test_ctl_clients(tmp_path):
    """--max-ctl-clients 2: a third control connection gets one EBUSY line
    naming the limit and is closed; the two served ones still work."""
    ctl = str(tmp_path / "ctl.sock")
    with pb.Daemon(["-netdev", "user,id=u0" + DNS_OFF, "--ctl", ctl,
                    "--max-ctl-clients", "2"], tmp_path) as d:
        socks = []
        try:
            for _ in range(3):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(pb.scaled(10))
                s.connect(ctl)
                socks.append(s)
            r = pb.recv_json_line(socks[2])
            assert r["error"]["code"] == "EBUSY", r
            assert "at most 2" in r["error"]["message"], r
            assert socks[2].recv(4096) == b""
            for s in socks[:2]:
                s.sendall(b'{"id":1,"cmd":"version"}\n')
                assert json.loads(s.recv(65536).split(b"\n")[0])["ok"]
        finally:
            for s in socks:
                s.close()
        d.wait_for_log("connections refused")


def _cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_ctl_out_of_descriptors(tmp_path):
    """When the daemon has no descriptor left for a control client (its
    limit lowered to what it holds, with prlimit), the client gets one
    EMFILE line and is closed, the daemon does not spin on the listener,
    and once a descriptor is free again a client is served."""
    pb.require_tools("prlimit")
    ctl = str(tmp_path / "ctl.sock")
    # (--no-sandbox: prlimit on another process needs its uids to match
    # ours, or CAP_SYS_RESOURCE, which root lacks on this machine)
    with pb.Daemon(["-netdev", "user,id=u0" + DNS_OFF, "--ctl", ctl,
                    "--no-sandbox"], tmp_path) as d:
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first.settimeout(pb.scaled(10))
        first.connect(ctl)
        first.sendall(b'{"id":1,"cmd":"version"}\n')
        assert json.loads(first.recv(65536).split(b"\n")[0])["ok"]
        held = len(os.listdir("/proc/%d/fd" % d.pid))
        pb.run(["prlimit", "--pid", str(d.pid),
                "--nofile=%d:%d" % (held, held)])
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            extra.settimeout(pb.scaled(10))
            extra.connect(ctl)
            r = pb.recv_json_line(extra)
            assert r["error"]["code"] == "EMFILE", r
            assert extra.recv(4096) == b""
            # no busy loop: the daemon idles (well under 0.2 s of CPU in
            # the 0.5 s after the refusal)
            t0 = _cpu_ticks(d.pid)
            time.sleep(0.5)     # a measuring window, not a wait for an event
            assert _cpu_ticks(d.pid) - t0 < os.sysconf("SC_CLK_TCK") // 5
        finally:
            extra.close()
        # the first client still works; after it leaves, a new one is served
        first.sendall(b'{"id":2,"cmd":"version"}\n')
        assert json.loads(first.recv(65536).split(b"\n")[0])["ok"]
        first.close()

        def served():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.settimeout(pb.scaled(5))
                s.connect(ctl)
                s.sendall(b'{"id":3,"cmd":"version"}\n')
                return json.loads(s.recv(65536).split(b"\n")[0])["ok"]
            finally:
                s.close()
        pb.wait_until(served, pb.scaled(10), "a control client served again")


@pytest.mark.parametrize("args,needle", [
    (["-netdev", "user,id=u0,max-flows-per-guest=0"],
     "'max-flows-per-guest' must be between 1 and"),
    (["-netdev", "user,id=u0,max-flows=32,max-flows-per-guest=33"],
     "'max-flows-per-guest' must be between 1 and 32, not 33"),
    (["-netdev", "user,id=u0,max-udp-flows=lots"],
     "'max-udp-flows' must be a number, not 'lots'"),
    (["-netdev", "user,id=u0,max-flows=64,max-tcp-half-open=65"],
     "'max-tcp-half-open' must be between 1 and 64"),
    (["-netdev", "user,id=u0,max-frags=0"],
     "'max-frags' must be between 1 and"),
    (["-netdev", "user,id=u0,max-frags=8,max-frags-per-guest=9"],
     "'max-frags-per-guest' must be between 1 and 8, not 9"),
    (["-netdev", "user,id=u0,max-tftp-sessions=4,max-tftp-per-guest=5"],
     "'max-tftp-per-guest' must be between 1 and 4, not 5"),
    (["-netdev", "user,id=u0,max-leases=0"],
     "'max-leases' must be between 1 and"),
    (["-netdev", "user,id=u0,max-flows=8"],
     "'max-flows' must be between 16 and"),
    (["--segment", "switch,id=s,fdb-size=0"],
     "'fdb-size' must be between 1 and"),
    (["--segment", "switch,id=s,fdb-size=64,fdb-per-port=65"],
     "'fdb-per-port' must be between 1 and 64, not 65"),
    (["--max-ctl-clients", "0"],
     "--max-ctl-clients must be a number from 1 to 256, not '0'"),
    (["--max-ctl-clients", "9x"],
     "--max-ctl-clients must be a number from 1 to 256, not '9x'"),
])
def test_bad_limits(args, needle):
    """A bad limit is a start-up error naming the option; exit status 1."""
    r = pb.run_patchbay(args)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert needle in r.stderr, r.stderr
