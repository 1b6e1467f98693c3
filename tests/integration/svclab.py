# SPDX-License-Identifier: MIT
"""A user-mode router and a guest namespace for the router-service tests
(TFTP, SMB): pb.TapLab's namespace behind a TAP port (10.99.0.1) plus
`-netdev user` on the same switch, with net=10.99.0.0/24 so that the
router's addresses are on the guest's subnet: gateway GW (.2, TFTP), DNS
(.3), SMB (.4, the default smbserver).

    with ServiceLab(tmp_path, user=",tftp=%s" % root) as lab:
        lab.sh(0, "curl ...")            # bash -c in guest 0
        lab.guest_py(0, SRC, args)      # python3 SRC in guest 0
        lab.router()                    # the router's counters

Guests reach only the router's own addresses; nothing leaves the test's
namespaces.
"""

import subprocess
import sys

import pb

NET = "10.99.0.0/24"
GW = "10.99.0.2"
SMB = "10.99.0.4"
PY = sys.executable or "/usr/bin/python3"


class ServiceLab(pb.TapLab):
    """pb.TapLab (guest i at 10.99.0.<i+1>; keep n <= 1 so that no guest
    takes the router's .2-.4) with the router as netdev u0."""

    def __init__(self, tmp_path, n=1, user="", ready_timeout=10.0):
        assert n == 1, "guest 2 would be 10.99.0.2, the gateway"
        super().__init__(tmp_path, n, extra_args=[
            "-netdev", "user,id=u0,net=%s%s" % (NET, user)],
            ready_timeout=ready_timeout)

    def router(self, stats=None):
        s = stats if stats is not None else self.daemon.stats()
        p = pb.find_port(s, "u0")
        assert p is not None and "router" in p, s
        return p["router"]

    def sh(self, i, script, timeout=60.0, check=True):
        """bash -o pipefail -c script in guest i."""
        return pb.ns_exec(self.ns[i], ["bash", "-o", "pipefail", "-c",
                                       script], timeout=timeout, check=check)

    def guest_py(self, i, src, args=(), timeout=60.0, check=True):
        """Run Python source src in guest i with args; the source goes in a
        file in the test's folder.  Returns the CompletedProcess."""
        path = self.tmpdir / ("%s.py" % pb.unique("guest"))
        path.write_text(src)
        return pb.ns_exec(self.ns[i], [PY, str(path)] + [str(a) for a in args],
                          timeout=timeout, check=check)

    def guest_popen(self, i, argv, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return pb.ns_popen(self.ns[i], list(argv), **kw)
