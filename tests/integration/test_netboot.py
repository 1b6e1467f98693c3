# SPDX-License-Identifier: MIT
"""Network boot: a QEMU VM with no disk boots through its NIC's iPXE ROM
(Debian's ipxe-qemu, what `-boot n` runs) from patchbay.

patchbay: a stream listener on a unix socket and `-netdev user,tftp=DIR,
bootfile=boot.ipxe` on one switch.  QEMU (TCG, no KVM needed) joins with
`-netdev stream` and a virtio-net NIC; SeaBIOS and iPXE print on the serial
console (graphics=off), which the test reads from a file.  iPXE gets a lease
by DHCP (next-server and bootfile from patchbay), fetches boot.ipxe over
TFTP and runs it; the script fetches a second script and a payload by
relative name and prints a marker with values iPXE only knows at run time
(its address, the next server, the boot file name).  The test waits for the
marker (bounded), ends QEMU by its PID, and checks patchbay's DHCP and TFTP
counters.

Nothing here uses a network: a unix socket joins QEMU and patchbay.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

import pb
import qemu

ROM_DIR = "/usr/lib/ipxe/qemu"
MARKER = "PATCHBAY-NETBOOT-OK"

BOOT = """#!ipxe
echo PATCHBAY-NETBOOT-STAGE1 from ${filename}
chain second.ipxe
"""

SECOND = """#!ipxe
imgfetch --name payload payload.bin
echo %s ip=${ip} server=${next-server} file=${filename}
exit 0
""" % MARKER


def _require():
    if shutil.which(qemu.QEMU) is None:
        pytest.skip("needs %s (apt-get install qemu-system-x86)" % qemu.QEMU)
    if not os.path.exists(os.path.join(ROM_DIR, "efi-virtio.rom")):
        pytest.skip("needs the iPXE ROMs in %s (apt-get install ipxe-qemu)"
                    % ROM_DIR)


def test_qemu_boots_ipxe_script_over_tftp(tmp_path):
    _require()
    root = tmp_path / "tftp"
    root.mkdir()
    (root / "boot.ipxe").write_text(BOOT)
    (root / "second.ipxe").write_text(SECOND)
    payload = os.urandom(256 * 1024 + 11)
    (root / "payload.bin").write_bytes(payload)
    sock = pb.sock_path(tmp_path, "nb.sock")
    console = tmp_path / "console.log"
    args = ["-netdev", "stream,id=s0,server=on,addr.type=unix,addr.path=%s"
            % sock,
            "-netdev", "user,id=u0,tftp=%s,bootfile=boot.ipxe" % root]
    argv = [qemu.QEMU, "-nodefaults", "-machine", "pc,graphics=off",
            "-accel", "tcg", "-m", "128", "-display", "none",
            "-serial", "file:%s" % console, "-boot", "n", "-no-reboot",
            "-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path=%s"
            % sock,
            "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"]
    with pb.Daemon(args, tmp_path) as d:
        log = open(tmp_path / "qemu.log", "wb")
        vm = pb.track(subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       preexec_fn=qemu._die_with_parent))
        t0 = time.monotonic()
        try:
            def marker():
                if vm.poll() is not None:
                    raise AssertionError("QEMU exited (%s):\n%s" % (
                        vm.returncode, (tmp_path / "qemu.log").read_text()))
                d.assert_alive()
                text = console.read_text(errors="replace") \
                    if console.exists() else ""
                # Only a whole line: the console file may be read while
                # QEMU is still writing the marker.
                m = re.search(MARKER + r" ip=(\S+) server=(\S+) file=(\S+)"
                              r"[ \t]*\r?\n", text)
                return m
            try:
                m = pb.wait_until(marker, 180, "the iPXE marker on the "
                                  "console", interval=0.2)
            except AssertionError as e:
                text = console.read_text(errors="replace") \
                    if console.exists() else ""
                raise AssertionError("%s\n--- console:\n%s" % (e, text[-3000:]))
            print("netboot: marker after %.1fs (TCG)" % (time.monotonic() - t0))
            assert m.groups() == ("10.0.2.15", "10.0.2.2", "boot.ipxe"), \
                m.group(0)
        finally:
            pb.stop_proc(vm)
            log.close()
        text = console.read_text(errors="replace")
        assert "PATCHBAY-NETBOOT-STAGE1 from boot.ipxe" in text
        router = pb.find_port(d.stats(), "u0")["router"]
        dhcp, tftp = router["dhcp"], router["tftp"]
        assert dhcp["ack"] >= 1, dhcp
        assert [l["mac"] for l in dhcp["leases"]] == ["52:54:00:12:34:56"]
        assert tftp["rrq"] >= 3 and tftp["completed"] >= 3, tftp
        assert tftp["bytes"] >= len(BOOT) + len(SECOND) + len(payload), tftp
        assert tftp["not_found"] == 0 and tftp["timeouts"] == 0, tftp
