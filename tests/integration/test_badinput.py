# SPDX-License-Identifier: MIT
"""Hostile or broken peers and bad options: patchbay drops or disconnects the
offender, counts/logs it, and every other port keeps working.

The healthy-path check after each case is a ping between two TAP namespaces
on the same switch (needs root and /dev/net/tun; skips say so).
"""

import os
import socket
import struct
import pytest

import pb

PEER_MAC = "02:00:00:99:00:01"


def _stream_lab(tmp_path, n=2):
    path = pb.sock_path(tmp_path, "s0.sock")
    spec = "stream,id=s0,server=on,addr.type=unix,addr.path=%s" % path
    return pb.TapLab(tmp_path, n, extra_args=["--netdev", spec]), path


def _assert_healthy(lab):
    lab.daemon.assert_alive()
    lab.ping(0, 1, count=2)
    lab.daemon.assert_alive()


def _arp_works(lab, peer, mac=PEER_MAC, ip="10.99.0.50"):
    peer.send_frame(pb.arp_request(mac, ip, lab.ip[0]))

    def reply(f):
        a = pb.parse_arp(f)
        return a and a["op"] == 2 and a["tha"] == mac
    peer.recv_until(reply, 5, "ARP reply through the switch")


BAD_STREAMS = {
    # name: bytes sent by the peer
    "length0": struct.pack("!I", 0),
    "length65551": struct.pack("!I", 65551) + b"\x00" * 64,
    "garbage_http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4,
    "garbage_ff": b"\xff" * 128,
}


@pytest.mark.parametrize("case", sorted(BAD_STREAMS))
def test_stream_bad_length_disconnects(tmp_path, case):
    lab, path = _stream_lab(tmp_path)
    with lab:
        with pb.StreamPeer.connect_unix(path) as good, \
                pb.StreamPeer.connect_unix(path) as bad:
            pb.wait_until(lambda: {"s0.1", "s0.2"} <= set(lab.daemon.ports()),
                          5, "two stream ports")
            _arp_works(lab, good)
            lines_before = len(lab.daemon.log_lines())
            bad.send_raw(BAD_STREAMS[case])
            assert bad.wait_closed(5), "daemon kept the connection open"
            pb.wait_until(lambda: "s0.2" not in lab.daemon.ports(), 5,
                          "bad stream port to be removed")
            new = lab.daemon.log_lines()[lines_before:]
            # Exactly one warning/error about it (an info line saying the
            # port closed may follow), not a flood.
            bad = [ln for ln in new if ln.startswith(("patchbay: warning",
                                                      "patchbay: error"))]
            assert len(bad) == 1 and "s0.2" in bad[0], new
            assert len([ln for ln in new if "s0.2" in ln and
                        " frames " not in ln]) <= 2, new
            # The other client and the namespaces are unaffected.
            _arp_works(lab, good)
            _assert_healthy(lab)
            assert "s0.1" in lab.daemon.ports()


def test_stream_runt_dropped_and_counted(tmp_path):
    lab, path = _stream_lab(tmp_path)
    with lab:
        with pb.StreamPeer.connect_unix(path) as peer:
            pb.wait_until(lambda: "s0.1" in lab.daemon.ports(), 5,
                          "stream port")
            for _ in range(3):
                peer.send_raw(struct.pack("!I", 5) + b"\x01\x02\x03\x04\x05")
            pb.wait_until(lambda: lab.daemon.ports()["s0.1"]["drops"]
                          ["runt"] >= 3, 5, "drops.runt >= 3 on s0.1")
            assert peer.is_open(0.3), "connection closed after a runt frame"
            # The framing stayed in sync: a real frame still gets through.
            _arp_works(lab, peer)
            p = lab.daemon.ports()["s0.1"]
            assert p["drops"]["runt"] == 3, p
            _assert_healthy(lab)


def test_tap_deleted_port_disappears(tmp_path):
    with pb.TapLab(tmp_path, 3) as lab:
        lab.ping(0, 2, count=1)
        assert lab.port(2) is not None
        pb.ns_exec(lab.ns[2], ["ip", "link", "del", lab.ifname[2]])
        pb.wait_until(lambda: lab.port(2) is None, 5,
                      "deleted TAP's port to leave the port list")
        _assert_healthy(lab)
        ports = lab.daemon.ports()
        assert {"t1", "t2"} <= set(ports) and "t3" not in ports, ports


