# SPDX-License-Identifier: MIT
"""The router's DHCP server against real clients: busybox udhcpc and ISC
dhclient, each in its own network namespace behind a TAP port on the
default switch, with the user-mode router (-netdev user) on the same switch.

What a user sees is asserted: the lease the client reports to its script
(address, mask, router, DNS, options), the address and MTU the script
applied to the interface, a ping to the gateway over that address (the
router answers it itself), and the leases listed in the stats JSON
(ports[u].router.dhcp.leases).

Needs root, /dev/net/tun, iproute2, busybox (udhcpc) and isc-dhcp-client
(dhclient); skips say which.  Traffic stays inside the namespaces this file
makes; the router's DNS upstream is pinned to a loopback port, so nothing
ever goes to the host's resolvers.  Every wait polls with a deadline.
"""

import contextlib
import json
import signal
import stat
import subprocess
from pathlib import Path

import pytest

import pb

GW = "10.0.2.2"
DNS = "10.0.2.3"
# Loopback (inside `unshare -n`, the private one): never the host's
# resolv.conf, even if some client asked for a name.
USER_BASE = "user,id=u,dns-upstream=127.0.0.1:9"


# --------------------------------------------------------------------------
# Clients and their event scripts

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc event script of test_dhcp.py: apply the lease, record the event.
d='%(dir)s'
case "$1" in
deconfig)
	ip addr flush dev "$interface"
	ip link set dev "$interface" up
	;;
bound|renew)
	ip addr replace "$ip/${mask:-24}" dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	[ -n "$router" ] && ip route replace default via "$router" dev "$interface"
	;;
esac
env > "$d/$1.env.tmp" && mv "$d/$1.env.tmp" "$d/$1.env"
echo "$1 $ip" >> "$d/events"
exit 0
"""

DHCLIENT_SCRIPT = r"""#!/bin/sh
# dhclient-script of test_dhcp.py: apply the lease, record the event.
d='%(dir)s'
case "$reason" in
PREINIT)
	ip link set dev "$interface" up
	;;
BOUND|RENEW|REBIND|REBOOT)
	ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
	[ -n "$new_interface_mtu" ] && \
		ip link set dev "$interface" mtu "$new_interface_mtu"
	;;
esac
env > "$d/$reason.env.tmp" && mv "$d/$reason.env.tmp" "$d/$reason.env"
echo "$reason $new_ip_address" >> "$d/events"
exit 0
"""

DHCLIENT_CONF = """\
request subnet-mask, broadcast-address, routers, domain-name-servers,
	domain-name, host-name, interface-mtu, ntp-servers;
