"""CPU time of a process tree, sampled from /proc while it runs (Linux).

A tool such as AIPerf or GuideLLM runs as many processes; some may be re-parented or never
waited for, so ``getrusage(RUSAGE_CHILDREN)`` alone can miss them. :class:`TreeSampler`
walks ``/proc`` every ``interval_s``, finds every descendant of the watched roots, and keeps
the latest ``utime + stime`` of each process it ever saw (keyed by pid and start time, so a
reused pid is a new process). The per-root totals form a non-decreasing series, so the CPU
spent between two instants is a difference of two interpolated points. A process that exits
between samples loses at most one interval of CPU; one that lives less than one interval may
be missed: use the series for steady-state windows and rusage for whole-run totals.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MACHINE",
    "CpuSeries",
    "TreeSampler",
    "machine_busy_s",
    "read_proc_stats",
    "wait_for_quiet",
]

MACHINE = "machine"  # the series of all CPUs' busy time, beside the watched trees

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True)
class _Stat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime of the process itself (all its threads)
    start_ticks: int


def _parse_stat(text: str) -> _Stat | None:
    # "pid (comm) state ppid ..." where comm may contain spaces and parentheses.
    close = text.rfind(")")
    if close < 0:
        return None
    fields = text[close + 2 :].split()
    # fields[0] is field 3 (state); utime/stime are fields 14/15, starttime field 22.
    try:
        return _Stat(
            pid=int(text[: text.index(" ")]),
            ppid=int(fields[1]),
            cpu_ticks=int(fields[11]) + int(fields[12]),
            start_ticks=int(fields[19]),
        )
    except (ValueError, IndexError):
        return None


def read_proc_stats() -> dict[int, _Stat]:
    """Every readable ``/proc/<pid>/stat`` now, by pid."""
    stats: dict[int, _Stat] = {}
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = _parse_stat(fh.read())
        except OSError:
            continue
        if stat is not None:
            stats[stat.pid] = stat
    return stats


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot (``/proc/stat``: all but idle, iowait)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest is in user.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / _TICKS_PER_S


def wait_for_quiet(
    max_busy_cores: float, timeout_s: float, probe_s: float = 2.0
) -> tuple[float, float]:
    """Wait until the machine's busy CPU over ``probe_s`` is at most ``max_busy_cores``.

    Returns (busy cores in the last probe, seconds waited); gives up after ``timeout_s``.
    """
    t0 = time.monotonic()
    while True:
        b0 = machine_busy_s()
        time.sleep(probe_s)
        busy = (machine_busy_s() - b0) / probe_s
        waited = time.monotonic() - t0
        if busy <= max_busy_cores or waited >= timeout_s:
            return busy, waited


def _descendants(stats: dict[int, _Stat], root: int) -> list[_Stat]:
    children: dict[int, list[int]] = {}
    for s in stats.values():
        children.setdefault(s.ppid, []).append(s.pid)
    found: list[_Stat] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            found.append(stats[pid])
        stack.extend(children.get(pid, ()))
    return found


@dataclass(frozen=True)
class CpuSeries:
    """Cumulative CPU seconds of one watched tree at monotonic instants."""

    t_ns: tuple[int, ...]
    cpu_s: tuple[float, ...]
    max_processes: int

    def at(self, t_ns: int) -> float:
        """Cumulative CPU at ``t_ns``, linearly interpolated (clamped to the series)."""
        if not self.t_ns:
            return 0.0
        i = bisect.bisect_left(self.t_ns, t_ns)
        if i == 0:
            return self.cpu_s[0]
        if i >= len(self.t_ns):
            return self.cpu_s[-1]
        t0, t1 = self.t_ns[i - 1], self.t_ns[i]
        c0, c1 = self.cpu_s[i - 1], self.cpu_s[i]
        return c0 + (c1 - c0) * (t_ns - t0) / (t1 - t0) if t1 > t0 else c1

    def between(self, t0_ns: int, t1_ns: int) -> float:
        """CPU seconds spent in ``[t0_ns, t1_ns]``."""
        return max(0.0, self.at(t1_ns) - self.at(t0_ns))

    @property
    def total_s(self) -> float:
        return self.cpu_s[-1] - self.cpu_s[0] if self.cpu_s else 0.0


class TreeSampler:
    """Samples the CPU of the process trees under ``roots`` in a background thread."""

    def __init__(self, roots: dict[str, int], interval_s: float = 0.1) -> None:
        self._roots = dict(roots)
        self._interval_s = interval_s
        self._seen: dict[str, dict[tuple[int, int], int]] = {name: {} for name in roots}
        self._t: list[int] = []
        self._cpu: dict[str, list[float]] = {name: [] for name in (*roots, MACHINE)}
        self._nproc: dict[str, int] = dict.fromkeys(roots, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        """Take one sample now (also called by the thread)."""
        stats = read_proc_stats()
        t = time.monotonic_ns()
        self._cpu[MACHINE].append(machine_busy_s())
        for name, root in self._roots.items():
            seen = self._seen[name]
            tree = _descendants(stats, root)
            self._nproc[name] = max(self._nproc[name], len(tree))
            for s in tree:
                seen[(s.pid, s.start_ticks)] = s.cpu_ticks
            self._cpu[name].append(sum(seen.values()) / _TICKS_PER_S)
        self._t.append(t)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def stop(self) -> dict[str, CpuSeries]:
        """Stop sampling (after one last sample); each tree's series and ``MACHINE``'s."""
        self._stop.set()
        self._thread.join()
        self.sample()
        t = tuple(self._t)
        return {
            name: CpuSeries(t, tuple(cpu), self._nproc.get(name, 0))
            for name, cpu in self._cpu.items()
        }
