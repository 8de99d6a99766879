"""Latency distributions (CDFs) and where TTFT and E2E go (the engine's decomposition).

Pure functions from :class:`~analyzers.report_inputs.RunInputs` to figure specs. For two runs the
baseline (A) and the candidate (B) share each subplot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from analyzers.report_inputs import RunInputs
from reports.html.figspec import (
    RUN_COLORS,
    RUN_DASH,
    Figure,
    axis_title,
    base_layout,
    figure,
    nums,
    run_name,
)
from reports.html.series import ecdf

__all__ = ["CDF_MAX_POINTS", "cdf_figure", "decomposition_figure", "latency_samples"]

CDF_MAX_POINTS = 400
_METRICS = (("ttft", "TTFT"), ("itl", "ITL (per token)"), ("tpot", "TPOT"), ("e2e", "E2E"))
# subplot domains of the 2 × 2 grid: (x domain, y domain)
_CELLS = (([0.0, 0.46], [0.58, 1.0]), ([0.54, 1.0], [0.58, 1.0]),
          ([0.0, 0.46], [0.0, 0.42]), ([0.54, 1.0], [0.0, 0.42]))


def latency_samples(r: RunInputs) -> dict[str, np.ndarray]:
    """Per metric, the samples the headline numbers describe (successful measured
    requests; ITL pooled per token), in ns."""
    ok = r.measured[r.measured["outcome"].to_numpy() == "success"]
    return {
        "ttft": ok["ttft_ns"].to_numpy(np.float64),
        "itl": r.itl_token_ns,
        "tpot": ok["tpot_ns"].to_numpy(np.float64),
        "e2e": ok["e2e_ns"].to_numpy(np.float64),
    }


def cdf_figure(runs: Sequence[RunInputs]) -> Figure:
    """CDFs of TTFT, per-token ITL, TPOT and E2E (ms), one subplot each."""
    data: list[dict[str, Any]] = []
    axes: dict[str, Any] = {}
    annotations: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    counts: list[str] = []
    sampled = False
    for ri, r in enumerate(runs):
        samples = latency_samples(r)
        prefix = run_name(r.label, ri, len(runs))
        for mi, (key, label) in enumerate(_METRICS):
            c = ecdf(samples[key], CDF_MAX_POINTS)
            sampled |= c.sampled
            if key == "itl":
                counts.append(f"{c.n:,} ITL samples" + (f" ({'AB'[ri]})" if len(runs) > 1
                                                        else ""))
            ax = "" if mi == 0 else str(mi + 1)
            data.append({
                "type": "scatter", "mode": "lines", "x": nums(c.x / 1e6), "y": nums(c.p),
                "xaxis": f"x{ax}", "yaxis": f"y{ax}", "line": {
                    "color": RUN_COLORS[ri], "dash": RUN_DASH[ri], "width": 2, "shape": "hv"},
                "name": f"{prefix} {label}".strip() if prefix else label,
                "legendgroup": f"run{ri}", "showlegend": len(runs) > 1 and mi == 0,
                "hovertemplate": f"{label}: %{{x:.3~f}} ms<br>fraction ≤: %{{y:.3f}}"
                                 f"<extra>{prefix or label}</extra>",
            })
    for mi, (_key, label) in enumerate(_METRICS):
        ax = "" if mi == 0 else str(mi + 1)
        xd, yd = _CELLS[mi]
        axes[f"xaxis{ax}"] = {"domain": xd, "anchor": f"y{ax}", "title": axis_title(
            f"{label} (ms)"), "rangemode": "tozero", "zeroline": False}
        axes[f"yaxis{ax}"] = {"domain": yd, "anchor": f"x{ax}", "range": [0, 1.02],
                                "title": axis_title("fraction ≤ x"), "tickformat": ".0%"}
        annotations.append({"text": f"<b>{label}</b>", "xref": "paper", "yref": "paper",
                            "x": xd[0], "y": yd[1] + 0.035, "showarrow": False,
                            "xanchor": "left", "font": {"size": 12}})
        for level in (0.5, 0.99):
            shapes.append({
                "type": "line", "xref": f"x{ax} domain", "yref": f"y{ax}", "x0": 0, "x1": 1,
                "y0": level, "y1": level, "line": {"color": "#bbb", "width": 1,
                                                   "dash": "dot"}})
    note = ("successful measured requests; dotted lines at p50 and p99; "
            + "; ".join(counts)
            + (f"; each curve drawn at ≤ {CDF_MAX_POINTS} of its exact steps, denser in "
               "the tail" if sampled else ""))
    layout = base_layout("Latency distributions (CDF)", note, 500, top_extra=25)
    layout.update(axes, annotations=annotations, shapes=shapes, updatemenus=[_log_toggle()])
    return figure("fig-cdf", data, layout, note)


def _log_toggle() -> dict[str, Any]:
    axes = ["xaxis", "xaxis2", "xaxis3", "xaxis4"]
    return {
        "type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.07,
        "yanchor": "bottom", "showactive": True, "font": {"size": 11},
        "buttons": [
            {"label": "linear x", "method": "relayout",
             "args": [{f"{a}.type": "linear" for a in axes}]},
            {"label": "log x", "method": "relayout",
             "args": [{f"{a}.type": "log" for a in axes}]},
        ],
    }


_PART_COLORS = {"queue": "#d62728", "prefill": "#9467bd", "decode": "#2ca02c",
                "engine other": "#8c564b", "transport and client": "#7f7f7f",
                "unattributed": "#bcbd22"}


def decomposition_figure(runs: Sequence[RunInputs]) -> Figure | None:
    """Stacked bars of the mean TTFT and E2E split into queue, prefill, decode, engine other
    and transport (ms); None when no run has the engine's histograms."""
    rows: list[tuple[str, str, float]] = []  # (bar label, part, mean ms)
    for ri, r in enumerate(runs):
        prefix = run_name(r.label, ri, len(runs))
        for d in r.analysis.decomposition:
            bar = f"{prefix} {d.latency.upper()}".strip()
            rows.extend((bar, p.name, p.mean_ns / 1e6) for p in d.parts)
    if not rows:
        return None
    bars = list(dict.fromkeys(b for b, _, _ in rows))
    parts = list(dict.fromkeys(p for _, p, _ in rows))
    data = []
    for part in parts:
        vals = {b: v for b, p, v in rows if p == part}
        data.append({
            "type": "bar", "orientation": "h", "name": part, "y": bars,
            "x": nums(vals.get(b, float("nan")) for b in bars),
            "marker": {"color": _PART_COLORS.get(part, "#17becf")},
            "hovertemplate": f"{part}: %{{x:.3~f}} ms<extra>%{{y}}</extra>"})
    note = ("means over the steady-state window (means add up, percentiles do not), from the "
            "engine's own histograms; transport and client = client mean − server mean")
    layout = base_layout("Where the time goes (mean TTFT and E2E)", note,
                         100 + 45 * len(bars))
    layout.update({"barmode": "relative",
                   "xaxis": {"title": axis_title("mean latency (ms)")},
                   "yaxis": {"autorange": "reversed", "automargin": True}})
    return figure("fig-decomposition", data, layout, note)