"""


def _script(d, name, text):
    p = Path(d) / name
    p.write_text(text % {"dir": d})
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def _env(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def wait_event(d, name, timeout=15.0, proc=None):
    """The environment the client gave its script for event `name` (udhcpc:
    bound/renew, dhclient: BOUND/REBOOT...), once the file exists.  Fails
    early if the client exited meanwhile."""
    path = Path(d) / ("%s.env" % name)

    def ready():
        if path.exists():
            return _env(path)
        if proc is not None and proc.poll() is not None:
            if path.exists():
                return _env(path)
            raise AssertionError("client exited (status %s) before %s; "
                                 "events: %r" % (proc.returncode, name,
                                                 events(d)))
        return None
    return pb.wait_until(ready, timeout, "DHCP client event %s in %s"
                         % (name, d))


def events(d):
    p = Path(d) / "events"
    return p.read_text().splitlines() if p.exists() else []


class Client:
    """One DHCP client process in a namespace, with its own directory for
    the script, its events and (dhclient) its lease and pid files."""

    def __init__(self, lab, i, kind, tag=""):
        self.lab, self.i, self.kind = lab, i, kind
        self.ns, self.ifname = lab.ns[i], lab.ifname[i]
        self.dir = Path(str(lab.tmpdir)) / ("%s%d%s" % (kind, i, tag))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = None

    def start(self, extra=(), quit=True):
        d = str(self.dir)
        out = open(self.dir / "client.log", "ab")
        try:
            if self.kind == "udhcpc":
                script = _script(d, "script.sh", UDHCPC_SCRIPT)
                cmd = ["busybox", "udhcpc", "-i", self.ifname, "-f", "-n",
                       "-t", "3", "-T", "1", "-s", script]
                if quit:
                    cmd.append("-q")
            else:
                script = _script(d, "script.sh", DHCLIENT_SCRIPT)
                conf = self.dir / "dhclient.conf"
                conf.write_text(DHCLIENT_CONF)
                # -d: stay in the foreground, so the process we started is
                # the client (ended by PID); -1: one try, exit 2 on failure.
                cmd = ["dhclient", "-1", "-d", "-v", "-cf", str(conf),
                       "-sf", script, "-lf", str(self.dir / "leases"),
                       "-pf", str(self.dir / "dhclient.pid")]
            cmd += list(extra)
            if self.kind == "dhclient":
                cmd.append(self.ifname)
            self.proc = pb.ns_popen(self.ns, cmd, stdout=out,
                                    stderr=subprocess.STDOUT)
        finally:
            out.close()
        return self

    def wait_exit(self, timeout=20.0):
        try:
            rc = self.proc.wait(timeout=pb.scaled(timeout))
        except subprocess.TimeoutExpired:
            pb.stop_proc(self.proc)
            raise AssertionError("%s did not exit; log:\n%s"
                                 % (self.kind, self.log()))
        assert rc == 0, "%s failed (%d); log:\n%s" % (self.kind, rc,
                                                      self.log())
        return rc

    def wait(self, name, timeout=15.0):
        return wait_event(self.dir, name, timeout, self.proc)

    def stop(self):
        if self.proc is not None:
            pb.stop_proc(self.proc)

    def log(self):
        p = self.dir / "client.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def reset(self):
        """Forget recorded events (the lease file stays)."""
        for p in self.dir.glob("*.env"):
            p.unlink()
        (self.dir / "events").unlink(missing_ok=True)


# --------------------------------------------------------------------------
# The lab: router + n namespaces with one TAP each, no static addresses


class DhcpLab:
    """patchbay with the user-mode router `u` (USER_BASE + user options) and
    n TAP ports t1..tn, each in a fresh namespace, up without an address.
    macs: optional list of MAC addresses to give the TAPs (None: keep)."""

    def __init__(self, tmpdir, n=1, user="", macs=None):
        self.tmpdir, self.n, self.user = tmpdir, n, user
        self.macs = macs or [None] * n
        self.ns, self.ifname, self.ids = [], [], []
        self.daemon = None
        self.clients = []
        self._stack = None

    def __enter__(self):
        pb.require_netns()
        self._stack = contextlib.ExitStack()
        try:
            spec = USER_BASE + ("," + self.user if self.user else "")
            args = ["--netdev", spec]
            for i in range(self.n):
                ns = self._stack.enter_context(pb.netns("d%d" % (i + 1)))
                self.ns.append(ns)
                self.ifname.append(pb.unique("pbd"))
                self.ids.append("t%d" % (i + 1))
                args += ["--netdev", pb.tap_netdev(self.ids[i],
                                                   self.ifname[i], ns)]
            self.daemon = self._stack.enter_context(
                pb.Daemon(args, self.tmpdir))
            # Clients are stopped before the daemon and the namespaces go.
            self._stack.callback(self._stop_clients)
            for i in range(self.n):
                ns, ifn = self.ns[i], self.ifname[i]
                pb.wait_until(lambda: pb.link_exists(ns, ifn), 10,
                              "interface %s in %s" % (ifn, ns))
                pb.ns_exec(ns, ["sysctl", "-q", "-w",
                                "net.ipv6.conf.%s.disable_ipv6=1" % ifn],
                           check=False)
                if self.macs[i]:
                    pb.ns_exec(ns, ["ip", "link", "set", "dev", ifn,
                                    "address", self.macs[i]])
                pb.ns_exec(ns, ["ip", "link", "set", "dev", ifn, "up"])
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def _stop_clients(self):
        for c in self.clients:
            c.stop()

    def client(self, i, kind, tag=""):
        c = Client(self, i, kind, tag)
        self.clients.append(c)
        return c

    def mac(self, i):
        return pb.link_mac(self.ns[i], self.ifname[i])

    def addrs(self, i):
        out = pb.ns_exec(self.ns[i], ["ip", "-j", "-4", "addr", "show",
                                      "dev", self.ifname[i]]).stdout
        return [a["local"] for a in json.loads(out)[0].get("addr_info", [])]

    def mtu(self, i):
        out = pb.ns_exec(self.ns[i], ["ip", "-j", "link", "show", "dev",
                                      self.ifname[i]]).stdout
        return json.loads(out)[0]["mtu"]

    def dhcp(self, stats=None):
        """The router's "dhcp" stats object."""
        s = stats if stats is not None else self.daemon.stats()
        port = pb.find_port(s, "u")
        assert port is not None and "router" in port, s
        return port["router"]["dhcp"]

    def leases(self):
        return {l["ip"]: l for l in self.dhcp()["leases"]}


