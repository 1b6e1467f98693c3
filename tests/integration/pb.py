# SPDX-License-Identifier: MIT
"""Shared helpers for patchbay's integration tests (imported by test files).

What is here:
  patchbay_bin()            path of the daemon under test ($PATCHBAY or build/)
  Daemon(args, tmpdir)      context manager running the daemon; .stats(),
                            .stop(), .log(), .port(name), .ports()
  netns(name)               context manager: a fresh, uniquely named network
                            namespace with lo up, deleted afterwards
  ns_exec / ns_popen        run a command inside a namespace
  wait_until(pred, ...)     poll a predicate with a deadline
  free_port(), sock_path()  loopback port / short unix socket path
  require_root(), require_tun(), require_netns(), require_tools(...)
                            pytest.skip with a clear reason when missing
  StreamPeer                a peer speaking QEMU's stream framing
                            (4-byte big-endian length + Ethernet frame)
  eth_frame, arp_request, parse_arp, mac_bytes, mac_str
                            tiny frame builders/parsers for crafted peers
  tap_netdev(), setup_tap(), ping(), link_mac(), wait_listening()
                            TAP ports inside namespaces and probes there
  TapLab(tmpdir, n, ...)    n namespaces with one TAP port each
                            (10.99.<subnet>.<i>/24) on one daemon
  find_port(), tshark_count(), run_patchbay(), sha256_file()

Timing: every wait has a deadline.  Set PB_TIMEOUT_SCALE (e.g. 3 under ASan)
to stretch all deadlines at once.  Processes started through this module
are tracked and ended by PID only (see reap_all()).
"""

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "patchbay: info: ready"
TIMEOUT_SCALE = float(os.environ.get("PB_TIMEOUT_SCALE", "1") or "1")

_counter = itertools.count(1)
# Every subprocess.Popen started via this module, so teardown can check that
# none is left running (and end it by PID if one is).
_procs = []


def scaled(seconds):
    """Apply PB_TIMEOUT_SCALE to a deadline in seconds."""
    return seconds * TIMEOUT_SCALE


def unique(prefix):
    """A short unique name: prefix + pid + counter (fits IFNAMSIZ for short
    prefixes: keep prefix <= 4 chars when used as an interface name)."""
    return "%s%d%d" % (prefix, os.getpid() % 100000, next(_counter))


def patchbay_bin():
    """Path of the binary under test: $PATCHBAY, else <repo>/build/patchbay."""
    env = os.environ.get("PATCHBAY")
    if env:
        return str(Path(env).resolve())
    return str(REPO / "build" / "patchbay")


# --------------------------------------------------------------------------
# Polling


def wait_until(pred, timeout=10.0, what="condition", interval=0.01):
    """Call pred() until it returns a truthy value; return that value.

    Raises AssertionError naming `what` when the (scaled) deadline passes.
    Exceptions from pred() count as "not yet" until the deadline, then the
    last one is re-raised inside the AssertionError message.
    """
    deadline = time.monotonic() + scaled(timeout)
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_exc = None
        except DaemonError:
            raise           # the daemon died: no point waiting any longer
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (
                scaled(timeout), what)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise AssertionError(msg)
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


# --------------------------------------------------------------------------
# Skip helpers: CI runs as root with /dev/net/tun and every tool, so there
# these never skip.


def have_root():
    return os.geteuid() == 0


def have_tun():
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def require_root():
    if not have_root():
        pytest.skip("needs root (network namespaces / TAP devices)")


def require_tun():
    if not have_tun():
        pytest.skip("needs /dev/net/tun (readable and writable) for TAP ports")


def require_netns():
    """Root, /dev/net/tun and the `ip` tool: what every namespace test needs."""
    require_root()
    require_tun()
    require_tools("ip")


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip("needs tool(s) not on PATH: %s" % ", ".join(missing))


