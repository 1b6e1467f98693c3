# SPDX-License-Identifier: MIT
"""Backend options not covered elsewhere, each against a real peer: TAP
script=/downscript= (run like qemu-ifup), TAP vnet_hdr=on, and dgram over
unix sockets."""

import hashlib
import os
import socket
import stat

import pb


def test_tap_script_and_downscript(tmp_path):
    """script= runs with the interface name at set-up (and may configure
    it), downscript= at tear-down, like QEMU's qemu-ifup/qemu-ifdown."""
    pb.require_root()
    pb.require_tun()
    log = tmp_path / "scripts.log"
    up = tmp_path / "ifup.sh"
    down = tmp_path / "ifdown.sh"
    up.write_text("#!/bin/sh\necho \"up $1\" >> %s\nip link set \"$1\" up\n" % log)
    down.write_text("#!/bin/sh\necho \"down $1\" >> %s\n" % log)
    for f in (up, down):
        f.chmod(stat.S_IRWXU)
    ifname = pb.unique("pbs")
    with pb.Daemon(["-netdev", "tap,id=t0,ifname=%s,script=%s,downscript=%s"
                    % (ifname, up, down)], tmp_path) as d:
        assert log.read_text() == "up %s\n" % ifname
        # the script brought the interface up
        flags = pb.run(["ip", "-o", "link", "show", ifname]).stdout
        assert "UP" in flags.split("<")[1].split(">")[0].split(",")
        d.stop()
    assert log.read_text() == "up %s\ndown %s\n" % (ifname, ifname)
    # the TAP was ours: it is gone with the daemon
    assert pb.run(["ip", "link", "show", ifname], check=False).returncode != 0


def test_tap_script_failure_is_an_error(tmp_path):
    pb.require_root()
    pb.require_tun()
    bad = tmp_path / "fail.sh"
    bad.write_text("#!/bin/sh\nexit 3\n")
    bad.chmod(stat.S_IRWXU)
    r = pb.run_patchbay(["-netdev", "tap,id=t0,ifname=%s,script=%s"
                         % (pb.unique("pbf"), bad)])
    assert r.returncode != 0 and "script" in r.stderr


def test_tap_vnet_hdr_on(tmp_path):
    """A TAP with vnet_hdr=on (virtio-net header on every frame) talks to a
    plain one: ping and a 10 MiB transfer with a matching checksum."""
    pb.require_root()
    pb.require_tun()
    pb.require_tools("socat")
    with pb.netns("v1") as n1, pb.netns("v2") as n2:
        i1, i2 = pb.unique("pbv"), pb.unique("pbv")
        args = ["-netdev", pb.tap_netdev("t1", i1, n1, extra=",vnet_hdr=on"),
                "-netdev", pb.tap_netdev("t2", i2, n2, extra=",vnet_hdr=off")]
        with pb.Daemon(args, tmp_path) as d:
            pb.setup_tap(n1, i1, "10.99.7.1/24")
            pb.setup_tap(n2, i2, "10.99.7.2/24")
            pb.ping(n1, "10.99.7.2")
            data = hashlib.sha256(b"vnet").digest() * (10 * 1024 * 1024 // 32)
            src = tmp_path / "data"
            src.write_bytes(data)
            dst = tmp_path / "got"
            srv = pb.ns_popen(n2, ["socat", "-u", "TCP-LISTEN:5005,reuseaddr",
                                   "CREATE:%s" % dst])
            pb.wait_until(lambda: "5005" in pb.ns_exec(
                n2, ["ss", "-ltn"]).stdout, 10, "listener")
            pb.ns_exec(n1, ["socat", "-u", "FILE:%s" % src,
                            "TCP:10.99.7.2:5005"], timeout=60)
            assert srv.wait(timeout=pb.scaled(30)) == 0
            assert dst.read_bytes() == data
            t1 = pb.find_port(d.stats(), "t1")
            assert t1["drops"]["bad_vnet_hdr"] == 0
            # super-segments: at least one frame per 64 KiB
            assert t1["rx_frames"] > 10 * 16 and t1["tx_frames"] > 100


def test_dgram_unix_peer(tmp_path):
    """-netdev dgram over unix sockets: a peer's datagram is one frame; an
    ARP request it sends reaches a namespace and the reply comes back."""
    pb.require_root()
    pb.require_tun()
    a = str(tmp_path / "pb.dgram")
    b = str(tmp_path / "peer.dgram")
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    peer.bind(b)
    peer.settimeout(pb.scaled(5))
    try:
        with pb.netns("du") as ns:
            ifname = pb.unique("pbd")
            args = ["-netdev", "dgram,id=d0,local.type=unix,local.path=%s,"
                    "remote.type=unix,remote.path=%s" % (a, b),
                    "-netdev", pb.tap_netdev("t1", ifname, ns)]
            with pb.Daemon(args, tmp_path) as d:
                pb.setup_tap(ns, ifname, "10.99.8.1/24")
                mac = "52:54:00:99:08:02"
                req = pb.arp_request(mac, "10.99.8.2", "10.99.8.1")

                def answered():
                    peer.sendto(req, a)
                    while True:
                        frame = peer.recv(65536)
                        arp = pb.parse_arp(frame)
                        if arp and arp["op"] == 2:
                            return arp
                arp = pb.wait_until(answered, 10, "ARP reply over dgram")
                assert arp["spa"] == "10.99.8.1"
                p = pb.find_port(d.stats(), "d0")
                assert p["rx_frames"] >= 1 and p["tx_frames"] >= 1
            # the daemon removed its own socket file, not the peer's
            assert not os.path.exists(a) and os.path.exists(b)
    finally:
        peer.close()
