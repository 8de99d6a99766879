"""A sweep's throughput-latency curve, and an A/B comparison's changes with their intervals.

Pure functions from analyzer results (:class:`~analyzers.sweep.SweepCurve`,
:class:`~analyzers.compare.Comparison`) to figure specs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analyzers.compare import Comparison, Verdict
from analyzers.metric_catalog import Kind
from analyzers.report_inputs import RunInputs
from reports.html.figspec import RUN_COLORS, Figure, axis_title, base_layout, figure, nums, run_name
from reports.html.text import plot_text

__all__ = ["VERDICT_COLORS", "changes_figure", "sweep_figure"]

VERDICT_COLORS = {Verdict.REGRESSED: "#d62728", Verdict.IMPROVED: "#2ca02c",
                  Verdict.UNCHANGED: "#7f7f7f", Verdict.INCONCLUSIVE: "#e6a700",
                  Verdict.NOT_TESTED: "#bbbbbb"}


def sweep_figure(runs: Sequence[RunInputs]) -> Figure | None:
    """Achieved output tokens/s against E2E p50/p99 and TTFT p99 (ms), one point per sweep
    step, the knee and the max-goodput step marked; None when no run is a sweep."""
    data: list[dict[str, Any]] = []
    notes: list[str] = []
    for ri, r in enumerate(runs):
        sw = r.analysis.sweep
        if sw is None:
            continue
        prefix = run_name(r.label, ri, len(runs))
        pts = sw.points
        x = nums(p.output_token_throughput_per_s for p in pts)
        text = [f"step {p.step}: {p.offered:g} {p.offered_unit}" for p in pts]
        for attr, label, dash in (("e2e_p99_ns", "E2E p99", "solid"),
                                  ("e2e_p50_ns", "E2E p50", "dash"),
                                  ("ttft_p99_ns", "TTFT p99", "dot")):
            data.append({
                "type": "scatter", "mode": "lines+markers", "x": x,
                "y": nums(getattr(p, attr) / 1e6 for p in pts), "text": text,
                "name": f"{prefix} {label}".strip(),
                "line": {"color": RUN_COLORS[ri], "dash": dash},
                "hovertemplate": f"%{{text}}<br>%{{x:.1f}} out tok/s<br>{label} "
                                 "%{y:.3~f} ms<extra></extra>"})
        marks = [(sw.knee_step, "knee"), (sw.max_goodput_step, "max goodput"),
                 (sw.highest_load_meeting_slo_step, "highest load meeting the SLOs")]
        for step, what in marks:
            p = next((q for q in pts if q.step == step), None)
            if p is None:
                continue
            data.append({"type": "scatter", "mode": "markers+text", "x": nums(
                [p.output_token_throughput_per_s]), "y": nums([p.e2e_p99_ns / 1e6]),
                "text": [what], "textposition": "top left", "showlegend": False,
                "marker": {"symbol": "star", "size": 14, "color": RUN_COLORS[ri]},
                "hovertemplate": f"{what}: step {p.step}<extra></extra>"})
        notes += list(sw.notes)
    if not data:
        return None
    note = "one point per sweep step (its own window); " + "; ".join(notes)
    layout = base_layout("Throughput vs latency (sweep)", note, 400)
    layout.update(xaxis={"title": axis_title("achieved output tokens/s"), "rangemode": "tozero"},
                  yaxis={"title": axis_title("latency (ms)"), "rangemode": "tozero"})
    return figure("fig-sweep", data, layout, note)


def changes_figure(c: Comparison) -> Figure | None:
    """The relative change of every latency percentile and throughput (B / A − 1, %), with
    its confidence interval, coloured by verdict; the band is the minimum effect."""
    rows = [m for m in c.metrics if m.spec.kind in (Kind.PERCENTILE, Kind.RATE)]
    if not rows:
        return None
    data = []
    for v in Verdict:
        sel = [m for m in rows if m.verdict is v]
        if not sel:
            continue
        est = [m.change.estimate * 100 for m in sel]
        data.append({
            "type": "scatter", "mode": "markers", "name": v.value,
            "y": [plot_text(m.spec.label) for m in sel], "x": nums(est),
            "error_x": {"type": "data", "symmetric": False,
                        "array": nums(m.change.high * 100 - e for m, e in zip(sel, est,
                                                                              strict=True)),
                        "arrayminus": nums(e - m.change.low * 100 for m, e in zip(
                            sel, est, strict=True)),
                        "color": VERDICT_COLORS[v], "thickness": 1.5, "width": 4},
            "marker": {"color": VERDICT_COLORS[v], "size": 9},
            "hovertemplate": "%{y}: %{x:+.1f} %<extra>" + v.value + "</extra>"})
    t = c.settings.min_effect_frac * 100
    note = (f"change of B against A with its {c.settings.confidence:.0%} interval; the grey "
            f"band is ±{t:g} % (smaller changes do not matter); latency: lower is better, "
            "throughput: higher is better")
    layout = base_layout("What changed: B against A", note, 100 + 24 * len(rows))
    layout.update(
        xaxis={"title": axis_title("change (%)"), "zeroline": True, "zerolinecolor": "#444",
               "ticksuffix": " %"},
        yaxis={"autorange": "reversed", "automargin": True, "categoryorder": "array",
               "categoryarray": [plot_text(m.spec.label) for m in rows]},
        shapes=[{"type": "rect", "xref": "x", "yref": "paper", "x0": -t, "x1": t, "y0": 0,
                 "y1": 1, "fillcolor": "#999", "opacity": 0.15, "line": {"width": 0},
                 "layer": "below"}])
    return figure("fig-changes", data, layout, note)
