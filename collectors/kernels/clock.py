"""A torch-profiler trace's timestamps on the run's monotonic clock.

What kineto writes (libkineto ``output_json.cpp``, ``ChromeTraceBaseTime``; torch
``ApproximateClockToUnixTimeConverter``): CPU events are read from the TSC (or
``clock_gettime(CLOCK_REALTIME)``) and converted to nanoseconds since the Unix epoch; CUPTI's
GPU timestamps are put on the same clock through kineto's timestamp callback. On export every
time is written relative to ``baseTimeNanoseconds`` (the start of the current three-month
interval of the wall clock, e.g. 1790857026 s = 227 × 7889238 s) as ``ts`` in microseconds
with three decimals. So the trace clock is the host's wall clock (CLOCK_REALTIME):

    wall_ns = baseTimeNanoseconds + round(ts · 1000)
    mono_ns = anchor.mono_ns + (wall_ns − anchor.wall_ns)

with the run's :class:`~servescope.clock.ClockAnchor` taken on the same host. Error bound
(recorded per file): the anchor's own read skew and kineto's TSC→wall conversion (1 µs
together, assumed), plus the wall clock's NTP slewing between the anchor and the trace
(at most 500 ppm of that distance: the kernel's adjtime limit); a step of the wall clock
(``date -s``, a VM resuming) cannot be seen and is not covered. Older traces without
``baseTimeNanoseconds`` carry epoch microseconds in ``ts`` (float64: 0.25 µs resolution at
today's epoch, added to the bound). Without an anchor, times stay on the trace's own clock
(rule ``unaligned``, uncertainty −1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servescope.clock import ClockAnchor
from servescope.records.kernels import TraceClockRule

__all__ = ["TraceClock", "trace_clock"]

_BASE_ERR_NS = 1_000
_SLEW_PPM = 500
_EPOCH_FLOAT_ERR_NS = 250
_PLAUSIBLE_EPOCH_US = 1e15  # ts above this is µs since the epoch (after 2001)


@dataclass(frozen=True, slots=True)
class TraceClock:
    """``mono_ns = round(ts·1000) + shift_ns`` for every event of one file."""

    rule: TraceClockRule
    shift_ns: int  # added to round(ts·1000)
    trace_to_mono_ns: int  # mono_ns − wall_ns (0 when unaligned)
    base_err_ns: int  # the bound before slewing (-1: unknown)
    anchor_wall_ns: int

    def uncertainty_ns(self, first_ts_us: float | None) -> int:
        """The error bound for a trace whose first event is at ``first_ts_us``."""
        if self.rule is TraceClockRule.UNALIGNED or first_ts_us is None:
            return -1 if self.rule is TraceClockRule.UNALIGNED else self.base_err_ns
        wall = round(first_ts_us * 1000) + self.shift_ns - self.trace_to_mono_ns
        return self.base_err_ns + abs(wall - self.anchor_wall_ns) * _SLEW_PPM // 1_000_000


def trace_clock(header: dict[str, Any], anchor: ClockAnchor | None,
                first_ts_us: float | None) -> TraceClock:
    """The mapping for a trace with these top-level keys and this first event time."""
    base = header.get("baseTimeNanoseconds")
    if isinstance(base, int) and not isinstance(base, bool) and base > 0:
        rule, base_ns, err = TraceClockRule.BASE_WALL, base, _BASE_ERR_NS
    elif first_ts_us is not None and first_ts_us > _PLAUSIBLE_EPOCH_US:
        rule, base_ns, err = TraceClockRule.EPOCH_WALL, 0, _BASE_ERR_NS + _EPOCH_FLOAT_ERR_NS
    else:
        rule, base_ns, err = TraceClockRule.UNALIGNED, 0, -1
    if anchor is None or rule is TraceClockRule.UNALIGNED:
        return TraceClock(TraceClockRule.UNALIGNED, base_ns, 0, -1, 0)
    to_mono = anchor.mono_ns - anchor.wall_ns
    return TraceClock(rule, base_ns + to_mono, to_mono, err, anchor.wall_ns)
