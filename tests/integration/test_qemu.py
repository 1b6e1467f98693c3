# SPDX-License-Identifier: MIT
"""Real QEMU guests on patchbay (the harness guest from tests/qemu).

What only a VM proves: QEMU's own network backends (stream, dgram, socket)
and real NIC models (virtio-net-pci, rtl8139, ne2k_pci, e1000) interoperate with
patchbay, and real guest kernels reach each other and a namespace through it.

  test_two_vms_stream_unix_and_tcp   VM A (virtio, stream over a unix socket)
        and VM B (rtl8139, stream over TCP 127.0.0.1), running together on one
        switch: each pings the other and fetches the other's /cgi-bin/done
        over HTTP (that fetch is also the rendezvous: neither powers off
        before the other is done with it).
  test_vm_to_netns_tap[...]          one VM reaches a network namespace
        behind a TAP port on the same switch, attached over
          dgram           (ne2k_pci)   unicast datagrams,
          socket-connect  (virtio)     QEMU connects to patchbay's socket,listen=,
          socket-listen   (rtl8139)    patchbay's socket,connect= to QEMU's listener,
          socket-udp      (e1000)      socket,udp=...,localaddr=...,
          mcast           (rtl8139)    socket,mcast=230.0.0.1:P,localaddr=127.0.0.1;
        the VM pings the namespace; the namespace pings the VM back and
        fetches its /cgi-bin/done over HTTP.

Safety: the whole module runs in a private network namespace that has only
loopback (when root), so 127.0.0.1 and the multicast group are private; the
guests use static addresses in 10.0.0.0/24 on the virtual segment only.
Every QEMU, daemon and namespace is ended/removed by the test, also on
failure.  Guests run under TCG (~3.5 s to boot); the module takes ~50 s.
Multicast needs no route: patchbay must honour localaddr= (IP_MULTICAST_IF)
in a namespace that has no route for 224.0.0.0/4.
"""

import contextlib
import os
import socket
import subprocess
import sys
import time

import pytest

import pb
import qemu

NETDEV = "-netdev"
IP_A, IP_B = "10.0.0.1", "10.0.0.2"
HTTP_PORT = 8080
MCAST_GROUP = "230.0.0.1"

_why_not = qemu.missing_prerequisite()
pytestmark = pytest.mark.skipif(_why_not is not None, reason=str(_why_not))


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def guest_build():
    """Build the guest once (cached in build/qemu-guest, rebuilt only when
    tests/qemu changed)."""
    return qemu.ensure_guest()


@pytest.fixture(scope="module", autouse=True)
def private_netns():
    """Run this module in a fresh network namespace with only lo (when
    root); yields True when isolated.  Without root the tests that need no
    root still run, on the host's loopback only."""
    if os.geteuid() != 0:
        yield False
        return
    ns = qemu.PrivateNetns()
    ns.enter()
    try:
        yield True
    finally:
        ns.leave()


def _name(tag):
    return "pbq-%s-%d-%d" % (tag, os.getpid(), int(time.monotonic() * 1000) % 100000)


def _ports_of(stats, netdev_id):
    """Port dicts belonging to netdev_id (the port itself, or ID.1, ID.2...
    for a listener)."""
    return [p for p in stats.get("ports", [])
            if p.get("name") == netdev_id or p.get("netdev") == netdev_id
            or str(p.get("name", "")).startswith(netdev_id + ".")]


def _traffic(stats, netdev_id):
    ps = _ports_of(stats, netdev_id)
    return (sum(p.get("rx_frames", 0) for p in ps),
            sum(p.get("tx_frames", 0) for p in ps), ps)


def _assert_guests(results, daemon, extra=""):
    bad = [r for r in results if not r.ok]
    if bad:
        msg = "\n\n".join(r.summary() for r in results)
        pytest.fail("guest(s) %s did not PASS%s\n\n%s\n\n--- patchbay stderr:\n%s"
                    % ([r.name for r in bad], extra, msg, daemon.log()))


