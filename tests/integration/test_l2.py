# SPDX-License-Identifier: MIT
"""Layer-2 behaviour of patchbay with real peers: Linux network namespaces
behind TAP ports, stream-socket peers, and captures read back with tshark.

Needs root, /dev/net/tun, iproute2, socat and tshark (skips say which).
All traffic stays inside namespaces this file creates (10.99.0.0/24) and on
loopback / unix sockets in the test's tmp directory.
"""

import os
import signal
import socket
import subprocess

import pytest

import pb

MiB = 1 << 20


def test_tap_ping_and_100mib_tcp(tmp_path):
    """Two namespaces on one switch: ping both ways, then 100 MiB over TCP
    arrives intact (sha256) and the port counters account for it."""
    pb.require_tools("socat", "ss")
    src = tmp_path / "data.in"
    dst = tmp_path / "data.out"
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        for _ in range(100):
            w.write(r.read(MiB))
    want = pb.sha256_file(src)

    with pb.TapLab(tmp_path, 2) as lab:
        lab.ping(0, 1, count=3)
        lab.ping(1, 0, count=3)

        port = pb.free_port()  # any number: the namespace is private
        rx = pb.ns_popen(lab.ns[1], [
            "socat", "-u", "TCP-LISTEN:%d,bind=%s,reuseaddr" % (port, lab.ip[1]),
            "CREATE:%s" % dst], stderr=subprocess.PIPE)
        pb.wait_listening(lab.ns[1], port)
        tx = pb.ns_popen(lab.ns[0], [
            "socat", "-u", "OPEN:%s,rdonly" % src,
            "TCP:%s:%d,connect-timeout=5" % (lab.ip[1], port)],
            stderr=subprocess.PIPE)
        try:
            tx_rc = tx.wait(timeout=pb.scaled(60))
            rx_rc = rx.wait(timeout=pb.scaled(30))
        finally:
            pb.stop_proc(tx)
            pb.stop_proc(rx)
        assert tx_rc == 0, "sender socat failed: %s" % tx.stderr.read()
        assert rx_rc == 0, "receiver socat failed: %s" % rx.stderr.read()
        assert os.path.getsize(dst) == 100 * MiB
        assert pb.sha256_file(dst) == want

        s = lab.daemon.stats()
        p1, p2 = lab.port(0, s), lab.port(1, s)
        assert p1 is not None and p2 is not None, s
        # The sender's port received the data, the receiver's port sent it.
        assert p1["rx_bytes"] >= 100 * MiB, p1
        assert p2["tx_bytes"] >= 100 * MiB, p2
        # at least one frame per 64 KiB (TCP super-segments)
        assert p1["rx_frames"] >= 100 * MiB // 65550, p1
        # ACKs flow back the other way.
        assert p2["rx_frames"] > 0 and p1["tx_frames"] > 0
        seg = s["segments"][0]
        assert seg["type"] == "switch" and seg["id"] == "sw0", s["segments"]


def _socat_copy(lab, a, b, src, dst, port):
    """Copy file src from namespace index a to b over TCP; returns when the
    receiver has written dst."""
    rx = pb.ns_popen(lab.ns[b], [
        "socat", "-u", "TCP-LISTEN:%d,bind=%s,reuseaddr" % (port, lab.ip[b]),
        "CREATE:%s" % dst], stderr=subprocess.PIPE)
    pb.wait_listening(lab.ns[b], port)
    tx = pb.ns_popen(lab.ns[a], [
        "socat", "-u", "OPEN:%s,rdonly" % src,
        "TCP:%s:%d,connect-timeout=5" % (lab.ip[b], port)],
        stderr=subprocess.PIPE)
    try:
        assert tx.wait(timeout=pb.scaled(60)) == 0, tx.stderr.read()
        assert rx.wait(timeout=pb.scaled(30)) == 0, rx.stderr.read()
    finally:
        pb.stop_proc(tx)
        pb.stop_proc(rx)


