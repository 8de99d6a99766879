"""The terminal summary and the JSON of ``servescope kernels`` (renders what
:mod:`analyzers.kernels` returns; every kernel and step name is engine text, printed as
text)."""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from servescope.jsonio import dumps

if TYPE_CHECKING:
    from analyzers.kernels import KernelAnalysis, KernelComparison
    from analyzers.kernels.window import WindowPlacement

__all__ = ["kernels_json", "placement_text", "print_kernels", "print_placement"]


def _us(ns: float) -> str:
    return "–" if not math.isfinite(ns) else f"{ns / 1e3:,.1f}"


def _pct(frac: float) -> str:
    return "–" if not math.isfinite(frac) else f"{frac:.0%}"


def _steps_table(a: KernelAnalysis) -> Table:
    t = Table(title="engine steps by phase (µs; busy/idle from the GPU's kernel intervals)")
    for col in ("phase", "steps", "span mean", "GPU busy mean", "idle", "kernels/step",
                "kernel median", "launch-bound steps"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    by_phase: dict[str, list[int]] = {}
    for i, tl in enumerate(a.timelines):
        by_phase.setdefault(tl.phase, []).append(i)
    for phase, idx in sorted(by_phase.items()):
        tls = [a.timelines[i] for i in idx]
        span = sum(x.span_ns for x in tls)
        idle = sum(x.gpu_idle_ns for x in tls)
        medians = [x.kernel_median_ns for x in tls if math.isfinite(x.kernel_median_ns)]
        t.add_row(Text(phase), str(len(tls)), _us(span / len(tls)),
                  _us(sum(x.gpu_busy_ns for x in tls) / len(tls)),
                  _pct(idle / span) if span and any(x.gpu_events for x in tls) else "–",
                  f"{statistics.mean(x.kernels for x in tls):.1f}",
                  _us(statistics.median(medians)) if medians else "–",
                  str(sum(x.launch_bound for x in tls)))
    return t


def _categories_table(a: KernelAnalysis) -> Table:
    t = Table(title="GPU time by kernel category")
    for col in ("category", "count", "total ms", "mean µs", "share"):
        t.add_column(col, justify="left" if col == "category" else "right")
    for c in a.categories:
        t.add_row(Text(c.category), f"{c.count:,}", f"{c.total_ns / 1e6:,.2f}",
                  _us(c.mean_ns), _pct(c.share_frac))
    return t


def _top_table(a: KernelAnalysis) -> Table:
    t = Table(title=f"top {len(a.top)} kernels by total time")
    for col in ("kernel", "category", "count", "total ms", "mean µs", "share"):
        t.add_column(col, justify="left" if col in ("kernel", "category") else "right",
                     overflow="fold")
    for k in a.top:
        t.add_row(Text(k.name[:120]), Text(k.category), f"{k.count:,}",
                  f"{k.total_ns / 1e6:,.2f}", _us(k.mean_ns), _pct(k.share_frac))
    return t


def _verdict(a: KernelAnalysis) -> Text:
    v = a.verdict
    if v.steps_with_gpu == 0:
        return Text("no GPU events in the steps: no launch-bound verdict (a CPU-only trace)")
    head = "launch-bound" if v.launch_bound else "not launch-bound"
    return Text(f"{head}: {v.launch_bound_steps} of {v.steps_with_gpu} steps with GPU work "
                f"are launch-bound ({_pct(v.launch_bound_span_frac)} of their time); GPU idle "
                f"{_pct(v.idle_frac)} of the steps; median kernel {_us(v.kernel_median_ns)} µs, "
                f"{v.kernels_per_step_median:.0f} kernels per step",
                style="bold red" if v.launch_bound else "green")


def _comparison(c: KernelComparison) -> Table:
    t = Table(title=f"B against A, per step{'' if c.phase is None else f' ({c.phase})'}: "
                    f"{c.steps_a} vs {c.steps_b} steps, span {_us(c.span_mean_a_ns)} → "
                    f"{_us(c.span_mean_b_ns)} µs, GPU busy {_us(c.busy_mean_a_ns)} → "
                    f"{_us(c.busy_mean_b_ns)} µs")
    for col in ("", "name", "category", "A µs/step", "B µs/step", "B − A", "B / A"):
        t.add_column(col, justify="left" if col in ("", "name", "category") else "right",
                     overflow="fold")
    for label, rows in (("category", c.categories), ("slower", c.slower),
                        ("faster", c.faster)):
        for d in rows:
            t.add_row(label, Text(d.name[:100]), Text(d.category), _us(d.a_ns), _us(d.b_ns),
                      _us(d.delta_ns), "–" if not math.isfinite(d.ratio) else f"{d.ratio:.2f}")
    return t


def print_kernels(console: Console, a: KernelAnalysis, c: KernelComparison | None) -> None:
    sources = sorted({s.source for s in a.steps})
    console.print(Text(f"{len(a.steps)} steps (cut on: {', '.join(sources) or 'none'}), "
                       f"{a.gpu_events:,} GPU events ({a.gpu_events_outside_steps:,} outside "
                       "every step)"))
    if a.steps:
        console.print(_steps_table(a))
    if a.categories and a.gpu_events:  # a CPU-only trace: no GPU time to break down
        console.print(_categories_table(a))
        console.print(_top_table(a))
    console.print(_verdict(a))
    if c is not None:
        console.print(_comparison(c))


def kernels_json(a: KernelAnalysis, c: KernelComparison | None) -> bytes:
    return dumps({"analysis": a.to_json(),
                  "comparison": None if c is None else c.to_json()})


def placement_text(p: WindowPlacement) -> str:
    """One line: the profiler window, and where it fell against the steady state."""
    how = ("the engine's own profiler window" if p.mechanism == "http"
           else "servescope's in-process hook" if p.mechanism == "hook" else "a window")
    if p.state != "taken":
        return f"no kernel window was taken ({p.state}): {p.reason}"
    bound = f", {p.steps_asked} engine steps asked" if p.steps_asked else ""
    head = f"kernel window: {how}{bound}, {p.trace_s:.2f} s traced"
    if p.verdict == "unknown":
        why = "the run found no steady state" if not p.steady_found else "no trace events"
        return f"{head}; placement unknown ({why})"
    if p.verdict == "inside":
        return f"{head}, inside the steady state ({p.inside_frac:.0%})"
    return (f"{head}, {p.inside_frac:.0%} of it inside the steady state ({p.verdict}): the "
            "kernels describe ramp-up or drain too")


def print_placement(console: Console, p: WindowPlacement) -> None:
    style = "green" if p.verdict == "inside" else "yellow"
    console.print(Text(placement_text(p), style=style))