def _badopt(tmp_path, args, must_name):
    r = pb.run_patchbay(args)
    assert r.returncode != 0, "accepted bad options %r\nstderr: %s" % (
        args, r.stderr)
    # The message may echo the option; the key must be named beyond that.
    rest = r.stderr
    for a in sorted(args, key=len, reverse=True):
        if "=" in a:        # a SPEC, not an option name
            rest = rest.replace(a, "")
    assert must_name in rest, "stderr does not name %r: %s" % (
        must_name, r.stderr)
    assert "ready" not in r.stderr
    return r


def test_option_errors(tmp_path, patchbay_bin):
    sock = pb.sock_path(tmp_path, "x.sock")
    base = "stream,id=s0,server=on,addr.type=unix,addr.path=%s" % sock
    # Unknown key.
    _badopt(tmp_path, ["--netdev", base + ",frobnicate=1"], "frobnicate")
    _badopt(tmp_path, ["-netdev", base + ",frobnicate=1"], "frobnicate")
    # Bad values.
    _badopt(tmp_path, ["--netdev", base.replace("server=on", "server=maybe")],
            "server")
    _badopt(tmp_path, ["--netdev", base.replace("addr.type=unix",
                                                "addr.type=carrier-pigeon")],
            "addr.type")
    _badopt(tmp_path, ["--netdev", "stream,id=c,server=off,addr.type=unix,"
                       "addr.path=%s,reconnect-ms=soon" % sock],
            "reconnect-ms")
    _badopt(tmp_path, ["--segment", "switch,id=s,fdb-size=-5"], "fdb-size")
    _badopt(tmp_path, ["--segment", "switch,id=s,ageing=forever"], "ageing")
    _badopt(tmp_path, ["--netdev", "frobnet,id=x"], "frobnet")
    # Duplicate ids.
    r = _badopt(tmp_path, ["--netdev", base, "--netdev",
                           base.replace("x.sock", "y.sock")], "s0")
    assert "duplicate" in r.stderr.lower(), r.stderr
    _badopt(tmp_path, ["--segment", "hub,id=dupseg", "--segment",
                       "switch,id=dupseg"], "dupseg")
    # A netdev naming a segment that does not exist.
    _badopt(tmp_path, ["--segment", "hub,id=h", "--netdev",
                       base + ",segment=nosuchseg"], "nosuchseg")
    # Unknown option altogether.
    _badopt(tmp_path, ["--frobnicate"], "frobnicate")
    # Nothing was left behind.
    assert not os.path.exists(sock)


def test_stream_client_reconnects(tmp_path):
    """stream,server=off,reconnect-ms=200: after the (test's) server closes
    the connection and its listening socket, then listens again, patchbay
    connects again by itself and frames flow again."""
    path = pb.sock_path(tmp_path, "srv.sock")

    def listen():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(4)
        s.settimeout(pb.scaled(10))
        return s

    def accept(srv):
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            raise AssertionError("patchbay did not connect within %.0fs"
                                 % pb.scaled(10))
        conn.settimeout(None)
        return pb.StreamPeer(conn)

    srv = listen()
    try:
        spec = ("stream,id=c0,server=off,addr.type=unix,addr.path=%s,"
                "reconnect-ms=200" % path)
        with pb.TapLab(tmp_path, 2, extra_args=["--netdev", spec]) as lab:
            with accept(srv) as peer:
                _arp_works(lab, peer)
            # Server side goes away completely (connection and listener).
            srv.close()
            os.unlink(path)
            _assert_healthy(lab)   # unaffected while c0 is down
            # ... and comes back.
            srv = listen()
            with accept(srv) as peer:
                _arp_works(lab, peer, mac="02:00:00:99:00:02", ip="10.99.0.51")
                pb.wait_until(lambda: pb.find_port(lab.daemon.stats(), "c0")
                              is not None, 5, "c0 listed again")
            # The retry loop is paced, not a busy loop flooding the log.
            assert len(lab.daemon.log_lines()) < 200, lab.daemon.log()
            _assert_healthy(lab)
    finally:
        srv.close()
        if os.path.exists(path):
            os.unlink(path)