def require_binary():
    b = patchbay_bin()
    if not os.access(b, os.X_OK):
        pytest.fail("patchbay binary not found at %s (run `make`, or set "
                    "PATCHBAY)" % b)
    return b


# --------------------------------------------------------------------------
# Small utilities


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    """A currently free loopback port (TCP by default, or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_short_dirs = []
# Daemons started during the current test (conftest prints their logs,
# which pytest shows only when the test fails).
_daemons = []


def dump_daemon_logs(max_lines=80):
    """Print the tail of each daemon's stderr from this test; forget them."""
    while _daemons:
        d = _daemons.pop(0)
        lines = d.log().splitlines()
        print("--- patchbay stderr (%s, exit %s), last %d of %d lines:"
              % (d.err_path, d.returncode, min(max_lines, len(lines)),
                 len(lines)))
        for ln in lines[-max_lines:]:
            print("    " + ln)


def sock_path(tmpdir, name="pb.sock"):
    """A unix socket path in tmpdir, or in a short private /tmp directory
    when tmpdir would exceed sun_path (108 bytes)."""
    p = os.path.join(str(tmpdir), name)
    if len(p.encode()) < 100:
        return p
    d = tempfile.mkdtemp(prefix="pb")
    _short_dirs.append(d)
    return os.path.join(d, name)