def need_udhcpc():
    pb.require_tools("busybox")
    r = subprocess.run(["busybox", "--list"], capture_output=True, text=True)
    if "udhcpc" not in r.stdout.split():
        pytest.skip("needs busybox with the udhcpc applet")


def need_dhclient():
    pb.require_tools("dhclient")


def need(kind):
    if kind == "udhcpc":
        need_udhcpc()
    else:
        need_dhclient()


# --------------------------------------------------------------------------
# Tests


def test_udhcpc_lease(tmp_path):
    """udhcpc gets 10.0.2.15 with mask, router, DNS, lease time; the
    address works (ping the gateway); the stats list the lease with the
    client's MAC and the host name it sent."""
    need_udhcpc()
    with DhcpLab(tmp_path, 1, "dhcp-lease=3600") as lab:
        c = lab.client(0, "udhcpc").start(extra=["-x", "hostname:Guest_One"])
        c.wait_exit()
        env = c.wait("bound")
        assert env["ip"] == "10.0.2.15", env
        assert env["subnet"] == "255.255.255.0", env
        assert env["router"] == GW and env["dns"] == DNS, env
        assert env["serverid"] == GW, env
        assert env["lease"] == "3600", env
        assert env["broadcast"] == "10.0.2.255", env
        assert "10.0.2.15" in lab.addrs(0)
        pb.ping(lab.ns[0], GW, count=2)
        leases = lab.leases()
        assert list(leases) == ["10.0.2.15"], leases
        assert leases["10.0.2.15"]["mac"] == lab.mac(0), leases
        # option 12 as sanitised by the server (a DNS label)
        assert leases["10.0.2.15"]["name"] == "guestone", leases
        d = lab.dhcp()
        assert (d["discover"], d["offer"], d["request"], d["ack"]) == \
            (1, 1, 1, 1), d
        assert d["nak"] == 0 and d["malformed"] == 0, d


def test_five_clients_distinct_leases(tmp_path):
    """Five udhcpc clients on one segment, started together, get five
    distinct addresses from 10.0.2.15 up, each listed under its MAC."""
    need_udhcpc()
    n = 5
    with DhcpLab(tmp_path, n) as lab:
        clients = [lab.client(i, "udhcpc").start() for i in range(n)]
        for c in clients:
            c.wait_exit()
        ips = [c.wait("bound")["ip"] for c in clients]
        assert len(set(ips)) == n, ips
        assert sorted(ips, key=lambda a: int(a.split(".")[3])) == \
            ["10.0.2.%d" % (15 + k) for k in range(n)], ips
        leases = lab.leases()
        assert len(leases) == n, leases
        for i, ip in enumerate(ips):
            assert leases[ip]["mac"] == lab.mac(i), (ip, leases)
            assert ip in lab.addrs(i)
        for i in range(n):
            pb.ping(lab.ns[i], GW, count=1)


