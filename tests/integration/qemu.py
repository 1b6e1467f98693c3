# SPDX-License-Identifier: MIT
"""Real QEMU guests for the integration tests.

Wraps the guest harness in tests/qemu (build-guest.sh, run-guest.sh,
guest/init): the guest is built once into a cache folder, run-guest.sh
--dry-run supplies the exact QEMU command line (so the harness stays the one
place that knows how to boot the guest), and this module runs QEMU itself so
that the test owns the QEMU process ID and can always end it.

Also: readiness polling on /proc/net (a listening socket, a bound UDP port, a
joined multicast group) without touching the socket, a private network
namespace for a whole test module, and loopback port allocation.

Nothing here sends a packet anywhere but loopback.
"""
from __future__ import annotations

import ctypes
import fcntl
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tests" / "qemu"
RUN_GUEST = HARNESS / "run-guest.sh"
BUILD_GUEST = HARNESS / "build-guest.sh"
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")


# --------------------------------------------------------------------------
# prerequisites and the guest build


def missing_prerequisite(need_root: bool = False, need_tun: bool = False) -> str | None:
    """Why QEMU guest tests cannot run here, or None when they can."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} not installed (apt-get install qemu-system-x86)"
    if not RUN_GUEST.exists():
        return f"guest harness missing: {RUN_GUEST}"
    if not glob.glob("/boot/vmlinuz-*"):
        return "no guest kernel /boot/vmlinuz-* (apt-get install linux-image-amd64)"
    if not os.access("/bin/busybox", os.X_OK):
        return "no /bin/busybox (apt-get install busybox-static)"
    for tool in ("cpio", "modprobe"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install cpio kmod)"
    if need_root and os.geteuid() != 0:
        return "needs root (network namespaces, TAP devices, routes)"
    if need_tun and not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def guest_build_dir() -> Path:
    """Folder with the built guest: $HARNESS_BUILD or <repo>/build/qemu-guest."""
    env = os.environ.get("HARNESS_BUILD")
    return Path(env) if env else REPO / "build" / "qemu-guest"


def _guest_sources() -> list[Path]:
    return [BUILD_GUEST, HARNESS / "extract-vmlinux.py", *sorted((HARNESS / "guest").iterdir())]


def _guest_up_to_date(out: Path) -> bool:
    initrd = out / "guest.cpio.gz"
    if not initrd.exists() or not ((out / "vmlinux").exists() or (out / "vmlinuz").exists()):
        return False
    built = initrd.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in _guest_sources())


def ensure_guest(out: Path | None = None) -> Path:
    """Build the guest into out unless an up-to-date build is there.

    Up to date: guest.cpio.gz and a kernel exist and are newer than every
    harness source.  A lock file keeps parallel test runs from building at
    the same time.  Returns the folder.
    """
    out = out or guest_build_dir()
    if _guest_up_to_date(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _guest_up_to_date(out):          # built meanwhile by another run
            return out
        env = dict(os.environ, OUT=str(out), HARNESS_BUILD=str(out))
        r = subprocess.run([str(BUILD_GUEST)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"build-guest.sh failed ({r.returncode}):\n{r.stdout}")
    return out


# --------------------------------------------------------------------------
# guests

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # In the child between fork and exec: if the test process dies (even by
    # SIGKILL) the kernel kills QEMU/the daemon too.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class GuestResult:
    name: str
    verdict: str                 # PASS | FAIL | NORESULT
    passed: list[str]
    failed: list[str]
    seconds: float               # QEMU start -> HARNESS-RESULT (or give-up)
    note: str                    # why there is no result, if so
    log: str = field(repr=False)  # whole console log
    log_path: str = ""
    argv: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == "PASS"

    def summary(self, tail: int = 40) -> str:
        lines = self.log.replace("\r", "").splitlines()
        return (f"guest {self.name}: {self.verdict} in {self.seconds:.1f}s {self.note}\n"
                f"  passed: {self.passed}\n  failed: {self.failed}\n"
                f"  console log: {self.log_path}\n  qemu: {shlex.join(self.argv)}\n"
                f"  --- last {tail} console lines ---\n"
                + "\n".join("  | " + ln for ln in lines[-tail:]))


_RESULT_RE = re.compile(r"HARNESS-RESULT: (PASS|FAIL)")
_MARK_RE = re.compile(r"HARNESS-(PASS|FAIL): (.*?)(?: \[t=[0-9.]+\])?\s*$")


@dataclass
class Guest:
    """One harness guest.  netdev: a QEMU -netdev spec (id=n0 is added);
    params: guest parameters for the kernel command line (see guest/init)."""
    name: str
    netdev: str
    params: str = ""
    nic: str = "virtio-net-pci"
    mac: str = "52:54:00:12:34:56"
    nic_opts: str = ""
    mem_mb: int = 256
    logdir: Path | None = None
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    log_path: Path | None = None
    t0: float = 0.0
    t_ready: float | None = None
    result: GuestResult | None = field(default=None, repr=False)
    _argv: list[str] = field(default_factory=list, repr=False)

    def argv(self) -> list[str]:
        """QEMU's argv exactly as run-guest.sh would build it."""
        build = ensure_guest()
        args = [str(RUN_GUEST), "--dry-run", "--name", self.name, "-n", self.netdev,
                "-m", self.nic, "--mac", self.mac, "--mem", str(self.mem_mb)]
        if self.nic_opts:
            args += ["--nic-opts", self.nic_opts]
        if self.params:
            args += ["-a", self.params]
        args += ["--", *self.extra]
        # run-guest.sh prints the command with printf %q; let bash undo the
        # quoting and hand the words back NUL-separated.
        script = 'eval "w=($("$@"))" && printf "%s\\0" "${w[@]}"'
        env = dict(os.environ, HARNESS_BUILD=str(build))
        r = subprocess.run(["bash", "-c", script, "dry-run", *args], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"run-guest.sh --dry-run failed: {r.stderr.decode()}")
        words = r.stdout.decode().split("\0")[:-1]
        if not words or "qemu" not in os.path.basename(words[0]):
            raise RuntimeError(f"unexpected run-guest.sh --dry-run output: {words!r}")
        return words

    def start(self) -> "Guest":
        argv = self._argv = self.argv()
        logdir = self.logdir or (guest_build_dir() / "logs")
        logdir.mkdir(parents=True, exist_ok=True)
        self.log_path = logdir / f"{self.name}.log"
        with open(self.log_path, "wb") as log:
            self.t0 = time.monotonic()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    def _make_result(self, verdict: str, note: str = "") -> GuestResult:
        text = self.log()
        passed, failed = [], []
        for line in text.replace("\r", "").splitlines():
            m = _MARK_RE.search(line)
            if m:
                (passed if m.group(1) == "PASS" else failed).append(m.group(2))
        return GuestResult(self.name, verdict, passed, failed,
                           time.monotonic() - self.t0, note, text,
                           str(self.log_path or ""), list(self._argv))

    def poll(self) -> GuestResult | None:
        """The result once the guest printed HARNESS-RESULT or QEMU died."""
        if self.result:
            return self.result
        m = _RESULT_RE.search(self.log())
        if m:
            self.result = self._make_result(m.group(1))
        elif self.proc is not None and self.proc.poll() is not None:
            m = _RESULT_RE.search(self.log())      # it may have printed and exited
            self.result = (self._make_result(m.group(1)) if m else
                           self._make_result("NORESULT", f"(QEMU exited {self.proc.returncode})"))
        return self.result

    def ready(self) -> bool:
        """True once the guest printed HARNESS-READY (h_listen)."""
        if self.t_ready is None and "HARNESS-READY:" in self.log():
            self.t_ready = time.monotonic()
        return self.t_ready is not None

    def give_up(self, why: str) -> GuestResult:
        """Settle the result now: FAIL if the guest already reported a
        failed check, else NORESULT."""
        if not self.result:
            r = self._make_result("NORESULT", f"({why})")
            if r.failed:
                r.verdict = "FAIL"
            self.result = r
        return self.result

    def stop(self, grace: float = 5.0) -> None:
        """End QEMU (by its PID): let a finished guest power off by itself,
        then SIGTERM, then SIGKILL."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None and self.result is not None and self.result.verdict != "NORESULT":
            try:
                p.wait(timeout=grace)          # the guest powers off after its result
            except subprocess.TimeoutExpired:
                pass
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=grace)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_guests(guests: list[Guest], timeout: float, on_ready=None, check=None,
                fail_fast: bool = True) -> list[GuestResult]:
    """Wait (polling the console logs) until every guest has a result or the
    deadline passes.

    on_ready(guest) runs once per guest when it prints HARNESS-READY (it may
    e.g. reach into the guest from a namespace); if it returns False the
    guest's result is NORESULT at once (no waiting for the guest's own
    h_hold).  check() runs on every round (e.g. "the daemon is still alive")
    and may raise to abort.  fail_fast: at the first HARNESS-FAIL of any
    guest, stop waiting for all of them (a failed ping would otherwise be
    followed by every later check timing out inside the guest).
    """
    deadline = time.monotonic() + timeout
    readied: set[str] = set()
    while True:
        pending = [g for g in guests if g.poll() is None]
        if check:
            check()
        if fail_fast and pending:
            failed = [g for g in pending if "HARNESS-FAIL:" in g.log()]
            if failed:
                for g in pending:
                    g.give_up("stopped at the first HARNESS-FAIL" if g in failed
                              else "stopped: another guest failed")
                break
        if on_ready:
            for g in guests:
                if g.name not in readied and g.result is None and g.ready():
                    readied.add(g.name)
                    if on_ready(g) is False:
                        g.give_up("on-ready check failed")
        if not pending:
            break
        if time.monotonic() >= deadline:
            for g in pending:
                g.give_up(f"no HARNESS-RESULT within {timeout:.0f}s")
            break
        time.sleep(0.05)
    return [g.result for g in guests]


class Guests:
    """Context manager owning a set of guests: stops every QEMU on exit,
    also when the test fails."""

    def __init__(self) -> None:
        self.guests: list[Guest] = []

    def start(self, guest: Guest) -> Guest:
        self.guests.append(guest)
        return guest.start()

    def __enter__(self) -> "Guests":
        return self

    def __exit__(self, etype=None, exc=None, tb=None) -> None:
        for g in self.guests:
            try:
                g.stop()
            except Exception:               # noqa: BLE001 - try the others
                if g.proc is not None and g.proc.poll() is None:
                    g.proc.kill()
        left = [g.name for g in self.guests if g.alive()]
        if left and etype is None:          # don't mask the test's own error
            raise AssertionError(f"QEMU still running for {left}")


# --------------------------------------------------------------------------
# readiness by polling /proc/net (never connects: a connection to a
# patchbay stream server would create a port)


def _poll(cond, timeout: float, what: str, interval: float = 0.02, diag=None):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            extra = f"\n{diag()}" if diag else ""
            raise TimeoutError(f"{what}: not within {timeout:.1f}s{extra}")
        time.sleep(interval)


def _proc_net(name: str) -> list[list[str]]:
    try:
        with open(f"/proc/thread-self/net/{name}") as f:
            return [ln.split() for ln in f.readlines()[1:]]
    except FileNotFoundError:
        return []


def _hexaddr4(host: str) -> str:
    return socket.inet_aton(host)[::-1].hex().upper()


def tcp_listening(port: int, host: str = "127.0.0.1") -> bool:
    want = f"{_hexaddr4(host)}:{port:04X}"
    anyaddr = f"00000000:{port:04X}"
    return any(r[3] == "0A" and r[1] in (want, anyaddr) for r in _proc_net("tcp") if len(r) > 3)


def udp_bound(port: int, host: str = "127.0.0.1") -> bool:
    want = {f"{_hexaddr4(host)}:{port:04X}", f"00000000:{port:04X}"}
    return any(r[1] in want for r in _proc_net("udp") if len(r) > 1)


def unix_listening(path: str) -> bool:
    # flags 00010000 = __SO_ACCEPTCON (listen() called)
    return any(len(r) >= 8 and r[-1] == path and r[3] == "00010000" for r in _proc_net("unix"))


def mcast_joined(group: str) -> bool:
    want = _hexaddr4(group)
    return any(len(r) >= 1 and r[0] == want for r in _proc_net("igmp"))


def wait_tcp_listening(port: int, host: str = "127.0.0.1", timeout: float = 10, diag=None):
    _poll(lambda: tcp_listening(port, host), timeout, f"TCP {host}:{port} listening", diag=diag)


def wait_udp_bound(port: int, host: str = "127.0.0.1", timeout: float = 10, diag=None):
    _poll(lambda: udp_bound(port, host), timeout, f"UDP {host}:{port} bound", diag=diag)


def wait_unix_listening(path: str, timeout: float = 10, diag=None):
    _poll(lambda: unix_listening(str(path)), timeout, f"unix socket {path} listening", diag=diag)


def wait_mcast_joined(group: str, timeout: float = 10, diag=None):
    _poll(lambda: mcast_joined(group), timeout, f"multicast group {group} joined", diag=diag)


def free_ports(n: int, kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that are free on host right now (bound together,
    then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, kind)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# a private network namespace for the calling thread

_CLONE_NEWNET = 0x40000000


class PrivateNetns:
    """Move the calling thread (and every process it starts afterwards) into
    a fresh network namespace that has only loopback (up), like
    tests/qemu/netns-run.sh; leave() returns to the original one.  Needs
    root.  routes: extra `ip route add` argument lists (e.g. multicast on lo).
    """

    def __init__(self, routes: list[list[str]] = ()) -> None:
        self.routes = routes
        self.old_fd: int | None = None

    def enter(self) -> "PrivateNetns":
        self.old_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if _libc.unshare(_CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            os.close(self.old_fd)
            self.old_fd = None
            raise OSError(e, f"unshare(CLONE_NEWNET): {os.strerror(e)}")
        try:
            # sanity: nothing but loopback in here
            names = [n for _, n in socket.if_nameindex()]
            if names != ["lo"]:
                raise RuntimeError(f"new network namespace is not empty: {names}")
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            for r in self.routes:
                subprocess.run(["ip", "route", "add", *r], check=True)
        except BaseException:
            self.leave()
            raise
        return self

    def leave(self) -> None:
        if self.old_fd is None:
            return
        if _libc.setns(self.old_fd, _CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns back to the original netns: {os.strerror(e)}")
        os.close(self.old_fd)
        self.old_fd = None

    def __enter__(self) -> "PrivateNetns":
        return self.enter()

    def __exit__(self, *exc) -> None:
        self.leave()


def netns_inode(pid: str = "thread-self") -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino
