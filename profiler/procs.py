"""Process-tree helpers on Linux ``/proc``: find every descendant of a process, every member of
a session, tell whether a process is still alive and still the same process (its start time,
field 22 of ``/proc/PID/stat``, survives PID reuse), and make this process a child subreaper.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcStat", "alive", "children_of", "descendants", "helper_pids",
           "proc_title", "register_helper", "same_process", "set_child_subreaper",
           "set_parent_death_signal", "snapshot", "start_time", "stat_of"]


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: (pid, start) names one process for good

    @property
    def live(self) -> bool:
        return self.state not in ("Z", "X")


def _parse(pid: int, stat: bytes) -> ProcStat | None:
    # the command name is in parentheses and may contain spaces or parentheses
    rest = stat[stat.rfind(b")") + 2:].split()
    if len(rest) < 20:
        return None
    return ProcStat(pid, rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[3]),
                    int(rest[19]))


def stat_of(pid: int) -> ProcStat | None:
    # os.open/os.read: a third of the CPU of Path.read_text (the guardian reads every
    # process's stat once per scan)
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        return _parse(pid, raw)
    except (OSError, ValueError):
        return None


def snapshot() -> dict[int, ProcStat]:
    """Every process visible in ``/proc`` now."""
    out: dict[int, ProcStat] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if name.isdigit() and (st := stat_of(int(name))) is not None:
            out[st.pid] = st
    return out


def children_of(procs: dict[int, ProcStat]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for st in procs.values():
        kids.setdefault(st.ppid, []).append(st.pid)
    return kids


def descendants(pid: int, procs: dict[int, ProcStat] | None = None) -> list[int]:
    """All live descendants of ``pid`` (children, grandchildren, …), not ``pid`` itself."""
    procs = snapshot() if procs is None else procs
    kids = children_of(procs)
    out: list[int] = []
    stack = [pid]
    while stack:
        for c in kids.get(stack.pop(), []):
            if procs[c].live:
                out.append(c)
            stack.append(c)
    return out


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    st = stat_of(pid)
    return st is not None and st.live


def start_time(pid: int) -> int | None:
    st = stat_of(pid)
    return None if st is None else st.start


def same_process(pid: int, start: int) -> bool:
    """True if ``pid`` is alive and is still the process that started at ``start``."""
    st = stat_of(pid)
    return st is not None and st.live and st.start == start


def proc_title(pid: int) -> str:
    """The process's command line as shown by ps (its title if it set one)."""
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
    return ""



_HELPERS: set[int] = set()  # this process's own helper children outside its session


def register_helper(pid: int) -> None:
    """A child of ours in a session of its own that is not part of any engine (the guardian),
    so an engine's stop never takes it for one of the engine's daemons."""
    _HELPERS.add(pid)


def helper_pids() -> frozenset[int]:
    return frozenset(_HELPERS)


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def set_child_subreaper() -> bool:
    """Make orphans of our descendants (a daemon an engine double-forks into a new session)
    our children instead of init's, so they can be found and stopped. Linux only; False when
    not available (the stop then finds only what stayed in the engine's tree or session)."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(sig: int) -> bool:
    """Have the kernel send ``sig`` to this process when the thread that started it exits
    (Linux only). Call first thing in a child, then check ``os.getppid()``."""
    return _prctl(_PR_SET_PDEATHSIG, sig)
