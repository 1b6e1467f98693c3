# SPDX-License-Identifier: MIT
"""IPv6 on the user-mode router (-netdev user) with real guests.

Guests are Linux network namespaces behind TAP ports on the default switch
(and one real QEMU guest over `stream`), next to the router `u`:

  test_slaac_route_and_ra_options   SLAAC address in fec0::/64, default
        route via the router's link-local address; the RA (captured, read by
        tshark) carries prefix, MTU, RDNSS fec0::3 and DNSSL (dnssearch=)
  test_ra_without_dnssearch         no dnssearch=: RDNSS but no DNSSL
  test_dhcpv6_lease_and_information_request
        dhclient -6 gets prefix::1:N (plain and with rapid commit), DNS and
        the search list; dhclient -6 -S (Information-Request) gets DNS and
        the search list; the leased address answers pings
  test_ping_curl_refused_udp        ping6 fec0::2, fec0::3, the link-local
        address; curl http://[fec0::2]:P/ to a server on the host's [::1]
        (sha256); refused TCP; UDP echo via fec0::2; ICMPv6 port
        unreachable (ECONNREFUSED) for a closed UDP port
  test_udp_and_ping_fragments_both_ways
        UDP datagrams of up to 65507 bytes between a guest and [::1],
        and large pings: fragmented (by the guest's kernel, by the router)
        and made whole at the other end
  test_hostfwd_to_ipv6_guest        hostfwd from [::1] and 127.0.0.1 to a
        server in an IPv6 guest (TCP, UDP), and from [::1] to an IPv4 guest
  test_dns_over_ipv6                dig -6 @fec0::3 (UDP and +tcp) with a
        dnsmasq upstream on 127.0.0.1
  test_qemu_guest_ping6             a QEMU guest (SLAAC in its own kernel)
        pings fec0::2 and fec0::3 and fetches http://[fec0::2]:P/ over stream
  test_bad_ipv6_input               crafted frames from an AF_PACKET socket
        (truncations, lying lengths, zero-length NDP options, bad hop
        limits, extension header abuse, an RS flood): dropped, counted,
        answered with the right ICMPv6 errors; ping6 still works afterwards

Two tests (the DHCPv6 search list with domains sharing a suffix, and the
parameter problem pointer for a misplaced hop-by-hop header) reproduced
patchbay bugs found while writing this file; both are fixed.

Network safety: the host side is only ever [::1] / 127.0.0.1 (the suite
runs in `unshare -n`); guests use fec0::/64 and 10.0.2.0/24 on the virtual
segment.  The router's DNS upstream is always a loopback port.  Every wait
polls with a deadline; every process, namespace and socket is ended in a
finally/with.

Needs root, /dev/net/tun, iproute2, ping, curl, tshark, dhclient, dig,
dnsmasq, QEMU (for the VM test); skips say which.
"""

import contextlib
import hashlib
import json
import os
import random
import socket
import stat
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import pb

HOST6 = "fec0::2"
DNS6 = "fec0::3"
GUEST6 = ["fec0::15", "fec0::16", "fec0::17"]
GUEST4 = ["10.0.2.15", "10.0.2.16", "10.0.2.17"]
GW4 = "10.0.2.2"
# The DNS upstream is a loopback port (nothing listens unless a test starts
# a server there): never the host's resolv.conf.
DEAD_UPSTREAM = "127.0.0.1:9"
USER_BASE = "user,id=u,dns-upstream=" + DEAD_UPSTREAM
KiB, MiB = 1 << 10, 1 << 20


# --------------------------------------------------------------------------
# Small helpers


def eui64_ll(mac):
    """fe80:: address made from a MAC (modified EUI-64, RFC 4291 A)."""
    b = bytearray(pb.mac_bytes(mac))
    b[0] ^= 2
    iid = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return socket.inet_ntop(socket.AF_INET6, b"\xfe\x80" + b"\0" * 6 + iid)


def norm6(a):
    return socket.inet_ntop(socket.AF_INET6,
                            socket.inet_pton(socket.AF_INET6, a))


def free_port6(kind=socket.SOCK_STREAM):
    """A port free on [::1] right now (bound, then released)."""
    with socket.socket(socket.AF_INET6, kind) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def gen_data(seed, n):
    return random.Random(seed).randbytes(n)


def _delta(after, before, key):
    return after[key] - before[key]


