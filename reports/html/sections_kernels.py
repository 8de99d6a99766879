"""The HTML report's kernels section: what the GPU did per engine step in the profiler window
(:func:`kernels_section`), and for an A/B report what got slower (:func:`kernels_ab_section`).

Renders :class:`~analyzers.kernels.report_data.RunKernels` and
:class:`~analyzers.kernels.KernelComparison`; nothing when a run has no kernel tables. Every
kernel, step and error string comes from the engine's trace and goes through
:func:`~reports.html.text.esc`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from analyzers.kernels import KernelAnalysis, KernelComparison, KernelDelta
from analyzers.kernels.report_data import RunKernels, step_medians
from analyzers.kernels.timeline import (
    LAUNCH_BOUND_IDLE_FRAC,
    LAUNCH_BOUND_MIN_KERNELS,
    LAUNCH_BOUND_SHORT_KERNEL_NS,
)
from analyzers.kernels.window import WindowPlacement
from reports.html.figspec import Figure
from reports.html.page import plot_div
from reports.html.sections import table
from reports.html.text import esc, fmt_num, fmt_pct, short

__all__ = ["kernels_ab_section", "kernels_section", "launch_verdict_text"]

NAME_CHARS = 140  # kernel names longer than this are cut (the full name is the cell's title)
_PHASES = ("prefill", "mixed", "decode", "empty", "other", "unknown")


def _ms(ns: float) -> str:
    return fmt_num(ns / 1e6, 3)


def _us(ns: float) -> str:
    return fmt_num(ns / 1e3, 1)


def _name(name: str) -> str:
    return f'<span title="{esc(name)}">{esc(short(name, NAME_CHARS))}</span>'


def launch_verdict_text(a: KernelAnalysis) -> str:
    """The launch-bound verdict in words, with the per-step medians behind it (plain text)."""
    v = a.verdict
    if v.steps_with_gpu == 0:
        return ("No GPU events in the profiled steps (a CPU-only trace, or kernels not "
                "recorded): nothing to say about GPU idle time or kernel launches.")
    m = step_medians(a.timelines)
    head = ("Launch-bound" if v.launch_bound else "Not launch-bound")
    q = ("" if math.isnan(m.queue_delay_ns)
         else f", {m.queue_delay_ns / 1e3:.1f} µs from launch call to kernel start")
    return (f"{head}: {v.launch_bound_steps} of {v.steps_with_gpu} steps with GPU work are "
            f"launch-bound ({fmt_pct(v.launch_bound_span_frac, 0)} of their time; a step is "
            f"when its GPU is idle over {fmt_pct(LAUNCH_BOUND_IDLE_FRAC, 0)} of its span with "
            f"at least {LAUNCH_BOUND_MIN_KERNELS} GPU events of median under "
            f"{LAUNCH_BOUND_SHORT_KERNEL_NS / 1e3:g} µs). The GPU was idle "
            f"{fmt_pct(v.idle_frac, 0)} of the steps' time; "
            f"the median step kept it busy {fmt_pct(m.busy_frac, 0)} with "
            f"{m.kernels_per_step:.0f} GPU events of median {v.kernel_median_ns / 1e3:.1f} µs, "
            f"the host spending {fmt_num(m.launch_overhead_ratio, 1)}× the kernel time in "
            f"launch calls{q}, and {m.idle_before_first_ns / 1e3:.1f} µs passed before the "
            "first kernel.")


def _phase_rows(a: KernelAnalysis) -> list[list[str]]:
    rows = []
    phases = sorted({t.phase for t in a.timelines},
                    key=lambda p: _PHASES.index(p) if p in _PHASES else len(_PHASES))
    for phase in phases:
        tl = [t for t in a.timelines if t.phase == phase]
        gpu = [t for t in tl if t.gpu_events]
        span = sum(t.span_ns for t in gpu)
        m = step_medians(tl)
        rows.append([esc(phase), f"{len(tl):,}", f"{len(gpu):,}",
                     _ms(sum(t.span_ns for t in tl) / len(tl)),
                     _ms(sum(t.gpu_busy_ns for t in gpu) / len(gpu)) if gpu else "–",
                     fmt_pct(sum(t.gpu_idle_ns for t in gpu) / span) if span else "–",
                     fmt_num(m.kernels_per_step, 0), f"{sum(t.launch_bound for t in tl):,}"])
    return rows


def _category_table(a: KernelAnalysis) -> str:
    rows = [[esc(c.category), f"{c.count:,}", _ms(c.total_ns), _us(c.mean_ns), _us(c.p50_ns),
             _us(c.p99_ns), fmt_pct(c.share_frac)] for c in a.categories]
    return table(["category", "GPU events", "total (ms)", "mean (µs)", "p50 (µs)", "p99 (µs)",
                  "share"], rows, "num kernel-categories")


def _top_table(a: KernelAnalysis) -> str:
    if not a.top:
        return ""
    rows = [[_name(k.name), esc(k.category), f"{k.count:,}", _ms(k.total_ns), _us(k.mean_ns),
             fmt_pct(k.share_frac)] for k in a.top]
    return (f"<h3>Top {len(a.top)} kernels by total time</h3>"
            + table(["kernel", "category", "count", "total (ms)", "mean (µs)", "share"], rows,
                    "num kernel-top"))


def _placement(p: WindowPlacement | None) -> str:
    if p is None:
        return ""
    from reports.kernels_view import placement_text

    cls = "" if p.verdict == "inside" else ' class="warn"'
    return f"<p{cls}>{esc(placement_text(p))}</p>"


def kernels_section(rk: RunKernels | None, steps_fig: Figure | None,
                    category_fig: Figure | None, placement: WindowPlacement | None = None
                    ) -> str:
    """The section of one run ("" when it has no kernel tables and no recorded window);
    ``placement``: where the kernels collector's window fell against the steady state."""
    if rk is None:
        if placement is None:
            return ""
        return "<h2>Kernels: the profiled engine steps</h2>" + _placement(placement)
    head = "<h2>Kernels: the profiled engine steps</h2>" + _placement(placement)
    a = rk.analysis
    if a is None:
        return head + f'<p class="warn">{esc(rk.error or "no analysis")}</p>'
    if not a.steps:
        return head + ("<p>The kernel tables hold no engine step (no step annotation, "
                       "profiler step or GPU event to cut on).</p>")
    ranks = len({s.rank for s in a.steps})
    source = ", ".join(sorted({s.source.value for s in a.steps}))
    outside = (f" {a.gpu_events_outside_steps:,} GPU events fell outside every step."
               if a.gpu_events_outside_steps else "")
    intro = (f"<p>{len(a.steps):,} engine steps on {ranks} rank(s), cut on {esc(source)} "
             f"({esc(rk.engine or 'every engine')}'s step names); {a.gpu_events:,} GPU "
             f"events.{outside} Definitions: docs/metrics.md, “Kernel timelines”.</p>")
    verdict = f'<p class="kernel-verdict"><b>{esc(launch_verdict_text(a))}</b></p>'
    steps = table(["step type", "steps", "with GPU work", "span mean (ms)",
                   "GPU busy mean (ms)", "GPU idle", "GPU events/step (median)",
                   "launch-bound"], _phase_rows(a), "num kernel-steps")
    return (head + intro + verdict + steps + plot_div(steps_fig) + plot_div(category_fig)
            + (_category_table(a) if a.gpu_events else "") + _top_table(a))


