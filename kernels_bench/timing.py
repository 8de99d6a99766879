"""Timing and the statistics of repeats: host timers (``perf_counter_ns``) and device events.

Every benchmark runs ``warmup`` untimed calls, then times ``repeats`` calls one by one and
keeps every time: the record carries the median, p10, p90 and the spread (p90 - p10) /
median; ``repeats.parquet`` keeps each one (what compare and gate resample).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RepeatStats", "percentile", "repeat_stats", "time_cuda_events", "time_host"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation (numpy's default)."""
    if not values:
        raise ValueError("no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class RepeatStats:
    median_ns: int
    p10_ns: int
    p90_ns: int
    spread_frac: float  # (p90 - p10) / median
    times_ns: tuple[int, ...]


def repeat_stats(times_ns: Sequence[int]) -> RepeatStats:
    med = percentile(times_ns, 50)
    p10, p90 = percentile(times_ns, 10), percentile(times_ns, 90)
    return RepeatStats(round(med), round(p10), round(p90),
                       (p90 - p10) / med if med > 0 else math.nan, tuple(times_ns))


def time_host(fn: Callable[[], Any], *, repeats: int, warmup: int) -> list[int]:
    """Wall time of each of ``repeats`` calls of ``fn`` (after ``warmup`` calls), in ns."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t0)
    return out


def time_cuda_events(fn: Callable[[], Any], *, repeats: int, warmup: int) -> list[int]:
    """Device time of each call of ``fn`` between two CUDA events on the current stream
    (after ``warmup`` calls and a synchronize), in ns. One event pair per call: a µs
    kernel's time then includes its launch gap; benchmarks size their buffers so a call
    lasts well above that (docs/kernels_bench.md)."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
              for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            for _ in range(repeats)]
    for s, e in zip(starts, ends, strict=True):
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    return [round(s.elapsed_time(e) * 1e6) for s, e in zip(starts, ends, strict=True)]
