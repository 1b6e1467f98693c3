# SPDX-License-Identifier: MIT
"""The control socket (--ctl) and `patchbay ctl`: runtime forwards, listings
while traffic runs, captures, link state, ports added at run time (also from
a passed descriptor), and hostile clients that must not hurt the daemon."""

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import stat
import struct
import threading
import time

import pytest

import pb

GW = "10.0.2.2"
GUEST = "10.0.2.15"
ROUTER_MAC = "52:55:0a:00:02:02"


# --------------------------------------------------------------------------
# A control client speaking the JSON-lines protocol directly


class Ctl:
    """One connection to the control socket; requests and replies as
    dicts.  Context manager (closes the connection)."""

    def __init__(self, path, timeout=10.0):
        # the same connect-with-deadline as a stream peer's
        self.sock = pb.StreamPeer.connect_unix(str(path), timeout).sock
        self.buf = b""
        self.next_id = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.sock.close()

    def send(self, data, fds=()):
        """Send raw bytes; fds go along with the first byte."""
        if fds:
            n = socket.send_fds(self.sock, [data], list(fds))
            self.sock.sendall(data[n:])
        else:
            self.sock.sendall(data)

    def line(self, timeout=10.0):
        """The next reply line as a dict (AssertionError on EOF/timeout)."""
        deadline = time.monotonic() + pb.scaled(timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, "no reply from the control socket"
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            assert data, "control socket closed (buffered: %r)" % self.buf
            self.buf += data
        ln, self.buf = self.buf.split(b"\n", 1)
        return json.loads(ln)

    def req(self, cmd, fds=(), **args):
        """Send one request, return its reply (checks the id)."""
        rid = self.next_id
        self.next_id += 1
        obj = {"id": rid, "cmd": cmd}
        obj.update(args)
        self.send(json.dumps(obj).encode() + b"\n", fds)
        r = self.line()
        assert r["id"] == rid, r
        return r

    def ok(self, cmd, **args):
        r = self.req(cmd, **args)
        assert r["ok"] is True, r
        return r

    def error(self, cmd, code, **args):
        r = self.req(cmd, **args)
        assert r["ok"] is False, r
        assert r["error"]["code"] == code, r
        assert r["error"]["message"], r
        return r["error"]["message"]


def ctl_cli(path, *args, check=True, **kw):
    """Run `patchbay ctl --ctl path ARGS`; CompletedProcess."""
    r = pb.run([pb.patchbay_bin(), "ctl", "--ctl", str(path)] +
               [str(a) for a in args], check=False, **kw)
    if check:
        assert r.returncode == 0, "patchbay ctl %s: rc %d\n%s%s" % (
            " ".join(map(str, args)), r.returncode, r.stdout, r.stderr)
    return r


def sanitized_binary():
    with open(pb.patchbay_bin(), "rb") as f:
        return b"__asan_init" in f.read()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


# --------------------------------------------------------------------------
# A daemon with the router, a control socket and TAP guests in namespaces


class CtlLab:
    """Router net0 (10.0.2.0/24) on switch sw0, `n` TAP guests t1..tn in
    fresh namespaces, the control socket at .ctl_path.  static=True gives
    guest i the address 10.0.2.(15+i)/24 and a default route; otherwise
    the TAPs are only up (for DHCP clients).

        with CtlLab(tmp_path) as lab:
            lab.ctl(), lab.ns[0], lab.ifname[0], lab.daemon
    """

    def __init__(self, tmp_path, n=1, static=True, extra_args=()):
        self.tmp_path = tmp_path
        self.n = n
        self.static = static
        self.extra_args = list(extra_args)
        self.ns, self.ifname, self.ids, self.ip = [], [], [], []
        self.ctl_path = pb.sock_path(tmp_path, "ctl.sock")
        self._stack = contextlib.ExitStack()
        self.daemon = None

    def __enter__(self):
        pb.require_netns()
        try:
            # The DNS forwarder must not use the host's resolv.conf.
            args = ["-netdev", "user,id=net0,dns-upstream=127.0.0.1:%d"
                    % pb.free_port(socket.SOCK_DGRAM),
                    "--ctl", self.ctl_path]
            for i in range(self.n):
                ns = self._stack.enter_context(pb.netns("c%d" % (i + 1)))
                self.ns.append(ns)
                self.ifname.append(pb.unique("pbc"))
                self.ids.append("t%d" % (i + 1))
                self.ip.append("10.0.2.%d" % (15 + i))
                args += ["-netdev", pb.tap_netdev(self.ids[i],
                                                  self.ifname[i], ns)]
            args += self.extra_args
            self.daemon = self._stack.enter_context(
                pb.Daemon(args, self.tmp_path))
            for i in range(self.n):
                if self.static:
                    pb.setup_tap(self.ns[i], self.ifname[i],
                                 self.ip[i] + "/24")
                    pb.ns_exec(self.ns[i], ["ip", "route", "add", "default",
                                            "via", GW])
                else:
                    tap_up(self.ns[i], self.ifname[i])
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def ctl(self):
        return Ctl(self.ctl_path)

    def sock(self, i=0, type=socket.SOCK_STREAM):
        return pb.ns_socket(self.ns[i], socket.AF_INET, type)


def tap_up(ns, ifname):
    """Bring a patchbay-made TAP in ns up without an address."""
    pb.wait_until(lambda: pb.link_exists(ns, ifname), 10,
                  "interface %s in %s" % (ifname, ns))
    pb.ns_exec(ns, ["sysctl", "-q", "-w",
                    "net.ipv6.conf.%s.disable_ipv6=1" % ifname], check=False)
    pb.ns_exec(ns, ["ip", "link", "set", "dev", ifname, "up"])


def port_of(ctl, name):
    for p in ctl.ok("ports")["ports"]:
        if p["name"] == name:
            return p
    return None


class GuestServer:
    """A TCP server inside a namespace (socket made there): each client
    gets b"hello\\n", then its bytes echoed until it closes."""

    def __init__(self, lab, i, port):
        self.sock = lab.sock(i)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((lab.ip[i], port))
        self.sock.listen(16)
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    @staticmethod
    def _serve(c):
        with c:
            try:
                c.sendall(b"hello\n")
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    c.sendall(d)
            except OSError:
                return

    def close(self):
        self.stop = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.t.join(pb.scaled(5))


def recv_exact(s, n, timeout=10.0):
    s.settimeout(pb.scaled(timeout))
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        assert d, "connection closed after %d of %d bytes" % (len(out), n)
        out += d
    return out


# --------------------------------------------------------------------------
# The socket itself, the schema version, many requests on one connection


def test_socket_owner_only_and_version(tmp_path):
    pb.require_binary()
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    path = pb.sock_path(tmp_path, "c.sock")
    s0 = pb.sock_path(tmp_path, "s0.sock")
    with pb.Daemon(["--segment", "hub,id=h0", "-netdev",
                    "stream,id=s0,server=on,addr.type=unix,addr.path=" + s0,
                    "--ctl", path], tmp_path):
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        with Ctl(path) as c:
            r = c.ok("version")
            assert r["version"] == 1 and r["patchbay"] == "0.1.0"
            # many requests per connection, pipelined: replies in order
            c.send(b"".join(b'{"id":%d,"cmd":"version"}\n' % i
                            for i in range(100, 300)))
            for i in range(100, 300):
                assert c.line()["id"] == i
            # string ids are echoed, no id is null; blank lines are skipped
            c.send(b'\n  \r\n{"id":"x\\"y","cmd":"segments"}\n'
                   b'{"cmd":"version"}\n')
            r = c.line()
            assert r["id"] == 'x"y' and r["ok"]
            assert r["segments"][0]["id"] == "h0"
            assert c.line()["id"] is None
        r = ctl_cli(path, "version")
        assert r.stdout.strip() == "patchbay 0.1.0 (control schema 1)"
        r = ctl_cli(path, "--json", "version")
        assert json.loads(r.stdout) == {"id": 1, "ok": True, "version": 1,
                                        "patchbay": "0.1.0"}
        # a client that shuts down its sending side still gets its reply
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b'{"id":5,"cmd":"version"}')   # not even a newline
        s.shutdown(socket.SHUT_WR)
        s.settimeout(pb.scaled(10))
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        assert json.loads(data)["id"] == 5
    assert not os.path.exists(path), "socket file left behind"

    # The default topology has a control socket beside its VM socket.
    with pb.Daemon([], tmp_path, env={"XDG_RUNTIME_DIR": str(xdg)}) as d:
        rt = xdg / "patchbay"
        assert stat.S_IMODE(os.stat(rt).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(rt / "ctl.sock").st_mode) == 0o600
        assert str(rt / "ctl.sock") in d.log()
        r = pb.run([pb.patchbay_bin(), "ctl", "ports"],
                   env=dict(os.environ, XDG_RUNTIME_DIR=str(xdg)))
        lines = r.stdout.splitlines()
        assert lines[0].split()[:5] == ["NAME", "NETDEV", "TYPE", "SEGMENT",
                                        "LINK"]
        assert any(ln.split()[0] == "net0" for ln in lines[1:])
        # a second daemon refuses a live control socket
        s9 = pb.sock_path(tmp_path, "s9.sock")
        r = pb.run_patchbay(["-netdev", "stream,id=s9,server=on,"
                             "addr.type=unix,addr.path=" + s9,
                             "--ctl", str(rt / "ctl.sock")])
        assert r.returncode != 0 and "another daemon" in r.stderr


