"""Figure specifications as plain data: what every figure builder returns.

A figure is a dict with plotly's ``data`` and ``layout`` plus our ``id`` (the element it is
drawn into) and ``note`` (how its data was reduced: printed on the plot and under it). No
plotly import is needed to build or test one; the page hands them to plotly.js.
Numbers are rounded (4 significant digits, times to the millisecond) to keep pages small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from reports.html.text import plot_text

__all__ = ["RUN_COLORS", "Figure", "axis_title", "base_layout", "figure", "nums", "run_name",
           "secs", "wrap"]

Figure = dict[str, Any]

# baseline / candidate (a single run uses the first)
RUN_COLORS = ("#1f77b4", "#ff7f0e")
RUN_DASH = ("solid", "dash")


def nums(values: Iterable[float], sig: int = 4) -> list[float | None]:
    """Floats rounded to ``sig`` significant digits; NaN and infinities become ``None``
    (a gap in a line)."""
    out: list[float | None] = []
    for v in values:
        f = float(v)
        out.append(float(f"{f:.{sig}g}") if math.isfinite(f) else None)
    return out


def secs(values: npt.ArrayLike) -> list[float | None]:
    """Times in seconds, to the millisecond."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return [round(float(v), 3) if math.isfinite(v) else None for v in arr]


def run_name(label: str, index: int, n_runs: int) -> str:
    """A trace-name prefix: empty for a single run, ``A · label`` / ``B · label`` for two."""
    if n_runs == 1:
        return ""
    return f"{'AB'[index]} · {plot_text(label)}"


def axis_title(text: str) -> dict[str, Any]:
    return {"text": text, "font": {"size": 11}}


def wrap(note: str, width: int = 150) -> list[str]:
    """``note`` in lines of at most about ``width`` characters, broken after "; "."""
    lines: list[str] = []
    for part in note.split("; "):
        if lines and len(lines[-1]) + len(part) + 2 <= width:
            lines[-1] += "; " + part
        else:
            lines.append(part)
    return lines


def base_layout(title: str, note: str, height: int, top_extra: int = 0) -> dict[str, Any]:
    """Layout shared by every figure: the title with the data note under it (wrapped)."""
    lines = wrap(note) if note else []
    sub = "".join(f"<br><span style='font-size:11px;color:#666'>{plot_text(line)}</span>"
                  for line in lines)
    top = 55 + 16 * len(lines) + top_extra
    return {
        "title": {"text": f"{plot_text(title)}{sub}", "x": 0.0, "xanchor": "left",
                  "y": 1.0, "yanchor": "top", "pad": {"t": 22},
                  "font": {"size": 15}},
        "height": height + top,
        "margin": {"l": 70, "r": 20, "t": top, "b": 45},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#fafafa",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
                 "size": 12},
        "legend": {"orientation": "h", "y": -0.12, "font": {"size": 11}},
        "hovermode": "closest",
    }


def figure(fig_id: str, data: Sequence[dict[str, Any]], layout: dict[str, Any],
           note: str) -> Figure:
    return {"id": fig_id, "data": list(data), "layout": layout, "note": note}
