# SPDX-License-Identifier: MIT
"""Churn through the user-mode router: 100,000 short TCP connections and
100,000 UDP flows from a namespace guest to servers on the host's
127.0.0.1 (through the gateway 10.0.2.2), in bounded time.  Afterwards no
flow, descriptor or memory is left behind: the router's flow count is 0,
its opened/closed counters match the number of connections the client
made, and /proc agrees (fd count back to the baseline, RSS within a bound).

The clients are small C programs built by the test (python is too slow
for 100k connections): bench/connrate.c for TCP (connect, wait for the
server's FIN, close) and tests/integration/udpflows.c for UDP (one echoed
datagram per distinct 5-tuple, resent if lost).

Both tests always run the full 100,000; every run is bounded by the
clients' own deadlines.  Needs root, /dev/net/tun, iproute2 and a C
compiler (skips say which).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import pb
from test_router import GW, RouterLab

HERE = Path(__file__).resolve().parent
N = 100_000
MiB = 1 << 20


def _cc():
    for c in ("cc", "gcc", "clang"):
        if shutil.which(c):
            return c
    pytest.skip("needs a C compiler (cc) to build the churn clients")


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """{"connrate": path, "udpflows": path}, built once for this file."""
    out = tmp_path_factory.mktemp("churn-bin")
    cc = _cc()
    srcs = {"connrate": pb.REPO / "bench" / "connrate.c",
            "udpflows": HERE / "udpflows.c"}
    built = {}
    for name, src in srcs.items():
        exe = out / name
        pb.run([cc, "-O2", "-Wall", "-o", str(exe), str(src)], timeout=120)
        built[name] = str(exe)
    return built


def _footprint(pid):
    return {"fds": pb.fd_count(pid), "rss_kib": pb.rss_kib(pid)}


def _rss_bound_kib():
    """How much the daemon's RSS may grow over its baseline: the flow
    table's touched entries, the kernel socket bookkeeping it mirrors,
    allocator caches.  ASan keeps freed memory in quarantine and adds
    shadow memory, so it gets more room."""
    return (256 if pb.is_asan_build() else 64) * 1024


def _settle(lab, pid, baseline, timeout):
    """Wait until the flow table is empty and the daemon's fd count is
    back to the baseline; returns the router counters."""
    r = lab.wait_flows(0, timeout=timeout)
    pb.wait_until(lambda: pb.fd_count(pid) <= baseline["fds"], 10,
                  "daemon fd count back to %d (now %d)"
                  % (baseline["fds"], pb.fd_count(pid)))
    return r


def _check_footprint(pid, baseline, what):
    now = _footprint(pid)
    print("%s: daemon fds %d (baseline %d), RSS %d KiB (baseline %d KiB)"
          % (what, now["fds"], baseline["fds"], now["rss_kib"],
             baseline["rss_kib"]))
    assert now["fds"] == baseline["fds"], (what, now, baseline)
    assert now["rss_kib"] - baseline["rss_kib"] <= _rss_bound_kib(), (
        "%s: RSS grew by %d KiB (bound %d KiB)"
        % (what, now["rss_kib"] - baseline["rss_kib"], _rss_bound_kib()))


def _json_line(proc, timeout, what):
    try:
        out, err = proc.communicate(timeout=pb.scaled(timeout))
    except subprocess.TimeoutExpired:
        pb.stop_proc(proc)
        raise AssertionError("%s still running after %.0fs"
                             % (what, pb.scaled(timeout)))
    assert proc.returncode == 0, "%s failed (rc=%d): %s" % (
        what, proc.returncode, err)
    return json.loads(out.strip().splitlines()[-1])


def test_churn_100k_tcp_connections(tmp_path, tools):
    """100,000 connect+close through the router (64 in flight): every one
    completes, tcp_opened and tcp_closed both grow by exactly 100,000
    (no resets), and the flows, fds and memory go back to the baseline."""
    port = pb.free_port()
    seconds = 120       # the client's own deadline: a stall fails, bounded
    srv = pb.popen([tools["connrate"], "server", "127.0.0.1", str(port),
                    str(seconds + 60)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    try:
        with RouterLab(tmp_path) as lab:
            pid = lab.daemon.pid
            pb.wait_until(lambda: _accepts(port), 10, "connrate server")
            # Warm up (ARP, the first host connection) so the baseline is
            # taken in steady state.
            _run_client(lab, tools["connrate"], ["client", GW, str(port),
                                                 "10", "20", "4"], 30)
            lab.wait_flows(0, timeout=20)
            before = lab.router()
            baseline = _footprint(pid)

            t0 = time.monotonic()
            res = _run_client(lab, tools["connrate"],
                              ["client", GW, str(port), str(seconds), str(N),
                               "64"], seconds + 30)
            dt = time.monotonic() - t0
            print("TCP churn: %s (%.1fs wall)" % (json.dumps(res), dt))
            assert res["connections"] == N and res["errors"] == 0, res

            t1 = time.monotonic()
            r = _settle(lab, pid, baseline, timeout=30)
            print("flows back to 0 %.1fs after the last connection"
                  % (time.monotonic() - t1))
            opened = r["tcp_opened"] - before["tcp_opened"]
            closed = r["tcp_closed"] - before["tcp_closed"]
            reset = r["tcp_reset"] - before["tcp_reset"]
            print("tcp_opened +%d, tcp_closed +%d, tcp_reset +%d"
                  % (opened, closed, reset))
            assert opened == N and closed == N and reset == 0, r
            for d in ("host_socket", "flow_table_full", "no_output_buffer"):
                assert r["drops"][d] == before["drops"][d], (d, r)
            _check_footprint(pid, baseline, "after 100k TCP connections")
            lab.daemon.assert_alive()
    finally:
        pb.stop_proc(srv)


UDP_PORTS = 50          # destination ports on the host
UDP_SRC = N // UDP_PORTS  # source sockets in the guest: 2,000
UDP_TIMEOUT = 1         # udp-timeout= for the router (seconds)
UDP_RATE = 6000         # new flows per second at most
UDP_FDS = 16384         # flow table and daemon fds: room for ~2.5x RATE


def test_churn_100k_udp_flows(tmp_path, tools):
    """100,000 distinct UDP flows (2,000 guest source ports x 50 host
    ports), each answered by an echo server on 127.0.0.1.  With
    udp-timeout=1 the router's flows end soon after their last datagram,
    so the flows live at once stay well below the host's ephemeral ports
    (each flow's host socket holds one) and the open-file limit.  Every flow is answered, the
    router counts exactly 100,000 opened and closed, and flows, fds and
    memory go back to the baseline."""
    seconds = 90
    # The daemon inherits our limit (and raises its soft limit to the
    # hard one): room for the flows alive at once, about UDP_RATE *
    # (UDP_TIMEOUT + 1 s of timer granularity).
    nofile = pb.raise_nofile(UDP_FDS)
    if nofile < UDP_FDS:
        pytest.skip("needs RLIMIT_NOFILE >= %d (hard limit is %d)"
                    % (UDP_FDS, nofile))
    srv, port0 = _udp_server(tools, seconds + 60)
    try:
        # (one guest: it may have the whole table, not a quarter)
        with RouterLab(tmp_path, user=",udp-timeout=%d,max-flows=%d,"
                       "max-flows-per-guest=%d,max-udp-flows=%d"
                       % (UDP_TIMEOUT, UDP_FDS, UDP_FDS, UDP_FDS)) as lab:
            pid = lab.daemon.pid
            # Warm up on other source ports: ARP, one flow per port.
            res = _run_client(lab, tools["udpflows"],
                              ["client", GW, str(port0), str(UDP_PORTS), "1",
                               str(UDP_PORTS), "64", "1000", "20"], 30)
            assert res["flows"] == UDP_PORTS, res
            lab.wait_flows(0, timeout=UDP_TIMEOUT + 10)
            before = lab.router()
            baseline = _footprint(pid)

            peak = {"flows": 0}
            t0 = time.monotonic()
            proc = _client(lab, tools["udpflows"], [
                "client", GW, str(port0), str(UDP_PORTS), str(UDP_SRC),
                str(N), "1024", str(UDP_RATE), str(seconds)])
            deadline = t0 + pb.scaled(seconds + 30)
            while proc.poll() is None and time.monotonic() < deadline:
                peak["flows"] = max(peak["flows"], lab.router()["flows"])
                time.sleep(0.5)     # sampling the peak, not synchronising
            res = _json_line(proc, 10, "udpflows client")
            dt = time.monotonic() - t0
            print("UDP churn: %s (%.1fs wall), peak flows %d"
                  % (json.dumps(res), dt, peak["flows"]))
            assert res["flows"] == N and res["lost"] == 0, res

            t1 = time.monotonic()
            r = _settle(lab, pid, baseline, timeout=UDP_TIMEOUT + 15)
            print("flows back to 0 %.1fs after the last answer"
                  % (time.monotonic() - t1))
            opened = r["udp_opened"] - before["udp_opened"]
            closed = r["udp_closed"] - before["udp_closed"]
            print("udp_opened +%d, udp_closed +%d" % (opened, closed))
            assert opened == N and closed == N, r
            for d in ("host_socket", "flow_table_full", "udp_send",
                      "no_output_buffer"):
                assert r["drops"][d] == before["drops"][d], (d, r)
            _check_footprint(pid, baseline, "after 100k UDP flows")
            lab.daemon.assert_alive()
    finally:
        pb.stop_proc(srv)


def _accepts(port):
    import socket
    with socket.create_connection(("127.0.0.1", port), 1):
        return True


def _client(lab, exe, args):
    return pb.ns_popen(lab.ns[0], [exe] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)


def _run_client(lab, exe, args, timeout):
    """Run a churn client (connrate or udpflows) in guest 0 to its end;
    returns its JSON line."""
    return _json_line(_client(lab, exe, args), timeout,
                      os.path.basename(exe))


def _udp_server(tools, lifetime):
    """The echo server on UDP_PORTS consecutive ports of 127.0.0.1 below
    the ephemeral range (a few bases tried); (proc, first port)."""
    for port0 in (21000, 23000, 25000, 27000):
        srv = pb.popen([tools["udpflows"], "server", "127.0.0.1",
                        str(port0), str(UDP_PORTS), str(lifetime)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
        line = srv.stdout.readline()
        if line.strip() == "ready":
            return srv, port0
        pb.stop_proc(srv)
    raise AssertionError("no free block of %d UDP ports on 127.0.0.1"
                         % UDP_PORTS)
