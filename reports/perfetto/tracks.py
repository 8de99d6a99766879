"""Which process and thread of the trace each track is, and their names.

Perfetto's JSON importer keys threads by ``tid`` alone (a tid is unique on a host), so every
track gets a tid of its own from one counter, above every pid used here. Processes: 1 the
client, 2 the engine's metrics, 3 the GPU telemetry, 4 the engine's CPU stacks, and per
kernel-trace rank R (−1: a trace without a rank) ``10 + 2·(R+1)`` for its GPU streams and the
next one for its host threads.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLIENT_PID", "ENGINE_PID", "GPU_PID", "STACKS_PID", "Tracks", "rank_pid"]

CLIENT_PID = 1
ENGINE_PID = 2
GPU_PID = 3
STACKS_PID = 4
_FIRST_TID = 1_000_000


def rank_pid(rank: int, *, gpu: bool) -> int:
    """The process of a kernel-trace rank's GPU streams (``gpu``) or host threads."""
    return 10 + 2 * (max(rank, -1) + 1) + (0 if gpu else 1)


@dataclass(slots=True)
class Tracks:
    """Processes and threads met so far, each named once in the trace's metadata."""

    processes: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> name, sort
    threads: dict[tuple[int, Hashable], tuple[int, str, int]] = field(default_factory=dict)

    def process(self, pid: int, name: str) -> int:
        if pid not in self.processes:
            self.processes[pid] = (name, pid)
        return pid

    def thread(self, pid: int, key: Hashable, name: str, sort: int | None = None) -> int:
        """The tid of the track ``key`` of process ``pid`` (made on first use)."""
        got = self.threads.get((pid, key))
        if got is None:
            got = (_FIRST_TID + len(self.threads), name,
                   len(self.threads) if sort is None else sort)
            self.threads[(pid, key)] = got
        return got[0]

    def count(self, pid: int) -> int:
        """Thread tracks of process ``pid``."""
        return sum(1 for p, _ in self.threads if p == pid)

    def metadata(self) -> list[dict[str, Any]]:
        """``ph: M`` events naming and ordering every process and thread."""
        out: list[dict[str, Any]] = []
        for pid, (name, sort) in sorted(self.processes.items()):
            out.append({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
                        "args": {"name": name}})
            out.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": pid,
                        "args": {"sort_index": sort}})
        for (pid, _), (tid, name, sort) in self.threads.items():
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                        "args": {"name": name}})
            out.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                        "args": {"sort_index": sort}})
        return out