def _delta_rows(ds: Sequence[KernelDelta], names: bool) -> list[list[str]]:
    return [[_name(d.name) if names else esc(d.name)]
            + ([esc(d.category)] if names else [])
            + [_us(d.a_ns), _us(d.b_ns), f"{d.delta_ns / 1e3:+,.1f}",
               "–" if math.isnan(d.ratio) else f"{d.ratio:.2f}×"] for d in ds]


def kernels_ab_section(a: RunKernels | None, b: RunKernels | None,
                       c: KernelComparison | None, fig: Figure | None) -> str:
    """A against B ("" when neither run has kernel tables)."""
    if a is None and b is None:
        return ""
    head = "<h2>Kernels, A → B</h2>"
    if c is None:
        have = [t for t, r in (("A", a), ("B", b)) if r is not None and r.analysis is not None]
        why = (f"only {have[0]} has analysable kernel tables" if len(have) == 1 else
               "the kernel tables could not be compared")
        return head + f"<p>{esc(why)}: no kernel comparison.</p>"
    scope = f"{c.phase} steps" if c.phase else "all steps"
    intro = (f"<p>Per-step means over the {esc(scope)}: {c.steps_a:,} in A, {c.steps_b:,} in "
             f"B. Step span {_ms(c.span_mean_a_ns)} → {_ms(c.span_mean_b_ns)} ms, GPU busy "
             f"{_ms(c.busy_mean_a_ns)} → {_ms(c.busy_mean_b_ns)} ms.</p>")
    cols = ["A (µs/step)", "B (µs/step)", "B − A (µs)", "B / A"]
    out = (head + intro + plot_div(fig)
           + table(["category", *cols], _delta_rows(c.categories, False), "num kernel-ab-cat"))
    for title, ds, cls in (("Kernels that got slower", c.slower, "kernel-ab-slower"),
                           ("Kernels that got faster", c.faster, "kernel-ab-faster")):
        if ds:
            out += (f"<h3>{title}</h3>"
                    + table(["kernel", "category", *cols], _delta_rows(ds, True),
                            f"num {cls}"))
    return out
