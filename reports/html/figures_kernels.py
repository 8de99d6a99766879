"""The kernels section's figures, drawn from :class:`~analyzers.kernels.KernelAnalysis` and
:class:`~analyzers.kernels.KernelComparison` (the run's ``kernels/`` tables analysed):

- :func:`step_busy_figure`: one bar per engine step (in trace order), its GPU busy time
  (the union of its GPU events on the busiest device) and idle time (span − busy) stacked,
  coloured by the step's phase (idle in the same colour, faded);
- :func:`phase_category_figure`: per step phase, the share of its GPU time in each kernel
  category, stacked to 100 %;
- :func:`kernel_compare_figure`: per-step mean GPU time by category, A beside B.

Each is None when there is nothing to draw (no GPU events in any step).
"""

from __future__ import annotations

from typing import Any

from analyzers.kernels import KernelAnalysis, KernelCategory, KernelComparison
from reports.html.figspec import RUN_COLORS, Figure, axis_title, base_layout, figure, nums
from reports.html.text import plot_text

__all__ = ["CATEGORY_COLORS", "PHASE_COLORS", "kernel_compare_figure", "phase_category_figure",
           "step_busy_figure"]

PHASE_COLORS = {"prefill": "#9467bd", "decode": "#2ca02c", "mixed": "#ff7f0e",
                "empty": "#7f7f7f", "other": "#8c564b", "unknown": "#1f77b4"}
CATEGORY_COLORS = {"gemm": "#1f77b4", "attention": "#d62728", "communication": "#9467bd",
                   "memcpy_memset": "#7f7f7f", "other": "#bcbd22"}
_PHASE_ORDER = ("prefill", "mixed", "decode", "empty", "other", "unknown")


def _phase_key(phase: str) -> int:
    return _PHASE_ORDER.index(phase) if phase in _PHASE_ORDER else len(_PHASE_ORDER)


def step_busy_figure(a: KernelAnalysis) -> Figure | None:
    """GPU busy and idle ms of every step with GPU events, stacked, by phase."""
    tl = [t for t in a.timelines if t.gpu_events]
    if not tl:
        return None
    pos = {t.index: i for i, t in enumerate(a.timelines)}
    data: list[dict[str, Any]] = []
    for phase in sorted({t.phase for t in tl}, key=_phase_key):
        sel = [t for t in tl if t.phase == phase]
        x = [pos[t.index] for t in sel]
        color = PHASE_COLORS.get(phase, "#17becf")
        names = [plot_text(t.name) for t in sel]
        for what, vals, opacity in (
                ("GPU busy", [t.gpu_busy_ns / 1e6 for t in sel], 1.0),
                ("GPU idle", [t.gpu_idle_ns / 1e6 for t in sel], 0.35)):
            data.append({
                "type": "bar", "name": f"{phase} · {what}", "x": x, "y": nums(vals),
                "customdata": names, "legendgroup": phase, "opacity": opacity,
                "marker": {"color": color},
                "hovertemplate": f"step %{{x}} ({phase}): {what} %{{y:.3~f}} ms"
                                 "<br>%{customdata}<extra></extra>"})
    ranks = len({t.rank for t in a.timelines})
    note = (f"{len(tl)} of {len(a.timelines)} steps ran GPU work (steps without any are not "
            "drawn); busy = union of the step's GPU events on its busiest device; idle = the "
            "step's span − busy" + (f"; {ranks} ranks, steps in rank order" if ranks > 1
                                    else ""))
    layout = base_layout("GPU busy and idle per engine step", note, 340)
    layout.update(barmode="stack", bargap=0.1,
                  xaxis={"title": axis_title("step (trace order)")},
                  yaxis={"title": axis_title("ms"), "rangemode": "tozero"})
    return figure("fig-kernel-steps", data, layout, note)


def phase_category_figure(a: KernelAnalysis) -> Figure | None:
    """Per phase, the share of its GPU event time in each category."""
    phases = sorted(a.phase_shares, key=_phase_key)
    if not phases:
        return None
    data = [{"type": "bar", "name": cat.value, "x": phases,
             "y": nums(a.phase_shares[p].get(cat.value, 0.0) for p in phases),
             "marker": {"color": CATEGORY_COLORS[cat.value]},
             "hovertemplate": f"%{{x}}: {cat.value} %{{y:.1%}}<extra></extra>"}
            for cat in KernelCategory]
    note = "share of Σ GPU event durations in the steps of each phase (adds to 100 %)"
    layout = base_layout("GPU time by kernel category, per step type", note, 300)
    layout.update(barmode="stack",
                  xaxis={"title": axis_title("step type")},
                  yaxis={"title": axis_title("share of GPU time"), "tickformat": ".0%",
                         "range": [0, 1.0]})
    return figure("fig-kernel-categories", data, layout, note)


def kernel_compare_figure(c: KernelComparison, labels: tuple[str, str]) -> Figure | None:
    """Per-step mean GPU time (µs) by category, A and B side by side."""
    if not (c.steps_a and c.steps_b):
        return None
    cats = [d.name for d in c.categories]
    data = [{"type": "bar", "name": f"{tag} · {plot_text(label)}", "x": cats,
             "y": nums((d.a_ns if tag == "A" else d.b_ns) / 1e3 for d in c.categories),
             "marker": {"color": RUN_COLORS[i]},
             "hovertemplate": f"{tag} %{{x}}: %{{y:.4~f}} µs per step<extra></extra>"}
            for i, (tag, label) in enumerate(zip("AB", labels, strict=True))]
    scope = f"{c.phase} steps" if c.phase else "all steps"
    note = (f"Σ GPU event time of each category / number of {scope} ({c.steps_a} in A, "
            f"{c.steps_b} in B); categories ordered by B − A, largest increase first")
    layout = base_layout("GPU time per step by kernel category, A and B", note, 300)
    layout.update(barmode="group", xaxis={"title": axis_title("kernel category")},
                  yaxis={"title": axis_title("µs per step"), "rangemode": "tozero"})
    return figure("fig-kernel-compare", data, layout, note)
