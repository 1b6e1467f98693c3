#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""patchbay's side-by-side benchmark suite (issue 7).

Sets up every backend at once -- patchbay (a namespace guest on a TAP port,
`patchbay attach`), pasta, slirp4netns and a plain veth pair (the kernel's
limit) for the user-mode path; a patchbay switch, a kernel bridge and VDE for
the L2 path -- and runs the same workloads on each, interleaved round by
round, so that the ratios survive a noisy machine.  Writes a table of medians
with ratios to bench/results/<timestamp>.md and .json.

Installs nothing: it checks for its tools and says what is missing
(bench/install-deps.sh installs them).  Needs root.  Everything runs inside a
private network namespace (the script re-executes itself under `unshare -n`)
and namespaces it creates; servers listen on 127.0.0.1 (or on addresses
inside namespaces it made); guests reach them only through the gateway
mapping (10.0.2.2) or port forwards; DNS is off or local; every command is
bounded in time and everything started is stopped by PID at the end.

  bench/run.py --quick          about two minutes: 1 round, 2 s per workload
  bench/run.py                  full: 3 rounds, 5 s per workload (~20 min)
  bench/run.py --check          only report which tools are present
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Addresses.  User-mode guests use QEMU's defaults (guest 10.0.2.15, gateway
# 10.0.2.2 = host loopback).  The veth baseline uses its own subnet inside
# the private namespace; the L2 pairs use 10.0.5.0/24 inside their own
# namespaces.  None of these is ever reachable from outside the private
# network namespace the suite runs in.
GW = "10.0.2.2"
VETH_HOST, VETH_GUEST = "10.0.9.1", "10.0.9.2"
TEMPLATE_ADDR, TEMPLATE_GW = "10.0.8.1", "10.0.8.254"
L2_A, L2_B = "10.0.5.1", "10.0.5.2"
GUEST_IPERF_PORT = 5201          # iperf3 server inside each guest (forwards)
UDP_FIXED_RATE = "500M"          # UDP fixed-rate workload, bits/s
UDP_LEN = 1400                   # UDP payload: fits MTU 1500 on every backend
UDP_BUF = "2M"                   # UDP socket buffers (iperf3 -w), both ends
RR_MSG = 64                      # request/response message size, bytes


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- tools ----

TOOLS = [
    # (command, package, needed for, required?)
    ("iperf3", "iperf3", "every throughput workload", True),
    ("ip", "iproute2", "namespaces, veth, bridge", True),
    ("unshare", "util-linux", "the private network namespace", True),
    ("nsenter", "util-linux", "slirp4netns set-up time", True),
    ("taskset", "util-linux", "pinned latency runs", True),
    ("cc", "gcc", "building bench/connrate.c", True),
    ("pasta", "passt", "the pasta backend", False),
    ("slirp4netns", "slirp4netns", "the slirp4netns backend", False),
    ("vde_switch", "vde2", "the VDE L2 backend", False),
    ("vde_plug2tap", "vde2", "the VDE L2 backend", False),
    ("sockperf", "sockperf", "latency (fallback: connrate ppclient)", False),
    ("hyperfine", "hyperfine", "set-up time (fallback: a timing loop)", False),
    ("perf", "linux-perf", "--profile", False),
]


def check_tools(verbose=True):
    have, missing_req, missing_opt = {}, [], []
    for cmd, pkg, why, req in TOOLS:
        path = shutil.which(cmd)
        have[cmd] = path
        if not path:
            (missing_req if req else missing_opt).append((cmd, pkg, why))
    if verbose:
        for cmd, pkg, why, req in TOOLS:
            state = have[cmd] or "MISSING"
            print(f"  {cmd:13s} {state:28s} ({'required' if req else 'optional'}: {why})")
        if missing_req or missing_opt:
            pkgs = sorted({p for _, p, _ in missing_req + missing_opt})
            print("  missing packages: " + " ".join(pkgs) +
                  "  -> run bench/install-deps.sh (as root)")
    return have, missing_req, missing_opt


def tool_version(cmd):
    """One line naming the version of a tool (dpkg's when the tool can't say)."""
    probes = {
        "iperf3": ["iperf3", "--version"],
        "sockperf": ["sockperf", "--version"],
        "slirp4netns": ["slirp4netns", "--version"],
        "hyperfine": ["hyperfine", "--version"],
        "perf": ["perf", "--version"],
        "ip": ["ip", "-V"],
    }
    pkgs = {"pasta": "passt", "vde_switch": "vde2", "slirp4netns": "slirp4netns",
            "sockperf": "sockperf", "iperf3": "iperf3"}
    out = ""
    if cmd in probes and shutil.which(cmd):
        try:
            r = subprocess.run(probes[cmd], capture_output=True, text=True, timeout=10)
            lines = [l for l in (r.stdout + r.stderr).splitlines()
                     if l.strip() and "syslog" not in l]
            out = re.sub(r"\x1b\[[0-9;]*m", "", lines[0]).strip() if lines else ""
        except (OSError, subprocess.TimeoutExpired):
            out = ""
    if cmd in pkgs:
        try:
            r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkgs[cmd]],
                               capture_output=True, text=True, timeout=10)
            if r.returncode == 0 and r.stdout:
                out = (out + f" (Debian {pkgs[cmd]} {r.stdout})").strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return out or "unknown"


# ----------------------------------------------------------- processes ----

class Ctx:
    def __init__(self, args, workdir):
        self.args = args
        self.work = workdir
        self.prefix = f"pbb{os.getpid()}"
        self.procs = []          # Popen objects we started (killed by PID)
        self.netns = []          # named namespaces we created
        self.commands = {}       # (workload, backend) -> exact command
        self.errors = []         # human-readable failures
        self.crashes = []        # backend processes that died
        self.all_cpus = sorted(os.sched_getaffinity(0))
        self.pin_cpu = args.pin_cpu if args.pin_cpu is not None else self.all_cpus[-1]
        self.deadline = time.monotonic() + args.max_minutes * 60
        self.have = {}

    def log(self, msg):
        ts = time.strftime("%H:%M:%S")
        print(f"[{ts}] {msg}", flush=True)

    def ns_add(self, name):
        run(["ip", "netns", "add", name], timeout=10)
        self.netns.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"], timeout=10)
        tune_netns(name)
        return name

    def spawn(self, cmd, ns=None, log=None, **kw):
        """Start a long-running process in its own session; stopped by PID."""
        full = (["ip", "netns", "exec", ns] if ns else []) + cmd
        out = open(os.path.join(self.work, log), "ab") if log else subprocess.DEVNULL
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, **kw)
        if log:
            out.close()
        p.cmdline = " ".join(shlex.quote(c) for c in full)
        self.procs.append(p)
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in reversed(list(self.procs)):
            try:
                self.stop(p)
            except Exception as e:  # keep going: cleanup must finish
                print(f"cleanup: {p.pid}: {e}", file=sys.stderr)
        for ns in reversed(self.netns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        self.netns = []


def run(cmd, ns=None, timeout=30, check=True, env=None):
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    try:
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"timed out after {timeout} s: {' '.join(full)}") from e
    if check and r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise BenchError(f"exit {r.returncode}: {' '.join(full)}: {' | '.join(tail)}")
    return r


def quote(cmd):
    return " ".join(shlex.quote(str(c)) for c in cmd)


