"""Text forms of comparison values shared by the terminal, Markdown and JUnit renderers:
latencies in ms, fractions in %, changes as ``+12.3 %`` (relative) or ``+0.5 pp`` (points)."""

from __future__ import annotations

import math

from analyzers.bootstrap import Interval
from analyzers.metric_catalog import MetricSpec

__all__ = ["fmt_change", "fmt_interval", "fmt_p", "fmt_value"]


def _nan(v: float | None) -> bool:
    return v is None or math.isnan(v)


def fmt_value(spec: MetricSpec, v: float | None) -> str:
    """``v`` in the unit a reader expects: ms for ns, % for fractions."""
    if v is None or math.isnan(v):
        return "–"
    if spec.unit == "ns":
        ms = v / 1e6
        return f"{ms:,.1f} ms" if abs(ms) >= 100 else f"{ms:,.2f} ms"
    if spec.unit == "frac":
        return f"{v * 100:.2f} %"
    if spec.unit == "count":
        return f"{v:,.0f}"
    if spec.unit == "B/s":
        return f"{v / 1e9:,.2f} GB/s"
    return f"{v:,.2f} {spec.unit}"


def _signed(spec: MetricSpec, v: float) -> str:
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    if spec.relative:
        return f"{v * 100:+.1f} %"
    if spec.unit == "frac":
        return f"{v * 100:+.2f} pp"
    return f"{v:+,.2f}"


def fmt_change(spec: MetricSpec, change: Interval) -> str:
    """The change alone: ``+20.0 %``, ``+0.50 pp``, ``+3``."""
    return "–" if _nan(change.estimate) else _signed(spec, change.estimate)


def fmt_interval(spec: MetricSpec, change: Interval) -> str:
    """The CI as ``[+12.2 %, +28.5 %]``, or ``–`` without one."""
    if _nan(change.low) or _nan(change.high):
        return "–"
    return f"[{_signed(spec, change.low)}, {_signed(spec, change.high)}]"


def fmt_p(p: float) -> str:
    if _nan(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"
