# SPDX-License-Identifier: MIT
"""SMB (smb=DIR[,smbserver=ADDR]): the system's smbd, started per guest
connection with a private configuration, serves DIR as \\\\ADDR\\qemu.

smbclient in a guest namespace lists the share, downloads (checksums match)
and uploads; a custom smbserver= address; stopping patchbay ends every smbd
it started and removes the private directory; start-up errors (no smbd,
bad directory, bad address) are clear.

Needs root, /dev/net/tun, iproute2, smbd (Debian samba) and smbclient.
"""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

import pb
from svclab import PY, SMB, ServiceLab

MiB = 1 << 20


def _require():
    pb.require_netns()
    pb.require_tools("smbclient")
    if not (shutil.which("smbd") or os.access("/usr/sbin/smbd", os.X_OK)):
        pytest.skip("needs smbd (apt-get install samba)")


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def _share(tmp_path):
    share = tmp_path / "share"
    (share / "sub").mkdir(parents=True)
    blob = os.urandom(3 * MiB + 123)
    (share / "blob.bin").write_bytes(blob)
    (share / "hello.txt").write_text("hello from the host\n")
    (share / "sub" / "deep.txt").write_text("deep\n")
    return share, blob


def _private_dir(daemon):
    """The private directory patchbay made for smbd (from its log)."""
    for line in daemon.log_lines("smb: sharing"):
        m = re.search(r"config (\S+)/smb\.conf", line)
        if m:
            return m.group(1)
    raise AssertionError("no 'smb: sharing' line:\n" + daemon.log())


def _smbd_pids(private):
    """PIDs of running smbd processes that use our private config (looked
    up by command line; nothing is signalled here)."""
    r = subprocess.run(["pgrep", "-f", private + "/smb.conf"],
                       capture_output=True, text=True)
    pids = []
    for p in r.stdout.split():
        try:
            with open("/proc/%s/stat" % p) as f:
                if f.read().split(")")[-1].split()[0] != "Z":
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def _smbclient(lab, addr, cmds, check=True):
    return lab.sh(0, "timeout 60 smbclient -N //%s/qemu -c %s"
                  % (addr, _quote(cmds)), timeout=90, check=check)


