"""What py-spy inherits from the collector's process: SIGINT must reach it (the stop), even
when the collector's process was born with SIGINT blocked and ignored."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import signal, subprocess, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.argv[1] == "prepared":
    from collectors.stacks.pyspy import prepare_signals
    prepare_signals()
out = subprocess.run(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"],
                     capture_output=True, text=True, check=True).stdout
print(" ".join(hex(int(line.split()[1], 16) >> 1 & 1) for line in out.splitlines()))
"""


def _sigint_blocked_ignored(mode: str) -> str:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True, timeout=30)
    return out.stdout.strip()


def test_children_get_sigint_unblocked_and_default() -> None:
    assert _sigint_blocked_ignored("bare") == "0x1 0x1"  # both pass through exec...
    assert _sigint_blocked_ignored("prepared") == "0x0 0x0"  # ...unless prepared


def test_the_shim_starts_nothing_once_its_parent_is_gone() -> None:
    """A collector killed before the shim set its death signal sends none: the shim sees a
    parent other than the one that started it and exits instead of starting py-spy."""
    import os
    import time

    from collectors.stacks.pyspy import _launcher

    if not sys.platform.startswith("linux"):
        return
    launcher = _launcher()
    assert launcher[-1] == str(os.getpid())
    t0 = time.monotonic()
    gone = subprocess.run([*launcher[:-1], "1", "/bin/sleep", "5"], check=False, timeout=10)
    assert gone.returncode == 0
    assert time.monotonic() - t0 < 4  # sleep never ran
    ours = subprocess.run([*launcher, "/bin/sh", "-c", "exit 7"], check=False, timeout=10)
    assert ours.returncode == 7  # the right parent: the command runs
