"""What a panel of the shared time axis is (:class:`Panel`) and what it is built from
(:class:`PanelCtx`: the runs and the bins of the axis); helpers every panel uses.

The timeline (:mod:`reports.html.figures_timeline`) stacks the panels; the client and engine
panels live there, the GPU panels in :mod:`reports.html.figures_gpu`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzers.report_inputs import RunInputs
from reports.html.figspec import run_name
from reports.html.series import FloatArray

__all__ = ["Panel", "PanelCtx", "Span", "line", "rel_s", "trace_name"]


@dataclass(frozen=True, slots=True)
class Span:
    """A shaded stretch of x (seconds) inside one panel, e.g. a throttled period."""

    x0: float
    x1: float
    color: str
    opacity: float = 0.18


@dataclass(slots=True)
class Panel:
    key: str
    title: str  # the y axis title
    traces: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    percent: bool = False
    spans: list[Span] = field(default_factory=list)  # shaded across this panel only


@dataclass(frozen=True, slots=True)
class PanelCtx:
    runs: Sequence[RunInputs]
    edges: FloatArray  # seconds: bins for counts and percentiles
    fine: FloatArray  # seconds: finer bins for requests in flight

    @property
    def width_s(self) -> float:
        return float(self.edges[1] - self.edges[0])

    @property
    def fine_s(self) -> float:
        return float(self.fine[1] - self.fine[0])

    def centers(self) -> FloatArray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def rel_s(r: RunInputs, t_ns: np.ndarray) -> np.ndarray:
    """Seconds since the run's time zero (NaN for an unknown, negative, time)."""
    t = np.asarray(t_ns, dtype=np.int64)
    out = (t - r.origin_ns).astype(np.float64) / 1e9
    return np.where(t >= 0, out, np.nan)


def trace_name(r: RunInputs, ri: int, n: int, what: str) -> str:
    prefix = run_name(r.label, ri, n)
    return f"{prefix} {what}" if prefix else what


def line(x: Any, y: Any, name: str, color: str, **kw: Any) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name,
            "line": {"color": color, "width": 1.6, **kw.pop("line", {})}, **kw}