def tune_netns(ns=None):
    """Same TCP knobs in every namespace: a wide ephemeral port range so the
    connect-rate loops never run out of ports."""
    run(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000"], ns=ns)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise BenchError(f"timed out waiting for {what}")


def wait_ready_fd(rfd, proc, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([rfd], [], [], 0.1)
        if r:
            data = os.read(rfd, 16)
            os.close(rfd)
            if data:
                return
            raise BenchError(f"{what}: ready fd closed without a byte")
        if proc.poll() is not None:
            os.close(rfd)
            raise BenchError(f"{what} exited with {proc.returncode} before it was ready")
    os.close(rfd)
    raise BenchError(f"{what}: not ready after {timeout} s")


def link_has_addr(ns, dev, addr):
    r = run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev], check=False, timeout=5)
    return r.returncode == 0 and f" {addr}/" in r.stdout


def link_exists(ns, dev):
    return run(["ip", "-n", ns, "link", "show", dev], check=False, timeout=5).returncode == 0


def tcp_listening(port, ns=None):
    r = run(["ss", "-Hltn", f"sport = :{port}"], ns=ns, check=False, timeout=5)
    return r.returncode == 0 and r.stdout.strip() != ""


def udp_bound(port, ns=None):
    r = run(["ss", "-Hlun", f"sport = :{port}"], ns=ns, check=False, timeout=5)
    return r.returncode == 0 and r.stdout.strip() != ""


# ------------------------------------------------- per-process counters ----

def proc_cpu_s(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])   # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def proc_status_kb(pids, key):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def reset_peak_rss(pids):
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")     # resets VmHWM to the current RSS
        except OSError:
            pass


def set_affinity(pids, cpus):
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


# ------------------------------------------------------------- servers ----

class Servers:
    """The servers one backend's clients talk to: iperf3, sockperf (TCP and
    UDP, pinned) or the connrate ping-pong fallback, and the connrate
    accept-and-close server.  `ns` None = the private host namespace."""

    def __init__(self, ctx, name, addr, base_port, ns=None):
        self.ctx, self.name, self.addr, self.ns = ctx, name, addr, ns
        self.iperf_port = base_port
        self.rr_tcp_port = base_port + 1
        self.rr_udp_port = base_port + 2
        self.conn_port = base_port + 3
        self.procs = {}

    def start(self):
        for key in ("iperf", "rr_tcp", "rr_udp", "conn"):
            self.start_one(key)
        wait_for(lambda: tcp_listening(self.iperf_port, self.ns) and
                 tcp_listening(self.rr_tcp_port, self.ns) and
                 tcp_listening(self.conn_port, self.ns) and
                 udp_bound(self.rr_udp_port, self.ns), 10, f"{self.name} servers")

    def cmd(self, key):
        c, life = self.ctx, str(int(self.ctx.args.max_minutes * 60 + 60))
        pin = ["taskset", "-c", str(c.pin_cpu)]
        if key == "iperf":
            return ["iperf3", "-s", "-B", self.addr, "-p", str(self.iperf_port),
                    "--idle-timeout", "120", "--rcv-timeout", "20000"]
        if key == "conn":
            return [c.connrate, "server", self.addr, str(self.conn_port), life]
        tcp = key == "rr_tcp"
        port = str(self.rr_tcp_port if tcp else self.rr_udp_port)
        if c.have.get("sockperf"):
            return pin + ["sockperf", "server", "-i", self.addr, "-p", port] + \
                (["--tcp"] if tcp else [])
        return pin + [c.connrate, "ppserver", "tcp" if tcp else "udp", self.addr, port, life]

    def start_one(self, key):
        self.procs[key] = self.ctx.spawn(self.cmd(key), ns=self.ns,
                                         log=f"server-{self.name}-{key}.log")

    def restart_dead(self):
        for key, p in list(self.procs.items()):
            if p.poll() is not None:
                self.ctx.log(f"  {self.name}: {key} server exited ({p.returncode}); restarting")
                self.start_one(key)

    def restart_iperf(self):
        self.ctx.stop(self.procs["iperf"])
        self.start_one("iperf")
        wait_for(lambda: tcp_listening(self.iperf_port, self.ns), 10, "iperf3 server")


# ------------------------------------------------------------ backends ----

class Backend:
    """One user-mode network (or the veth limit) with a guest namespace."""
    kind = "nat"
    tool = None               # the process whose CPU and memory we measure

    def __init__(self, ctx, name, idx):
        self.ctx, self.name, self.idx = ctx, name, idx
        self.ns = f"{ctx.prefix}-{idx}"
        base = 15200 + 20 * idx
        self.fwd_port = base + 10       # host port forwarded to the guest
        self.host_addr = "127.0.0.1"    # where host-side servers listen
        self.target = GW                # what the guest connects to
        self.servers = Servers(ctx, name, self.host_addr, base)
        self.proc = None
        self.setup_cmd = ""
        self.guest_server = None

    def pids(self):
        return [self.proc.pid] if self.proc and self.proc.poll() is None else []

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def fwd_addr(self):
        return ("127.0.0.1", self.fwd_port)

    def setup(self):
        self.ctx.ns_add(self.ns)
        self.start()
        self.servers.start()
        self.start_guest_server()

    def start_guest_server(self):
        """iperf3 inside the guest, the target of the port forward."""
        self.guest_server = self.ctx.spawn(
            ["iperf3", "-s", "-p", str(GUEST_IPERF_PORT), "--idle-timeout", "120",
             "--rcv-timeout", "20000"], ns=self.ns, log=f"guest-{self.name}-iperf.log")
        wait_for(lambda: tcp_listening(GUEST_IPERF_PORT, self.ns), 10, "guest iperf3 server")

    def restart(self):
        """After a crash: a fresh namespace and process; servers stay."""
        if self.proc:
            self.ctx.stop(self.proc)
        if self.guest_server:
            self.ctx.stop(self.guest_server)
        run(["ip", "netns", "del", self.ns], check=False)
        self.ctx.netns.remove(self.ns)
        self.ctx.ns_add(self.ns)
        self.start()
        self.start_guest_server()


class Veth(Backend):
    label = "veth"

    def __init__(self, ctx, idx):
        super().__init__(ctx, "veth", idx)
        self.host_addr = self.target = VETH_HOST
        self.servers = Servers(ctx, "veth", VETH_HOST, 15200 + 20 * idx)

    def fwd_addr(self):
        return (VETH_GUEST, GUEST_IPERF_PORT)

    def start(self):
        h, g = f"{self.ctx.prefix}v0", f"{self.ctx.prefix}v1"
        run(["ip", "link", "del", h], check=False)
        cmds = [["ip", "link", "add", h, "type", "veth", "peer", "name", g],
                ["ip", "link", "set", g, "netns", self.ns],
                ["ip", "-n", self.ns, "link", "set", g, "name", "eth0"],
                ["ip", "addr", "add", f"{VETH_HOST}/24", "dev", h],
                ["ip", "link", "set", h, "up"],
                ["ip", "-n", self.ns, "addr", "add", f"{VETH_GUEST}/24", "dev", "eth0"],
                ["ip", "-n", self.ns, "link", "set", "eth0", "up"]]
        for c in cmds:
            run(c)
        self.setup_cmd = "; ".join(quote(c) for c in cmds)


class Patchbay(Backend):
    label = "patchbay"

    def __init__(self, ctx, idx):
        super().__init__(ctx, "patchbay", idx)

    def start(self):
        r, w = os.pipe()
        cmd = [self.ctx.patchbay, "attach", "--netns", self.ns,
               "--net", f"hostfwd=tcp:127.0.0.1:{self.fwd_port}-:{GUEST_IPERF_PORT}",
               "--net", "dns-upstream=127.0.0.1:53", "--ready-fd", str(w), "-q"]
        self.proc = self.ctx.spawn(cmd, log="patchbay-attach.log", pass_fds=(w,))
        os.close(w)
        wait_ready_fd(r, self.proc, 15, "patchbay attach")
        self.setup_cmd = quote(cmd)


class Pasta(Backend):
    def __init__(self, ctx, idx, mtu):
        name = "pasta" if mtu is None else f"pasta-{mtu}"
        super().__init__(ctx, name, idx)
        self.mtu = mtu
        self.label = name

    def start(self):
        cmd = ["pasta", "--runas", "0", "-f", "-q", "--config-net",
               "-i", self.ctx.template_if, "-I", "eth0",
               "-a", "10.0.2.15", "-n", "24", "-g", GW, "-4", "-D", "none", "-S", "none",
               "--netns", self.ns,
               "-t", f"127.0.0.1/{self.fwd_port}:{GUEST_IPERF_PORT}",
               "-u", "none", "-T", "none", "-U", "none"]
        if self.mtu:
            cmd[cmd.index("--config-net") + 1:cmd.index("--config-net") + 1] = ["-m", str(self.mtu)]
        self.proc = self.ctx.spawn(cmd, log=f"{self.name}.log")
        wait_for(lambda: self.proc.poll() is not None or
                 (link_has_addr(self.ns, "eth0", "10.0.2.15") and
                  tcp_listening(self.fwd_port)), 15, self.name)
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc.returncode}; see "
                             f"{self.ctx.work}/{self.name}.log")
        self.setup_cmd = quote(cmd)


class Slirp(Backend):
    label = "slirp4netns"

    def __init__(self, ctx, idx):
        super().__init__(ctx, "slirp4netns", idx)
        self.api = os.path.join(ctx.work, "slirp4netns.sock")

    def start(self):
        if os.path.exists(self.api):
            os.unlink(self.api)
        r, w = os.pipe()
        cmd = ["slirp4netns", "--configure", "--mtu=1500", "--disable-dns",
               f"--api-socket={self.api}", "--netns-type=path", f"--ready-fd={w}",
               f"/run/netns/{self.ns}", "eth0"]
        self.proc = self.ctx.spawn(cmd, log="slirp4netns.log", pass_fds=(w,))
        os.close(w)
        wait_ready_fd(r, self.proc, 15, "slirp4netns")
        req = {"execute": "add_hostfwd",
               "arguments": {"proto": "tcp", "host_addr": "127.0.0.1",
                             "host_port": self.fwd_port, "guest_port": GUEST_IPERF_PORT}}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.api)
            s.sendall(json.dumps(req).encode())
            s.shutdown(socket.SHUT_WR)
            ans = s.recv(4096).decode()
        if "error" in ans:
            raise BenchError(f"slirp4netns add_hostfwd: {ans}")
        self.setup_cmd = quote(cmd) + f"; API: {json.dumps(req)}"


# -------------------------------------------------------- L2 backends ----

class L2Backend:
    """Two namespaces, A (servers, 10.0.5.1) and B (clients, 10.0.5.2),
    joined by a switch."""
    kind = "l2"

    def __init__(self, ctx, name, idx):
        self.ctx, self.name, self.idx = ctx, name, idx
        self.label = name
        self.ns_a = f"{ctx.prefix}-{idx}a"
        self.ns_b = f"{ctx.prefix}-{idx}b"
        self.ns = self.ns_b            # clients run here
        self.target = L2_A
        self.servers = Servers(ctx, name, L2_A, 5300, ns=self.ns_a)
        self.procs = []
        self.setup_cmd = ""

    def pids(self):
        return [p.pid for p in self.procs if p.poll() is None]

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def setup(self):
        self.ctx.ns_add(self.ns_a)
        self.ctx.ns_add(self.ns_b)
        self.start_and_address()
        self.servers.start()

    def start_and_address(self):
        self.start()
        for ns, addr in ((self.ns_a, L2_A), (self.ns_b, L2_B)):
            run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def restart(self):
        for p in self.procs:
            self.ctx.stop(p)
        self.procs = []
        for ns in (self.ns_a, self.ns_b):
            run(["ip", "-n", ns, "link", "del", "eth0"], check=False)
        self.start_and_address()


class L2Patchbay(L2Backend):
    def __init__(self, ctx, idx):
        super().__init__(ctx, "patchbay-switch", idx)

    def start(self):
        cmd = [self.ctx.patchbay, "-q",
               "-netdev", f"tap,id=a,ifname=eth0,netns={self.ns_a}",
               "-netdev", f"tap,id=b,ifname=eth0,netns={self.ns_b}"]
        p = self.ctx.spawn(cmd, log="patchbay-switch.log")
        self.procs = [p]
        wait_for(lambda: p.poll() is not None or
                 (link_exists(self.ns_a, "eth0") and link_exists(self.ns_b, "eth0")),
                 15, "patchbay switch TAPs")
        if p.poll() is not None:
            raise BenchError(f"patchbay switch exited with {p.returncode}")
        self.setup_cmd = quote(cmd)


class L2Bridge(L2Backend):
    def __init__(self, ctx, idx):
        super().__init__(ctx, "bridge", idx)
        self.ns_br = f"{ctx.prefix}-{idx}br"

    def setup(self):
        self.ctx.ns_add(self.ns_br)
        super().setup()

    def start(self):
        cmds = [["ip", "-n", self.ns_br, "link", "add", "br0", "type", "bridge"],
                ["ip", "-n", self.ns_br, "link", "set", "br0", "up"]]
        for side, ns in (("a", self.ns_a), ("b", self.ns_b)):
            x, y = f"{self.ctx.prefix}{side}0", f"{self.ctx.prefix}{side}1"
            cmds += [["ip", "link", "add", x, "type", "veth", "peer", "name", y],
                     ["ip", "link", "set", x, "netns", ns],
                     ["ip", "-n", ns, "link", "set", x, "name", "eth0"],
                     ["ip", "link", "set", y, "netns", self.ns_br],
                     ["ip", "-n", self.ns_br, "link", "set", y, "master", "br0"],
                     ["ip", "-n", self.ns_br, "link", "set", y, "up"]]
        for c in cmds:
            run(c)
        self.setup_cmd = "; ".join(quote(c) for c in cmds)


class L2Vde(L2Backend):
    def __init__(self, ctx, idx):
        super().__init__(ctx, "vde", idx)
        self.sock = os.path.join(ctx.work, "vde.ctl")

    def start(self):
        shutil.rmtree(self.sock, ignore_errors=True)
        sw_cmd = ["vde_switch", "-s", self.sock]
        # vde_switch reads its console from stdin and exits at EOF: keep a
        # pipe open for its lifetime.
        sw = self.ctx.spawn(sw_cmd, log="vde_switch.log", stdin=subprocess.PIPE)
        wait_for(lambda: sw.poll() is not None or os.path.exists(os.path.join(self.sock, "ctl")),
                 10, "vde_switch")
        self.procs = [sw]
        cmds = [quote(sw_cmd)]
        for ns in (self.ns_a, self.ns_b):
            c = ["vde_plug2tap", "-s", self.sock, "eth0"]
            self.procs.append(self.ctx.spawn(c, ns=ns, log=f"vde_plug2tap-{ns}.log"))
            cmds.append(quote(["ip", "netns", "exec", ns] + c))
            wait_for(lambda ns=ns: link_exists(ns, "eth0"), 10, "vde_plug2tap TAP")
        if not self.alive():
            raise BenchError("a VDE process exited during set-up")
        self.setup_cmd = "; ".join(cmds)


# ----------------------------------------------------------- workloads ----

def iperf_client(ctx, b, extra, ns, addr, port, seconds):
    cmd = ["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "-J",
           "--connect-timeout", "5000"] + extra
    r = run(cmd, ns=ns, timeout=seconds + 30, check=False)
    try:
        d = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"iperf3 printed no JSON (exit {r.returncode}): {r.stderr.strip()[:200]}")
    if "error" in d:
        raise BenchError(f"iperf3: {d['error']}")
    return cmd, d


def w_iperf(extra, udp=False, fwd=False):
    def fn(ctx, b, seconds):
        if fwd:
            addr, port = b.fwd_addr()
            ns = None if b.kind == "nat" else b.ns_b
        else:
            addr, port, ns = b.target, b.servers.iperf_port, b.ns
        cmd, d = iperf_client(ctx, b, list(extra), ns, addr, port, seconds)
        e = d["end"]
        rx = e["sum_received"]
        m = {"gbps": rx["bits_per_second"] / 1e9, "bytes": rx["bytes"]}
        # Seconds in which (almost) nothing arrived: a stalled flow shows
        # here even when the mean looks plausible.
        ivs = [i["sum"] for i in d.get("intervals", []) if "sum" in i]
        if ivs and not udp:
            top = max(i["bits_per_second"] for i in ivs)
            m["best_s_gbps"] = top / 1e9
            m["stall_s"] = sum(i["seconds"] for i in ivs
                               if i["bits_per_second"] < 0.01 * top)
        if udp:
            m["sent_gbps"] = e["sum_sent"]["bits_per_second"] / 1e9
            m["loss_pct"] = rx.get("lost_percent", 0.0)
        return cmd, ns, m
    return fn


def w_rr(tcp):
    def fn(ctx, b, seconds):
        port = b.servers.rr_tcp_port if tcp else b.servers.rr_udp_port
        pin = ["taskset", "-c", str(ctx.pin_cpu)]
        if ctx.have.get("sockperf"):
            cmd = pin + ["sockperf", "ping-pong", "-i", b.target, "-p", str(port),
                         "--full-rtt", "-m", str(RR_MSG), "-t", str(seconds)] + \
                (["--tcp"] if tcp else [])
            r = run(cmd, ns=b.ns, timeout=seconds + 30, check=False)
            out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
            p50 = re.search(r"percentile 50\.000 =\s*([\d.]+)", out)
            avg = re.search(r"avg-rtt=([\d.]+)", out)
            p99 = re.search(r"percentile 99\.000 =\s*([\d.]+)", out)
            if r.returncode != 0 or not p50:
                raise BenchError(f"sockperf exit {r.returncode}: {out.strip()[-300:]}")
            m = {"p50_us": float(p50.group(1)), "avg_us": float(avg.group(1)) if avg else None,
                 "p99_us": float(p99.group(1)) if p99 else None}
        else:
            cmd = pin + [ctx.connrate, "ppclient", "tcp" if tcp else "udp", b.target,
                         str(port), str(seconds)]
            r = run(cmd, ns=b.ns, timeout=seconds + 30)
            d = json.loads(r.stdout)
            m = {"p50_us": d["p50_us"], "avg_us": d["avg_us"], "p99_us": d["p99_us"]}
        return cmd, b.ns, m
    return fn


def w_connrate(ctx, b, seconds):
    cmd = [ctx.connrate, "client", b.target, str(b.servers.conn_port), str(seconds),
           "1000000000", "1"]
    r = run(cmd, ns=b.ns, timeout=seconds + 30)
    d = json.loads(r.stdout)
    if d["connections"] == 0:
        raise BenchError(f"no connection completed ({d['errors']} errors)")
    return cmd, b.ns, {"rate": d["rate"], "errors": d["errors"]}


def w_churn(ctx, b, seconds):
    n = ctx.args.churn
    cmd = [ctx.connrate, "client", b.target, str(b.servers.conn_port), "60", str(n), "50"]
    r = run(cmd, ns=b.ns, timeout=90)
    d = json.loads(r.stdout)
    return cmd, b.ns, {"rate": d["rate"], "connections": d["connections"],
                       "errors": d["errors"]}


# name -> (function, applies to nat / l2, quick?)
WORKLOADS = [
    ("tcp_g2h_1", w_iperf([]), ("nat",), True),
    ("tcp_g2h_4", w_iperf(["-P", "4"]), ("nat",), False),
    ("tcp_h2g_1", w_iperf(["-R"]), ("nat",), True),
    ("tcp_h2g_4", w_iperf(["-R", "-P", "4"]), ("nat",), False),
    ("tcp_fwd_h2g_1", w_iperf([], fwd=True), ("nat",), True),
    ("udp_fixed", w_iperf(["-u", "-b", UDP_FIXED_RATE, "-l", str(UDP_LEN), "-w", UDP_BUF], udp=True), ("nat",), True),
    ("udp_max", w_iperf(["-u", "-b", "0", "-l", str(UDP_LEN), "-w", UDP_BUF], udp=True), ("nat", "l2"), True),
    ("tcp_rr", w_rr(True), ("nat", "l2"), True),
    ("udp_rr", w_rr(False), ("nat", "l2"), True),
    ("conn_rate", w_connrate, ("nat",), True),
    ("churn", w_churn, ("nat",), True),
    ("l2_tcp_1", w_iperf([]), ("l2",), True),
    ("l2_tcp_4", w_iperf(["-P", "4"]), ("l2",), False),
]
PINNED = {"tcp_rr", "udp_rr"}


def run_one(ctx, wname, fn, b, rnd, seconds):
    rec = {"workload": wname, "backend": b.name, "round": rnd}
    if not b.alive():
        msg = f"{b.name} died before {wname} (round {rnd}); restarting it"
        ctx.log("  CRASH: " + msg)
        ctx.crashes.append(msg + crash_detail(b))
        try:
            b.restart()
        except BenchError as e:
            rec["error"] = f"restart failed: {e}"
            ctx.errors.append(f"{wname}/{b.name}/r{rnd}: {rec['error']}")
            return rec
    b.servers.restart_dead()
    pids = b.pids()
    if wname in PINNED:
        set_affinity(pids, {ctx.pin_cpu})
    reset_peak_rss(pids)
    cpu0, t0 = proc_cpu_s(pids), time.monotonic()
    try:
        cmd, ns, m = fn(ctx, b, seconds)
        rec["metrics"] = m
        ctx.commands.setdefault(wname, {})[b.name] = quote(
            (["ip", "netns", "exec", ns] if ns else []) + cmd)
    except (BenchError, KeyError, ValueError, json.JSONDecodeError) as e:
        rec["error"] = str(e)
        ctx.errors.append(f"{wname}/{b.name}/r{rnd}: {e}")
        ctx.log(f"  ERROR {wname}/{b.name}: {e}")
        if wname.startswith(("tcp_", "udp_", "l2_")):
            try:
                b.servers.restart_iperf()
            except BenchError:
                pass
    finally:
        if wname in PINNED:
            set_affinity(pids, set(ctx.all_cpus))
    rec["elapsed_s"] = time.monotonic() - t0
    if pids:
        rec["cpu_s"] = proc_cpu_s(pids) - cpu0
        rec["peak_rss_kb"] = proc_status_kb(pids, "VmHWM")
        if "metrics" in rec and rec["metrics"].get("bytes"):
            rec["metrics"]["cpu_s_per_gb"] = rec["cpu_s"] / (rec["metrics"]["bytes"] / 1e9)
    if not b.alive():
        msg = f"{b.name} died during {wname} (round {rnd})"
        ctx.log("  CRASH: " + msg)
        ctx.crashes.append(msg + crash_detail(b))
    return rec


