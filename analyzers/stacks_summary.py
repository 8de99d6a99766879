"""The engine's CPU stacks, summarized: the hottest functions per role and thread, the
busiest thread per role, the hang dumps, and the thread that runs the model
(:func:`summarize_stacks`, :class:`StacksSummary`).

Reads what the stack collector wrote (``stacks/processes.json``, ``stacks/threads.parquet``,
``stacks/hot.parquet``, ``stacks/hangs.json``; servescope/records/stacks.py). A run without
``--collect stacks`` has none of them: :func:`summarize_stacks` returns None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from servescope.records.stacks import HangDump, StackProcess

__all__ = ["HotFunction", "RoleSummary", "StacksSummary", "ThreadSummary"]

TOP_FUNCTIONS = 10  # hottest functions kept per thread


@dataclass(frozen=True, slots=True)
class HotFunction:
    """One function's share of one thread's samples (from ``stacks/hot.parquet``)."""

    function: str
    file: str
    line: int
    self_frac: float  # samples with it innermost / the thread's samples
    total_frac: float  # samples with it anywhere on the stack / the thread's samples
    self_samples: int
    total_samples: int


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One sampled thread: how busy it was and where its time went."""

    pid: int
    role: str
    tid: int
    thread_name: str
    samples: int
    active_frac: float  # samples / the process's sampling ticks
    top: tuple[HotFunction, ...]  # by self_frac, then total_frac; at most TOP_FUNCTIONS


@dataclass(frozen=True, slots=True)
class RoleSummary:
    """Every sampled process of one role (``engine_core``, ``scheduler``, ...)."""

    role: str
    pids: tuple[int, ...]
    runs_model: bool  # the engine spec says the GPU-side Python runs in this role
    busiest: ThreadSummary | None  # the thread with the highest active_frac
    threads: tuple[ThreadSummary, ...]  # by active_frac, busiest first


@dataclass(frozen=True, slots=True)
class StacksSummary:
    processes: tuple[StackProcess, ...]
    roles: tuple[RoleSummary, ...]
    hangs: tuple[HangDump, ...]
    # the thread that drives the model (scheduler / model runner / generation loop): the
    # busiest thread of a runs_model role, else of the whole engine; None without samples
    model_thread: ThreadSummary | None
    model_thread_why: str  # how it was picked, one sentence

    def role(self, name: str) -> RoleSummary:
        for r in self.roles:
            if r.role == name:
                return r
        raise KeyError(f"no role {name!r}; the run sampled "
                       f"{', '.join(r.role for r in self.roles) or 'none'}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