# --------------------------------------------------------------------------
# hostfwd at run time


def test_hostfwd_add_use_del(tmp_path):
    with CtlLab(tmp_path) as lab, lab.ctl() as c:
        srv = GuestServer(lab, 0, 80)
        try:
            # the router learns the guest's MAC from its traffic
            pb.ping(lab.ns[0], GW, count=1)
            hport = pb.free_port()
            rule = "tcp:127.0.0.1:%d-:80" % hport
            r = ctl_cli(lab.ctl_path, "hostfwd-add", "net0", rule)
            assert r.stdout == ""
            fw = c.ok("forwards")["forwards"]
            assert fw == [{"netdev": "net0", "type": "hostfwd",
                           "proto": "tcp", "host": "127.0.0.1:%d" % hport,
                           "guest": "%s:80" % GUEST,
                           "rule": "tcp:127.0.0.1:%d-%s:80" % (hport, GUEST),
                           "conns": 0}]
            # the same host port again: refused; a malformed rule: refused
            assert "already forwarded" in c.error(
                "hostfwd-add", "EEXIST", netdev="net0", rule=rule)
            assert "want" in c.error("hostfwd-add", "EINVAL", netdev="net0",
                                     rule="tcp:127.0.0.1:x-:80")
            c.error("hostfwd-add", "ENOENT", netdev="nope", rule=rule)

            # use it; the connection is a flow, inbound
            keep = socket.create_connection(("127.0.0.1", hport),
                                            timeout=pb.scaled(10))
            assert recv_exact(keep, 6) == b"hello\n"
            keep.sendall(b"ping-1")
            assert recv_exact(keep, 6) == b"ping-1"
            flows = c.ok("flows")["flows"]
            f = [x for x in flows if x["proto"] == "tcp"]
            assert len(f) == 1, flows
            assert f[0]["direction"] == "in"
            assert f[0]["guest"] == "%s:80" % GUEST
            assert f[0]["remote"].startswith(GW + ":")
            assert f[0]["state"] == "established"
            assert c.ok("forwards")["forwards"][0]["conns"] == 1
            t = ctl_cli(lab.ctl_path, "flows").stdout.splitlines()
            assert t[0].split() == ["NETDEV", "PROTO", "DIR", "GUEST",
                                    "REMOTE", "STATE", "IDLE-MS"]
            assert t[1].split()[:6] == ["net0", "tcp", "in", GUEST + ":80",
                                        f[0]["remote"], "established"]

            # remove it (QEMU's short form): the port closes at once ...
            c.ok("hostfwd-del", netdev="net0", rule="tcp:127.0.0.1:%d" % hport)
            assert c.ok("forwards")["forwards"] == []
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", hport),
                                         timeout=pb.scaled(5)).close()
            # ... while the connection made through it goes on
            keep.sendall(b"ping-2")
            assert recv_exact(keep, 6) == b"ping-2"
            keep.close()
            c.error("hostfwd-del", "ENOENT", netdev="net0",
                    rule="tcp:127.0.0.1:%d" % hport)

            # UDP, through the only router (no netdev given), full-rule del
            us = lab.sock(0, socket.SOCK_DGRAM)
            us.bind((GUEST, 5353))
            uport = pb.free_port(socket.SOCK_DGRAM)
            urule = "udp:127.0.0.1:%d-%s:5353" % (uport, GUEST)
            c.ok("hostfwd-add", rule=urule)
            cl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            cl.connect(("127.0.0.1", uport))
            cl.send(b"u1")
            us.settimeout(pb.scaled(10))
            d, peer = us.recvfrom(100)
            assert d == b"u1" and peer[0] == GW
            us.sendto(b"r1", peer)
            cl.settimeout(pb.scaled(10))
            assert cl.recv(100) == b"r1"
            assert any(x["proto"] == "udp" and x["direction"] == "in"
                       for x in c.ok("flows")["flows"])
            c.error("hostfwd-del", "ENOENT",
                    rule="udp:127.0.0.1:%d-%s:5354" % (uport, GUEST))
            ctl_cli(lab.ctl_path, "hostfwd-del", urule)
            # its UDP clients went with it; the port is closed
            assert not any(x["proto"] == "udp" and x["direction"] == "in"
                           for x in c.ok("flows")["flows"])
            cl.send(b"u2")
            with pytest.raises(ConnectionRefusedError):
                cl.recv(100)
            cl.close()
            us.close()
        finally:
            srv.close()
        lab.daemon.assert_alive()


