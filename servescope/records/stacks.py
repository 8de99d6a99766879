"""CPU stack samples of the engine's processes (py-spy), on the run's monotonic clock.

The schema the stack collector writes (issue 10); no writer in this version yet.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StackSample"]


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