class Http6Server:
    """A threaded HTTP/1.1 server on [::1] (a thread of the test process):
    GET /gen/SEED/N -> N bytes of gen_data(SEED, N); GET /hello -> a fixed
    line.  Records the client addresses it saw."""

    HELLO = b"patchbay-ipv6-hello\n"

    def __init__(self):
        self.clients = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.clients.append(self.client_address[0])
                parts = self.path.strip("/").split("/")
                if parts == ["hello"]:
                    body = outer.HELLO
                elif len(parts) == 3 and parts[0] == "gen":
                    body = gen_data(int(parts[1]), int(parts[2]))
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class S(ThreadingHTTPServer):
            address_family = socket.AF_INET6
            daemon_threads = True

        self.srv = S(("::1", 0), H)
        self.port = self.srv.server_address[1]
        self.t = None

    def __enter__(self):
        self.t = threading.Thread(target=self.srv.serve_forever,
                                  kwargs={"poll_interval": 0.1}, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()
        self.t.join(pb.scaled(10))
        return False


class UdpEcho6:
    """A UDP echo server on [::1] (thread): answers b"echo:" + data."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.s.bind(("::1", 0))
        self.s.settimeout(0.1)
        self.port = self.s.getsockname()[1]
        self.seen = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            try:
                data, src = self.s.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            self.seen.append(src[0])
            self.s.sendto(b"echo:" + data, src)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(pb.scaled(5))
        self.s.close()
        return False


# --------------------------------------------------------------------------
# The lab


class V6Lab:
    """patchbay with the user-mode router `u` (USER_BASE + user) and n TAP
    guests g1..gn, each in its own namespace, IPv6 enabled:

      accept_ra=2 (take RAs), DAD off unless dad=True (the link-local
      address is usable at once), SLAAC on unless autoconf=False;
      static=True adds GUEST6[i]/64 (nodad); ipv4=True adds GUEST4[i]/24.

    extra_args go to the daemon (captures...); dns_upstream is the router's
    only DNS upstream (a loopback address:port)."""

    def __init__(self, tmp_path, n=1, user="", extra_args=(), static=True,
                 dad=False, autoconf=True, ipv4=False,
                 dns_upstream=DEAD_UPSTREAM):
        self.tmp_path = tmp_path
        self.dns_upstream = dns_upstream
        self.n, self.user = n, user
        self.extra_args = list(extra_args)
        self.static, self.dad, self.autoconf, self.ipv4 = (static, dad,
                                                           autoconf, ipv4)
        self.ns, self.ifname, self.ids = [], [], []
        self.daemon = None
        self._stack = None
        self.procs = []

    def __enter__(self):
        pb.require_netns()
        self._stack = contextlib.ExitStack()
        try:
            args = ["-netdev", "user,id=u,dns-upstream=%s%s"
                    % (self.dns_upstream, self.user)]
            for i in range(self.n):
                ns = self._stack.enter_context(pb.netns("v%d" % (i + 1)))
                self.ns.append(ns)
                self.ifname.append(pb.unique("pb6"))
                self.ids.append("g%d" % (i + 1))
                args += ["-netdev", pb.tap_netdev(self.ids[i],
                                                  self.ifname[i], ns)]
            args += self.extra_args
            self.daemon = self._stack.enter_context(
                pb.Daemon(args, self.tmp_path))
            # Guest processes end before the daemon and the namespaces.
            self._stack.callback(self._stop_procs)
            for i in range(self.n):
                self._setup(i)
        except BaseException:
            self._stack.close()
            raise
        return self

    def _setup(self, i):
        ns, ifn = self.ns[i], self.ifname[i]
        pb.wait_until(lambda: pb.link_exists(ns, ifn), 10,
                      "interface %s in %s" % (ifn, ns))
        conf = "net.ipv6.conf.%s." % ifn
        pb.ns_exec(ns, ["sysctl", "-q", "-w", conf + "disable_ipv6=0",
                        conf + "accept_ra=2",
                        conf + "accept_dad=%d" % (1 if self.dad else 0),
                        conf + "autoconf=%d" % (1 if self.autoconf else 0)])
        if self.static:
            pb.ns_exec(ns, ["ip", "-6", "addr", "add", GUEST6[i] + "/64",
                            "dev", ifn, "nodad"])
        if self.ipv4:
            pb.ns_exec(ns, ["ip", "addr", "add", GUEST4[i] + "/24",
                            "dev", ifn])
        pb.ns_exec(ns, ["ip", "link", "set", "dev", ifn, "up"])

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    def _stop_procs(self):
        for p in self.procs:
            pb.stop_proc(p)

    def popen(self, i, cmd, **kw):
        p = pb.ns_popen(self.ns[i], cmd, **kw)
        self.procs.append(p)
        return p

    # -- views --
    def ipv6(self, stats=None):
        """The router's "ipv6" stats object."""
        return self.router(stats)["ipv6"]

    def router(self, stats=None):
        s = stats if stats is not None else self.daemon.stats()
        p = pb.find_port(s, "u")
        assert p is not None and "router" in p, s
        return p["router"]

    def sh(self, i, script, timeout=60.0, check=True):
        return pb.ns_exec(self.ns[i], ["bash", "-o", "pipefail", "-c",
                                       script], timeout=timeout, check=check)

    def sock(self, i=0, type=socket.SOCK_STREAM, family=socket.AF_INET6,
             proto=0):
        return pb.ns_socket(self.ns[i], family, type, proto)

    def addrs6(self, i, scope=None):
        """[(address, prefixlen, info dict)] on guest i's interface."""
        out = pb.ns_exec(self.ns[i], ["ip", "-j", "-6", "addr", "show",
                                      "dev", self.ifname[i]]).stdout
        return [(a["local"], a["prefixlen"], a)
                for a in json.loads(out)[0].get("addr_info", [])
                if scope is None or a.get("scope") == scope]

    def mac(self, i):
        return pb.link_mac(self.ns[i], self.ifname[i])

    def routes6(self, i):
        out = pb.ns_exec(self.ns[i], ["ip", "-j", "-6", "route", "show",
                                      "dev", self.ifname[i]]).stdout
        return json.loads(out) if out.strip() else []

    def neigh_mac(self, i, addr):
        out = pb.ns_exec(self.ns[i], ["ip", "-j", "-6", "neigh", "show",
                                      addr, "dev", self.ifname[i]]).stdout
        ent = json.loads(out) if out.strip() else []
        return ent[0].get("lladdr") if ent else None

    def ping6(self, i, addr, count=3, timeout=10.0, check=True):
        return pb.ping(self.ns[i], addr, count=count, timeout=timeout,
                       check=check, interval=0.2)

    def router_ll(self, i=0):
        """The router's link-local address as guest i sees it: ping
        fec0::2, read the router's MAC from the neighbour table, EUI-64."""
        self.ping6(i, HOST6, count=1)
        mac = pb.wait_until(lambda: self.neigh_mac(i, HOST6), 5,
                            "neighbour entry for %s" % HOST6)
        return eui64_ll(mac), mac


def wait_slaac(lab, i, timeout=20.0):
    """The first non-tentative SLAAC (dynamic) address in fec0::/64."""
    def got():
        for a, plen, info in lab.addrs6(i):
            if a.startswith("fec0:") and info.get("dynamic") and \
                    not info.get("tentative"):
                return a, plen
        return None
    return pb.wait_until(got, timeout, "a SLAAC address on guest %d" % i,
                         interval=0.05)


def wait_ra_route(lab, i, timeout=10.0):
    """Guest i's IPv6 default route learnt from an RA (waits for it: an RA
    answering the guest's first solicitation may be rate-limited, the next
    unsolicited one follows within 2 s of start-up)."""
    def default_route():
        for r in lab.routes6(i):
            if r.get("dst") == "default" and r.get("protocol") == "ra":
                return r
        return None
    return pb.wait_until(default_route, timeout,
                         "an IPv6 default route from an RA on guest %d" % i)


def tshark_fields(pcap, flt, fields):
    """Rows (lists of field strings) of tshark -T fields."""
    cmd = ["tshark", "-n", "-r", str(pcap), "-Y", flt, "-T", "fields",
           "-E", "separator=|", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    r = pb.run(cmd, timeout=60)
    return [ln.split("|") for ln in r.stdout.splitlines() if ln.strip()]


def pcap_flushed(pcap, flt):
    """True once the capture file holds a packet matching flt (captures
    are written at least every 100 ms)."""
    return (Path(pcap).exists() and Path(pcap).stat().st_size > 24 and
            pb.tshark_count(pcap, flt) > 0)


# --------------------------------------------------------------------------
# 1. SLAAC and the router advertisement


def test_slaac_route_and_ra_options(tmp_path):
    """A guest with stock settings (DAD on) configures fec0::/64 by SLAAC,
    with its EUI-64 interface identifier, and a default route via the
    router's link-local address; the RA carries the prefix (L+A), MTU 1500,
    RDNSS fec0::3 and a DNSSL with both dnssearch= domains."""
    pb.require_tools("tshark", "ping")
    pcap = tmp_path / "g1.pcap"
    user = ",dnssearch=example.test,dnssearch=lab.example.test"
    t0 = time.monotonic()
    with V6Lab(tmp_path, 1, user=user, static=False, dad=True,
               extra_args=["--capture", "id=c1,netdev=g1,file=%s" % pcap]) \
            as lab:
        addr, plen = wait_slaac(lab, 0)
        print("SLAAC address %s/%d after %.2fs" % (addr, plen,
                                                     time.monotonic() - t0))
        assert plen == 64
        # The interface identifier is the modified EUI-64 of the guest's
        # MAC (same as its link-local address).
        want_iid = eui64_ll(lab.mac(0)).split("fe80::")[1]
        assert norm6(addr) == norm6("fec0::" + want_iid), (addr, lab.mac(0))

        dr = wait_ra_route(lab, 0)
        gw = dr["gateway"]
        assert gw.startswith("fe80::"), dr
        # The gateway's MAC (learnt from the RA's source link-layer
        # option) gives the same link-local address by EUI-64.
        out = lab.ping6(0, gw + "%" + lab.ifname[0], count=2).stdout
        assert " 0% packet loss" in out, out
        mac = pb.wait_until(lambda: lab.neigh_mac(0, gw), 5,
                            "neighbour entry for the router")
        assert eui64_ll(mac) == gw, (mac, gw)
        # Global traffic works from the SLAAC address.
        out = lab.ping6(0, HOST6, count=2).stdout
        assert " 0% packet loss" in out, out
        v6 = lab.ipv6()
        assert v6["enabled"] is True, v6
        assert v6["rs"] >= 1 and v6["ra_sent"] >= 1, v6
        assert v6["ns"] >= 1 and v6["na_sent"] >= 1, v6
        assert v6["echo"] >= 4, v6
        assert v6["malformed"] == 0 and v6["nd_invalid"] == 0, v6
        pb.wait_until(lambda: pcap_flushed(pcap, "icmpv6.type == 134"), 5,
                      "an RA in the capture")
    assert pb.tshark_count(pcap, "_ws.malformed || _ws.expert.severity "
                                 ">= error") == 0
    rows = tshark_fields(pcap, "icmpv6.type == 134",
                         ["ipv6.src", "ipv6.dst", "ipv6.hlim",
                          "icmpv6.opt.src_linkaddr", "icmpv6.opt.mtu",
                          "icmpv6.opt.prefix", "icmpv6.opt.prefix.length",
                          "icmpv6.opt.prefix.flag.l",
                          "icmpv6.opt.prefix.flag.a",
                          "icmpv6.opt.rdnss", "icmpv6.opt.dnssl",
                          "icmpv6.nd.ra.router_lifetime"])
    assert rows, "no RA in the capture"
    for src, dst, hlim, sll, mtu, prefix, plen_s, fl, fa, rdnss, dnssl, \
            life in rows:
        assert src == gw and sll == mac, (src, sll, gw, mac)
        assert dst == "ff02::1" and hlim == "255", (dst, hlim)
        assert mtu == "1500" and prefix == "fec0::" and plen_s == "64", rows
        assert fl in ("1", "True") and fa in ("1", "True"), (fl, fa)
        assert rdnss == DNS6, rdnss
        assert dnssl.split(",") == ["example.test", "lab.example.test"], dnssl
        assert int(life) > 0, life
    # the guest solicited, and the router answered within the capture
    assert pb.tshark_count(pcap, "icmpv6.type == 133") >= 1


def test_ra_without_dnssearch(tmp_path):
    """Without dnssearch= the RA has RDNSS but no DNSSL option."""
    pb.require_tools("tshark")
    pcap = tmp_path / "g1.pcap"
    with V6Lab(tmp_path, 1, extra_args=["--capture",
                                        "id=c1,netdev=g1,file=%s" % pcap]) \
            as lab:
        # the guest's RS (sent once its link-local address is usable) is
        # answered at once
        pb.wait_until(lambda: pcap_flushed(
            pcap, "icmpv6.type == 134 && frame.number > 1"), 10,
            "an RA in the capture")
        assert lab.ipv6()["ra_sent"] >= 1
    rows = tshark_fields(pcap, "icmpv6.type == 134",
                         ["icmpv6.opt.rdnss", "icmpv6.opt.dnssl",
                          "icmpv6.opt.type"])
    assert rows
    for rdnss, dnssl, types in rows:
        assert rdnss == DNS6 and dnssl == "", (rdnss, dnssl, types)
        assert "31" not in types.split(","), types


# --------------------------------------------------------------------------
# 2. DHCPv6 with ISC dhclient

DHCLIENT6_SCRIPT = r"""#!/bin/sh
# dhclient-script of test_ipv6.py: apply the address, record the event.
d='%(dir)s'
case "$reason" in
PREINIT6)
	ip link set dev "$interface" up
	;;
BOUND6|RENEW6|REBIND6|REBOOT6)
	[ -n "$new_ip6_address" ] && \
		ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" \
			dev "$interface" nodad
	;;
esac
env > "$d/$reason.env.tmp" && mv "$d/$reason.env.tmp" "$d/$reason.env"
echo "$reason $new_ip6_address" >> "$d/events"
exit 0
"""

DHCLIENT6_CONF = """\
request dhcp6.name-servers, dhcp6.domain-search;
"""


def _env(path):
    out = {}
    for line in Path(path).read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v.strip("'")
    return out


class Dhclient6:
    """dhclient -6 in guest i with its own directory (script, events,
    lease and pid files), in the foreground (-d) so that the process we
    started is the client and is ended by its PID."""

    def __init__(self, lab, i, tag, conf=DHCLIENT6_CONF):
        self.lab, self.i = lab, i
        self.dir = Path(str(lab.tmp_path)) / ("dhc6-%d-%s" % (i, tag))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.script = self.dir / "script.sh"
        self.script.write_text(DHCLIENT6_SCRIPT % {"dir": self.dir})
        self.script.chmod(self.script.stat().st_mode | stat.S_IXUSR)
        self.conf = self.dir / "dhclient.conf"
        self.conf.write_text(conf)
        self.lease = self.dir / "leases"
        self.proc = None

    def start(self, *flags):
        log = open(self.dir / "client.log", "ab")
        try:
            self.proc = self.lab.popen(
                self.i, ["dhclient", "-6", "-1", "-d", "-v", *flags,
                         "-cf", str(self.conf), "-sf", str(self.script),
                         "-lf", str(self.lease),
                         "-pf", str(self.dir / "dhclient.pid"),
                         self.lab.ifname[self.i]],
                stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        return self

    def log(self):
        p = self.dir / "client.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait(self, *reasons, timeout=20.0):
        """The environment dhclient gave its script for the first of
        reasons (e.g. BOUND6) once recorded; fails early if dhclient
        exited without it."""
        paths = [self.dir / ("%s.env" % r) for r in reasons]

        def ready():
            for _ in range(2):      # once more after seeing the exit
                for p in paths:
                    if p.exists():
                        return _env(p)
                if self.proc.poll() is None:
                    return None
            raise AssertionError("dhclient exited (%s) before %s:\n%s"
                                 % (self.proc.returncode, "/".join(reasons),
                                    self.log()))
        try:
            return pb.wait_until(ready, timeout, "dhclient event " +
                                 "/".join(reasons))
        except AssertionError as e:
            raise AssertionError("%s\n--- dhclient log:\n%s"
                                 % (e, self.log()))

    def stop(self):
        if self.proc is not None:
            pb.stop_proc(self.proc)


def test_dhcpv6_lease_and_information_request(tmp_path):
    """dhclient -6 gets an address prefix::1:N (a plain four-message
    exchange in one guest, rapid commit in another), DNS fec0::3 and the
    search list; the address works (ping6 from it to fec0::2).  dhclient
    -6 -S (Information-Request) in a third guest gets DNS and the search
    list and no address."""
    pb.require_tools("dhclient", "ping")
    user = ",dnssearch=example.test,dnssearch=lab.example"
    want_search = ["example.test.", "lab.example."]
    with V6Lab(tmp_path, 3, user=user, static=False, autoconf=False) as lab:
        plain = Dhclient6(lab, 0, "plain").start()
        rapid = Dhclient6(lab, 1, "rapid", DHCLIENT6_CONF +
                          "send dhcp6.rapid-commit;\n").start()
        info = Dhclient6(lab, 2, "info").start("-S")
        leases = {}
        for name, c in (("plain", plain), ("rapid", rapid)):
            t0 = time.monotonic()
            env = c.wait("BOUND6")
            print("%s: BOUND6 %s after %.2fs" % (name,
                                                  env.get("new_ip6_address"),
                                                  time.monotonic() - t0))
            a = env.get("new_ip6_address", "")
            packed = socket.inet_pton(socket.AF_INET6, a)
            assert packed[:8] == socket.inet_pton(socket.AF_INET6,
                                                  "fec0::")[:8], a
            assert packed[8:14] == b"\0\0\0\0\0\1", \
                "not a prefix::1:N address: %s" % a
            assert env.get("new_dhcp6_name_servers", "").split() == [DNS6], env
            assert env.get("new_dhcp6_domain_search", "").split() == \
                want_search, env
            assert int(env.get("new_max_life", "0")) > 0, env
            leases[name] = a
            assert a in c.lease.read_text(), c.lease.read_text()
        assert leases["plain"] != leases["rapid"], leases
        # the four-message exchange vs. rapid commit, as dhclient logged it
        assert "RCV: Advertise message" in plain.log(), plain.log()
        assert "XMT: Request on" in plain.log(), plain.log()
        assert "RCV: Advertise message" not in rapid.log(), rapid.log()
        assert "XMT: Request on" not in rapid.log(), rapid.log()

        # dhclient 4.4 reports the Information-Request's answer as RENEW6
        env = info.wait("INFORM6", "RENEW6")
        assert env.get("new_dhcp6_name_servers", "").split() == [DNS6], env
        assert env.get("new_dhcp6_domain_search", "").split() == \
            want_search, env
        assert not env.get("new_ip6_address"), env
        assert "XMT: Info-Request" in info.log(), info.log()

        # The leased addresses are usable: ping6 the router from them
        # (the RA gave the on-link prefix; SLAAC is off in these guests).
        for i, name in ((0, "plain"), (1, "rapid")):
            wait_ra_route(lab, i)
            got = [a for a, _, _ in lab.addrs6(i, scope="site")
                   + lab.addrs6(i, scope="global")]
            assert got == [leases[name]], got
            out = pb.ns_exec(lab.ns[i], ["ping", "-c", "2", "-i", "0.2",
                                         "-w", "10", "-I", leases[name],
                                         HOST6], timeout=20).stdout
            assert " 0% packet loss" in out, out
        for c in (plain, rapid, info):
            c.stop()
        # the server's own count: two Solicits answered (one Advertise,
        # one rapid-commit Reply), a Request, an Information-Request
        d6 = lab.router()["dhcp6"]
        assert d6["solicit"] >= 2 and d6["advertise"] >= 1, d6
        assert d6["request"] >= 1 and d6["inform"] >= 1, d6
        assert d6["reply"] >= 3 and d6["malformed"] == 0, d6


def test_dhcpv6_search_list_with_shared_suffix(tmp_path):
    """dnssearch=corp.example.test,dnssearch=example.test (a typical
    list: the second is a suffix of the first): dhclient -6 -S must get
    both (RFC 8415 10: uncompressed names), as the RA's DNSSL has."""
    pb.require_tools("dhclient")
    user = ",dnssearch=corp.example.test,dnssearch=example.test"
    with V6Lab(tmp_path, 1, user=user, static=False, autoconf=False) as lab:
        info = Dhclient6(lab, 0, "info").start("-S")
        env = info.wait("INFORM6", "RENEW6")
        info.stop()
        assert env.get("new_dhcp6_name_servers", "").split() == [DNS6], env
        assert env.get("new_dhcp6_domain_search", "").split() == \
            ["corp.example.test.", "example.test."], env


# --------------------------------------------------------------------------
# 3. ping6, TCP and UDP through the host mapping fec0::2 -> [::1]


def _udp_echo6(lab, echo, sizes):
    """From guest 0 via fec0::2, one datagram of each size to echo, each
    answered whole from fec0::2."""
    g = lab.sock(0, socket.SOCK_DGRAM)
    g.settimeout(pb.scaled(5))
    try:
        for size in sizes:
            data = gen_data(size, size)
            g.sendto(data, (HOST6, echo.port))
            back, frm = g.recvfrom(70000)
            assert frm[0] == HOST6 and frm[1] == echo.port, frm
            assert back == b"echo:" + data, (size, len(back))
    finally:
        g.close()


def test_ping_curl_refused_udp(tmp_path):
    pb.require_tools("ping", "curl", "sha256sum", "bash")
    n = 8 * MiB
    want = hashlib.sha256(gen_data(6, n)).hexdigest()
    with V6Lab(tmp_path, 1) as lab, Http6Server() as http, \
            UdpEcho6() as echo:
        ll, _ = lab.router_ll(0)
        before = lab.ipv6()
        for target in (HOST6, DNS6, ll + "%" + lab.ifname[0]):
            out = lab.ping6(0, target, count=3).stdout
            assert " 0% packet loss" in out, (target, out)
        # a large echo (not fragmented: under the MTU)
        out = pb.ns_exec(lab.ns[0], ["ping", "-c", "1", "-s", "1400", "-w",
                                     "10", HOST6], timeout=20).stdout
        assert " 0% packet loss" in out, out
        v6 = lab.ipv6()
        assert _delta(v6, before, "echo") >= 10, v6

        # curl over IPv6 to the HTTP server on the host's [::1]
        t0 = time.monotonic()
        r = lab.sh(0, "curl -g -sS --fail --max-time %d "
                   "-w '%%{stderr}%%{size_download}\\n' "
                   "'http://[%s]:%d/gen/6/%d' | sha256sum"
                   % (int(pb.scaled(60)), HOST6, http.port, n), timeout=90)
        dt = time.monotonic() - t0
        size = int(r.stderr.strip().splitlines()[-1])
        print("curl over IPv6: %d bytes in %.2fs" % (size, dt))
        assert size == n and r.stdout.split()[0] == want
        assert http.clients and all(c == "::1" for c in http.clients), \
            http.clients

        # a closed TCP port on the host: refused, quickly
        dead = free_port6()
        c = lab.sock(0)
        c.settimeout(pb.scaled(5))
        t0 = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            c.connect((HOST6, dead))
        dt = time.monotonic() - t0
        c.close()
        print("refused after %.3fs" % dt)
        assert dt < 1.0, "ECONNREFUSED took %.2fs" % dt

        # UDP echo via fec0::2 to [::1]
        _udp_echo6(lab, echo, (1, 512, 1400))
        assert echo.seen and all(a == "::1" for a in echo.seen), echo.seen

        # a closed UDP port: ICMPv6 port unreachable -> ECONNREFUSED
        dead = free_port6(socket.SOCK_DGRAM)
        u = lab.sock(0, socket.SOCK_DGRAM)
        u.connect((HOST6, dead))
        u.settimeout(0.5)
        deadline = time.monotonic() + pb.scaled(5)
        refused = False
        while not refused:
            u.send(b"anyone there?")
            try:
                u.recv(100)
                raise AssertionError("a closed UDP port answered")
            except ConnectionRefusedError:
                refused = True
            except socket.timeout:
                assert time.monotonic() < deadline, \
                    "no ICMPv6 port unreachable for a closed UDP port"
        u.close()
        r = lab.router()
        assert r["tcp_opened"] >= 1 and r["udp_opened"] >= 1, r
        assert r["ipv6"]["malformed"] == 0, r["ipv6"]


def test_udp_and_ping_fragments_both_ways(tmp_path):
    """Datagrams larger than the MTU both ways over IPv6: a guest's (its
    kernel fragments them) reach a UDP server on the host's [::1] whole, up
    to the largest UDP payload, and the server's echoes of them come back
    fragmented by the router and whole; large pings to fec0::2 are
    answered.  The router counts fragments, reassembled and fragmented
    datagrams, and holds nothing afterwards."""
    pb.require_tools("ping")
    with V6Lab(tmp_path, 1) as lab, UdpEcho6() as echo:
        before = lab.daemon.stats()
        sizes = (1453, 3000, 20000, 65502)      # 65502 + "echo:" = max
        _udp_echo6(lab, echo, sizes)
        out = pb.ns_exec(lab.ns[0], ["ping", "-c", "2", "-s", "6000", "-w",
                                     "10", HOST6], timeout=20).stdout
        assert " 0% packet loss" in out, out
        after = lab.daemon.stats()
        v6, v6b = lab.ipv6(after), lab.ipv6(before)
        d = _delta(v6, v6b, "reassembled")
        frags = _delta(v6, v6b, "fragments")
        out_frag = _delta(v6, v6b, "fragmented")
        print("IPv6: %d datagrams reassembled from %d fragments, %d sent "
              "fragmented" % (d, frags, out_frag))
        assert d == len(sizes) + 2, v6
        assert out_frag == len(sizes) + 2, v6
        assert frags >= sum(-(-n // 1448) for n in sizes), v6
        ra = lab.router(after)["reassembly"]
        assert ra["pending"] == 0 and ra["malformed"] == 0 and \
            ra["overlaps"] == 0, ra
        assert lab.router(after)["drops"]["too_big"] == 0


# --------------------------------------------------------------------------
# 4. hostfwd to IPv6 guests


def _accept(ls, timeout=10.0):
    ls.settimeout(pb.scaled(timeout))
    a, addr = ls.accept()
    a.settimeout(pb.scaled(10))
    return a, addr


def _recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise AssertionError("EOF after %d of %d bytes" % (len(out), n))
        out += d
    return out


def _tcp_roundtrip(family, host, port, ls, payload, want_peer):
    """Connect from the host to host:port (a hostfwd), accept in the guest
    listener ls, exchange payload both ways; returns seconds taken."""
    t0 = time.monotonic()
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(pb.scaled(10))
    try:
        c.connect((host, port))
        a, peer = _accept(ls)
        try:
            assert peer[0] == want_peer, (host, peer)
            c.sendall(payload)
            got = _recv_exact(a, len(payload))
            assert got == payload
            a.sendall(b"reply:" + payload[::-1])
            a.shutdown(socket.SHUT_WR)
            back = b""
            while True:
                d = c.recv(1 << 20)
                if not d:
                    break
                back += d
            assert back == b"reply:" + payload[::-1], len(back)
        finally:
            a.close()
    finally:
        c.close()
    return time.monotonic() - t0


def _udp_roundtrip(family, host, port, us, tag, want_peer):
    """Datagrams from the host to host:port (a hostfwd) reach the guest
    socket us from want_peer; the reply comes back.  The first datagram
    may be spent on neighbour discovery for the guest: retried."""
    hc = socket.socket(family, socket.SOCK_DGRAM)
    try:
        hc.settimeout(pb.scaled(5))
        deadline = time.monotonic() + pb.scaled(5)
        got = None
        while got is None:
            hc.sendto(tag, (host, port))
            us.settimeout(0.5)
            try:
                got = us.recvfrom(2048)
            except socket.timeout:
                assert time.monotonic() < deadline, \
                    "UDP hostfwd %s:%d silent" % (host, port)
        data, src = got
        assert data == tag and src[0] == want_peer, (host, got)
        us.sendto(b"reply " + data, src)
        back, frm = hc.recvfrom(2048)
        assert back == b"reply " + tag, back
        assert frm[1] == port, frm
    finally:
        hc.close()


def test_hostfwd_to_ipv6_guest(tmp_path):
    """hostfwd=tcp|udp:[::1]:P-[fec0::15]:G and 127.0.0.1:P-[fec0::15]:G
    reach servers in an IPv6 guest, which sees the client as fec0::2;
    [::1]:P-10.0.2.15:G reaches an IPv4 guest (which sees 10.0.2.2)."""
    t6a, t4a, t64 = free_port6(), pb.free_port(), free_port6()
    u6a, u4a = free_port6(socket.SOCK_DGRAM), \
        pb.free_port(socket.SOCK_DGRAM)
    gt, gu, gt4 = 8080, 5353, 8081
    g6 = GUEST6[0]
    user = (",hostfwd=tcp:[::1]:%d-[%s]:%d" % (t6a, g6, gt) +
            ",hostfwd=tcp:127.0.0.1:%d-[%s]:%d" % (t4a, g6, gt) +
            ",hostfwd=udp:[::1]:%d-[%s]:%d" % (u6a, g6, gu) +
            ",hostfwd=udp:127.0.0.1:%d-[%s]:%d" % (u4a, g6, gu) +
            ",hostfwd=tcp:[::1]:%d-%s:%d" % (t64, GUEST4[0], gt4))
    with V6Lab(tmp_path, 1, user=user, ipv4=True) as lab:
        ls = lab.sock(0)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("::", gt))
        ls.listen(8)
        ls4 = lab.sock(0, family=socket.AF_INET)
        ls4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls4.bind(("0.0.0.0", gt4))
        ls4.listen(8)
        us = lab.sock(0, socket.SOCK_DGRAM)
        # bound to the forwarded address: a UDP reply must come from the
        # address the datagram went to (with a SLAAC address as well, the
        # kernel could pick that one for a socket bound to ::)
        us.bind((g6, gu))
        try:
            # The first connection comes before the guest sent anything:
            # the router has to find the guest by neighbour discovery.
            times = {}
            times["tcp [::1]"] = _tcp_roundtrip(
                socket.AF_INET6, "::1", t6a, ls, gen_data(1, 300 * KiB),
                HOST6)
            times["tcp 127.0.0.1"] = _tcp_roundtrip(
                socket.AF_INET, "127.0.0.1", t4a, ls, gen_data(2, 300 * KiB),
                HOST6)
            _udp_roundtrip(socket.AF_INET6, "::1", u6a, us, b"udp via ::1",
                           HOST6)
            _udp_roundtrip(socket.AF_INET, "127.0.0.1", u4a, us,
                           b"udp via 127.0.0.1", HOST6)
            times["tcp [::1]->IPv4"] = _tcp_roundtrip(
                socket.AF_INET6, "::1", t64, ls4, gen_data(3, 64 * KiB), GW4)
            # and several at once
            for k in range(3):
                _tcp_roundtrip(socket.AF_INET6, "::1", t6a, ls,
                               gen_data(10 + k, 4 * KiB), HOST6)
            print("hostfwd timings: %s" % ", ".join(
                "%s %.2fs" % kv for kv in times.items()))
            assert times["tcp [::1]"] < 5, times
        finally:
            for s in (ls, ls4, us):
                s.close()
        r = lab.router()
        assert r["tcp_opened"] >= 6 and r["udp_opened"] >= 2, r


# --------------------------------------------------------------------------
# 5. DNS at fec0::3


def test_dns_over_ipv6(tmp_path):
    """dig -6 @fec0::3 over UDP and TCP, forwarded to a dnsmasq upstream
    on 127.0.0.1 that knows www.v6.example (A and AAAA)."""
    pb.require_tools("dnsmasq", "dig")
    port = pb.free_port(socket.SOCK_DGRAM)
    dm = pb.popen(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                   "--listen-address=127.0.0.1", "--bind-interfaces",
                   "--port=%d" % port,
                   "--host-record=www.v6.example,192.0.2.66,2001:db8::66",
                   "--local=/v6.example/",
                   "--pid-file=%s" % (tmp_path / "dm.pid")],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pb.wait_until(lambda: pb.run(
            ["dig", "+short", "+time=1", "+tries=1", "-p", str(port),
             "@127.0.0.1", "www.v6.example"], check=False).stdout.strip()
            == "192.0.2.66", 10, "dnsmasq up")
        with V6Lab(tmp_path, 1, dns_upstream="127.0.0.1:%d" % port) as lab:
            def dig(*args):
                """dig -6 @fec0::3 ARGS: (answers, SERVER line)."""
                r = pb.ns_exec(lab.ns[0], ["dig", "-6", "+time=2", "+tries=2",
                                           "+noall", "+answer", "+stats",
                                           "@" + DNS6, *args], timeout=30)
                ans = [ln.split()[-1] for ln in r.stdout.splitlines()
                       if ln and not ln.startswith(";")]
                srv = [ln for ln in r.stdout.splitlines()
                       if ln.startswith(";; SERVER:")]
                return ans, (srv[0] if srv else r.stdout)
            for proto, flags in (("UDP", []), ("TCP", ["+tcp"])):
                for qtype, want in (("AAAA", "2001:db8::66"),
                                    ("A", "192.0.2.66")):
                    ans, srv = dig(*flags, "www.v6.example", qtype)
                    assert ans == [want], (proto, qtype, ans, srv)
                    assert srv.endswith("(%s)" % proto), srv
                    assert "fec0::3#53" in srv, srv
            # a name the upstream knows does not exist: NXDOMAIN, passed on
            for flags in ([], ["+tcp"]):
                r = pb.ns_exec(lab.ns[0], ["dig", "-6", "+time=2",
                                           "+tries=2", *flags, "@" + DNS6,
                                           "nothing.v6.example"],
                               timeout=30).stdout
                assert "status: NXDOMAIN" in r, r
            dns = lab.router()["dns"]
            # (queries over TCP are relayed as a stream, not counted here)
            assert dns["forwarded"] >= 3 and dns["answers"] >= 3, dns
            assert dns["timeouts"] == 0, dns
    finally:
        pb.stop_proc(dm)


# --------------------------------------------------------------------------
# 6. A real QEMU guest


def test_qemu_guest_ping6(tmp_path):
    """A QEMU guest (virtio-net over a stream unix socket) configures
    itself by SLAAC from the router's RA, pings fec0::2 and fec0::3, and
    fetches http://[fec0::2]:P/hello from a server on the host's [::1]."""
    import qemu
    why = qemu.missing_prerequisite()
    if why:
        pytest.skip(why)
    qemu.ensure_guest()
    sock = pb.sock_path(tmp_path, "vm.sock")
    with Http6Server() as http, contextlib.ExitStack() as stack:
        d = stack.enter_context(pb.Daemon(
            ["-netdev", USER_BASE,
             "-netdev", "stream,id=vm,server=on,addr.type=unix,"
                        "addr.path=%s" % sock], tmp_path))
        qemu.wait_unix_listening(sock, diag=d.log)
        guests = stack.enter_context(qemu.Guests())
        # h_ping=none: the harness brings the NIC up only when some IPv4
        # check is asked for; "none" asks for that without any IPv4 ping.
        params = ("h_net=none h_ping=none h_ping6=%s,%s h_timeout=30 "
                  "h_url=http://[%s]:%d/hello h_expect=%s h_name=pbq6"
                  % (HOST6, DNS6, HOST6, http.port,
                     http.HELLO.decode().strip()))
        g = qemu.Guest("pbq6-%d" % os.getpid(),
                       "stream,server=off,addr.type=unix,addr.path=%s" % sock,
                       nic="virtio-net-pci", mac="52:54:00:12:34:66",
                       logdir=tmp_path / "guests", params=params)
        guests.start(g)
        pb.track(g.proc)
        res = qemu.wait_guests([g], pb.scaled(90), check=d.assert_alive)[0]
        d.assert_alive()
        print("guest: %s in %.1fs, passed %s" % (res.verdict, res.seconds,
                                                 res.passed))
        if not res.ok:
            pytest.fail(res.summary() + "\n--- patchbay stderr:\n" + d.log())
        assert any(p.startswith("ping6 %s" % HOST6) for p in res.passed), res
        assert any(p.startswith("ping6 %s" % DNS6) for p in res.passed), res
        v6 = pb.find_port(d.stats(), "u")["router"]["ipv6"]
        assert v6["echo"] >= 8 and v6["rs"] >= 1, v6
        assert http.clients, "the guest's fetch never reached [::1]"


# --------------------------------------------------------------------------
# 7. Bad input


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def _a6(a):
    return socket.inet_pton(socket.AF_INET6, a)


def ip6(src, dst, nh, payload, hlim=64, plen=None):
    ln = len(payload) if plen is None else plen
    return struct.pack("!IHBB", 6 << 28, ln, nh, hlim) + _a6(src) + \
        _a6(dst) + payload


def l4_csum(src, dst, nh, seg):
    ph = _a6(src) + _a6(dst) + struct.pack("!IxxxB", len(seg), nh)
    return _csum(ph + seg)


def icmp6(src, dst, typ, code, body, csum=None):
    m = struct.pack("!BBH", typ, code, 0) + body
    c = l4_csum(src, dst, 58, m) if csum is None else csum
    return m[:2] + struct.pack("!H", c) + m[4:]


def echo_req(src, dst, ident=0x6666, seq=1, data=b"patchbay-bad-input"):
    return icmp6(src, dst, 128, 0, struct.pack("!HH", ident, seq) + data)


def ext(nh, body):
    """An extension header (hop-by-hop, destination options, routing):
    next header, length in 8-octet units beyond the first, body padded."""
    raw = struct.pack("!BB", nh, 0) + body
    raw += b"\0" * (-len(raw) % 8)
    return raw[:1] + bytes([len(raw) // 8 - 1]) + raw[2:]


def opts_hdr(nh, opt_type, opt_data=b"\0\0\0\0"):
    """Hop-by-hop/destination options with one option (then PadN)."""
    o = bytes([opt_type, len(opt_data)]) + opt_data
    pad = -(2 + len(o)) % 8
    if pad == 1:
        o += b"\0"
    elif pad:
        o += bytes([1, pad - 2]) + b"\0" * (pad - 2)
    return ext(nh, o)


class RawGuest6:
    """An AF_PACKET socket on guest i's interface for crafted frames to the
    router (its MAC learnt from the neighbour table) and for reading what
    comes back."""

    def __init__(self, lab, i=0):
        self.lab, self.i = lab, i
        self.ll, self.rmac_s = lab.router_ll(i)
        self.rmac = pb.mac_bytes(self.rmac_s)
        self.mac = pb.mac_bytes(lab.mac(i))
        self.src = GUEST6[i]
        self.s = pb.ns_call(lab.ns[i], socket.socket, socket.AF_PACKET,
                            socket.SOCK_RAW, socket.htons(0x86dd))
        self.s.bind((lab.ifname[i], 0x86dd))

    def send(self, packet, dst_mac=None, pad=True):
        f = (dst_mac or self.rmac) + self.mac + b"\x86\xdd" + packet
        if pad:
            f += b"\0" * max(0, 60 - len(f))    # Ethernet minimum frame
        self.s.send(f)

    def drain(self):
        self.s.setblocking(False)
        try:
            while True:
                self.s.recv(70000)
        except BlockingIOError:
            pass
        finally:
            self.s.setblocking(True)

    def recv_match(self, pred, timeout=2.0):
        """pred(ipv6 packet) over incoming frames until truthy, or None."""
        deadline = time.monotonic() + pb.scaled(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                f, addr = self.s.recvfrom(70000)
            except socket.timeout:
                return None
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            v = pred(f[14:])
            if v:
                return v

    def close(self):
        self.s.close()


def frag_hdr(nh, off, more, ident):
    """An IPv6 fragment header: offset in bytes (a multiple of 8)."""
    return struct.pack("!BBHI", nh, 0, off | int(more), ident)


def icmp6_from_router(typ, code=None):
    """Predicate: an ICMPv6 message of type (and code) to us; returns
    (code, 4-byte parameter, body) of it."""
    def pred(p):
        if len(p) < 48 or p[6] != 58 or p[40] != typ:
            return None
        if code is not None and p[41] != code:
            return None
        return (p[41], struct.unpack("!I", p[44:48])[0], p[48:])
    return pred


def test_bad_ipv6_input(tmp_path):
    """Crafted IPv6 frames to the router: every one is dropped and counted
    (or answered with the ICMPv6 error RFC 8200/4443 asks for); the daemon
    survives an RS flood; ping6 works afterwards."""
    pb.require_tools("ping")
    with V6Lab(tmp_path, 1) as lab:
        raw = RawGuest6(lab)
        src, ll = raw.src, raw.ll
        mac = raw.mac
        allr = "ff02::2"
        echo = echo_req(src, HOST6)
        sll = bytes([1, 1]) + mac                 # source link-layer option
        rs_body = b"\0" * 4                       # RS: reserved
        ns_body = b"\0" * 4 + _a6(HOST6)          # NS for fec0::2
        na_body = struct.pack("!I", 0x20000000) + _a6(src)
        pp = icmp6_from_router(4)

        def ndp(typ, body, dst=allr, hlim=255, s=src):
            return ip6(s, dst, 58, icmp6(s, dst, typ, 0, body), hlim=hlim)

        def with_ext(hdrs, dst=HOST6, final=echo):
            """Echo request behind a chain of (type, header bytes)."""
            nh = 58
            chain = b""
            for typ, h in reversed(hdrs):
                chain = bytes([nh]) + h[1:] + chain
                nh = typ
            return ip6(src, dst, nh, chain + final)

        dst_unknown_10 = opts_hdr(0, 0x9e)        # action 10: ICMP always
        dst_unknown_01 = opts_hdr(0, 0x5e)        # action 01: drop silently
        dst_unknown_00 = opts_hdr(0, 0x1e)        # action 00: skip it
        hbh = opts_hdr(0, 1, b"\0\0\0\0")         # PadN only
        rh_left = ext(0, struct.pack("!BB", 253, 1) + b"\0" * 4 + _a6(src))
        rh_done = ext(0, struct.pack("!BB", 253, 0) + b"\0" * 4 + _a6(src))
        dst_pad = opts_hdr(0, 1, b"\0\0\0\0")

        cases = [
            # (name, packet, {counter: min delta}, reply predicate or None,
            #  check on the reply or None)
            ("truncated IPv6 header", ip6(src, HOST6, 58, echo)[:30],
             {"malformed": 1}, None, None),
            ("payload length beyond the frame",
             ip6(src, HOST6, 58, echo, plen=1000), {"malformed": 1},
             None, None),
            ("bad ICMPv6 checksum",
             ip6(src, HOST6, 58, icmp6(src, HOST6, 128, 0, b"\0\1\0\1",
                                       csum=0x1234)),
             {"malformed": 1}, None, None),
            ("ICMPv6 message cut to 2 bytes", ip6(src, HOST6, 58, b"\x80\0"),
             {"malformed": 1}, None, None),
            ("RS with a zero-length option",
             ndp(133, rs_body + b"\x01\x00" + mac), {"nd_invalid": 1},
             None, None),
            ("RS option longer than the message",
             ndp(133, rs_body + b"\x01\x04" + mac), {"nd_invalid": 1},
             None, None),
            ("NS with a zero-length option",
             ndp(135, ns_body + b"\x01\x00" + mac, dst=HOST6),
             {"nd_invalid": 1}, None, None),
            ("NA with a zero-length option",
             ndp(136, na_body + b"\x02\x00" + mac, dst=HOST6),
             {"nd_invalid": 1}, None, None),
            ("NS with hop limit 64",
             ndp(135, ns_body + sll, dst=HOST6, hlim=64),
             {"nd_invalid": 1}, None, None),
            ("RS with hop limit 64", ndp(133, rs_body + sll, hlim=64),
             {"nd_invalid": 1}, None, None),
            ("NS with a truncated body", ndp(135, ns_body[:10], dst=HOST6),
             {"nd_invalid": 1}, None, None),
            # (the pointer is checked in test_hbh_not_first_pointer)
            ("hop-by-hop header not first",
             with_ext([(60, dst_pad), (0, hbh)]),
             {"ext_dropped": 1, "param_problem": 1}, pp,
             lambda r: r[0] == 1),
            ("destination option type 0x9e (action 10)",
             with_ext([(60, dst_unknown_10)]),
             {"ext_dropped": 1, "param_problem": 1}, pp,
             lambda r: r[0] == 2 and r[1] == 42),
            ("hop-by-hop option type 0x9e to all nodes (action 10)",
             with_ext([(0, opts_hdr(0, 0x9e))], dst="ff02::1"),
             {"ext_dropped": 1, "param_problem": 1}, pp,
             lambda r: r[0] == 2 and r[1] == 42),
            ("destination option type 0x5e (action 01: discard)",
             with_ext([(60, dst_unknown_01)]),
             {"ext_dropped": 1}, None, None),
            ("routing header with segments left",
             with_ext([(43, rh_left)]),
             {"ext_dropped": 1, "param_problem": 1}, pp,
             lambda r: r[0] == 0 and r[1] == 42),
            ("20 destination options headers",
             with_ext([(60, dst_pad)] * 20), {"ext_dropped": 1}, None, None),
            ("extension header cut short",
             ip6(src, HOST6, 60, dst_pad[:4]), {"ext_dropped": 1},
             None, None),
            ("a fragment with M set and a length not a multiple of 8",
             ip6(src, HOST6, 44, frag_hdr(58, 0, True, 8) + echo[:13]),
             {"fragments": 1}, None, None),
            ("a fragment header inside a reassembled datagram",
             "nested", {"reassembled": 1, "ext_dropped": 1}, None, None),
            ("a neighbour solicitation in fragments (RFC 6980)",
             "ndp", {"reassembled": 1, "nd_invalid": 1}, None, None),
        ]
        # Well-formed headers the router must walk through: answered.
        walk_ok = [
            ("destination option type 0x1e (action 00: skipped)",
             with_ext([(60, dst_unknown_00)])),
            ("hop-by-hop header first (PadN)", with_ext([(0, hbh)])),
            ("routing header with no segments left",
             with_ext([(43, rh_done)])),
            ("7 destination options headers", with_ext([(60, dst_pad)] * 7)),
            ("an atomic fragment (RFC 6946)",
             ip6(src, HOST6, 44, frag_hdr(58, 0, False, 7) + echo)),
        ]

        failures = []
        raw.drain()
        # (a datagram whose fragmentable part starts with another fragment
        # header: two fragments of it)
        nested = frag_hdr(58, 0, False, 9) + echo
        nested_frags = [
            ip6(src, HOST6, 44, frag_hdr(44, 0, True, 10) + nested[:16]),
            ip6(src, HOST6, 44, frag_hdr(44, 16, False, 10) + nested[16:])]
        ns_msg = icmp6(src, HOST6, 135, 0, ns_body + sll)
        ndp_frags = [
            ip6(src, HOST6, 44, frag_hdr(58, 0, True, 11) + ns_msg[:16],
                hlim=255),
            ip6(src, HOST6, 44, frag_hdr(58, 16, False, 11) + ns_msg[16:],
                hlim=255)]
        for name, pkt, want, pred, check in cases:
            before = lab.ipv6()
            for one in {"nested": nested_frags,
                        "ndp": ndp_frags}.get(pkt, [pkt]):
                raw.send(one)
            got = {}

            def grew():
                got["a"] = lab.ipv6()
                return all(_delta(got["a"], before, k) >= v
                           for k, v in want.items())
            try:
                pb.wait_until(grew, 3, name, interval=0.02)
            except AssertionError:
                failures.append("%s: want %s, changed: %s" % (
                    name, want, {k: _delta(got["a"], before, k)
                                 for k in got["a"] if k != "enabled" and
                                 _delta(got["a"], before, k)}))
            if pred is not None:
                r = raw.recv_match(pred)
                if r is None:
                    failures.append("%s: no ICMPv6 error came back" % name)
                elif check is not None and not check(r):
                    failures.append("%s: ICMPv6 error code %d pointer %d"
                                    % (name, r[0], r[1]))
                elif r[2][:40] != pkt[:40]:
                    failures.append("%s: the error does not quote our "
                                    "packet" % name)
            lab.daemon.assert_alive()
        # no answer at all to NDP from a bad hop limit: checked separately,
        # an NS with hop limit 64 must not be answered
        raw.drain()
        raw.send(ndp(135, ns_body + sll, dst=HOST6, hlim=64))
        if raw.recv_match(icmp6_from_router(136), timeout=0.5):
            failures.append("NS with hop limit 64 was answered")
        # echo behind well-formed extension headers
        for k, (name, pkt) in enumerate(walk_ok):
            raw.drain()
            raw.send(pkt)
            if not raw.recv_match(icmp6_from_router(129)):
                failures.append("%s: no echo reply" % name)

        # An echo request in fragments, in any order, behind a destination
        # options header in the unfragmentable part and with different
        # next header values in later fragments (RFC 8200 4.5: the first
        # fragment's counts): one whole reply.
        data = bytes(range(256)) * 4
        big = echo_req(src, HOST6, seq=77, data=data)
        for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0, 0]):
            ident = 0x1000 + order[0] * 16 + order[1]
            pieces = [(0, big[:512]), (512, big[512:768]), (768, big[768:])]
            raw.drain()
            before = lab.ipv6()
            for i in order:
                off, part = pieces[i]
                fh = frag_hdr(58 if off == 0 else 17, off,
                              off + len(part) < len(big), ident)
                raw.send(ip6(src, HOST6, 60,
                             bytes([44]) + dst_pad[1:] + fh + part))
            r = raw.recv_match(icmp6_from_router(129))
            if r is None:
                failures.append("fragments %s: no echo reply" % order)
            elif r[1] != (0x6666 << 16 | 77) or r[2] != data:
                failures.append("fragments %s: the reply is not the whole "
                                "request (%d bytes)" % (order, len(r[2])))
            if _delta(lab.ipv6(), before, "reassembled") != 1:
                failures.append("fragments %s: reassembled %d times"
                                % (order, _delta(lab.ipv6(), before,
                                                 "reassembled")))

        # RS flood: 1000 valid solicitations as fast as we can send them.
        before = lab.ipv6()
        rs = ndp(133, rs_body + sll)
        t0 = time.monotonic()
        for _ in range(1000):
            raw.send(rs)
        dt = time.monotonic() - t0
        lab.daemon.assert_alive()
        got = {}

        def settled():
            got["a"] = lab.ipv6()
            return _delta(got["a"], before, "rs") >= 900
        pb.wait_until(settled, 10, "the RS flood counted", interval=0.05)
        a = got["a"]
        d_rs, d_lim, d_ra = (_delta(a, before, "rs"),
                             _delta(a, before, "ra_limited"),
                             _delta(a, before, "ra_sent"))
        print("RS flood: sent 1000 in %.2fs; rs +%d ra_limited +%d "
              "ra_sent +%d" % (dt, d_rs, d_lim, d_ra))
        assert d_lim >= d_rs - d_ra and d_lim >= 800, (d_rs, d_lim, d_ra)
        assert d_ra <= 2 + 2 * (time.monotonic() - t0), (d_rs, d_lim, d_ra)

        raw.close()
        # all is well afterwards
        out = lab.ping6(0, HOST6, count=3).stdout
        assert " 0% packet loss" in out, out
        out = lab.ping6(0, ll + "%" + lab.ifname[0], count=2).stdout
        assert " 0% packet loss" in out, out
        lab.daemon.assert_alive()
        assert not failures, "\n".join(failures)


def test_hbh_not_first_pointer(tmp_path):
    """RFC 8200 4.1/4.3: a hop-by-hop header after a destination options
    header is an unrecognised Next Header value: ICMPv6 parameter problem
    code 1 whose pointer is the offset of that value (40: the first byte
    of the destination options header), as Linux answers."""
    pb.require_tools("ping")
    with V6Lab(tmp_path, 1) as lab:
        raw = RawGuest6(lab)
        src = raw.src
        echo = echo_req(src, HOST6)
        dst = opts_hdr(0, 1)        # next: hop-by-hop
        hbh = opts_hdr(58, 1)       # next: ICMPv6
        pkt = ip6(src, HOST6, 60, dst + hbh + echo)
        raw.drain()
        raw.send(pkt)
        r = raw.recv_match(icmp6_from_router(4))
        raw.close()
        assert r is not None, "no parameter problem came back"
        code, pointer, quoted = r
        assert quoted[:40] == pkt[:40]
        assert (code, pointer) == (1, 40), (code, pointer)