def test_offloads_between_tap_with_and_without_vnet_hdr(tmp_path):
    """A TAP with offloads (the default) hands over TCP super-segments; the
    switch carries them to a TAP without vnet_hdr as ordinary frames cut in
    software (checksums and all), and the other way round ordinary frames
    arrive as they are.  Both copies arrive intact; the counters show which
    path the frames took."""
    pb.require_tools("socat", "ss")
    src = tmp_path / "data.in"
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        w.write(r.read(20 * MiB))
    want = pb.sha256_file(src)

    with pb.TapLab(tmp_path, 2, tap_extra=["", ",vnet_hdr=off"]) as lab:
        lab.ping(0, 1, count=2)
        port = pb.free_port()
        _socat_copy(lab, 0, 1, src, tmp_path / "ab.out", port)
        assert pb.sha256_file(tmp_path / "ab.out") == want
        _socat_copy(lab, 1, 0, src, tmp_path / "ba.out", port + 1)
        assert pb.sha256_file(tmp_path / "ba.out") == want

        s = lab.daemon.stats()
        p0, p1 = lab.port(0, s), lab.port(1, s)
        assert p0["offloads"] == ("csum,tso4,tso6,uso"
                                  if pb.kernel_has_tap_uso()
                                  else "csum,tso4,tso6"), p0
        assert p1["offloads"] == "", p1
        # A -> B: far fewer frames than 1500-byte packets (super-segments),
        # each cut for B in software, none refused.
        assert p0["rx_frames"] < 20 * MiB // 1514, p0
        assert p1["tx_soft"] >= 20 * MiB // 1514, p1
        assert p1["tx_frames"] >= 20 * MiB // 1514, p1
        assert p1["drops"]["bad_offload"] == 0, p1
        assert p0["drops"]["bad_vnet_hdr"] == 0, p0