def _timings(results):
    return " ".join("%s=%.1fs" % (r.name.split("-")[1], r.seconds) for r in results)


def _start(guests, g):
    guests.start(g)
    pb.track(g.proc)      # conftest's leftover-process check covers QEMU too
    return g


# --------------------------------------------------------------------------
# 1. two VMs, stream over unix and TCP, ping each other


def test_two_vms_stream_unix_and_tcp(tmp_path, guest_build, patchbay_bin):
    sock = pb.sock_path(tmp_path, "vm.sock")
    port = pb.free_port()
    args = [NETDEV, "stream,id=su,server=on,addr.type=unix,addr.path=%s" % sock,
            NETDEV, "stream,id=st,server=on,addr.type=inet,addr.host=127.0.0.1,"
                    "addr.port=%d" % port]
    logdir = tmp_path / "guests"

    def pair_params(me, ip, peer, peer_ip):
        # ping the peer, serve /cgi-bin/done, fetch the peer's /cgi-bin/done
        # (retries until the peer serves it), then wait until the peer
        # fetched ours: neither guest powers off while the other needs it.
        return ("h_net=static h_ip=%s/24 h_ping=%s h_listen=%d h_hold=45 "
                "h_url=http://%s:%d/cgi-bin/done h_expect=host=%s "
                "h_timeout=20 h_name=%s" % (ip, peer_ip, HTTP_PORT, peer_ip,
                                            HTTP_PORT, peer, me))

    snaps = {}
    with pb.Daemon(args, tmp_path) as d, qemu.Guests() as guests:
        qemu.wait_unix_listening(sock, diag=d.log)
        qemu.wait_tcp_listening(port, diag=d.log)
        a = qemu.Guest(_name("a"), "stream,server=off,addr.type=unix,addr.path=%s" % sock,
                       nic="virtio-net-pci", mac="52:54:00:a0:00:01", logdir=logdir,
                       params=pair_params("pbqa", IP_A, "pbqb", IP_B))
        b = qemu.Guest(_name("b"), "stream,server=off,addr.type=inet,addr.host=127.0.0.1,"
                       "addr.port=%d" % port,
                       nic="rtl8139", mac="52:54:00:b0:00:02", logdir=logdir,
                       params=pair_params("pbqb", IP_B, "pbqa", IP_A))
        _start(guests, a)
        _start(guests, b)

        def watch():
            # Once a guest's ping passed, its port has carried frames both
            # ways.  Snapshot the counters then: the guest is busy for
            # another ~2 s (httpd, fetch), while the port of a closed
            # connection leaves the stats.
            d.assert_alive()
            for g in (a, b):
                if g.name not in snaps and "HARNESS-PASS: ping" in g.log():
                    snaps[g.name] = d.stats()

        results = qemu.wait_guests([a, b], pb.scaled(90), check=watch)
        d.assert_alive()
        _assert_guests(results, d)
        print("timings:", _timings(results))
        for g, nd in ((a, "su"), (b, "st")):
            if g.name not in snaps:
                pytest.fail("no stats snapshot for %s (its ping PASS line was not seen "
                            "while the daemon was running)" % g.name)
            rx, tx, ps = _traffic(snaps[g.name], nd)
            assert len(ps) == 1, "expected one port for %s: %r" % (nd, snaps[g.name])
            assert rx > 0 and tx > 0, "port of %s carried no frames: %r" % (nd, ps)


# --------------------------------------------------------------------------
# 2./3. one VM over dgram / socket (connect, listen, mcast) <-> namespace TAP