def crash_detail(b):
    procs = [b.proc] if getattr(b, "proc", None) else getattr(b, "procs", [])
    parts = []
    for p in procs:
        if p.poll() is not None:
            how = (f"was killed by signal {-p.returncode}" if p.returncode < 0
                   else f"exited with status {p.returncode}")
            parts.append(f"; `{p.cmdline}` {how}")
    return "".join(parts)


# ------------------------------------------------------------- set-up ----

def setup_commands(ctx):
    pb = ctx.patchbay
    cmds = {"patchbay": [pb, "run", "-q", "--net", "dns-upstream=127.0.0.1:53", "--", "true"],
            "veth": ["unshare", "-n", "true"]}
    if ctx.have.get("pasta"):
        cmds["pasta"] = ["pasta", "--runas", "0", "-q", "--config-net", "-i", ctx.template_if,
                         "-a", "10.0.2.15", "-n", "24", "-g", GW, "-4", "-D", "none",
                         "-S", "none", "-t", "none", "-u", "none", "-T", "none", "-U", "none",
                         "--", "true"]
    if ctx.have.get("slirp4netns"):
        cmds["slirp4netns"] = [os.path.join(HERE, "slirp-setup.sh")]
    return cmds


def measure_setup(ctx, rnd, runs):
    """Median wall time of each set-up command (hyperfine when present)."""
    out = {}
    for name, cmd in setup_commands(ctx).items():
        ctx.commands.setdefault("setup_ms", {})[name] = quote(cmd)
        try:
            if ctx.have.get("hyperfine"):
                js = os.path.join(ctx.work, f"hyperfine-{name}-{rnd}.json")
                hf = ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs),
                      "--time-unit", "millisecond", "--export-json", js, "--style", "none",
                      quote(cmd)]
                run(hf, timeout=120)
                with open(js) as f:
                    res = json.load(f)["results"][0]
                med = res["median"] * 1000.0
            else:
                ts = []
                for i in range(runs + 2):
                    t0 = time.perf_counter()
                    run(cmd, timeout=30)
                    if i >= 2:
                        ts.append((time.perf_counter() - t0) * 1000.0)
                med = statistics.median(ts)
            out[name] = {"workload": "setup_ms", "backend": name, "round": rnd,
                         "metrics": {"ms": med}}
        except (BenchError, KeyError, ValueError) as e:
            out[name] = {"workload": "setup_ms", "backend": name, "round": rnd, "error": str(e)}
            ctx.errors.append(f"setup_ms/{name}/r{rnd}: {e}")
    return list(out.values())


# ------------------------------------------------------------ profile ----