def test_udhcpc_renew_keeps_address(tmp_path):
    """A bound udhcpc renews on SIGUSR1 (REQUEST from its address, no
    DISCOVER) and keeps its address."""
    need_udhcpc()
    with DhcpLab(tmp_path, 1) as lab:
        c = lab.client(0, "udhcpc").start(quit=False)
        ip = c.wait("bound")["ip"]
        assert ip == "10.0.2.15"
        before = lab.dhcp()
        c.proc.send_signal(signal.SIGUSR1)
        env = c.wait("renew")
        assert env["ip"] == ip, env
        after = lab.dhcp()
        # Usually one REQUEST.  busybox 1.35 sends the unicast renew from a
        # short-lived socket bound to ciaddr:68; an ACK that arrives before
        # that socket is closed is lost, and udhcpc asks again (broadcast)
        # after -T seconds: so one or two, each ACKed, never a DISCOVER.
        assert 1 <= after["request"] - before["request"] <= 2, (before, after)
        assert after["ack"] - before["ack"] == \
            after["request"] - before["request"], (before, after)
        assert after["discover"] == before["discover"], (before, after)
        assert after["nak"] == 0, after
        assert list(lab.leases()) == [ip]
        c.stop()
        assert c.proc.returncode is not None


def test_udhcpc_release_then_same_address(tmp_path):
    """A bound udhcpc releases on SIGUSR2: the lease leaves the stats.  On
    SIGUSR1 it starts again with a DISCOVER and gets its old address back,
    not the next free one."""
    need_udhcpc()
    with DhcpLab(tmp_path, 1) as lab:
        c = lab.client(0, "udhcpc").start(quit=False)
        assert c.wait("bound")["ip"] == "10.0.2.15"
        # udhcpc sends its RELEASE through the kernel and removes the
        # address right after; without the server's MAC in the ARP cache
        # the RELEASE can die in the ARP queue (a client race, seen under
        # load): talk to the server first, as a configured host would.
        pb.ping(lab.ns[0], "10.0.2.2", count=1)
        c.proc.send_signal(signal.SIGUSR2)
        pb.wait_until(lambda: lab.dhcp()["release"] == 1, 10, "RELEASE")
        assert lab.leases() == {}
        c.proc.send_signal(signal.SIGUSR1)
        pb.wait_until(lambda: [e for e in events(c.dir)
                               if e.startswith("bound ")][1:], 15,
                      "a second lease")
        assert c.wait("bound")["ip"] == "10.0.2.15"
        d = lab.dhcp()
        assert d["discover"] == 2 and d["ack"] == 2, d
        assert list(lab.leases()) == ["10.0.2.15"]
        c.stop()


@pytest.mark.parametrize("kind", ["udhcpc", "dhclient"])
def test_reservation_honoured(tmp_path, kind):
    """dhcp-host=MAC,,10.0.2.50,,beta: that MAC gets .50 and the name beta,
    whatever it asks for; another client gets the pool's first address."""
    need(kind)
    need_udhcpc()   # the other client
    mac = "52:54:00:00:00:02"
    with DhcpLab(tmp_path, 2, "dhcp-host=%s,,10.0.2.50,,beta" % mac,
                 macs=[mac, None]) as lab:
        assert lab.mac(0) == mac
        c = lab.client(0, kind)
        if kind == "udhcpc":
            c.start(extra=["-r", "10.0.2.77", "-x", "hostname:other"])
            c.wait_exit()
            env = c.wait("bound")
            assert env["ip"] == "10.0.2.50", env
            assert env["hostname"] == "beta", env
        else:
            c.start()
            env = c.wait("BOUND")
            assert env["new_ip_address"] == "10.0.2.50", env
            assert env["new_host_name"] == "beta", env
        assert "10.0.2.50" in lab.addrs(0)
        pb.ping(lab.ns[0], GW, count=1)
        other = lab.client(1, "udhcpc").start()
        other.wait_exit()
        assert other.wait("bound")["ip"] == "10.0.2.15"
        leases = lab.leases()
        assert leases["10.0.2.50"]["mac"] == mac, leases
        assert leases["10.0.2.50"]["name"] == "beta", leases
        assert leases["10.0.2.15"]["mac"] == lab.mac(1), leases


