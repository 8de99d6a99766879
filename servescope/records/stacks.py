"""CPU stacks of the engine's processes (py-spy), what the stack collector
(``collectors/stacks``) writes:

- ``stacks/processes.json``: one :class:`StackProcess` per engine process sampled;
- ``stacks/<role>-<pid>.speedscope.json``: py-spy's own speedscope profile of that process
  (open it in https://www.speedscope.app);
- ``stacks/threads.parquet``: one :class:`StackThread` per sampled thread;
- ``stacks/hot.parquet``: :class:`HotFrame`, the hottest functions per process and thread;
- ``stacks/hangs.json`` and ``stacks/hang-<n>/<role>-<pid>.txt``: :class:`HangDump`, the
  ``py-spy dump --native`` taken when no token arrived for ``--hang-after`` seconds while
  requests were in flight.

docs/run-format.md has the columns; the sampling window is the collector's start to its stop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HangDump", "HotFrame", "StackProcess", "StackSample", "StackThread"]


@dataclass(frozen=True, slots=True)
class StackSample:
    """One sampled stack of one thread."""

    t_ns: int
    pid: int
    tid: int
    role: str  # from the process title through the engine spec's process roles
    thread_name: str
    idle: bool  # the thread was waiting (py-spy's idle detection)
    frames: tuple[str, ...]  # innermost last: "function (file:line)"


@dataclass(frozen=True, slots=True)
class StackProcess:
    """One engine process the collector sampled (or tried to)."""

    pid: int
    role: str  # the engine spec's role name, else "process"
    title: str  # /proc/PID/cmdline as the process set it (redacted)
    speedscope_file: str  # relative to the run directory; "" when nothing was recorded
    samples: int
    t_start_ns: int  # the sampling window, on the run's monotonic clock
    t_end_ns: int
    error: str  # "" or one sentence (no ptrace permission, the process exited, ...)


@dataclass(frozen=True, slots=True)
class StackThread:
    """One thread of one sampled process."""

    pid: int
    role: str
    tid: int
    thread_name: str
    samples: int  # stacks py-spy recorded for it in the window
    active_frac: float  # samples / the process's sampling ticks: how busy the thread was


@dataclass(frozen=True, slots=True)
class HotFrame:
    """One function's share of one thread's samples."""

    pid: int
    role: str
    tid: int
    thread_name: str
    function: str
    file: str
    line: int
    self_samples: int  # samples with this function innermost
    total_samples: int  # samples with this function anywhere on the stack
    self_frac: float  # self_samples / the thread's samples
    total_frac: float


@dataclass(frozen=True, slots=True)
class HangDump:
    """One stall: no token for ``stalled_s`` with requests in flight, and the dumps taken."""

    t_ns: int
    stalled_s: float
    in_flight: int
    files: tuple[str, ...]  # relative to the run directory, one per process
    errors: tuple[str, ...]