def profile_patchbay(ctx, b, seconds):
    """perf record of the patchbay process during one TCP g->h run."""
    if not ctx.have.get("perf") or not b.pids():
        return None
    data = os.path.join(ctx.work, "perf-patchbay.data")
    prof = ctx.spawn(["perf", "record", "-F", "999", "-g", "-o", data, "-p",
                      str(b.pids()[0]), "--", "sleep", str(seconds)], log="perf-record.log")
    try:
        iperf_client(ctx, b, [], b.ns, b.target, b.servers.iperf_port, seconds)
    except BenchError as e:
        ctx.log(f"  profile run failed: {e}")
    try:
        prof.wait(seconds + 30)
    except subprocess.TimeoutExpired:
        ctx.stop(prof)
    ctx.procs.remove(prof) if prof in ctx.procs else None
    r = run(["perf", "report", "-i", data, "--stdio", "--no-children", "-F", "overhead,sym",
             "-g", "none", "--percent-limit", "1.5"], timeout=120, check=False)
    lines = [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    return lines[:25]


# -------------------------------------------------------------- report ----

# (label, workload, metric, unit, scale, better)
ROWS = [
    ("TCP guest->host, 1 stream", "tcp_g2h_1", "gbps", "Gbit/s", 1, "higher"),
    ("TCP guest->host, 4 streams", "tcp_g2h_4", "gbps", "Gbit/s", 1, "higher"),
    ("TCP host->guest, 1 stream", "tcp_h2g_1", "gbps", "Gbit/s", 1, "higher"),
    ("TCP host->guest, 4 streams", "tcp_h2g_4", "gbps", "Gbit/s", 1, "higher"),
    ("TCP host->guest via port forward", "tcp_fwd_h2g_1", "gbps", "Gbit/s", 1, "higher"),
    ("TCP guest->host, 1 stream, best second", "tcp_g2h_1", "best_s_gbps", "Gbit/s", 1, "higher"),
    ("TCP host->guest, 1 stream, best second", "tcp_h2g_1", "best_s_gbps", "Gbit/s", 1, "higher"),
    ("Stalled seconds, TCP g->h 1 stream", "tcp_g2h_1", "stall_s", "s", 1, "lower"),
    ("Stalled seconds, TCP h->g 1 stream", "tcp_h2g_1", "stall_s", "s", 1, "lower"),
    (f"UDP g->h at {UDP_FIXED_RATE}bit/s: received", "udp_fixed", "gbps", "Gbit/s", 1, "higher"),
    (f"UDP g->h at {UDP_FIXED_RATE}bit/s: loss", "udp_fixed", "loss_pct", "%", 1, "lower"),
    ("UDP g->h max rate: received", "udp_max", "gbps", "Gbit/s", 1, "higher"),
    ("UDP g->h max rate: loss", "udp_max", "loss_pct", "%", 1, "lower"),
    ("TCP RTT p50 (pinned)", "tcp_rr", "p50_us", "us", 1, "lower"),
    ("UDP RTT p50 (pinned)", "udp_rr", "p50_us", "us", 1, "lower"),
    ("TCP connect+close rate", "conn_rate", "rate", "conn/s", 1, "higher"),
    ("CPU per GB, TCP g->h 1 stream", "tcp_g2h_1", "cpu_s_per_gb", "CPU-s/GB", 1, "lower"),
    ("CPU per GB, TCP h->g 1 stream", "tcp_h2g_1", "cpu_s_per_gb", "CPU-s/GB", 1, "lower"),
    ("RSS idle (after set-up)", "rss", "idle_mb", "MB", 1, "lower"),
    ("RSS peak, connection churn", "churn", "peak_rss_mb", "MB", 1, "lower"),
    ("RSS peak, any workload", "rss", "peak_mb", "MB", 1, "lower"),
    ("Churn rate (50 in flight)", "churn", "rate", "conn/s", 1, "higher"),
    ("Set-up time (run `true`)", "setup_ms", "ms", "ms", 1, "lower"),
]
L2_ROWS = [
    ("L2 TCP A<-B, 1 stream", "l2_tcp_1", "gbps", "Gbit/s", 1, "higher"),
    ("L2 TCP A<-B, 4 streams", "l2_tcp_4", "gbps", "Gbit/s", 1, "higher"),
    ("L2 UDP max rate: received", "udp_max", "gbps", "Gbit/s", 1, "higher"),
    ("L2 UDP max rate: loss", "udp_max", "loss_pct", "%", 1, "lower"),
    ("L2 TCP RTT p50 (pinned)", "tcp_rr", "p50_us", "us", 1, "lower"),
    ("L2 UDP RTT p50 (pinned)", "udp_rr", "p50_us", "us", 1, "lower"),
    ("L2 CPU per GB, TCP 1 stream", "l2_tcp_1", "cpu_s_per_gb", "CPU-s/GB", 1, "lower"),
    ("L2 RSS idle (after set-up)", "rss", "idle_mb", "MB", 1, "lower"),
]


def medians(records):
    """(workload, backend, metric) -> median over rounds, and all values."""
    vals = {}
    for r in records:
        for k, v in (r.get("metrics") or {}).items():
            if isinstance(v, (int, float)) and v is not None:
                vals.setdefault((r["workload"], r["backend"], k), []).append(v)
        if r.get("peak_rss_kb") and r["workload"] == "churn":
            vals.setdefault(("churn", r["backend"], "peak_rss_mb"), []).append(
                r["peak_rss_kb"] / 1024)
    med = {k: statistics.median(v) for k, v in vals.items()}
    return med, vals


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit in ("Gbit/s",):
        return f"{v:.3f}" if v < 1 else f"{v:.2f}"
    if unit in ("%",):
        return f"{v:.2f}"
    if unit in ("conn/s",):
        return f"{v:,.0f}"
    if unit in ("us", "ms", "MB", "s"):
        return f"{v:.1f}"
    if unit == "CPU-s/GB":
        return f"{v:.2f}"
    return f"{v:.3g}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x):
    return "n/a" if x is None else (f"{x:.2f}x" if x < 100 else f"{x:.0f}x")


def table(rows, backends, med, base, pb):
    lines = []
    # Rows that no backend measured (a workload left out by --quick or
    # --workloads) are left out.
    rows = [r for r in rows if any(med.get((r[1], be, r[2])) is not None for be in backends)]
    hdr = ["metric", "unit"] + backends
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for label, w, k, unit, _s, _b in rows:
        cells = [label, unit] + [fmt(med.get((w, be, k)), unit) for be in backends]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    alts = [be for be in backends if be not in (base, pb)]
    hdr = ["metric", "better"] + [f"{be} / {base}" for be in backends if be != base] + \
        [f"{pb} / {a}" for a in alts]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for label, w, k, unit, _s, better in rows:
        if unit in ("%", "s"):
            continue
        cells = [label, better]
        for be in backends:
            if be != base:
                cells.append(fmt_ratio(ratio(med.get((w, be, k)), med.get((w, base, k)))))
        for a in alts:
            cells.append(fmt_ratio(ratio(med.get((w, pb, k)), med.get((w, a, k)))))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(med):
    """Issue 7's targets: (text, met?, detail)."""
    g = lambda w, b, k: med.get((w, b, k))
    out = []

    def add(text, ok, detail):
        out.append((text, None if ok is None else bool(ok), detail))

    for w, name in (("tcp_g2h_1", "TCP guest->host"), ("tcp_h2g_1", "TCP host->guest")):
        pb, ve = g(w, "patchbay", "gbps"), g(w, "veth", "gbps")
        r = ratio(pb, ve)
        add(f"{name} 1 stream >= 0.75x veth", None if r is None else r >= 0.75,
            f"{fmt_ratio(r)} ({fmt(pb, 'Gbit/s')} vs {fmt(ve, 'Gbit/s')} Gbit/s)")
        for alt, want in (("pasta", 5), ("pasta-1500", 5), ("slirp4netns", 20)):
            a = g(w, alt, "gbps")
            if a is None and alt == "pasta-1500":
                continue
            r = ratio(pb, a)
            add(f"{name} 1 stream >= {want}x {alt}", None if r is None else r >= want,
                f"{fmt_ratio(r)} ({fmt(pb, 'Gbit/s')} vs {fmt(a, 'Gbit/s')} Gbit/s)")
    for w, name in (("tcp_rr", "TCP RTT"), ("udp_rr", "UDP RTT")):
        pb, ve = g(w, "patchbay", "p50_us"), g(w, "veth", "p50_us")
        d = None if pb is None or ve is None else pb - ve
        add(f"{name} (pinned) <= veth + 10 us", None if d is None else d <= 10,
            "n/a" if d is None else f"veth {ve:+.1f}".replace("+", "") + f" us, patchbay {pb:.1f} us (+{d:.1f} us)")
    pb, ve = g("conn_rate", "patchbay", "rate"), g("conn_rate", "veth", "rate")
    r = ratio(pb, ve)
    add("Connect+close rate >= 0.8x veth", None if r is None else r >= 0.8,
        f"{fmt_ratio(r)} ({fmt(pb, 'conn/s')} vs {fmt(ve, 'conn/s')}/s)")
    for w, name in (("tcp_g2h_1", "g->h"), ("tcp_h2g_1", "h->g")):
        pb, pa = g(w, "patchbay", "cpu_s_per_gb"), g(w, "pasta", "cpu_s_per_gb")
        r = ratio(pb, pa)
        add(f"CPU-s/GB ({name}) <= pasta's", None if r is None else r <= 1.0,
            f"{fmt(pb, 'CPU-s/GB')} vs {fmt(pa, 'CPU-s/GB')} ({fmt_ratio(r)})")
    idle = g("rss", "patchbay", "idle_mb")
    add("RSS idle <= 16 MB", None if idle is None else idle <= 16, f"{fmt(idle, 'MB')} MB")
    peak = g("churn", "patchbay", "peak_rss_mb")
    r = ratio(peak, idle)
    add("RSS peak under churn <= 1.25x idle", None if r is None else r <= 1.25,
        f"{fmt(peak, 'MB')} MB = {fmt_ratio(r)} idle")
    s = g("setup_ms", "patchbay", "ms")
    add("`patchbay run -- true` < 50 ms", None if s is None else s < 50, f"{fmt(s, 'ms')} ms")
    pb = g("l2_tcp_1", "patchbay-switch", "gbps")
    for alt, want in (("bridge", 0.5), ("vde", 5)):
        a = g("l2_tcp_1", alt, "gbps")
        r = ratio(pb, a)
        add(f"L2 switch TCP >= {want}x {alt}", None if r is None else r >= want,
            f"{fmt_ratio(r)} ({fmt(pb, 'Gbit/s')} vs {fmt(a, 'Gbit/s')} Gbit/s)")
    return out


def write_report(ctx, meta, records, profile, nat_names, l2_names):
    med, vals = medians(records)
    res_dir = os.path.join(HERE, "results")
    os.makedirs(res_dir, exist_ok=True)
    stamp = meta["stamp"] + ("-quick" if ctx.args.quick else "")
    tgt = targets(med)
    md = []
    md.append(f"# patchbay benchmark, {meta['date']}" + (" (quick)" if ctx.args.quick else ""))
    md.append("")
    md.append(f"Mode: {meta['mode']}; {meta['rounds']} round(s), "
              f"{meta['seconds']} s per workload, interleaved (backend order rotated each round); "
              f"medians over rounds. Machine: {meta['machine']}. Latency runs pin client, server "
              f"and the backend process to CPU {ctx.pin_cpu}. Load average before/after: "
              f"{meta['load_before']} / {meta['load_after']} (other work on the machine "
              f"shows here).")
    md.append("")
    md.append("## User-mode path (guest namespace <-> host loopback)")
    md.append("")
    md += table(ROWS, nat_names, med, "veth", "patchbay")
    md.append("")
    md.append("veth is the kernel's limit (no user-mode process: no CPU, RSS; its set-up "
              "cell is `unshare -n true`, the floor of every namespace set-up). "
              "pasta runs at its default MTU (65520) and pasta-1500 at the standard MTU; "
              "patchbay and slirp4netns at 1500.")
    md.append("")
    if l2_names:
        md.append("## L2 path (two namespaces through a switch)")
        md.append("")
        md += table(L2_ROWS, l2_names, med, "bridge", "patchbay-switch")
        md.append("")
    md.append("## Issue 7 targets")
    md.append("")
    md.append("| target | result | measured |")
    md.append("|---|---|---|")
    for text, ok, detail in tgt:
        md.append(f"| {text} | {'n/a' if ok is None else ('met' if ok else '**missed**')} | {detail} |")
    md.append("")
    if ctx.crashes or ctx.errors:
        md.append("## Failures")
        md.append("")
        for c in ctx.crashes:
            md.append(f"- crash: {c}")
        for e in ctx.errors:
            md.append(f"- {e}")
        md.append("")
    if profile:
        md.append("## Profile: patchbay during TCP guest->host (perf, self time)")
        md.append("")
        md.append("```")
        md += profile
        md.append("```")
        md.append("")
    md.append("## Versions")
    md.append("")
    for k, v in meta["versions"].items():
        md.append(f"- {k}: {v}")
    md.append("")
    md.append("## Exact commands")
    md.append("")
    md.append("Set-up of each backend:")
    md.append("")
    for name, c in meta["setup"].items():
        md.append(f"- {name}: `{c}`")
    md.append("")
    md.append("Servers (private host namespace unless noted):")
    md.append("")
    for name, c in meta["servers"].items():
        md.append(f"- {name}: `{c}`")
    md.append("")
    md.append("Workload clients (the last round's; `ip netns exec` names the guest namespace, "
              "none = the private host namespace):")
    md.append("")
    for w, per in ctx.commands.items():
        for be, c in per.items():
            md.append(f"- {w} / {be}: `{c}`")
    md.append("")
    text = "\n".join(md)
    mdp = os.path.join(res_dir, stamp + ".md")
    jsp = os.path.join(res_dir, stamp + ".json")
    with open(mdp, "w") as f:
        f.write(text)
    with open(jsp, "w") as f:
        json.dump({"meta": meta, "medians": {"|".join(k): v for k, v in med.items()},
                   "values": {"|".join(k): v for k, v in vals.items()},
                   "targets": [{"target": t, "met": ok, "measured": d} for t, ok, d in tgt],
                   "records": records, "commands": ctx.commands, "errors": ctx.errors,
                   "crashes": ctx.crashes, "profile": profile}, f, indent=1)
    return mdp, jsp, text, tgt


def update_readme(ctx, mdp, text):
    path = os.path.join(HERE, "README.md")
    begin, end = "<!-- latest-run:begin -->", "<!-- latest-run:end -->"
    try:
        with open(path) as f:
            cur = f.read()
    except OSError:
        return
    if begin not in cur or end not in cur:
        return
    body = text.split("\n", 1)[1]   # drop the H1
    body = body.split("## Exact commands")[0].rstrip() + \
        "\n\nExact commands: see the results file.\n"
    body = re.sub(r"^## ", "### ", body, flags=re.M)
    rel = os.path.relpath(mdp, HERE)
    new = (cur.split(begin)[0] + begin + f"\n(generated from [{rel}]({rel}))\n" + body +
           "\n" + end + cur.split(end)[1])
    with open(path, "w") as f:
        f.write(new)


# ---------------------------------------------------------------- main ----

def cleanup_stale():
    """Remove namespaces left by an earlier run that was killed (ours only:
    named pbb<PID>-..., and only when that PID is gone)."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    for n in names:
        m = re.match(r"pbb(\d+)-", n)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=10)


def inner(args):
    have, missing_req, _ = check_tools(verbose=True)
    if missing_req:
        print("bench: required tools are missing (see above); nothing was run")
        return 2
    work = tempfile.mkdtemp(prefix="pbbench-")
    ctx = Ctx(args, work)
    ctx.have = have
    ctx.log(f"work folder (logs): {work}")
    cleanup_stale()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        run(["ip", "link", "set", "lo", "up"])
        tune_netns()
        # Binaries: our own copy of patchbay (a rebuild during the run must
        # not change what is measured) and the connrate helper.
        src = args.patchbay or os.path.join(ROOT, "build", "patchbay")
        if not os.access(src, os.X_OK):
            print(f"bench: no patchbay binary at {src}; run `make` first")
            return 2
        ctx.patchbay = os.path.join(work, "patchbay")
        shutil.copy2(src, ctx.patchbay)
        with open(ctx.patchbay, "rb") as f:
            pb_sha = hashlib.sha256(f.read()).hexdigest()[:16]
        ctx.connrate = os.path.join(work, "connrate")
        run(["cc", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-o", ctx.connrate,
             os.path.join(HERE, "connrate.c")], timeout=60)

        # pasta (this version) takes addresses and routes from a host
        # interface with a default route; the private namespace has none, so
        # give it a template: a veth whose peer has no address (a black hole:
        # nothing routed there leaves the namespace).
        ctx.template_if = f"{ctx.prefix}h0"
        peer = f"{ctx.prefix}h1"
        for c in (["ip", "link", "add", ctx.template_if, "type", "veth", "peer", "name", peer],
                  ["ip", "link", "set", peer, "up"],
                  ["ip", "addr", "add", f"{TEMPLATE_ADDR}/24", "dev", ctx.template_if],
                  ["ip", "link", "set", ctx.template_if, "up"],
                  ["ip", "route", "add", "default", "via", TEMPLATE_GW, "dev", ctx.template_if]):
            run(c)

        want = args.backends.split(",") if args.backends else None
        nat, l2, skipped = [], [], []

        def wanted(name):
            return want is None or name in want
        idx = 0
        cands = [("veth", lambda i: Veth(ctx, i), None),
                 ("patchbay", lambda i: Patchbay(ctx, i), None),
                 ("pasta", lambda i: Pasta(ctx, i, None), "pasta"),
                 ("pasta-1500", lambda i: Pasta(ctx, i, 1500), "pasta"),
                 ("slirp4netns", lambda i: Slirp(ctx, i), "slirp4netns")]
        if args.quick and want is None:
            cands = [c for c in cands if c[0] != "pasta-1500"]
        for name, mk, tool in cands:
            if not wanted(name):
                continue
            if tool and not have.get(tool):
                skipped.append(f"{name} ({tool} not installed)")
                continue
            nat.append(mk(idx))
            idx += 1
        if not args.no_l2:
            for name, mk, tool in (("patchbay-switch", lambda i: L2Patchbay(ctx, i), None),
                                   ("bridge", lambda i: L2Bridge(ctx, i), None),
                                   ("vde", lambda i: L2Vde(ctx, i), "vde_plug2tap")):
                if not wanted(name):
                    continue
                if tool and not have.get(tool):
                    skipped.append(f"{name} ({tool} not installed)")
                    continue
                l2.append(mk(idx))
                idx += 1
        for s in skipped:
            ctx.log(f"skipping backend {s}")

        all_b = nat + l2
        for b in list(all_b):
            ctx.log(f"setting up {b.name}")
            try:
                b.setup()
            except BenchError as e:
                ctx.errors.append(f"setup/{b.name}: {e}")
                ctx.log(f"  set-up of {b.name} failed: {e}; leaving it out")
                (nat if b in nat else l2).remove(b)
        all_b = nat + l2
        time.sleep(1.0)

        load_before = loadavg()
        records = []
        idle = {}
        for b in all_b:
            pids = b.pids()
            if pids:
                idle[b.name] = proc_status_kb(pids, "VmRSS") / 1024
                records.append({"workload": "rss", "backend": b.name, "round": 0,
                                "metrics": {"idle_mb": idle[b.name]}})
                reset_peak_rss(pids)

        seconds = args.seconds
        wl = [(n, f, kinds) for n, f, kinds, q in WORKLOADS
              if (q or not args.quick) and (not args.workloads or n in args.workloads.split(","))]
        rounds = args.rounds
        ctx.log(f"{len(all_b)} backends, {len(wl)} workloads, {rounds} round(s) of {seconds} s")
        profile = None
        for rnd in range(1, rounds + 1):
            ctx.log(f"round {rnd}/{rounds}")
            for wname, fn, kinds in wl:
                group = [b for b in all_b if b.kind in kinds]
                if not group:
                    continue
                k = (rnd - 1) % len(group)
                order = group[k:] + group[:k]
                for b in order:
                    if time.monotonic() > ctx.deadline:
                        raise BenchError(f"--max-minutes {args.max_minutes} reached")
                    rec = run_one(ctx, wname, fn, b, rnd, seconds)
                    records.append(rec)
                    m = rec.get("metrics") or {}
                    short = ", ".join(f"{k2}={v:.4g}" for k2, v in m.items()
                                      if isinstance(v, (int, float)) and k2 != "bytes")
                    ctx.log(f"  {wname:14s} {b.name:16s} {short or rec.get('error', '')}")
            if not args.workloads or "setup_ms" in args.workloads.split(","):
                ctx.log("  set-up time")
                for rec in measure_setup(ctx, rnd, 5 if args.quick else 20):
                    records.append(rec)
                    ctx.log(f"  setup_ms       {rec['backend']:16s} "
                            f"{rec.get('metrics', {}).get('ms', rec.get('error'))}")
        for b in all_b:
            pids = b.pids()
            if pids:
                records.append({"workload": "rss", "backend": b.name, "round": 0,
                                "metrics": {"peak_mb": max(
                                    [r.get("peak_rss_kb", 0) / 1024 for r in records
                                     if r["backend"] == b.name] or [0]),
                                    "idle_after_mb": proc_status_kb(pids, "VmRSS") / 1024}})
        if args.profile:
            pb = [b for b in nat if b.name == "patchbay"]
            if pb and pb[0].alive():
                ctx.log("profiling patchbay (perf record) during TCP g->h")
                profile = profile_patchbay(ctx, pb[0], seconds)

        built = args.patchbay_source or (
            f"git {git_rev()}" if os.path.realpath(src).startswith(ROOT + os.sep)
            else f"{src}, source not stated (--patchbay-source)")
        versions = {"patchbay": run([ctx.patchbay, "--version"]).stdout.strip() +
                    f" (binary sha256 {pb_sha}, built from {built})",
                    "kernel": os.uname().release}
        for t in ("iperf3", "sockperf", "pasta", "slirp4netns", "vde_switch", "hyperfine",
                  "perf"):
            if have.get(t):
                versions[t] = tool_version(t)
        versions["connrate"] = ("bench/connrate.c (C, this repository): connect+close "
                                "client/server" + ("" if have.get("sockperf") else
                                                   " and the ping-pong used instead of sockperf"))
        now = datetime.datetime.now()
        meta = {"stamp": now.strftime("%Y%m%d-%H%M%S"), "date": now.strftime("%Y-%m-%d %H:%M"),
                "rounds": rounds, "seconds": seconds, "quick": args.quick,
                "mode": mode(args),
                "machine": machine(), "versions": versions, "pin_cpu": ctx.pin_cpu,
                "setup": {b.name: b.setup_cmd for b in all_b},
                "servers": {f"{b.name}/{k}": p.cmdline for b in all_b
                            for k, p in b.servers.procs.items()},
                "skipped": skipped, "argv": sys.argv[1:],
                "load_before": load_before, "load_after": loadavg()}
        for b in nat:
            if b.guest_server:
                meta["servers"][f"{b.name}/guest-iperf"] = b.guest_server.cmdline
        mdp, jsp, text, tgt = write_report(ctx, meta, records, profile,
                                           [b.name for b in nat], [b.name for b in l2])
        if args.readme and mode(args) == "full":
            update_readme(ctx, mdp, text)
        elif args.readme:
            ctx.log("bench/README.md left as it is: it summarises full runs only")
        print()
        print(text.split("## Versions")[0])
        ctx.log(f"wrote {mdp} and {jsp}")
        return 1 if ctx.crashes else 0
    except KeyboardInterrupt as e:
        ctx.log(f"interrupted ({e}); cleaning up")
        return 130
    except BenchError as e:
        ctx.log(f"bench: {e}")
        return 1
    finally:
        ctx.cleanup()
        ctx.log("cleaned up (processes stopped by PID, namespaces deleted)")


def mode(args):
    custom = args.backends or args.workloads or args.no_l2 or args.custom
    return ("quick" if args.quick else "full") + (" (subset or custom settings)" if custom else "")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def git_rev():
    try:
        r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({model}), {mem:.0f} GiB, Linux {os.uname().release}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="about two minutes: 1 round, 2 s each, fewer workloads")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=float, help="duration of each workload")
    ap.add_argument("--churn", type=int, help="connections in the churn workload (10000)")
    ap.add_argument("--backends", help="comma-separated subset, e.g. veth,patchbay,bridge")
    ap.add_argument("--workloads", help="comma-separated subset, e.g. tcp_g2h_1,setup_ms")
    ap.add_argument("--no-l2", action="store_true", help="skip the L2 (switch) comparison")
    ap.add_argument("--patchbay", help="patchbay binary (default: build/patchbay)")
    ap.add_argument("--patchbay-source",
                    help="what the --patchbay binary was built from (recorded with the results)")
    ap.add_argument("--pin-cpu", type=int, help="CPU for latency runs (default: the last)")
    ap.add_argument("--profile", action="store_true",
                    help="perf-record patchbay during one TCP g->h run")
    ap.add_argument("--readme", action="store_true",
                    help="replace the latest-run section of bench/README.md")
    ap.add_argument("--max-minutes", type=float, default=60.0,
                    help="stop (and clean up) after this long")
    ap.add_argument("--check", action="store_true", help="only check for the tools")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.custom = any(a is not None for a in (args.rounds, args.seconds, args.churn))
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.seconds is None:
        args.seconds = 2 if args.quick else 5
    if args.seconds == int(args.seconds):
        args.seconds = int(args.seconds)
    if args.churn is None:
        args.churn = 2000 if args.quick else 10000

    if args.check:
        _, req, _ = check_tools(verbose=True)
        return 1 if req else 0
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces, TAP, veth); nothing was run")
        check_tools(verbose=True)
        return 2
    if args.inner:
        return inner(args)
    if not shutil.which("unshare"):
        print("bench: unshare (util-linux) is missing; nothing was run")
        return 2
    # Everything runs in a private network namespace that has only lo.
    argv = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--inner"] + \
        sys.argv[1:]
    child = subprocess.Popen(argv)

    def forward(signum, _frame):
        try:
            os.kill(child.pid, signal.SIGTERM if signum == signal.SIGINT else signum)
        except ProcessLookupError:
            pass
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            return child.wait()
        except InterruptedError:
            continue


if __name__ == "__main__":
    sys.exit(main())