# --------------------------------------------------------------------------
# Leases and flows while traffic runs


def test_leases_and_flows_while_traffic_runs(tmp_path):
    pb.require_tools("busybox")
    with CtlLab(tmp_path, n=2, static=False) as lab, lab.ctl() as c:
        for i in range(2):
            pb.ns_exec(lab.ns[i], ["busybox", "udhcpc", "-i", lab.ifname[i],
                                   "-f", "-q", "-n", "-t", "5", "-T", "1",
                                   "-s", "/bin/true", "-x",
                                   "hostname:ctlguest%d" % i], timeout=30)
        leases = c.ok("leases")["leases"]
        got = {x["mac"]: x for x in leases}
        for i in range(2):
            x = got[pb.link_mac(lab.ns[i], lab.ifname[i])]
            assert x["netdev"] == "net0" and x["state"] == "bound"
            assert x["name"] == "ctlguest%d" % i
            assert x["ip"].startswith("10.0.2.") and x["expires_in"] > 0
        table = ctl_cli(lab.ctl_path, "leases").stdout
        assert "ctlguest0" in table and "ctlguest1" in table

        # Traffic from guest 0 (with its lease's address) to the host.
        ip0 = got[pb.link_mac(lab.ns[0], lab.ifname[0])]["ip"]
        pb.ns_exec(lab.ns[0], ["ip", "addr", "add", ip0 + "/24", "dev",
                               lab.ifname[0]])
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        usrv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        usrv.bind(("127.0.0.1", 0))
        uport = usrv.getsockname()[1]
        g = lab.sock(0)
        g.settimeout(pb.scaled(10))
        g.connect((GW, port))
        h, _ = srv.accept()
        gu = lab.sock(0, socket.SOCK_DGRAM)
        gu.sendto(b"x", (GW, uport))
        usrv.settimeout(pb.scaled(10))
        assert usrv.recvfrom(10)[0] == b"x"
        stop = threading.Event()

        def pump():
            # keep data moving while the listing is taken
            while not stop.is_set():
                try:
                    h.sendall(b"d" * 65536)
                    g.recv(65536)
                except OSError:
                    return

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        try:
            flows = c.ok("flows")["flows"]
            gport = g.getsockname()[1]
            tcp = [x for x in flows if x["proto"] == "tcp"]
            assert {"netdev": "net0", "proto": "tcp", "direction": "out",
                    "guest": "%s:%d" % (ip0, gport),
                    "remote": "%s:%d" % (GW, port),
                    "state": "established"}.items() <= tcp[0].items(), flows
            udp = [x for x in flows if x["proto"] == "udp"
                   and x["remote"] == "%s:%d" % (GW, uport)]
            assert len(udp) == 1 and udp[0]["state"] == "active"
            assert udp[0]["guest"] == "%s:%d" % (ip0, gu.getsockname()[1])
            assert udp[0]["idle_ms"] >= 0
        finally:
            stop.set()
            for s in (g, gu, h, srv, usrv):
                s.close()
            t.join(pb.scaled(10))
        # the connection's end shows in the listing
        pb.wait_until(lambda: not [x for x in c.ok("flows")["flows"]
                                   if x["proto"] == "tcp"
                                   and x["state"] == "established"],
                      15, "the TCP flow to close")


# --------------------------------------------------------------------------
# Capture started and stopped in the middle of a transfer


def test_capture_mid_transfer(tmp_path):
    pb.require_tools("tshark")
    pcap = tmp_path / "mid.pcap"
    with CtlLab(tmp_path) as lab, lab.ctl() as c:
        chunk = hashlib.sha256(b"ctl").digest() * 32768     # 1 MiB
        phases = [threading.Event(), threading.Event()]
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        got = {"n": 0, "h": hashlib.sha256(), "err": None}

        def serve():
            h, _ = srv.accept()
            with h:
                h.sendall(chunk)                    # before the capture
                phases[0].wait(pb.scaled(30))
                h.sendall(chunk * 2)                # while it runs
                phases[1].wait(pb.scaled(30))
                h.sendall(chunk)                    # after it stopped

        st = threading.Thread(target=serve, daemon=True)
        st.start()
        g = lab.sock(0)
        g.settimeout(pb.scaled(30))
        g.connect((GW, srv.getsockname()[1]))

        def read():
            try:
                while True:
                    d = g.recv(1 << 16)
                    if not d:
                        return
                    got["h"].update(d)
                    got["n"] += len(d)
            except OSError as e:
                got["err"] = e

        rt = threading.Thread(target=read, daemon=True)
        rt.start()
        try:
            pb.wait_until(lambda: got["n"] >= len(chunk), 30,
                          "the first MiB")
            r = ctl_cli(lab.ctl_path, "capture-start", "c1", "--netdev", "t1",
                        pcap, "--maxlen", "256")
            caps = c.ok("captures")["captures"]
            assert caps[0]["id"] == "c1" and caps[0]["netdev"] == "t1"
            assert caps[0]["active"] is True and caps[0]["maxlen"] == 256
            c.error("capture-start", "EBUSY", capture="c2", netdev="t1",
                    file=str(tmp_path / "x.pcap"))
            phases[0].set()
            pb.wait_until(lambda: got["n"] >= 3 * len(chunk), 30,
                          "the captured part of the transfer")
            frames = c.ok("captures")["captures"][0]["frames"]
            # 2 MiB captured, in super-segments of up to 64 KiB, and ACKs
            assert frames > 2 * len(chunk) // 65550
            c.ok("capture-stop", capture="c1")
            assert c.ok("captures")["captures"] == []
            c.error("capture-stop", "ENOENT", capture="c1")
            phases[1].set()
            rt.join(pb.scaled(30))
            assert got["err"] is None and got["n"] == 4 * len(chunk)
            assert got["h"].digest() == hashlib.sha256(chunk * 4).digest()
        finally:
            for e in phases:
                e.set()
            g.close()
            srv.close()
            st.join(pb.scaled(10))
    n = pb.tshark_count(pcap)
    assert n == frames, (n, frames)
    assert pb.tshark_count(pcap, "_ws.malformed") == 0
    assert pb.tshark_count(pcap, "tcp.len > 0") > 2 * len(chunk) // 65550


# --------------------------------------------------------------------------
# Link state


def _carrier(ns, ifname):
    """The interface's flags in ns: (NO-CARRIER shown, LOWER_UP shown)."""
    info = json.loads(pb.ns_exec(ns, ["ip", "-j", "link", "show", "dev",
                                      ifname]).stdout)[0]
    return "NO-CARRIER" in info["flags"], "LOWER_UP" in info["flags"]


def test_link_down_and_up(tmp_path):
    """A port's link down: frames to and from it are dropped and counted,
    and a TAP's interface loses its carrier (the guest sees its cable
    unplugged); up again: carrier back, traffic flows."""
    with CtlLab(tmp_path, n=2) as lab, lab.ctl() as c:
        pb.ping(lab.ns[0], GW, count=2)
        assert _carrier(lab.ns[0], lab.ifname[0]) == (False, True)
        c.ok("link", port="t1", up=False)
        p = port_of(c, "t1")
        assert p["link"] == "down"
        pb.wait_until(lambda: _carrier(lab.ns[0], lab.ifname[0]) ==
                      (True, False), 5, "t1's interface without carrier")
        r = pb.ping(lab.ns[0], GW, count=2, timeout=3, check=False)
        assert r.returncode != 0
        # traffic toward it (from the other guest) is dropped and counted
        r = pb.ping(lab.ns[1], lab.ip[0], count=2, timeout=3, check=False)
        assert r.returncode != 0
        p = port_of(c, "t1")
        assert p["drops"]["link_down"] >= 1, p
        assert "link_down=" in ctl_cli(lab.ctl_path, "ports").stdout
        ctl_cli(lab.ctl_path, "link", "t1", "up")
        assert port_of(c, "t1")["link"] == "up"
        pb.wait_until(lambda: _carrier(lab.ns[0], lab.ifname[0]) ==
                      (False, True), 5, "t1's carrier back")
        pb.ping(lab.ns[0], GW, count=2)
        pb.ping(lab.ns[1], lab.ip[0], count=2)
        c.error("link", "ENOENT", port="nope", up=True)
        c.error("link", "EINVAL", port="t1", up="yes")
        c.error("link", "EINVAL", port="t1")