@pytest.mark.parametrize("mtu_opt", ["mtu=1400", "dhcp-option=26,,1400"])
def test_udhcpc_custom_option_and_mtu(tmp_path, mtu_opt):
    """dhcp-option=42 (NTP servers) reaches the client's script; the MTU
    (from mtu= or from dhcp-option=26) is applied to the interface."""
    need_udhcpc()
    pb.require_tools("ping")
    with DhcpLab(tmp_path, 1, "dhcp-option=42,,10.0.2.9,%s" % mtu_opt) as lab:
        assert lab.mtu(0) == 1500
        c = lab.client(0, "udhcpc").start()
        c.wait_exit()
        env = c.wait("bound")
        assert env["ntpsrv"] == "10.0.2.9", env
        assert env["mtu"] == "1400", env
        assert lab.mtu(0) == 1400
        # full-size pings at the new MTU still get through (no fragments)
        pb.ns_exec(lab.ns[0], ["ping", "-c", "1", "-W", "5", "-M", "do",
                               "-s", str(1400 - 28), GW])


def test_dhclient_lease_options_and_reboot(tmp_path):
    """dhclient: a lease with the custom option and the MTU applied; run
    again with its lease file, it asks for the same address straight away
    (INIT-REBOOT: REQUEST, no DISCOVER) and keeps it."""
    need_dhclient()
    with DhcpLab(tmp_path, 1, "dhcp-option=42,,10.0.2.9,mtu=1400,"
                 "domainname=lab.test,dhcp-lease=3600") as lab:
        c = lab.client(0, "dhclient").start()
        env = c.wait("BOUND")
        assert env["new_ip_address"] == "10.0.2.15", env
        assert env["new_subnet_mask"] == "255.255.255.0", env
        assert env["new_routers"] == GW, env
        assert env["new_domain_name_servers"] == DNS, env
        assert env["new_domain_name"] == "lab.test", env
        assert env["new_dhcp_server_identifier"] == GW, env
        assert env["new_dhcp_lease_time"] == "3600", env
        assert env["new_ntp_servers"] == "10.0.2.9", env
        assert env["new_interface_mtu"] == "1400", env
        assert lab.mtu(0) == 1400
        assert "10.0.2.15" in lab.addrs(0)
        pb.ping(lab.ns[0], GW, count=1)
        c.stop()
        first = lab.dhcp()
        assert (first["discover"], first["request"]) == (1, 1), first
        assert (Path(c.dir) / "leases").read_text().count("10.0.2.15") >= 1

        c.reset()
        c2 = lab.client(0, "dhclient").start()  # same directory, lease file
        env = c2.wait("REBOOT")
        assert env["new_ip_address"] == "10.0.2.15", env
        second = lab.dhcp()
        assert second["discover"] == first["discover"], (first, second)
        assert second["request"] == first["request"] + 1, (first, second)
        assert second["ack"] == first["ack"] + 1 and second["nak"] == 0
        assert list(lab.leases()) == ["10.0.2.15"]
        assert lab.leases()["10.0.2.15"]["mac"] == lab.mac(0)
        c2.stop()


def test_mixed_clients_and_restrict(tmp_path):
    """restrict=on: both clients still get leases, without a router or
    DNS server option; the two get different addresses."""
    need_udhcpc()
    need_dhclient()
    with DhcpLab(tmp_path, 2, "restrict=on") as lab:
        u = lab.client(0, "udhcpc").start()
        d = lab.client(1, "dhclient").start()
        u.wait_exit()
        ue, de = u.wait("bound"), d.wait("BOUND")
        assert "router" not in ue and "dns" not in ue, ue
        assert "new_routers" not in de, de
        assert "new_domain_name_servers" not in de, de
        assert {ue["ip"], de["new_ip_address"]} == {"10.0.2.15", "10.0.2.16"}
        assert len(lab.leases()) == 2
        d.stop()