def _backend(kind):
    """How the VM attaches, per kind: dict(pb=patchbay netdev spec (id=vm),
    vm=QEMU netdev spec, nic=model, nic_opts=, wait=patchbay-side (or, with
    guest_first, QEMU-side) readiness check taking a diag callable,
    guest_first=QEMU must be up before patchbay starts)."""
    lo = "127.0.0.1"
    if kind == "dgram":
        p_pb, p_vm = qemu.free_ports(2, socket.SOCK_DGRAM)
        spec = ("dgram,local.type=inet,local.host=%s,local.port=%d,"
                "remote.type=inet,remote.host=%s,remote.port=%d")
        return dict(pb=spec % (lo, p_pb, lo, p_vm) + ",id=vm", vm=spec % (lo, p_vm, lo, p_pb),
                    nic="ne2k_pci",
                    wait=lambda diag: qemu.wait_udp_bound(p_pb, lo, diag=diag))
    if kind == "socket-connect":      # QEMU connects to patchbay's listener
        p = pb.free_port()
        return dict(pb="socket,id=vm,listen=%s:%d" % (lo, p), vm="socket,connect=%s:%d" % (lo, p),
                    nic="virtio-net-pci",
                    wait=lambda diag: qemu.wait_tcp_listening(p, lo, diag=diag))
    if kind == "socket-listen":       # patchbay connects to QEMU's listener
        p = pb.free_port()
        return dict(pb="socket,id=vm,connect=%s:%d" % (lo, p), vm="socket,listen=%s:%d" % (lo, p),
                    nic="rtl8139", guest_first=True,
                    wait=lambda diag: qemu.wait_tcp_listening(p, lo, diag=diag))
    if kind == "socket-udp":          # unicast UDP, one frame per datagram
        p_pb, p_vm = qemu.free_ports(2, socket.SOCK_DGRAM)
        return dict(pb="socket,id=vm,udp=%s:%d,localaddr=%s:%d" % (lo, p_vm, lo, p_pb),
                    vm="socket,udp=%s:%d,localaddr=%s:%d" % (lo, p_pb, lo, p_vm),
                    # QEMU's default NIC; no link autonegotiation saves 1.5 s
                    nic="e1000", nic_opts=",autonegotiation=off",
                    wait=lambda diag: qemu.wait_udp_bound(p_pb, lo, diag=diag))
    if kind == "mcast":
        p = pb.free_port(socket.SOCK_DGRAM)
        spec = "socket,mcast=%s:%d,localaddr=%s" % (MCAST_GROUP, p, lo)
        return dict(pb=spec + ",id=vm", vm=spec, nic="rtl8139",
                    wait=lambda diag: qemu.wait_mcast_joined(MCAST_GROUP, diag=diag))
    raise ValueError(kind)


def _fetch_from_ns(ns, url):
    code = ("import sys, urllib.request;"
            "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())")
    return pb.ns_exec(ns, [sys.executable, "-c", code, url], timeout=20).stdout


@pytest.mark.parametrize("kind", ["dgram", "socket-connect", "socket-listen", "socket-udp",
                                  "mcast"])