# --------------------------------------------------------------------------
# Ports at run time


def arp_reply_from_router(peer, mac, ip):
    peer.send_frame(pb.arp_request(mac, ip, GW))
    return peer.recv_until(
        lambda f: (a := pb.parse_arp(f)) and a["op"] == 2 and
        a["spa"] == GW and a["tpa"] == ip and a, what="ARP reply")


def test_port_add_stream_listener(tmp_path):
    with CtlLab(tmp_path, n=0) as lab, lab.ctl() as c:
        path = pb.sock_path(tmp_path, "s1.sock")
        c.ok("port-add", spec="stream,id=s1,server=on,addr.type=unix,"
             "addr.path=%s" % path)
        c.error("port-add", "EEXIST", spec="stream,id=s1,server=on,"
                "addr.type=unix,addr.path=%s.2" % path)
        c.error("port-add", "EINVAL", spec="stream,id=s9,bogus=1")
        with pb.StreamPeer.connect_unix(path) as peer:
            a = arp_reply_from_router(peer, "52:54:00:00:00:31", "10.0.2.31")
            assert a["sha"] == ROUTER_MAC
            p = pb.wait_until(lambda: port_of(c, "s1.1"), 10, "port s1.1")
            assert p["netdev"] == "s1" and p["type"] == "stream"
            assert p["rx_frames"] >= 1 and p["tx_frames"] >= 1
            ctl_cli(lab.ctl_path, "port-del", "s1")
            assert peer.wait_closed()
        assert port_of(c, "s1.1") is None
        c.error("port-del", "ENOENT", netdev="s1")
        # numbers are never descriptors here: the daemon's own are not for
        # a client to name
        for spec in ("socket,id=x1,fd=3", "tap,id=x2,fd=0",
                     "stream,id=x3,addr.type=fd,addr.str=4"):
            assert "passed" in c.error("port-add", "EINVAL", spec=spec)
        c.error("port-add", "EINVAL", spec="socket,id=x4,fd=passed")