def cleanup_short_dirs():
    while _short_dirs:
        shutil.rmtree(_short_dirs.pop(), ignore_errors=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def track(proc):
    """Register a Popen so reap_all() ends it (by PID) if a test forgets."""
    _procs.append(proc)
    return proc


def popen(cmd, **kw):
    """subprocess.Popen + track()."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return track(subprocess.Popen(cmd, **kw))


def stop_proc(proc, timeout=5.0, sig=signal.SIGTERM):
    """End one process we started: sig, wait, then SIGKILL.  By PID only."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=scaled(timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=scaled(10))
    except ProcessLookupError:
        return proc.wait()


def reap_all():
    """End every tracked process still running; return their argv lists."""
    leftovers = []
    while _procs:
        p = _procs.pop()
        if p.poll() is None:
            leftovers.append(p.args)
            stop_proc(p, timeout=2)
    return leftovers


# --------------------------------------------------------------------------
# Network namespaces


def _run(cmd, check=True, timeout=30.0, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=scaled(timeout), **kw)
    if check and r.returncode != 0:
        raise AssertionError("command failed (rc=%d): %s\nstdout: %s\n"
                             "stderr: %s" % (r.returncode, " ".join(cmd),
                                             r.stdout, r.stderr))
    return r


def run(cmd, check=True, timeout=30.0, **kw):
    """subprocess.run with text capture, a timeout and a readable failure."""
    return _run(list(cmd), check=check, timeout=timeout, **kw)


def ns_exec(ns, cmd, check=True, timeout=30.0, **kw):
    """Run cmd (a list) inside namespace ns; returns CompletedProcess."""
    return _run(["ip", "netns", "exec", ns] + list(cmd), check=check,
                timeout=timeout, **kw)


def ns_popen(ns, cmd, **kw):
    """Start cmd in namespace ns in the background (tracked; `ip netns
    exec` execs the command, so the PID is the command's own)."""
    return popen(["ip", "netns", "exec", ns] + list(cmd), **kw)


@contextlib.contextmanager
def netns(name="ns"):
    """A fresh network namespace named pb<name><pid><n> with lo up.

    Yields the namespace name.  Deleted on exit, also on failure.
    """
    ns = "pb-%s-%d-%d" % (name, os.getpid(), next(_counter))
    _run(["ip", "netns", "add", ns])
    try:
        _run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        yield ns
    finally:
        _run(["ip", "netns", "del", ns], check=False)


def my_netns_left():
    """Named namespaces that netns() of this process made and still exist."""
    tag = "-%d-" % os.getpid()
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return []
    return [n for n in names if n.startswith("pb-") and tag in n]


def link_exists(ns, ifname):
    cmd = ["ip", "link", "show", "dev", ifname]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    return _run(cmd, check=False).returncode == 0


def setup_tap(ns, ifname, cidr, timeout=10.0):
    """Wait until the TAP `ifname` (made by patchbay inside ns) exists, then
    bring it up with address cidr (e.g. "10.99.0.1/24")."""
    wait_until(lambda: link_exists(ns, ifname), timeout,
               "interface %s in netns %s" % (ifname, ns))
    # No IPv6 DAD/RS/MLD chatter to get in the way of frame counting.
    ns_exec(ns, ["sysctl", "-q", "-w",
                 "net.ipv6.conf.%s.disable_ipv6=1" % ifname], check=False)
    ns_exec(ns, ["ip", "addr", "add", cidr, "dev", ifname])
    ns_exec(ns, ["ip", "link", "set", "dev", ifname, "up"])


def link_mac(ns, ifname):
    out = ns_exec(ns, ["ip", "-j", "link", "show", "dev", ifname]).stdout
    return json.loads(out)[0]["address"]


def ping(ns, addr, count=3, timeout=10.0, check=True, interval=0.2):
    """ping from inside ns: count echo requests, `interval` s apart (root
    may go below 0.2), bounded by timeout."""
    cmd = ["ping"] if shutil.which("ping") else ["busybox", "ping"]
    if not shutil.which(cmd[0]):
        pytest.skip("needs ping (iputils-ping) or busybox")
    return ns_exec(ns, cmd + ["-c", str(count), "-i", str(interval),
                              "-w", str(int(scaled(timeout))), addr],
                   check=check, timeout=timeout + 10)


# --------------------------------------------------------------------------
# The daemon


class DaemonError(AssertionError):
    pass


class Daemon:
    """Run patchbay for the duration of a `with` block.

    Daemon(args, tmpdir) appends `--stats-file <tmpdir>/stats.json`, sends
    stdout/stderr to files in tmpdir and waits for the readiness line on
    stderr.  Leaving the block calls stop() (SIGTERM, exit status 0 asserted)
    unless the test already did; on any failure the process is killed by PID.
    """

    def __init__(self, args, tmpdir, ready_timeout=10.0, stats_file=True,
                 wait_ready=True, env=None):
        self.args = [str(a) for a in args]
        self.tmpdir = Path(str(tmpdir))
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        # stats.json for the first daemon in tmpdir, stats.2.json, ... after
        n = 1
        while (self.tmpdir / ("patchbay%s.err" % ("" if n == 1 else
                                                  ".%d" % n))).exists():
            n += 1
        tag = "" if n == 1 else ".%d" % n
        self.stats_path = (self.tmpdir / ("stats%s.json" % tag)
                           if stats_file else None)
        self.out_path = self.tmpdir / ("patchbay%s.out" % tag)
        self.err_path = self.tmpdir / ("patchbay%s.err" % tag)
        self.err_path.touch()   # reserves the name for this instance
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.env = env
        self.proc = None
        self.final_stats = None
        self.returncode = None

    # -- life cycle --
    def argv(self):
        argv = [patchbay_bin()] + self.args
        if self.stats_path is not None:
            argv += ["--stats-file", str(self.stats_path)]
        return argv

    def start(self):
        require_binary()
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = popen(self.argv(), stdout=self._out, stderr=self._err,
                          env=env)
        _daemons.append(self)
        if self.wait_ready:
            try:
                self.wait_for_log(READY_LINE, self.ready_timeout)
            except BaseException:
                self.kill()
                raise
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, etype, exc, tb):
        if self.proc is None or self.returncode is not None:
            self._close_files()
            return False
        if etype is None:
            self.stop()
        else:
            # The test already failed: don't mask its error, just clean up.
            try:
                self.stop(check=False)
            except BaseException:
                self.kill()
        return False

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise DaemonError("patchbay exited with status %s\n--- stderr:\n%s"
                              % (self.proc.returncode, self.log()))

    def stop(self, timeout=10.0, check=True, sig=signal.SIGTERM):
        """SIGTERM (or sig), wait, assert exit status 0; return final stats
        (None without a stats file or if it is missing)."""
        if self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=scaled(timeout))
                except subprocess.TimeoutExpired:
                    self.kill()
                    self._close_files()
                    raise DaemonError(
                        "patchbay did not exit within %.1fs of signal %d\n"
                        "--- stderr:\n%s" % (scaled(timeout), sig, self.log()))
            self.returncode = self.proc.returncode
        self._close_files()
        if check and self.returncode != 0:
            raise DaemonError("patchbay exited with status %d (expected 0)\n"
                              "--- stderr:\n%s" % (self.returncode, self.log()))
        self.final_stats = self._read_stats()
        return self.final_stats

    def kill(self):
        """SIGKILL by PID (failure path)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=scaled(10))
        if self.proc is not None:
            self.returncode = self.proc.returncode
        self._close_files()

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    # -- output --
    def log(self):
        """Everything the daemon wrote on stderr so far."""
        try:
            return self.err_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, needle=None):
        lines = self.log().splitlines()
        if needle is None:
            return lines
        return [ln for ln in lines if needle in ln]

    def wait_for_log(self, needle, timeout=10.0, count=1):
        """Wait until at least `count` stderr lines contain needle; fail
        early (with the log) if the daemon exits meanwhile."""
        def seen():
            n = len(self.log_lines(needle))
            if n >= count:
                return True
            if self.proc.poll() is not None:
                # One last look: the line may have been written just before.
                if len(self.log_lines(needle)) >= count:
                    return True
                raise DaemonError(
                    "patchbay exited (status %s) before logging %r\n"
                    "--- stderr:\n%s" % (self.proc.returncode, needle,
                                         self.log()))
            return False
        deadline = time.monotonic() + scaled(timeout)
        while True:
            if seen():
                return
            if time.monotonic() >= deadline:
                raise DaemonError("timed out after %.1fs waiting for %r on "
                                  "stderr\n--- stderr:\n%s"
                                  % (scaled(timeout), needle, self.log()))
            time.sleep(0.01)

    # -- statistics --
    def _read_stats(self):
        if self.stats_path is None:
            return None
        try:
            with open(self.stats_path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def stats(self, timeout=5.0):
        """Ask for fresh counters (SIGUSR1) and return them once the stats
        file's "seq" has advanced past the value seen before the signal."""
        assert self.stats_path is not None, "Daemon started without stats"
        self.assert_alive()
        before = self._read_stats()
        seq0 = before["seq"] if before else -1
        self.proc.send_signal(signal.SIGUSR1)

        def fresh():
            if self.proc.poll() is not None:
                raise DaemonError("patchbay exited (status %s) while "
                                  "writing stats\n--- stderr:\n%s"
                                  % (self.proc.returncode, self.log()))
            s = self._read_stats()
            return s if s and s.get("seq", -1) > seq0 else None
        deadline = time.monotonic() + scaled(timeout)
        while True:
            s = fresh()
            if s:
                return s
            if time.monotonic() >= deadline:
                raise DaemonError("stats file %s not refreshed (seq > %d) "
                                  "within %.1fs\n--- stderr:\n%s"
                                  % (self.stats_path, seq0, scaled(timeout),
                                     self.log()))
            time.sleep(0.01)

    def ports(self, stats=None):
        """{port name: port dict} from stats (fresh ones if not given)."""
        s = stats if stats is not None else self.stats()
        return {p["name"]: p for p in s.get("ports", [])}

    def port(self, name, stats=None):
        """One port's dict by name, or None if not listed."""
        return self.ports(stats).get(name)

    def segment(self, name, stats=None):
        s = stats if stats is not None else self.stats()
        for seg in s.get("segments", []):
            if seg["id"] == name:
                return seg
        return None


