"""Units and how numbers are shown. Values are stored in raw units named in their fields
(``*_ns``, ``*_bytes``, ``*_frac``); these helpers convert only for display."""

from __future__ import annotations

import math

__all__ = ["MISSING", "NS_PER_MS", "NS_PER_S", "NS_PER_US", "fmt_duration", "fmt_ms"]

NS_PER_US, NS_PER_MS, NS_PER_S = 1_000, 1_000_000, 1_000_000_000
MISSING = "–"  # shown for a value that is not known (None, NaN, ±inf)


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def fmt_ms(ns: float | None, digits: int | None = None) -> str:
    """Nanoseconds as milliseconds: with ``digits`` decimals (thousands separated), else 3
    significant digits below 100 ms and whole milliseconds above."""
    v = _finite(ns)
    if v is None:
        return MISSING
    ms = v / NS_PER_MS
    if digits is not None:
        return f"{ms:,.{digits}f}"
    if abs(ms) >= 100:
        return f"{ms:,.0f}"
    return f"{ms:.3g}" if abs(ms) >= 1 else f"{ms:.2g}"


def fmt_duration(ns: float | None) -> str:
    """A duration in the unit that reads best: ``850 ns``, ``12.3 µs``, ``4.56 ms``,
    ``7.89 s``, ``3 min 20 s``, ``2 h 05 min``."""
    v = _finite(ns)
    if v is None:
        return MISSING
    sign, a = ("-" if v < 0 else ""), abs(v)
    if a < NS_PER_US:
        return f"{sign}{a:.0f} ns"
    if a < NS_PER_MS:
        return f"{sign}{a / NS_PER_US:.3g} µs"
    if a < NS_PER_S:
        return f"{sign}{a / NS_PER_MS:.3g} ms"
    s = a / NS_PER_S
    if s < 60:
        return f"{sign}{s:.3g} s"
    minutes, sec = divmod(round(s), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours} h {minutes:02d} min"
