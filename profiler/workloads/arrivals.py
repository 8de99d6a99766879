"""Open-loop arrival schedules and sweep lists.

:func:`arrival_offsets_ns` gives each session's intended start in integer nanoseconds from the
run start. Every schedule starts at 0 (the first session is sent at once) followed by ``n-1``
gaps; gaps are rounded to whole nanoseconds before summing, so a seed gives the same schedule
on every machine.
"""

from __future__ import annotations

import math
import re

import numpy as np

from profiler.workloads.errors import WorkloadError
from profiler.workloads.spec import ArrivalSpec

__all__ = ["ARRIVAL_STREAM", "arrival_offsets_ns", "sweep_values"]

_NS_PER_S = 1_000_000_000
ARRIVAL_STREAM = 1
"""Second seed word for arrivals, so a run's arrivals and prompts draw from independent
streams even when both are given the same seed (``default_rng([seed, ARRIVAL_STREAM])``)."""
MAX_SWEEP_VALUES = 1000


def arrival_offsets_ns(spec: ArrivalSpec, n: int, seed: int) -> list[int]:
    """Intended start offsets of ``n`` sessions, non-decreasing, the first at 0.

    ``constant``: exactly ``i / rate``. ``poisson``: exponential gaps of mean 1/rate.
    ``gamma``: gamma gaps with shape k = ``burstiness`` and scale 1/(rate·k) (mean 1/rate,
    coefficient of variation 1/√k). ``closed`` and ``trace`` have no generated schedule.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise WorkloadError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkloadError(f"seed must be an integer >= 0, got {seed!r}")
    if spec.kind == "closed":
        raise WorkloadError("closed-loop arrivals have no schedule: each slot starts its next "
                            "session when the previous one ends")
    if spec.kind == "trace":
        raise WorkloadError("trace arrivals come from the dataset: use each session's "
                            "arrival_offset_ns (a trace dataset sets it)")
    rate = spec.rate_per_s
    if rate is None:  # ArrivalSpec already refuses this; kept for the type checker
        raise WorkloadError(f"{spec.kind}: needs rate_per_s")
    if n == 0:
        return []
    if spec.kind == "constant":
        return [round(i * _NS_PER_S / rate) for i in range(n)]
    rng = np.random.default_rng([seed, ARRIVAL_STREAM])
    if spec.kind == "poisson":
        gaps_s = rng.exponential(1.0 / rate, size=n - 1)
    else:
        k = spec.burstiness
        gaps_s = rng.gamma(k, 1.0 / (rate * k), size=n - 1)
    gaps_ns = np.rint(gaps_s * _NS_PER_S).astype(np.int64)
    return [0, *(int(v) for v in np.cumsum(gaps_ns))]


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"\s*({_NUMBER})\s*:\s*({_NUMBER})\s*:\s*([x*+])\s*({_NUMBER})\s*")


def _number(text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise WorkloadError(f"sweep {whole!r}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise WorkloadError(f"sweep {whole!r}: values must be finite and > 0, got {text.strip()}")
    return value


def sweep_values(text: str) -> list[float]:
    """Values of a sweep: a list ``"1,2,4,8"``, a geometric range ``"1:8:x2"`` (start, stop,
    factor > 1) or a linear one ``"2:10:+2"`` (start, stop, step > 0). Ranges include
    ``stop`` when a step lands on it (to 1e-9 relative). All values must be > 0."""
    if not text.strip():
        raise WorkloadError("sweep: empty; expected '1,2,4', 'START:STOP:xFACTOR' or "
                            "'START:STOP:+STEP'")
    if ":" not in text:
        values = [_number(p, text) for p in text.split(",")]
    else:
        m = _RANGE.fullmatch(text)
        if m is None:
            raise WorkloadError(
                f"sweep {text!r}: expected START:STOP:xFACTOR (e.g. 1:8:x2) "
                "or START:STOP:+STEP (e.g. 2:10:+2)"
            )
        start, stop, step = (_number(m.group(i), text) for i in (1, 2, 4))
        if stop < start:
            raise WorkloadError(f"sweep {text!r}: stop {stop:g} is below start {start:g}")
        geometric = m.group(3) in "x*"
        if geometric and step <= 1:
            raise WorkloadError(f"sweep {text!r}: factor must be > 1, got {step:g}")
        values = []
        i = 0
        while True:
            v = start * step**i if geometric else start + i * step
            if v > stop * (1 + 1e-9):
                break
            values.append(round(v, 12))
            i += 1
            if i > MAX_SWEEP_VALUES:
                break
    if len(values) > MAX_SWEEP_VALUES:
        raise WorkloadError(f"sweep {text!r}: more than {MAX_SWEEP_VALUES} values")
    return values