def run_patchbay(args, timeout=10.0):
    """Run the binary to completion (option-error tests); CompletedProcess."""
    require_binary()
    argv = [patchbay_bin()] + [str(a) for a in args]
    try:
        return _run(argv, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        # subprocess.run already killed it.
        raise AssertionError("patchbay did not exit within %.0fs: %r"
                             % (scaled(timeout), argv))


# --------------------------------------------------------------------------
# Frames and the stream wire format


def mac_bytes(mac):
    if isinstance(mac, (bytes, bytearray)):
        return bytes(mac)
    return bytes(int(x, 16) for x in mac.split(":"))


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def ip_bytes(ip):
    return socket.inet_aton(ip)


BROADCAST = b"\xff" * 6
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800


def eth_frame(dst, src, ethertype, payload):
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + \
        payload


def arp_request(src_mac, src_ip, target_ip):
    """A broadcast ARP who-has target_ip from (src_mac, src_ip); 42 bytes."""
    sm = mac_bytes(src_mac)
    body = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + sm + \
        ip_bytes(src_ip) + b"\x00" * 6 + ip_bytes(target_ip)
    return eth_frame(BROADCAST, sm, ETH_P_ARP, body)


def parse_arp(frame):
    """dict(op, sha, spa, tha, tpa, dst, src) for an ARP frame, else None."""
    if len(frame) < 42:
        return None
    if struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
        return None
    return {
        "op": op, "dst": mac_str(frame[0:6]), "src": mac_str(frame[6:12]),
        "sha": mac_str(frame[22:28]), "spa": socket.inet_ntoa(frame[28:32]),
        "tha": mac_str(frame[32:38]), "tpa": socket.inet_ntoa(frame[38:42]),
    }


def frame_record(frame):
    """One stream/socket record: 4-byte big-endian length + frame."""
    return struct.pack("!I", len(frame)) + frame


class StreamPeer:
    """A peer on patchbay's stream backend (unix or TCP), speaking QEMU's
    framing.  Use as a context manager; closes the socket on exit."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    @classmethod
    def connect_unix(cls, path, timeout=10.0):
        """Connect, retrying until the daemon's socket accepts (deadline)."""
        def attempt():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
            except OSError:
                s.close()
                raise
            return s
        return cls(wait_until(attempt, timeout, "unix socket %s" % path))

    @classmethod
    def connect_tcp(cls, host, port, timeout=10.0):
        def attempt():
            return socket.create_connection((host, port), timeout=2)
        return cls(wait_until(attempt, timeout, "tcp %s:%d" % (host, port)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_frame(self, frame):
        self.sock.sendall(frame_record(frame))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes; return False on EOF/reset. Raises TimeoutError."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from patchbay before deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from patchbay before deadline")
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def recv_frame(self, timeout=5.0):
        """Next frame, None on EOF; TimeoutError when nothing arrives."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack("!I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    frame = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return frame
            if not self._fill(deadline):
                return None

    def recv_until(self, pred, timeout=5.0, what="matching frame"):
        """Read frames until pred(frame) is truthy; return pred's value.
        Bounded by the deadline; EOF is an error."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s" % what)
            try:
                f = self.recv_frame(timeout=left / TIMEOUT_SCALE)
            except TimeoutError:
                raise AssertionError("timed out waiting for %s" % what)
            if f is None:
                raise AssertionError("connection closed while waiting for %s"
                                     % what)
            v = pred(f)
            if v:
                return v

    def wait_closed(self, timeout=5.0):
        """True once the daemon closed the connection (EOF or reset);
        frames arriving meanwhile are discarded.  False on timeout."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            try:
                if not self._fill(deadline):
                    return True
            except TimeoutError:
                return False
            except (BrokenPipeError, OSError):
                return True
            self.buf = b""

    def is_open(self, timeout=0.3):
        """True if the connection shows no EOF within timeout (drains
        pending data)."""
        return not self.wait_closed(timeout)


# --------------------------------------------------------------------------
# TAP ports inside namespaces


def tap_netdev(netdev_id, ifname, ns, segment=None, extra=""):
    """-netdev spec for a TAP that patchbay creates inside namespace ns."""
    spec = "tap,id=%s,ifname=%s,netns=%s,script=no,downscript=no" % (
        netdev_id, ifname, ns)
    if segment:
        spec += ",segment=%s" % segment
    return spec + extra


def find_port(stats, netdev_id):
    """The port dict whose name or netdev is netdev_id (None if absent)."""
    for p in stats.get("ports", []):
        if p.get("name") == netdev_id:
            return p
    for p in stats.get("ports", []):
        if p.get("netdev") == netdev_id:
            return p
    return None


def wait_listening(ns, port, proto="tcp", timeout=10.0):
    """Wait until something listens on `port` inside ns (via ss)."""
    flag = "-Hltn" if proto == "tcp" else "-Hlun"

    def listening():
        out = ns_exec(ns, ["ss", flag, "sport", "=", ":%d" % port],
                      check=False).stdout
        return out.strip() != ""
    wait_until(listening, timeout, "%s listener on port %d in %s"
               % (proto, port, ns))


def tshark_count(pcap, display_filter=None, timeout=60.0):
    """Number of packets in pcap (matching display_filter); asserts that
    tshark read the file without error."""
    cmd = ["tshark", "-n", "-r", str(pcap)]
    if display_filter:
        cmd += ["-Y", display_filter]
    r = _run(cmd, check=False, timeout=timeout)
    assert r.returncode == 0, "tshark -r %s failed (rc=%d): %s" % (
        pcap, r.returncode, r.stderr)
    return len([ln for ln in r.stdout.splitlines() if ln.strip()])


class TapLab:
    """n namespaces, each with one TAP port (netdev t1..tn, address
    10.99.<subnet>.<i>/24) on a patchbay daemon.  Context manager:

        with TapLab(tmp_path, 2) as lab:
            lab.ns[0], lab.ip[1], lab.daemon, lab.ifname[0], lab.ids[0]

    segment: None (the default switch) or a --segment spec; the TAPs join
    it with segment=<its id>.  tap_extra: per-TAP option text appended to
    its -netdev spec (",vnet_hdr=off").  extra_args are appended to the daemon's
    arguments (captures, stream backends...).  tap_segments lets single
    TAPs join another segment (list, None entries = default).
    """

    def __init__(self, tmpdir, n=2, segment=None, extra_args=(), subnet=0,
                 tap_segments=None, ready_timeout=10.0, tap_extra=None):
        self.tmpdir = tmpdir
        self.n = n
        self.segment = segment
        self.extra_args = list(extra_args)
        self.subnet = subnet
        self.tap_segments = tap_segments
        self.ready_timeout = ready_timeout
        self.tap_extra = tap_extra
        self.ns, self.ifname, self.ids, self.ip = [], [], [], []
        self._stack = contextlib.ExitStack()
        self.daemon = None

    def __enter__(self):
        require_netns()
        try:
            args = []
            seg_id = None
            if self.segment:
                args += ["--segment", self.segment]
                seg_id = dict(kv.split("=", 1) for kv in
                              self.segment.split(",")[1:]).get("id")
            for i in range(self.n):
                ns = self._stack.enter_context(netns("n%d" % (i + 1)))
                self.ns.append(ns)
                self.ifname.append(unique("pbt"))
                self.ids.append("t%d" % (i + 1))
                self.ip.append("10.99.%d.%d" % (self.subnet, i + 1))
                seg = seg_id
                if self.tap_segments and self.tap_segments[i]:
                    seg = self.tap_segments[i]
                extra = self.tap_extra[i] if self.tap_extra else ""
                args += ["--netdev", tap_netdev(self.ids[i], self.ifname[i],
                                                ns, segment=seg, extra=extra)]
            args += self.extra_args
            self.daemon = self._stack.enter_context(
                Daemon(args, self.tmpdir, ready_timeout=self.ready_timeout))
            for i in range(self.n):
                setup_tap(self.ns[i], self.ifname[i], self.ip[i] + "/24")
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        # Daemon first (LIFO), then the namespaces.
        return self._stack.__exit__(*exc)

    def ping(self, a, b, count=3, **kw):
        """ping from namespace index a to the address of index b."""
        return ping(self.ns[a], self.ip[b], count=count, **kw)

    def port(self, i, stats=None):
        s = stats if stats is not None else self.daemon.stats()
        return find_port(s, self.ids[i])


# --------------------------------------------------------------------------
# Acting inside a namespace from the test process itself
#
# A network namespace is a per-thread attribute on Linux: a short-lived
# thread that joined namespace ns (setns) can create sockets there, and
# those sockets stay in ns after the thread is gone.  The test then drives
# them like any other socket: no helper process, no scripts to ship.

_CLONE_NEWNET = 0x40000000


def ns_call(ns, fn, *args, **kw):
    """Run fn(*args, **kw) in a thread that joined network namespace ns
    (a name under /run/netns or a path); return its result or re-raise
    its exception."""
    import ctypes
    import threading
    libc = ctypes.CDLL(None, use_errno=True)
    path = ns if ns.startswith("/") else "/run/netns/%s" % ns
    box = {}

    def body():
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "setns(%s): %s" % (path, os.strerror(e)))
            finally:
                os.close(fd)
            box["v"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["e"] = e
    t = threading.Thread(target=body, name="netns:%s" % ns, daemon=True)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box.get("v")


def pattern(n, tag):
    """n bytes of a recognisable per-tag pattern."""
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (n // len(seed) + 1))[:n]


UDP_SEGMENT = 103   # linux/udp.h: send several datagrams in one call


def kernel_has_tap_uso():
    """TAP devices take UDP super-datagrams from Linux 6.2 on."""
    rel = os.uname().release.split(".")
    return (int(rel[0]), int(rel[1].split("-")[0])) >= (6, 2)


def require_tap_uso():
    if not kernel_has_tap_uso():
        pytest.skip("kernel %s: TAP devices take UDP super-datagrams from "
                    "Linux 6.2 on" % os.uname().release)


def uso_burst(tx, rx, tag, bursts=10, per=20, size=1000):
    """Send bursts of `per` datagrams of `size` bytes in one call each
    (UDP_SEGMENT) on connected socket tx; rx must receive every one as
    written, in order."""
    tx.setsockopt(socket.IPPROTO_UDP, UDP_SEGMENT, size)
    for b in range(bursts):
        want = [pattern(size, "%s%d.%d" % (tag, b, i)) for i in range(per)]
        assert tx.send(b"".join(want)) == size * per
        for i, w in enumerate(want):
            got = rx.recv(65536)
            assert got == w, (b, i, len(got))


def ns_socket(ns, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    """A socket created inside network namespace ns."""
    return ns_call(ns, socket.socket, family, type, proto)


def recv_json_line(sock):
    """The first JSON line sock receives (a control-socket reply); fails if
    the peer closes before a whole line."""
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "closed without a line"
        data += chunk
    return json.loads(data.split(b"\n")[0])


def fd_count(pid):
    """Number of open file descriptors of process pid (/proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    """Resident set size of process pid in KiB (VmRSS in /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def is_asan_build():
    """True when the binary under test was built with AddressSanitizer
    (its memory use is then larger and slower to return)."""
    with open(patchbay_bin(), "rb") as f:
        return b"AddressSanitizer" in f.read()


def raise_nofile(want):
    """Raise this process's soft RLIMIT_NOFILE to at least `want` (up to
    the hard limit); returns the new soft limit.  Children inherit it."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft
