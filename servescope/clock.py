"""The two clocks of a run: monotonic nanoseconds for intervals, one wall-clock anchor.

Every timestamp servescope records is ``time.monotonic_ns()``. On Linux this is
CLOCK_MONOTONIC, one clock for every process of the host, so worker processes and the
reference server can be compared directly. A single :class:`ClockAnchor` taken at the start
of a run maps monotonic time to wall-clock time for aligning with engine logs and traces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["ClockAnchor", "now_ns", "take_anchor"]

now_ns = time.monotonic_ns


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """A simultaneous reading of both clocks (taken back to back, within ~1 µs)."""

    mono_ns: int
    wall_ns: int

    def to_wall_ns(self, mono_ns: int) -> int:
        """Wall-clock nanoseconds since the epoch for a monotonic timestamp of this host."""
        return self.wall_ns + (mono_ns - self.mono_ns)


def take_anchor() -> ClockAnchor:
    """Read both clocks; the monotonic read is bracketed and averaged to halve the skew."""
    m0 = time.monotonic_ns()
    w = time.time_ns()
    m1 = time.monotonic_ns()
    return ClockAnchor(mono_ns=(m0 + m1) // 2, wall_ns=w)