def _quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def test_smbclient_lists_downloads_and_uploads(tmp_path):
    _require()
    share, blob = _share(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    up = os.urandom(MiB + 7)
    (tmp_path / "up.bin").write_bytes(up)
    with ServiceLab(tmp_path, user=",smb=%s" % share) as lab:
        private = _private_dir(lab.daemon)
        assert os.path.isfile(os.path.join(private, "smb.conf"))
        t0 = time.monotonic()
        r = _smbclient(lab, SMB, "ls")
        for name in ("blob.bin", "hello.txt", "sub"):
            assert name in r.stdout, r.stdout
        r = _smbclient(lab, SMB, "get blob.bin %s/blob.bin; "
                       "get sub\\deep.txt %s/deep.txt" % (out, out))
        assert _sha((out / "blob.bin").read_bytes()) == _sha(blob)
        assert (out / "deep.txt").read_text() == "deep\n"
        _smbclient(lab, SMB, "put %s/up.bin up.bin" % tmp_path)
        assert _sha((share / "up.bin").read_bytes()) == _sha(up)
        print("smbclient ls, get 3 MiB, put 1 MiB: %.2fs"
              % (time.monotonic() - t0))
        # each connection had its own smbd, which ends with it (smbclient
        # may also try port 139 while 445 is starting: 3 or more)
        pb.wait_until(lambda: lab.router()["smb"]["running"] == 0, 15,
                      "smbd processes gone after their connections")
        s = lab.router()["smb"]
        assert s["connections"] >= 3 and s["spawn_failed"] == 0, s
    assert not os.path.exists(private), "private directory left behind"
    assert _smbd_pids(private) == []


def test_custom_smbserver_address(tmp_path):
    _require()
    share, blob = _share(tmp_path)
    with ServiceLab(tmp_path,
                    user=",smb=%s,smbserver=10.99.0.9,restrict=on" % share) \
            as lab:
        r = _smbclient(lab, "10.99.0.9", "ls")
        assert "blob.bin" in r.stdout, r.stdout
        r = _smbclient(lab, SMB, "ls", check=False)
        assert r.returncode != 0
        assert lab.router()["smb"]["connections"] >= 1


def test_stop_ends_smbd_and_removes_private_dir(tmp_path):
    """A guest holds a connection to smbd; patchbay stops: the smbd it
    started is gone and so is the private directory."""
    _require()
    share, _ = _share(tmp_path)
    holder = None
    try:
        with ServiceLab(tmp_path, user=",smb=%s" % share) as lab:
            private = _private_dir(lab.daemon)
            hold = ("import socket, time\n"
                    "s = socket.create_connection((%r, 445), timeout=10)\n"
                    "print('connected', flush=True)\n"
                    "time.sleep(120)\n" % SMB)
            holder = lab.guest_popen(0, [PY, "-c", hold])
            assert holder.stdout.readline().strip() == b"connected"
            pids = pb.wait_until(lambda: _smbd_pids(private), 15,
                                 "an smbd for the held connection")
            assert lab.router()["smb"]["running"] == 1
            t0 = time.monotonic()
            lab.daemon.stop()
            print("stopped with a live smbd in %.2fs"
                  % (time.monotonic() - t0))
        for pid in pids:
            assert not os.path.exists("/proc/%d" % pid) or \
                open("/proc/%d/stat" % pid).read().split(")")[-1].split()[0] \
                == "Z", "smbd %d still running" % pid
        assert _smbd_pids(private) == []
        assert not os.path.exists(private)
    finally:
        if holder is not None:
            pb.stop_proc(holder)


def test_startup_errors(tmp_path):
    pb.require_root()
    share = tmp_path / "share"
    share.mkdir()
    r = pb.run_patchbay(["-netdev", "user,id=u0,smb=%s" %
                         (tmp_path / "missing")])
    assert r.returncode != 0 and "smb" in r.stderr, r.stderr
    r = pb.run_patchbay(["-netdev", "user,id=u0,smbserver=10.0.2.4"])
    assert r.returncode != 0 and "smbserver" in r.stderr, r.stderr
    for bad in ("10.0.2.2", "10.0.2.3", "10.0.3.4", "10.0.2.255", "x"):
        r = pb.run_patchbay(["-netdev", "user,id=u0,smb=%s,smbserver=%s"
                             % (share, bad)])
        assert r.returncode != 0 and "smbserver" in r.stderr, (bad, r.stderr)
    # no smbd anywhere: hide /usr/sbin (and PATH) in a private mount
    # namespace; patchbay must say what is missing and exit
    if not shutil.which("unshare"):
        pytest.skip("needs unshare (util-linux)")
    script = ("mount -t tmpfs none /usr/sbin && mount -t tmpfs none /sbin "
              "2>/dev/null; PATH=/usr/bin:/bin exec %s -netdev "
              "user,id=u0,smb=%s" % (pb.patchbay_bin(), share))
    r = pb.run(["unshare", "-m", "sh", "-c", script], check=False)
    assert r.returncode != 0, r
    assert "smbd not found" in r.stderr and "samba" in r.stderr, r.stderr


def test_failed_startup_removes_private_dir(tmp_path):
    """smb= is set up, then a later step fails (a hostfwd port is taken):
    the private directory (under TMPDIR) is removed again."""
    _require()
    share = tmp_path / "share"
    share.mkdir()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = pb.run([pb.patchbay_bin(), "-netdev",
                    "user,id=u0,smb=%s,hostfwd=tcp:127.0.0.1:%d-:22"
                    % (share, port)], check=False,
                   env=dict(os.environ, TMPDIR=str(tmpdir)))
    assert r.returncode != 0 and "hostfwd" in r.stderr, r.stderr
    assert os.listdir(tmpdir) == [], "private directory left behind"
