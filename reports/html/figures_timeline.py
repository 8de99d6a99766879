"""The run on one shared time axis: load, latency and the engine's state, panel under panel.

x is seconds since the run's first measured send (for two runs, each run's own). Panels, top
to bottom, each drawn only when a run has its data:

- request rate (sends, completions and failures per second, per bin);
- requests in flight on the client (time-weighted mean per bin);
- TTFT of each request at its send time (a seeded sample plus the slowest when there are
  many: the note says how many are shown);
- ITL per event: p50 and p99 of the gaps ending in each bin;
- the engine's KV-cache usage, running and waiting requests (its scrapes: every snapshot, or
  the largest per bin when there are many) and preemptions per bin.

- with GPU telemetry (``RunInputs.gpu``): SM busy and occupancy, DRAM bandwidth, tensor
  activity, power, SM clock (throttled periods shaded), memory (:mod:`reports.html.figures_gpu`).

A panel is one function in :data:`PANELS` returning a :class:`~reports.html.panels.Panel`
(its traces, notes and any spans shaded inside it) or None when no run has its data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from analyzers.report_inputs import RunInputs
from reports.html.figspec import (
    RUN_COLORS,
    Figure,
    axis_title,
    base_layout,
    figure,
    nums,
    secs,
)
from reports.html.figures_gpu import GPU_PANELS
from reports.html.panels import Panel, PanelCtx
from reports.html.panels import line as _line
from reports.html.panels import rel_s as _rel
from reports.html.panels import trace_name as _name
from reports.html.series import (
    binned_max,
    binned_percentiles,
    counter_increments,
    in_flight_mean,
    rate_per_s,
    sample_rows,
    time_edges,
)

__all__ = ["MAX_GAUGE_POINTS", "MAX_SCATTER_POINTS", "PANELS", "Panel", "timeline_figure"]

MAX_SCATTER_POINTS = 2000
KEEP_SLOWEST = 50
MAX_GAUGE_POINTS = 600
MAX_BINS = 120
MIN_PER_BIN = 4
FINE_BINS = 300
_PANEL_PX = 135


# one colour per series for a single run; two runs are told apart by the run's colour
_SERIES = {"sent": "#1f77b4", "completed": "#2ca02c", "failed": "#d62728",
           "inflight": "#1f77b4", "ttft": "#9467bd", "itl50": "#17becf", "itl99": "#ff7f0e",
           "kv": "#d62728", "running": "#1f77b4", "waiting": "#ff7f0e", "preempt": "#d62728"}


def _color(c: PanelCtx, ri: int, series: str) -> str:
    return _SERIES[series] if len(c.runs) == 1 else RUN_COLORS[ri]


def _request_rate(c: PanelCtx) -> Panel | None:
    p = Panel("rate", "requests/s", [])
    x = secs(c.centers())
    for ri, r in enumerate(c.runs):
        m = r.measured
        ok = m["outcome"].to_numpy() == "success"
        p.traces.append(_line(x, nums(rate_per_s(_rel(r, m["t_send_ns"].to_numpy()), c.edges)),
                              _name(r, ri, len(c.runs), "sent/s"), _color(c, ri, "sent"),
                              line={"shape": "hv"}))
        done = _rel(r, m["t_last_ns"].to_numpy()[ok])
        p.traces.append(_line(x, nums(rate_per_s(done, c.edges)),
                              _name(r, ri, len(c.runs), "completed/s"),
                              _color(c, ri, "completed"), line={"shape": "hv", "dash": "dot"}))
        if (~ok).any():
            failed = _rel(r, m["t_last_ns"].to_numpy()[~ok])
            p.traces.append({"type": "bar", "x": x, "y": nums(rate_per_s(failed, c.edges)),
                             "name": _name(r, ri, len(c.runs), "failed/s"),
                             "marker": {"color": _color(c, ri, "failed")}, "opacity": 0.7})
    p.notes.append(f"rates per {c.width_s:g} s bin")
    return p


def _in_flight(c: PanelCtx) -> Panel | None:
    p = Panel("inflight", "in flight (client)", [])
    for ri, r in enumerate(c.runs):
        m = r.measured
        y = in_flight_mean(_rel(r, m["t_send_ns"].to_numpy()),
                           _rel(r, m["t_last_ns"].to_numpy()), c.fine)
        p.traces.append(_line(secs(c.fine[:-1]), nums(y), _name(r, ri, len(c.runs), "in flight"),
                              _color(c, ri, "inflight"), line={"shape": "hv"}))
    p.notes.append(f"in flight: time-weighted mean per {c.fine_s:g} s")
    return p


def _ttft(c: PanelCtx) -> Panel | None:
    p = Panel("ttft", "TTFT (ms)", [])
    for ri, r in enumerate(c.runs):
        m = r.measured
        ok = m[m["outcome"].to_numpy() == "success"]
        ttft = ok["ttft_ns"].to_numpy(np.float64)
        rows = sample_rows(ttft, MAX_SCATTER_POINTS, keep_top=KEEP_SLOWEST, seed=ri)
        x = _rel(r, ok["t_send_ns"].to_numpy()[rows])
        p.traces.append({
            "type": "scatter", "mode": "markers", "x": secs(x), "y": nums(ttft[rows] / 1e6),
            "customdata": [int(i) for i in ok["request_id"].to_numpy()[rows]],
            "name": _name(r, ri, len(c.runs), "TTFT per request"),
            "marker": {"color": _color(c, ri, "ttft"), "size": 4, "opacity": 0.6},
            "hovertemplate": "request %{customdata}: TTFT %{y:.3~f} ms<extra></extra>"})
        if rows.size < ttft.size:
            p.notes.append(f"TTFT: {rows.size:,} of {ttft.size:,} requests shown"
                           + (f" ({'AB'[ri]})" if len(c.runs) > 1 else "")
                           + f": a random sample plus the {KEEP_SLOWEST} slowest")
    return p


def _itl(c: PanelCtx) -> Panel | None:
    p = Panel("itl", "ITL (ms)", [])
    x = secs(c.centers())
    for ri, r in enumerate(c.runs):
        pct = binned_percentiles(_rel(r, r.itl_t_ns), r.itl_gap_ns / 1e6, c.edges, (50.0, 99.0))
        for q, dash, key in ((50.0, "solid", "itl50"), (99.0, "dot", "itl99")):
            p.traces.append(_line(x, nums(pct[q]), _name(r, ri, len(c.runs), f"ITL p{q:g}"),
                                  _color(c, ri, key), line={"dash": dash}, connectgaps=False))
    p.notes.append("ITL: p50 and p99 per bin of the gaps between output events (per event)")
    return p


def _signal(r: RunInputs, name: str) -> tuple[np.ndarray, np.ndarray]:
    s = r.signals
    if s is None:
        return np.empty(0), np.empty(0)
    rows = s[s["signal"].to_numpy() == name].sort_values("t_ns")
    return _rel(r, rows["t_ns"].to_numpy()), rows["value"].to_numpy(np.float64)


def _gauge_traces(c: PanelCtx, p: Panel, signals: Sequence[tuple[str, str, str, str]]) -> None:
    """Traces of engine gauges: (signal, label, dash, series colour) each."""
    reduced = False
    for ri, r in enumerate(c.runs):
        for sig, label, dash, series in signals:
            t, v = _signal(r, sig)
            keep = (t >= c.edges[0]) & (t <= c.edges[-1])
            t, v = t[keep], v[keep]
            if t.size == 0:
                continue
            if t.size > MAX_GAUGE_POINTS:
                reduced = True
                t, v = c.centers(), binned_max(t, v, c.edges)
            p.traces.append(_line(secs(t), nums(v), _name(r, ri, len(c.runs), label),
                                  _color(c, ri, series), line={"dash": dash, "shape": "hv"},
                                  mode="lines+markers" if t.size < 60 else "lines",
                                  marker={"size": 4}))
    if reduced:
        p.notes.append(f"{p.title}: largest snapshot per {c.width_s:g} s bin")


def _kv(c: PanelCtx) -> Panel | None:
    p = Panel("kv", "KV cache used", [], percent=True)
    _gauge_traces(c, p, (("kv_cache_usage_frac", "KV cache usage", "solid", "kv"),))
    return p if p.traces else None


def _running_waiting(c: PanelCtx) -> Panel | None:
    p = Panel("sched", "engine requests", [])
    _gauge_traces(c, p, (("requests_running", "running", "solid", "running"),
                         ("requests_waiting", "waiting", "dot", "waiting")))
    return p if p.traces else None


def _preemptions(c: PanelCtx) -> Panel | None:
    p = Panel("preempt", "preemptions", [])
    for ri, r in enumerate(c.runs):
        t, v = _signal(r, "preemptions_total")
        if t.size < 2:
            continue
        ts, inc = counter_increments(t, v)
        b = np.searchsorted(c.edges, ts, side="right") - 1
        keep = (b >= 0) & (b < c.edges.size - 1)
        per_bin = np.bincount(b[keep], weights=inc[keep], minlength=c.edges.size - 1)
        p.traces.append({"type": "bar", "x": secs(c.centers()), "y": nums(per_bin),
                         "name": _name(r, ri, len(c.runs), f"preemptions per {c.width_s:g} s"),
                         "marker": {"color": _color(c, ri, "preempt")}, "opacity": 0.8})
    return p if p.traces else None


PANELS: tuple[Callable[[PanelCtx], Panel | None], ...] = (
    _request_rate, _in_flight, _ttft, _itl, _kv, _running_waiting, _preemptions,
    *GPU_PANELS)


def timeline_figure(runs: Sequence[RunInputs]) -> Figure:
    """Every panel of :data:`PANELS` that has data, on one shared x axis (seconds)."""
    span_ns = max(max(int(r.measured["t_last_ns"].max()) - r.origin_ns, 1) for r in runs)
    n_req = min(len(r.measured) for r in runs)
    # counts and percentiles per bin need a few requests each: at least MIN_PER_BIN
    # requests' worth of time per bin on average, and at most MAX_BINS bins
    bins = max(1, min(MAX_BINS, n_req // MIN_PER_BIN))
    edges = time_edges(0, span_ns, bins)
    ctx = PanelCtx(runs, edges, time_edges(0, span_ns, FINE_BINS))
    panels = [p for build in PANELS if (p := build(ctx)) is not None]
    n = len(panels)
    gap = 0.035
    h = (1.0 - gap * (n - 1)) / n
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {}
    shapes = _steady_shapes(runs)
    for i, p in enumerate(panels):
        ax = "" if i == 0 else str(i + 1)
        top = 1.0 - i * (h + gap)
        shapes += [{"type": "rect", "xref": "x", "yref": "paper",
                    "y0": round(max(top - h, 0.0), 4), "y1": round(top, 4),
                    "x0": round(sp.x0, 3), "x1": round(sp.x1, 3), "fillcolor": sp.color,
                    "opacity": sp.opacity, "line": {"width": 0}, "layer": "below"}
                   for sp in p.spans]
        layout[f"yaxis{ax}"] = {"domain": [max(top - h, 0.0), top], "title": axis_title(
            p.title), "rangemode": "tozero", "zeroline": False, "automargin": True,
            **({"tickformat": ".1~%"} if p.percent else {})}
        for tr in p.traces:
            data.append(tr | {"xaxis": "x", "yaxis": f"y{ax}", "legendgroup": p.key})
    last = "" if n == 1 else str(n)
    notes = ["x: seconds since the first measured send"]
    notes += [note for p in panels for note in p.notes]
    if any(r.analysis.steady.found for r in runs):
        notes.append("shaded: the steady-state window")
    note = "; ".join(notes)
    layout = base_layout("Timeline", note, 110 + _PANEL_PX * n) | layout
    layout["xaxis"] = {"anchor": f"y{last}", "domain": [0, 1], "title": axis_title(
        "seconds since the first measured send"), "range": [0, span_ns / 1e9]}
    layout.update(hovermode="x unified", hoversubplots="axis", barmode="overlay",
                  shapes=shapes, legend={"orientation": "h", "y": -0.5 / n,
                                                       "font": {"size": 11}})
    layout["margin"].update(b=110)
    return figure("fig-timeline", data, layout, note)


def _steady_shapes(runs: Sequence[RunInputs]) -> list[dict[str, Any]]:
    out = []
    for ri, r in enumerate(runs):
        w = r.analysis.steady
        if not w.found:
            continue
        out.append({"type": "rect", "xref": "x", "yref": "paper", "y0": 0, "y1": 1,
                    "x0": round((w.start_ns - r.origin_ns) / 1e9, 3),
                    "x1": round((w.end_ns - r.origin_ns) / 1e9, 3),
                    "fillcolor": RUN_COLORS[ri], "opacity": 0.06, "line": {"width": 0},
                    "layer": "below"})
    return out