def test_udp_segmentation_offload_cut_for_plain_port(tmp_path):
    """An application that sends with UDP_SEGMENT behind an offloading TAP
    hands the kernel's UDP super-datagrams to patchbay (USO: one frame for
    twenty datagrams); a TAP without vnet_hdr gets them cut in software,
    and the receiver gets every datagram as written, checksums valid (the
    kernel drops a datagram whose checksum is wrong)."""
    pb.require_tap_uso()
    with pb.TapLab(tmp_path, 2, tap_extra=["", ",vnet_hdr=off"]) as lab:
        lab.ping(0, 1, count=1)
        rx = pb.ns_socket(lab.ns[1], socket.AF_INET, socket.SOCK_DGRAM)
        tx = pb.ns_socket(lab.ns[0], socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            rx.bind((lab.ip[1], 0))
            rx.settimeout(pb.scaled(5))
            tx.connect((lab.ip[1], rx.getsockname()[1]))
            s0 = lab.daemon.stats()
            pb.uso_burst(tx, rx, "l2-")
            s = lab.daemon.stats()
        finally:
            rx.close()
            tx.close()
        p0, p1 = lab.port(0, s), lab.port(1, s)
        b0, b1 = lab.port(0, s0), lab.port(1, s0)
        assert p0["offloads"] == "csum,tso4,tso6,uso", p0
        # 200 datagrams in 10 frames (and little else) from A ...
        assert p0["rx_frames"] - b0["rx_frames"] < 50, (b0, p0)
        # ... cut into 200 frames for B
        assert p1["tx_soft"] - b1["tx_soft"] >= 200, (b1, p1)
        assert p1["drops"]["bad_offload"] == 0, p1
        assert p0["drops"]["bad_vnet_hdr"] == 0, p0


def test_offload_off_gets_plain_frames(tmp_path):
    """offload=off keeps the virtio-net header but asks the kernel for
    finished frames: the data comes in packets of at most the MTU."""
    pb.require_tools("socat", "ss")
    src = tmp_path / "data.in"
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        w.write(r.read(4 * MiB))
    with pb.TapLab(tmp_path, 2, tap_extra=[",offload=off", ""]) as lab:
        _socat_copy(lab, 0, 1, src, tmp_path / "out", pb.free_port())
        assert pb.sha256_file(tmp_path / "out") == pb.sha256_file(src)
        p0 = lab.port(0)
        assert p0["rx_frames"] >= 4 * MiB // 1514, p0
        assert p0["rx_bytes"] <= p0["rx_frames"] * 1514, p0


def _unicast_seen_by_third(tmp_path, segment):
    """ns1 pings ns2 (after ARP); returns (tx frames of the third port during
    the pings, ICMP packets in the capture on the third port, stats)."""
    pings = 20
    pcap = tmp_path / "third.pcap"
    with pb.TapLab(tmp_path, 3, segment=segment, extra_args=[
            "--capture", "id=c3,netdev=t3,file=%s" % pcap]) as lab:
        # ARP resolution and MAC learning happen here.
        lab.ping(0, 1, count=1)
        before = lab.port(2)["tx_frames"]
        seg_before = lab.daemon.stats()["segments"][0]
        lab.ping(0, 1, count=pings, interval=0.05)
        s = lab.daemon.stats()
        after = lab.port(2, s)["tx_frames"]
        seg_after = s["segments"][0]
        lab.ping(1, 0, count=1)   # still healthy both ways
    n_icmp = pb.tshark_count(pcap, "icmp && ip.addr==10.99.0.1 && "
                             "ip.addr==10.99.0.2")
    delta = {k: seg_after[k] - seg_before[k] for k in ("frames", "flooded",
                                                       "forwarded")}
    return after - before, n_icmp, delta, pings


def test_hub_floods_unicast(tmp_path):
    pb.require_tools("tshark")
    seen, n_icmp, delta, pings = _unicast_seen_by_third(tmp_path,
                                                        "hub,id=h0")
    # Every echo request and reply is also delivered to the third port.
    assert seen >= 2 * pings, "third port got %d frames" % seen
    assert n_icmp >= 2 * (pings + 1), "capture on t3 holds %d ICMP" % n_icmp
    assert delta["frames"] >= 2 * pings, delta


def test_switch_learns_unicast(tmp_path):
    pb.require_tools("tshark")
    seen, n_icmp, delta, pings = _unicast_seen_by_third(tmp_path,
                                                        "switch,id=s0")
    # After learning, known unicast goes to one port only.  Allow a couple
    # of stray frames (e.g. a neighbour re-probe) but not the 2*pings a hub
    # would deliver.
    assert seen <= 2, "third port got %d frames after learning" % seen
    assert n_icmp == 0, "capture on t3 holds %d ICMP" % n_icmp
    assert delta["forwarded"] >= 2 * pings, delta
    assert delta["flooded"] <= 2, delta


def test_switch_mac_flood_held_to_its_share(tmp_path):
    """MAC flooding: a guest sends frames from 300 invented source
    addresses into a switch with a 64-entry table.  Its port learns at most
    its share (fdb-per-port, default a quarter: 16), the rest is counted in
    fdb_port_full, and the other guests are still learnt: their unicast is
    forwarded to one port, never flooded to the flooder."""
    pb.require_tools("tshark")
    pcap = tmp_path / "flooder.pcap"
    with pb.TapLab(tmp_path, 3, segment="switch,id=s0,fdb-size=64",
                   extra_args=["--capture", "id=c1,netdev=t1,file=%s"
                               % pcap]) as lab:
        raw = pb.ns_call(lab.ns[0], socket.socket, socket.AF_PACKET,
                         socket.SOCK_RAW)
        try:
            raw.bind((lab.ifname[0], 0))
            for i in range(300):
                src = bytes([0x02, 0xf1, 0, 0, i >> 8, i & 0xff])
                # to a unicast address nobody has: flooded, source learnt
                raw.send(bytes([0x02, 0xee, 0, 0, 0, 1]) + src +
                         b"\x88\xb5" + b"flood" * 10)
        finally:
            raw.close()
        seg = {}

        def counted():
            seg["s"] = lab.daemon.stats()["segments"][0]
            return seg["s"]["fdb_port_full"] >= 300 - 16
        pb.wait_until(counted, 10, "the flood counted")
        s0 = seg["s"]
        assert s0["fdb_per_port"] == 16 and s0["fdb_max"] == 64, s0
        assert s0["fdb_entries"] <= 16 + 3, s0
        lab.ping(1, 2, count=1)         # ARP and learning
        before = lab.port(0)["tx_frames"]
        lab.ping(1, 2, count=10, interval=0.05)
        after_s = lab.daemon.stats()
        assert lab.port(0, after_s)["tx_frames"] - before <= 2
        assert after_s["segments"][0]["fdb_full"] == 0, after_s
    n_icmp = pb.tshark_count(pcap, "icmp && ip.addr==%s && ip.addr==%s"
                             % (lab.ip[1], lab.ip[2]))
    assert n_icmp == 0, "the flooder saw %d ICMP of the others" % n_icmp


def test_capture_pcaps_parse(tmp_path):
    """Captures on a port, on a segment and in QEMU's filter-dump form, taken
    during pings and a TCP transfer, parse in tshark without malformed
    packets and hold the expected ICMP packets; maxlen truncates."""
    pb.require_tools("tshark", "socat", "ss")
    pings = 10
    cap = {k: tmp_path / ("%s.pcap" % k) for k in ("port", "qemu", "seg")}
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(2 * MiB))
    # One capture per netdev/segment: t1 in patchbay's form, t2 in QEMU's,
    # and the whole segment truncated to 64 bytes per frame.
    extra = [
        "--capture", "id=cp,netdev=t1,file=%s" % cap["port"],
        "-object", "filter-dump,id=fq,netdev=t2,file=%s" % cap["qemu"],
        "--capture", "id=cs,segment=sw0,file=%s,maxlen=64" % cap["seg"],
    ]
    with pb.TapLab(tmp_path, 2, extra_args=extra) as lab:
        lab.ping(0, 1, count=pings, interval=0.05)
        port = pb.free_port()
        rx = pb.ns_popen(lab.ns[1], [
            "socat", "-u", "TCP-LISTEN:%d,bind=%s" % (port, lab.ip[1]),
            "OPEN:/dev/null,wronly"])
        pb.wait_listening(lab.ns[1], port)
        tx = pb.ns_exec(lab.ns[0], ["socat", "-u", "OPEN:%s,rdonly" % src,
                                    "TCP:%s:%d,connect-timeout=5"
                                    % (lab.ip[1], port)], timeout=60)
        assert tx.returncode == 0
        assert rx.wait(timeout=pb.scaled(30)) == 0
        s = lab.daemon.stop()
        assert s is not None

    for k, f in cap.items():
        assert f.exists() and f.stat().st_size > 24, "%s capture empty" % k
        assert pb.tshark_count(f, "_ws.malformed") == 0, \
            "%s capture has malformed packets" % k
        rows = _pcap_fields(f, "icmp.type", "tcp.len", "frame.cap_len",
                            "frame.len")
        assert len(rows) > 2 * pings, k
        # Each echo request and reply appears exactly once.
        assert sum(1 for r in rows if r[0] == "8") == pings, k
        assert sum(1 for r in rows if r[0] == "0") == pings, k
        # The transfer is in there (tcp.len comes from the IP header, so
        # this holds for the truncated capture too).
        assert any(r[1] and int(r[1]) > 1000 for r in rows), k
        if k == "seg":
            # maxlen=64: nothing longer stored, original lengths kept.
            assert all(int(r[2]) <= 64 for r in rows), k
            assert any(int(r[3]) > 1000 for r in rows), k
        else:
            assert all(r[2] == r[3] for r in rows), k