def test_port_add_with_passed_descriptors(tmp_path):
    with CtlLab(tmp_path, n=0) as lab, lab.ctl() as c:
        # a connected stream socket, as -netdev socket,fd=
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        c.ok("port-add", fds=[b.fileno()], spec="socket,id=p1,fd=passed")
        b.close()
        with pb.StreamPeer(a) as peer:
            arp_reply_from_router(peer, "52:54:00:00:00:41", "10.0.2.41")
            # the same descriptor in QEMU's stream syntax
            a2, b2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ctl_cli(lab.ctl_path, "port-add",
                    "stream,id=p2,addr.type=fd,addr.str=passed",
                    "--pass-fd", b2.fileno(), pass_fds=[b2.fileno()])
            b2.close()
            with pb.StreamPeer(a2) as peer2:
                arp_reply_from_router(peer2, "52:54:00:00:00:42",
                                      "10.0.2.42")
                # the two peers reach each other through the switch
                peer.send_frame(pb.arp_request("52:54:00:00:00:41",
                                               "10.0.2.41", "10.0.2.42"))
                peer2.recv_until(lambda f: (x := pb.parse_arp(f)) and
                                 x["tpa"] == "10.0.2.42", what="flooded ARP")
                names = {p["name"] for p in c.ok("ports")["ports"]}
                assert {"p1", "p2"} <= names

        # a descriptor with a request that takes none: refused and closed
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        assert "no file descriptor" in c.error("version", "EINVAL",
                                               fds=[y.fileno()])
        y.close()
        x.settimeout(pb.scaled(10))
        assert x.recv(10) == b""        # the daemon's copy is closed too
        x.close()
        # two descriptors with one request
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        assert "more than one" in c.error(
            "port-add", "EINVAL", fds=[x.fileno(), y.fileno()],
            spec="socket,id=p3,fd=passed")
        x.close()
        y.close()
        # a descriptor of the wrong kind
        r, w = os.pipe()
        c.error("port-add", "ENOTSOCK", fds=[r], spec="socket,id=p4,fd=passed")
        os.close(r)
        os.close(w)
        assert "p3" not in {p["name"] for p in c.ok("ports")["ports"]}


TUNSETIFF = 0x400454ca
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def test_port_add_passed_tap_from_a_namespace(tmp_path):
    """What `patchbay run --join` does: a TAP opened in another namespace,
    handed to the running daemon."""
    pb.require_netns()
    with CtlLab(tmp_path, n=0) as lab, lab.ctl() as c, \
            pb.netns("cj") as ns:
        ifname = pb.unique("pbj")

        def open_tap():
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack(
                "16sH", ifname.encode(), IFF_TAP | IFF_NO_PI))
            return fd
        fd = pb.ns_call(ns, open_tap)
        try:
            c.ok("port-add", fds=[fd], spec="tap,id=j1,fd=passed")
        finally:
            os.close(fd)
        p = port_of(c, "j1")
        assert p["type"] == "tap" and p["peer"].startswith(ifname)
        pb.setup_tap(ns, ifname, "10.0.2.50/24")
        pb.ping(ns, GW, count=2)
        c.ok("port-del", netdev="j1")
        # the TAP was not persistent: it goes with the daemon's descriptor
        pb.wait_until(lambda: not pb.link_exists(ns, ifname), 10,
                      "%s to disappear" % ifname)


# --------------------------------------------------------------------------
# Hostile and broken clients


