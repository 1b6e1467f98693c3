# SPDX-License-Identifier: MIT
"""The daemon's sandbox (docs/sandbox.md): after set-up it sees an empty
root, runs as another user with few capabilities, under a seccomp
allow-list.

Covers: a file system mounted inside the TFTP root is served without the
sandbox and out of reach with it (the same daemon, the same files, only
--no-sandbox differs); a forbidden system call kills the daemon with one
clear log line (the hidden --sandbox-test-trap option); the user,
capabilities, seccomp mode and mount namespace the kernel reports for the
running daemon, --runas, --no-sandbox; socket files removed and the stats
file written at exit from inside the sandbox; `patchbay run` sandboxes its
network process, never the command.

Needs root (mount namespaces, changing user), /dev/net/tun and util-linux's
unshare (the skips say which).
"""

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

import pb

HERE = Path(__file__).resolve().parent
GUEST = (HERE / "tftp_guest.py").read_text()
NET = "10.98.0.0/24"
GW = "10.98.0.2"


def _status(pid):
    """{field: value} of /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


class WrappedDaemon(pb.Daemon):
    """pb.Daemon started through `unshare -m` with SECRET bind-mounted on
    TFTP_ROOT/sub first: the daemon starts in a mount namespace where the
    submount exists (exec keeps the PID, so stop() signals the daemon)."""

    def __init__(self, args, tmpdir, secret, sub, **kw):
        super().__init__(args, tmpdir, **kw)
        self.secret, self.sub = str(secret), str(sub)

    def argv(self):
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
                self.secret, self.sub] + super().argv()


def _tftp_get(ns, tmp_path, name):
    path = tmp_path / ("%s.py" % pb.unique("guest"))
    path.write_text(GUEST)
    r = pb.ns_exec(ns, ["/usr/bin/python3", str(path), GW,
                        json.dumps({"op": "get", "name": name})], timeout=60)
    return json.loads(r.stdout)


def _tftp_files(tmp_path):
    """The TFTP root (pub.txt, empty sub/) and the secret directory
    (secret.txt) of the submount test."""
    root = tmp_path / "tftp"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    (root / "pub.txt").write_bytes(b"public\n" * 100)
    secret = tmp_path / "secret"
    secret.mkdir(exist_ok=True)
    (secret / "secret.txt").write_bytes(b"secret\n" * 100)
    return root, secret


@pytest.mark.parametrize("sandbox", [False, True], ids=["no-sandbox",
                                                       "sandbox"])
def test_tftp_submount_only_without_sandbox(tmp_path, sandbox):
    """A directory mounted inside the TFTP root before the daemon started
    (in the daemon's own mount namespace, so only the daemon could see it)
    is served with --no-sandbox, and gone with the sandbox: the sandbox,
    not TFTP's confinement, is the barrier (openat2 RESOLVE_IN_ROOT allows
    crossing mounts inside the root)."""
    pb.require_netns()
    pb.require_tools("unshare", "mount")
    root, secret = _tftp_files(tmp_path)
    ifname = pb.unique("pbt")
    with pb.netns("sbx") as ns:
        args = ["--netdev", pb.tap_netdev("t1", ifname, ns),
                "--netdev", "user,id=u0,net=%s,tftp=%s" % (NET, root)]
        if not sandbox:
            args.append("--no-sandbox")
        with WrappedDaemon(args, tmp_path, secret, root / "sub") as d:
            pb.setup_tap(ns, ifname, "10.98.0.1/24")
            line = d.log_lines("sandbox:")
            assert line, d.log()
            if sandbox:
                assert "mount ns empty root" in line[0], line
            else:
                assert "off (--no-sandbox)" in line[0], line
            pub = _tftp_get(ns, tmp_path, "pub.txt")
            assert pub["error"] is None, pub
            assert pub["size"] == 700, pub
            sec = _tftp_get(ns, tmp_path, "sub/secret.txt")
            if sandbox:
                assert sec["error"] is not None, sec
                assert not sec.get("size"), sec
            else:
                assert sec["error"] is None, sec
                assert sec["size"] == 700, sec
            d.assert_alive()


def test_forbidden_syscall_kills_with_log_line(tmp_path):
    """--sandbox-test-trap (not in --help) makes one system call outside
    the allow-list after start-up: the daemon logs which and dies of
    SIGSYS.  This is the binary the suite tests, not a special build."""
    sock = pb.sock_path(tmp_path)
    err = tmp_path / "trap.err"
    with open(err, "wb") as ef:
        p = pb.popen([pb.patchbay_bin(), "--socket", sock, "--ctl",
                      str(tmp_path / "ctl.sock"), "--sandbox-test-trap"],
                     stdout=subprocess.DEVNULL, stderr=ef)
        try:
            rc = p.wait(timeout=pb.scaled(10))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    text = err.read_text()
    assert rc == -signal.SIGSYS, (rc, text)
    assert re.search(r"^patchbay: sandbox: forbidden system call \d+ "
                     r"\(reboot\)$", text, re.M), text
    assert "patchbay: info: sandbox: " in text and "seccomp on" in text, text


def _running(tmp_path, extra, check):
    sock = pb.sock_path(tmp_path)
    with pb.Daemon(["--socket", sock, "--ctl", str(tmp_path / "c.sock")] +
                   extra, tmp_path) as d:
        st = _status(d.pid)
        ns_self = os.readlink("/proc/self/ns/mnt")
        ns_d = os.readlink("/proc/%d/ns/mnt" % d.pid)
        check(d, st, ns_self != ns_d)
        d.stats()                     # SIGUSR1: written from inside
    assert not os.path.exists(sock), "socket file left behind"
    assert not os.path.exists(tmp_path / "c.sock")
    assert d.final_stats is not None


def test_sandbox_as_the_kernel_sees_it(tmp_path):
    """Default as root: user nobody, only the capabilities it keeps (see
    docs/sandbox.md), seccomp filter mode, its own mount namespace; the
    socket files are still removed and the stats file written."""
    pb.require_root()

    def check(d, st, own_ns):
        assert st["Uid"].split()[:3] == ["65534"] * 3, st["Uid"]
        assert st["Seccomp"] == "2", st
        assert st["NoNewPrivs"] == "1", st
        eff = int(st["CapEff"], 16)
        allowed = (1 << 1) | (1 << 13)    # dac_override, net_raw
        assert eff & ~allowed == 0, st["CapEff"]
        assert int(st["CapBnd"], 16) & ~allowed == 0, st["CapBnd"]
        assert own_ns
        assert "user 65534:65534" in d.log_lines("sandbox:")[0]
    _running(tmp_path, [], check)


def test_runas_and_no_sandbox(tmp_path):
    pb.require_root()

    def runas(d, st, own_ns):
        assert st["Uid"].split()[:3] == ["4321"] * 3, st["Uid"]
        assert st["Gid"].split()[:3] == ["4322"] * 3, st["Gid"]
        assert st["Seccomp"] == "2"
    _running(tmp_path / "a", ["--runas", "4321:4322"], runas)

    def off(d, st, own_ns):
        assert st["Uid"].split()[0] == "0"
        assert st["Seccomp"] == "0"
        assert not own_ns
        assert "off (--no-sandbox)" in d.log_lines("sandbox:")[0]
    _running(tmp_path / "b", ["--no-sandbox"], off)

    r = pb.run_patchbay(["--runas", "no-such-user-xyz"])
    assert r.returncode == 1 and "--runas: no user" in r.stderr, r


def test_run_sandboxes_network_process_not_command(tmp_path):
    """`patchbay run`: the network process (the command's parent) ends up
    under seccomp as nobody; the command itself runs unfiltered as root."""
    pb.require_netns()
    script = ("for i in $(seq 200); do "
              "grep -q '^Seccomp:.*2' /proc/$PPID/status && break; "
              "sleep 0.05; done; "
              "grep -E '^(Seccomp|Uid):' /proc/$PPID/status | tr '\\t' ' '; "
              "echo self; grep -E '^(Seccomp|Uid):' /proc/self/status "
              "| tr '\\t' ' '")
    r = pb.run([pb.patchbay_bin(), "run", "--", "sh", "-c", script],
               check=False, timeout=60)
    assert r.returncode == 0, r
    parent, _, child = r.stdout.partition("self\n")
    assert re.search(r"^Seccomp: 2$", parent, re.M), r.stdout
    assert re.search(r"^Uid: 65534 ", parent, re.M), r.stdout
    assert re.search(r"^Seccomp: 0$", child, re.M), r.stdout
    assert re.search(r"^Uid: 0 ", child, re.M), r.stdout
