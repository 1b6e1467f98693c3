# SPDX-License-Identifier: MIT
"""patchbay run / attach: a command or an existing namespace on user-mode
networking, tested the way a container tool uses it."""

import glob
import hashlib
import os
import signal
import subprocess
import sys
import threading
import http.server
import socketserver

import pytest

import pb


def _listdir(path):
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


class _Server:
    """A threaded HTTP server on 127.0.0.1 serving a deterministic blob."""

    def __init__(self, size):
        self.data = hashlib.sha256(b"seed").digest() * (size // 32 + 1)
        self.data = self.data[:size]
        blob = self.data

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def log_message(self, *a):
                pass

        socketserver.TCPServer.allow_reuse_address = True
        self.srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.srv.shutdown()
        self.srv.server_close()


def run_pb(args, timeout=60, **kw):
    return pb.run([pb.patchbay_bin()] + args, check=False, timeout=timeout,
                  **kw)


@pytest.fixture
def root():
    pb.require_root()
    pb.require_tun()
    pb.require_binary()


def test_run_fetches_file_from_host(root, tmp_path):
    out = tmp_path / "got"
    with _Server(3 << 20) as s:
        r = run_pb(["run", "--", "curl", "-sf", "-o", str(out),
                    "http://10.0.2.2:%d/blob" % s.port])
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == s.data


def test_run_exit_status_propagates(root):
    assert run_pb(["run", "--", "true"]).returncode == 0
    assert run_pb(["run", "--", "sh", "-c", "exit 7"]).returncode == 7
    r = run_pb(["run", "--", "sh", "-c", "kill -TERM $$"])
    assert r.returncode == 128 + signal.SIGTERM
    r = run_pb(["run", "--", "/nonexistent/cmd"])
    assert r.returncode == 127 and "cannot run" in r.stderr


def test_run_configures_namespace(root):
    r = run_pb(["run", "--net", "domainname=lab.test", "--ifname", "pbx0",
                "--", "sh", "-c",
                "ip -4 -o addr show dev pbx0; ip route; cat /etc/resolv.conf;"
                " ip -o link | wc -l"])
    assert r.returncode == 0, r.stderr
    assert "10.0.2.15/24" in r.stdout
    assert "default via 10.0.2.2 dev pbx0" in r.stdout
    assert "nameserver 10.0.2.3" in r.stdout
    assert "search lab.test" in r.stdout
    # only lo and the TAP: a fresh namespace
    assert r.stdout.strip().splitlines()[-1].strip() == "2"
    # the host's resolv.conf is untouched
    assert "10.0.2.3" not in open("/etc/resolv.conf").read()


def test_run_leaves_nothing_behind(root, tmp_path):
    """No interface, no temporary file (run honours $TMPDIR: a private one
    here, so that other test runs on the machine do not interfere) and no
    process is left once the command has ended."""
    links = pb.run(["ip", "-o", "link"]).stdout
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = run_pb(["run", "--", "sh", "-c", "sleep 0.1 & exit 0"],
               env=dict(os.environ, TMPDIR=str(tmp)))
    assert r.returncode == 0
    assert pb.run(["ip", "-o", "link"]).stdout == links
    assert list(tmp.iterdir()) == []
    # a failing --join cleans up too
    r = run_pb(["run", "--join", str(tmp_path / "none.sock"), "--address",
                "10.0.2.50/24", "--", "true"],
               env=dict(os.environ, TMPDIR=str(tmp)))
    assert r.returncode == 125
    assert list(tmp.iterdir()) == []
    # no patchbay process of ours is left
    mine = pb.run(["pgrep", "-P", str(os.getpid()), "-x", "patchbay"],
                  check=False)
    assert mine.stdout.strip() == ""


def test_run_dns_through_local_upstream(root, tmp_path):
    pb.require_tools("dnsmasq", "dig")
    port = pb.free_port(kind=__import__("socket").SOCK_DGRAM)
    dm = pb.popen(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                   "--listen-address=127.0.0.1", "--bind-interfaces",
                   "--port=%d" % port, "--address=/run.example/192.0.2.44",
                   "--pid-file=%s" % (tmp_path / "dm.pid")],
                  stderr=subprocess.PIPE)
    try:
        pb.wait_until(lambda: pb.run(
            ["dig", "+short", "+timeout=1", "+tries=1", "-p", str(port),
             "@127.0.0.1", "x.run.example"], check=False).stdout.strip()
            == "192.0.2.44", timeout=10, what="dnsmasq up")
        r = run_pb(["run", "--net", "dns-upstream=127.0.0.1:%d" % port, "--",
                    "dig", "+short", "+timeout=2", "host.run.example"])
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "192.0.2.44"
    finally:
        pb.stop_proc(dm)


def test_run_hostfwd_reaches_command(root):
    port = pb.free_port()
    cmd = [pb.patchbay_bin(), "run", "--net",
           "hostfwd=tcp:127.0.0.1:%d-:7000" % port, "--",
           "sh", "-c", "echo inside-run | socat -u - TCP-LISTEN:7000"]
    pb.require_tools("socat")
    p = pb.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def fetch():
            r = pb.run(["socat", "-u", "TCP:127.0.0.1:%d" % port, "-"],
                       check=False, timeout=5)
            return "inside-run" in r.stdout
        pb.wait_until(fetch, timeout=15, what="hostfwd into run")
        assert p.wait(timeout=pb.scaled(10)) == 0
    finally:
        pb.stop_proc(p)


def test_run_rootless(root):
    """As an unprivileged user: a user namespace maps the caller to root."""
    if not os.path.exists("/proc/sys/user/max_user_namespaces") or \
            open("/proc/sys/user/max_user_namespaces").read().strip() == "0":
        pytest.skip("user namespaces are disabled on this kernel")
    pb.require_tools("setpriv")
    with _Server(100000) as s:
        r = pb.run(["setpriv", "--reuid=65534", "--regid=65534",
                    "--clear-groups", pb.patchbay_bin(), "run", "--",
                    "sh", "-c", "curl -sf http://10.0.2.2:%d/ | wc -c"
                    % s.port], check=False, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "100000"


def test_run_usage_errors(root):
    r = run_pb(["run"])
    assert r.returncode == 125 and "no command" in r.stderr
    r = run_pb(["run", "--bogus", "x", "--", "true"])
    assert r.returncode == 125 and "--bogus" in r.stderr
    r = run_pb(["run", "--net", "nope=1", "--", "true"])
    assert r.returncode == 125 and "nope" in r.stderr


def _attach(ns, extra=(), exit_fd=None):
    rfd, wfd = os.pipe()
    pass_fds = [wfd]
    args = [pb.patchbay_bin(), "attach", "--netns", ns, "--ready-fd",
            str(wfd)] + list(extra)
    if exit_fd is not None:
        args += ["--exit-fd", str(exit_fd)]
        pass_fds.append(exit_fd)
    p = pb.popen(args, pass_fds=pass_fds, stderr=subprocess.PIPE)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        assert f.read(1) == b"1", "attach did not report ready"
    return p


def test_attach_existing_namespace(root):
    with _Server(1 << 20) as s, pb.netns("att") as ns:
        p = _attach(ns)
        try:
            r = pb.ns_exec(ns, ["curl", "-sf", "-o", "/dev/null", "-w",
                                "%{size_download}",
                                "http://10.0.2.2:%d/" % s.port])
            assert r.stdout == str(1 << 20)
            out = pb.ns_exec(ns, ["ip", "-4", "-o", "addr", "show",
                                  "dev", "eth0"]).stdout
            assert "10.0.2.15/24" in out
        finally:
            assert pb.stop_proc(p) == 0


def test_attach_by_pid_and_exit_fd(root):
    """A container runtime's way: the namespace of a PID, and exit when the
    supervisor closes its end of the exit pipe."""
    with _Server(1000) as s:
        holder = pb.popen(["unshare", "-n", "sleep", "60"])
        try:
            nspath = "/proc/%d/ns/net" % holder.pid
            pb.wait_until(lambda: os.readlink(nspath) !=
                          os.readlink("/proc/self/ns/net"), timeout=5,
                          what="unshare")
            erfd, ewfd = os.pipe()
            p = _attach(str(holder.pid), exit_fd=erfd)
            os.close(erfd)
            r = pb.run(["nsenter", "-t", str(holder.pid), "-n", "curl",
                        "-sf", "-o", "/dev/null", "-w", "%{size_download}",
                        "http://10.0.2.2:%d/" % s.port])
            assert r.stdout == "1000"
            os.close(ewfd)      # the supervisor goes away
            assert p.wait(timeout=pb.scaled(10)) == 0
        finally:
            pb.stop_proc(holder)


def test_join_running_daemon(root, tmp_path):
    """Two attached namespaces and a run command join one daemon's segment
    through its control socket, reach each other and the router, and their
    ports go away when they end."""
    ctl = str(tmp_path / "ctl.sock")
    with pb.Daemon(["--ctl", ctl, "-netdev", "user,id=net0"],
                   tmp_path) as d, pb.netns("j1") as n1, pb.netns("j2") as n2:
        a1 = _attach(n1, ["--join", ctl, "--address", "10.0.2.41/24"])
        a2 = _attach(n2, ["--join", ctl, "--address", "10.0.2.42/24"])
        try:
            pb.ping(n1, "10.0.2.42")
            pb.ping(n2, "10.0.2.2")
            r = run_pb(["run", "--join", ctl, "--address", "10.0.2.43/24",
                        "--", "ping", "-c", "2", "-W", "2", "10.0.2.41"])
            assert r.returncode == 0, r.stderr
            names = [p["netdev"] for p in d.stats()["ports"]]
            assert len([n for n in names if n.startswith("ns")]) == 2
        finally:
            assert pb.stop_proc(a1) == 0
            assert pb.stop_proc(a2) == 0
        pb.wait_until(lambda: [p for p in d.stats()["ports"]
                               if p["netdev"].startswith("ns")] == [],
                      10, "joined ports removed")


def test_join_needs_address(root, tmp_path):
    r = run_pb(["run", "--join", str(tmp_path / "nope.sock"), "--", "true"])
    assert r.returncode == 125 and "--address" in r.stderr
    r = run_pb(["run", "--join", str(tmp_path / "nope.sock"), "--address",
                "10.0.2.50/24", "--", "true"])
    assert r.returncode == 125 and "nope.sock" in r.stderr