def test_malformed_and_oversized_requests(tmp_path):
    with CtlLab(tmp_path) as lab, lab.ctl() as c:
        bad = [b"{", b"not json", b"[1,2]", b'{"cmd":"version"} trailing',
               b'{"cmd":"version","cmd":"stats"}', b'{"a":{"b":{"c":1}}}',
               b'{"cmd":"\\x41"}', b'{"cmd":"\xff\xfe"}', b"\x00\x01\x02",
               b'{"cmd":"ver\x00sion"}', b'{"id":01}']
        for req in bad:
            c.send(req + b"\n")
            r = c.line()
            assert r["ok"] is False and r["id"] is None, (req, r)
            assert r["error"]["code"] == "EBADMSG", (req, r)
            assert r["error"]["message"].startswith("at byte "), r
        c.error("frobnicate", "ENOSYS")
        assert "accepted: id, cmd, netdev, rule" in c.error(
            "hostfwd-add", "EINVAL", rule="tcp::1-:1", extra=1)
        c.send(b'{"id":[1],"cmd":"version"}\n')
        assert c.line()["error"]["code"] == "EBADMSG"
        c.send(b'{"id":true,"cmd":"version"}\n')
        assert c.line()["error"]["code"] == "EINVAL"
        c.send(b'{"id":3}\n')
        assert "'cmd'" in c.line()["error"]["message"]
        c.error("hostfwd-add", "EINVAL", rule=5)
        c.error("capture-start", "EINVAL", capture="c", netdev="t1",
                segment="sw0", file="/dev/null")
        c.error("capture-start", "EINVAL", capture="c", netdev="t1",
                file="/dev/null", maxlen=-1)

        # A 1 MiB line: an error, then the connection is usable again.
        c.send(b'{"cmd":"version","pad":"' + b"x" * (1 << 20) + b'"}\n'
               b'{"id":77,"cmd":"version"}\n')
        r = c.line()
        assert r["error"]["code"] == "E2BIG" and r["id"] is None
        assert c.line()["id"] == 77
        # exactly at the limit is fine (and then refused for its content)
        pad = 65536 - len(b'{"cmd":"version","pad":""}')
        c.send(b'{"cmd":"version","pad":"' + b"x" * pad + b'"}\n')
        assert "unknown member 'pad'" in c.line()["error"]["message"]
        c.send(b'{"cmd":"version","pad":"' + b"x" * (pad + 1) + b'"}\n')
        assert c.line()["error"]["code"] == "E2BIG"
        c.ok("version")

        # A request split into single bytes arrives whole.
        for ch in b'{"id":9,"cmd":"version"}\n':
            c.send(bytes([ch]))
        assert c.line()["id"] == 9
        # Garbage without newlines forever, on another connection: the
        # daemon keeps skipping it in bounded memory.
        with Ctl(lab.ctl_path) as g:
            for _ in range(16):
                g.send(os.urandom(65536).replace(b"\n", b" "))
            g.send(b"\n")
            assert g.line()["error"]["code"] == "E2BIG"
        pb.ping(lab.ns[0], GW, count=1)
        lab.daemon.assert_alive()


def test_many_clients_at_once(tmp_path):
    with CtlLab(tmp_path) as lab:
        socks = []
        try:
            for _ in range(100):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(lab.ctl_path)
                socks.append(s)
            busy, served = 0, 0
            for s in socks:
                # the ones turned away may be closed already
                with contextlib.suppress(BrokenPipeError,
                                         ConnectionResetError):
                    s.sendall(b'{"id":1,"cmd":"version"}\n')
            for s in socks:
                s.settimeout(pb.scaled(10))
                r = pb.recv_json_line(s)
                if r["ok"]:
                    served += 1
                else:
                    assert r["error"]["code"] == "EBUSY", r
                    try:                            # and closed
                        assert s.recv(4096) == b""
                    except ConnectionResetError:
                        pass    # our request was still unread then
                    busy += 1
            assert (served, busy) == (32, 68)
        finally:
            for s in socks:
                s.close()
        # every slot is free again
        conns = [Ctl(lab.ctl_path) for _ in range(32)]
        try:
            for cc in conns:
                cc.ok("version")
        finally:
            for cc in conns:
                cc.close()
        pb.ping(lab.ns[0], GW, count=1)


def test_client_that_never_reads(tmp_path):
    with CtlLab(tmp_path) as lab, lab.ctl() as c:
        pid = lab.daemon.pid
        c.ok("stats")
        rss0 = rss_kib(pid)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(lab.ctl_path)
        reqs = b'{"cmd":"stats"}\n{"cmd":"flows"}\n' * 20000
        s.settimeout(pb.scaled(60))
        try:
            s.sendall(reqs)
        except (BrokenPipeError, ConnectionResetError):
            pass            # the daemon gave up on us, as it should
        lab.daemon.wait_for_log("not reading its replies", 30)
        # meanwhile and afterwards, the data path and other clients work
        pb.ping(lab.ns[0], GW, count=2)
        assert c.ok("version")["version"] == 1
        # what we were sent is bounded: the queue limit plus socket buffers
        total = 0
        with contextlib.suppress(ConnectionResetError):
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                total += len(d)
        s.close()
        assert total < 8 << 20, total
        # One client's queue is at most 4 MiB.  Under AddressSanitizer freed
        # memory sits in its quarantine (up to 256 MiB) instead.
        grew = rss_kib(pid) - rss0
        limit = (256 if sanitized_binary() else 16) << 10
        assert grew < limit, "RSS grew by %d KiB" % grew
        lab.daemon.assert_alive()
