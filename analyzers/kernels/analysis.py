"""One trace's kernel analysis: :func:`analyze_kernels` (docs/analysis.md, "Kernel
timelines")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.kernels.breakdown import (
    CategoryStats,
    KernelStats,
    categorized_gpu_events,
    category_stats,
    phase_category_shares,
    top_kernels,
)
from analyzers.kernels.frame import check_events, nan_to_none
from analyzers.kernels.steps import Step, assign_steps, cut_steps
from analyzers.kernels.timeline import StepTimeline, step_timelines
from servescope.gcpause import gc_paused

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LAUNCH_BOUND_TRACE_FRAC", "KernelAnalysis", "LaunchBoundVerdict", "PreparedTrace",
           "analyze_kernels", "prepare_trace"]

# The trace as a whole is launch-bound when launch-bound steps hold at least half of the
# steps' span (time-weighted, so a few long prefill steps are not outvoted by count).
LAUNCH_BOUND_TRACE_FRAC = 0.5


@dataclass(frozen=True, slots=True)
class PreparedTrace:
    """A checked frame with ``step``, ``launch_*`` set, its steps and categorized GPU events."""

    steps: list[Step]
    events: pd.DataFrame
    gpu: pd.DataFrame


def prepare_trace(events: pd.DataFrame, engine: str | None = None) -> PreparedTrace:
    checked = check_events(events)
    steps = cut_steps(checked, engine)
    assigned = assign_steps(checked, steps)
    return PreparedTrace(steps=steps, events=assigned, gpu=categorized_gpu_events(assigned))


@dataclass(frozen=True, slots=True)
class LaunchBoundVerdict:
    """``launch_bound``: launch-bound steps hold >= LAUNCH_BOUND_TRACE_FRAC of the steps'
    span. ``idle_frac``: Σ idle / Σ span over steps with GPU events; ``kernel_median_ns``: the
    median GPU event duration in steps."""

    launch_bound: bool
    steps_with_gpu: int
    launch_bound_steps: int
    launch_bound_span_frac: float
    idle_frac: float
    kernel_median_ns: float
    kernels_per_step_median: float

    def to_json(self) -> dict[str, Any]:
        return nan_to_none({f: getattr(self, f) for f in self.__slots__})


@dataclass(frozen=True, slots=True)
class KernelAnalysis:
    steps: list[Step]
    timelines: list[StepTimeline]
    categories: list[CategoryStats]
    phase_shares: dict[str, dict[str, float]]  # phase -> category -> share of its GPU time
    top: list[KernelStats]
    verdict: LaunchBoundVerdict
    gpu_events: int
    gpu_events_outside_steps: int

    def to_json(self) -> dict[str, Any]:
        return {"steps": [s.to_json() for s in self.steps],
                "timelines": [t.to_json() for t in self.timelines],
                "categories": [c.to_json() for c in self.categories],
                "phase_shares": self.phase_shares, "top": [k.to_json() for k in self.top],
                "verdict": self.verdict.to_json(), "gpu_events": self.gpu_events,
                "gpu_events_outside_steps": self.gpu_events_outside_steps}


def _verdict(timelines: list[StepTimeline], gpu: pd.DataFrame) -> LaunchBoundVerdict:
    busy = [t for t in timelines if t.gpu_events]
    span = sum(t.span_ns for t in busy)
    bound = [t for t in busy if t.launch_bound]
    frac = sum(t.span_ns for t in bound) / span if span else float("nan")
    in_steps = gpu["dur_ns"].to_numpy(np.float64)[gpu["step"].to_numpy(np.int64) >= 0]
    return LaunchBoundVerdict(
        launch_bound=bool(span and frac >= LAUNCH_BOUND_TRACE_FRAC),
        steps_with_gpu=len(busy), launch_bound_steps=len(bound), launch_bound_span_frac=frac,
        idle_frac=sum(t.gpu_idle_ns for t in busy) / span if span else float("nan"),
        kernel_median_ns=float(np.median(in_steps)) if len(in_steps) else float("nan"),
        kernels_per_step_median=(float(np.median([t.gpu_events for t in busy])) if busy
                                 else float("nan")))


def analyze_kernels(events: pd.DataFrame, engine: str | None = None,
                    top_n: int = 10) -> KernelAnalysis:
    """Steps, per-step timelines, categories, shares by phase, top kernels and the verdict of
    one trace's events (any number of ranks). ``engine``: whose step annotations to cut on
    (an engine name of the registry; None tries every engine's)."""
    with gc_paused():
        return _analyze(events, engine, top_n)


def _analyze(events: pd.DataFrame, engine: str | None, top_n: int) -> KernelAnalysis:
    prep = prepare_trace(events, engine)
    timelines = step_timelines(prep.events, prep.steps)
    phases = {s.index: s.phase.value for s in prep.steps}
    gpu = prep.gpu
    return KernelAnalysis(
        steps=prep.steps, timelines=timelines, categories=category_stats(gpu),
        phase_shares=phase_category_shares(gpu, phases), top=top_kernels(gpu, top_n),
        verdict=_verdict(timelines, gpu), gpu_events=len(gpu),
        gpu_events_outside_steps=int((gpu["step"].to_numpy(np.int64) < 0).sum()))
