"""Tools' times (float seconds, float milliseconds, integer ns) → integer nanoseconds.

An absolute timestamp in float seconds (epoch or ``perf_counter``) is converted exactly:
the float's own value times 10⁹, rounded once (``x * 1e9`` in floating point would be off by
up to ~128 ns for epoch seconds). Durations are small enough for floating point to be exact
to well under a nanosecond.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["ms_to_ns", "s_to_ns", "spread_chars", "timestamp_s_to_ns"]

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000


def timestamp_s_to_ns(seconds: float) -> int:
    """An absolute time in float seconds → integer ns, exactly (one rounding)."""
    return round(Fraction(seconds) * _NS_PER_S)


def s_to_ns(seconds: float) -> int:
    """A duration in float seconds → integer ns."""
    return round(seconds * _NS_PER_S)


def ms_to_ns(ms: float) -> int:
    """A duration in float milliseconds → integer ns (AIPerf, GuideLLM display units)."""
    return round(ms * _NS_PER_MS)


def spread_chars(total: int, n: int) -> list[int]:
    """``total`` characters spread over ``n`` events as evenly as integers allow, at least 1
    each (so that every event counts as carrying text); empty for ``n == 0``."""
    if n <= 0:
        return []
    base, extra = divmod(max(total, n), n)
    return [base + (1 if k < extra else 0) for k in range(n)]
