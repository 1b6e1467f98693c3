# SPDX-License-Identifier: MIT
"""pytest glue for patchbay's integration tests: makes `import pb` work from
any test directory and checks that no test leaves a process behind."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pb  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    """Every process a test started through pb must be gone at teardown.
    Leftovers are ended (by PID) and reported as a test error."""
    yield
    pb.dump_daemon_logs()
    leftovers = pb.reap_all()
    pb.cleanup_short_dirs()
    stale = pb.my_netns_left()
    for ns in stale:
        pb.run(["ip", "netns", "del", ns], check=False)
    if leftovers:
        pytest.fail("test left processes running (now ended): %r"
                    % (leftovers,))
    if stale:
        pytest.fail("test left network namespaces (now deleted): %r"
                    % (stale,))


@pytest.fixture
def patchbay_bin():
    """Path of the binary under test; fails (not skips) when missing."""
    return pb.require_binary()