def test_vm_to_netns_tap(kind, tmp_path, guest_build, patchbay_bin, private_netns):
    pb.require_netns()
    if kind == "mcast" and not private_netns:
        pytest.skip("multicast test needs the private network namespace (root)")
    be = _backend(kind)
    wait_pb, guest_first = be["wait"], be.get("guest_first", False)
    logdir = tmp_path / "guests"
    params = ("h_net=static h_ip=%s/24 h_ping=%s h_listen=%d h_hold=30 h_timeout=20 "
              "h_name=pbq" % (IP_A, IP_B, HTTP_PORT))
    g = qemu.Guest(_name(kind.split("-")[-1][:6]), be["vm"], nic=be["nic"],
                   nic_opts=be.get("nic_opts", ""), mac="52:54:00:c0:00:01",
                   logdir=logdir, params=params)
    back = {}

    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(pb.netns("q"))
        ifname = pb.unique("pbq")
        args = [NETDEV, be["pb"], NETDEV, pb.tap_netdev("tp", ifname, ns)]
        guests = stack.enter_context(qemu.Guests())
        if guest_first:
            # QEMU is the listener: it must listen before patchbay connects.
            _start(guests, g)
            wait_pb(lambda: g.log())
            d = stack.enter_context(pb.Daemon(args, tmp_path))
        else:
            d = stack.enter_context(pb.Daemon(args, tmp_path))
            wait_pb(d.log)
        # Unwinding: QEMU stops first (this callback), then the daemon, then
        # the namespace goes (Guests is also on the stack, above, so a QEMU
        # started before a failing daemon start is stopped too).
        stack.callback(guests.__exit__, None, None, None)
        pb.setup_tap(ns, ifname, "%s/24" % IP_B)
        if not guest_first:
            _start(guests, g)

        def on_ready(guest):
            # The guest pinged the namespace and now serves HTTP: reach it
            # from the namespace (ICMP and TCP the other way round).
            try:
                back["stats"] = d.stats()
                back["ping"] = pb.ping(ns, IP_A, count=3).stdout
                back["http"] = _fetch_from_ns(ns, "http://%s:%d/cgi-bin/done"
                                              % (IP_A, HTTP_PORT))
            except (AssertionError, subprocess.SubprocessError) as e:
                back["error"] = str(e)
                return False          # don't wait for the guest's h_hold
            return True

        results = qemu.wait_guests([g], pb.scaled(60), on_ready=on_ready,
                                   check=d.assert_alive)
        d.assert_alive()
        extra = ("\n--- namespace -> guest: %s" % back["error"]) if "error" in back else ""
        _assert_guests(results, d, extra)
        print("timings:", _timings(results))
        assert "host=pbq done" in back.get("http", ""), back
        rx, tx, ps = _traffic(back["stats"], "vm")
        assert ps and rx > 0 and tx > 0, "VM port carried no frames: %r" % back["stats"]
        rx, tx, ps = _traffic(back["stats"], "tp")
        assert ps and rx > 0 and tx > 0, "TAP port carried no frames: %r" % back["stats"]


# --------------------------------------------------------------------------
# 4. the router: a VM on the default-like topology gets a lease by DHCP and
#    downloads from a web server on the host's 127.0.0.1 through 10.0.2.2


def test_vm_dhcp_and_download_through_router(tmp_path, guest_build, patchbay_bin):
    import hashlib
    import http.server
    import threading

    # a deterministic 4 MiB file: the guest's busybox wget prints its md5
    blob = hashlib.sha256(b"router-download").digest() * (4 * 1024 * 1024 // 32)
    md5 = hashlib.md5(blob).hexdigest()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    port = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    sock = pb.sock_path(tmp_path, "vm.sock")
    args = [NETDEV, "user,id=net0,dns-upstream=127.0.0.1:9",
            NETDEV, "stream,id=vm,server=on,addr.type=unix,addr.path=%s" % sock]
    try:
        with pb.Daemon(args, tmp_path) as d, qemu.Guests() as guests:
            qemu.wait_unix_listening(sock, diag=d.log)
            g = qemu.Guest(_name("dl"), "stream,server=off,addr.type=unix,"
                           "addr.path=%s" % sock, nic="virtio-net-pci",
                           mac="52:54:00:d1:00:01", logdir=tmp_path / "guests",
                           params="h_net=dhcp h_expect_ip=10.0.2.15 h_ping=gw "
                                  "h_url=http://10.0.2.2:%d/blob h_timeout=20"
                                  % port)
            _start(guests, g)
            results = qemu.wait_guests([g], pb.scaled(90),
                                       check=d.assert_alive)
            _assert_guests(results, d)
            log = g.log()
            assert "HARNESS-LEASE: ip=10.0.2.15" in log
            assert "md5=%s" % md5 in log, "downloaded file differs"
            st = d.stats()
            r = [p["router"] for p in st["ports"] if "router" in p][0]
            assert r["dhcp"]["ack"] >= 1 and r["tcp_opened"] >= 1
            print("timings:", _timings(results))
    finally:
        srv.shutdown()
        srv.server_close()