def _pcap_fields(pcap, *fields):
    """Rows of tshark -T fields (one list of strings per packet)."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-T", "fields",
           "-E", "separator=/t", "-E", "occurrence=f"]
    for fld in fields:
        cmd += ["-e", fld]
    r = pb.run(cmd, timeout=60)
    return [ln.split("\t") for ln in r.stdout.splitlines() if ln.strip()]


def _arp_reply_for(ip, mac):
    def pred(frame):
        a = pb.parse_arp(frame)
        if a and a["op"] == 2 and a["spa"] == ip and a["tha"] == mac:
            return a
        return None
    return pred


@pytest.mark.parametrize("addr", ["unix", "inet"])
def test_stream_server_peer_reaches_namespace(tmp_path, addr):
    """Clients of a stream server (QEMU framing) share the switch with a
    namespace: an ARP request injected by a client is answered by the
    namespace's kernel, and each connection is its own port."""
    if addr == "unix":
        path = pb.sock_path(tmp_path, "s0.sock")
        spec = "stream,id=s0,server=on,addr.type=unix,addr.path=%s" % path
    else:
        tcp_port = pb.free_port()
        spec = ("stream,id=s0,server=on,addr.type=inet,addr.host=127.0.0.1,"
                "addr.port=%d" % tcp_port)

    def connect():
        if addr == "unix":
            return pb.StreamPeer.connect_unix(path)
        return pb.StreamPeer.connect_tcp("127.0.0.1", tcp_port)

    mac_a, mac_b = "02:00:00:99:00:0a", "02:00:00:99:00:0b"
    with pb.TapLab(tmp_path, 1, extra_args=["--netdev", spec]) as lab:
        if addr == "unix":
            assert os.path.exists(path)
        with connect() as a, connect() as b:
            # Both connections become ports s0.1 and s0.2.
            pb.wait_until(lambda: {"s0.1", "s0.2"} <=
                          set(lab.daemon.ports()), 5, "ports s0.1, s0.2")
            a.send_frame(pb.arp_request(mac_a, "10.99.0.10", lab.ip[0]))
            rep = a.recv_until(_arp_reply_for(lab.ip[0], mac_a), 5,
                               "ARP reply from namespace")
            assert rep["sha"] == pb.link_mac(lab.ns[0], lab.ifname[0])
            # The broadcast request also reached the other client.
            b.recv_until(lambda f: (pb.parse_arp(f) or {}).get("sha")
                         == mac_a, 5, "flooded ARP request at client b")
            # And b can talk to the namespace too.
            b.send_frame(pb.arp_request(mac_b, "10.99.0.11", lab.ip[0]))
            b.recv_until(_arp_reply_for(lab.ip[0], mac_b), 5,
                         "ARP reply to client b")
            s = lab.daemon.stats()
            pa = pb.find_port(s, "s0.1")
            assert pa["rx_frames"] >= 1 and pa["tx_frames"] >= 1, pa
            assert pa["type"] and pa["netdev"] == "s0", pa
        # Closed connections are no longer listed.
        pb.wait_until(lambda: not ({"s0.1", "s0.2"} &
                                   set(lab.daemon.ports())), 5,
                      "closed stream ports to disappear")
        lab.daemon.stop()
    if addr == "unix":
        assert not os.path.exists(path), "unix socket not removed at exit"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_clean_shutdown(tmp_path, sig):
    """SIGINT/SIGTERM with a client attached: exit 0, the unix socket file
    is removed and the final counters are written."""
    path = pb.sock_path(tmp_path, "s0.sock")
    spec = "stream,id=s0,server=on,addr.type=unix,addr.path=%s" % path
    d = pb.Daemon(["--netdev", spec], tmp_path)
    with d:
        with pb.StreamPeer.connect_unix(path) as peer:
            pb.wait_until(lambda: "s0.1" in d.ports(), 5, "port s0.1")
            seq = d.stats()["seq"]
            final = d.stop(sig=getattr(signal, sig))
            assert peer.wait_closed(5), "client not disconnected at exit"
    assert d.returncode == 0
    assert final is not None and final["seq"] > seq, final
    assert not os.path.exists(path), "unix socket not removed at exit"
    assert "ready" in d.log()
