"""A run directory's kernel analysis, for the bottleneck rules and the HTML report
(:func:`run_kernels`, :func:`run_kernel_comparison`), and the per-step medians both quote
(:func:`step_medians`).

The analysis of a run is computed once per process and kept (a few runs at most) keyed on
the run's path and its ``kernels/`` tables' sizes and modification times, so the rules and
the report of one ``servescope report`` share it. A run without ``kernels/`` tables has
none (None); tables that cannot be read give a :class:`RunKernels` whose ``error`` says why
in one line (the report prints it, the rules stay silent).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from analyzers.kernels.analysis import KernelAnalysis, analyze_kernels
from analyzers.kernels.compare import KernelComparison, compare_kernels
from analyzers.kernels.frame import KernelFrameError
from analyzers.kernels.load import EVENT_FILES, read_kernel_events
from servescope.engines.registry import ENGINES, UnknownEngineError
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    from analyzers.kernels.timeline import StepTimeline

__all__ = ["TOP_KERNELS", "RunKernels", "StepMedians", "run_kernel_comparison", "run_kernels",
           "step_medians"]

TOP_KERNELS = 10  # kernels listed by name in the analysis (and the report's table)
_CACHED_RUNS = 4
_Signature = tuple[tuple[str, int, int], ...]  # (table, size, mtime ns) of each event table


@dataclass(frozen=True, slots=True)
class RunKernels:
    """One run's kernel analysis: ``engine`` the step annotations it was cut on (None:
    every engine's), ``analysis`` None when ``error`` says why it could not be made."""

    path: str
    engine: str | None
    analysis: KernelAnalysis | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StepMedians:
    """Medians over the steps that ran GPU work (``steps``; NaN when none or, for the
    launch figures, when no step saw a launch): GPU busy / span, GPU events per step, the
    steps' median GPU event duration, runtime-call time / kernel time, the launch-to-start
    queue delay (each step's median), the idle before the step's first GPU event, and CUDA
    graph launches per step."""

    steps: int
    busy_frac: float
    kernels_per_step: float
    kernel_ns: float
    launch_overhead_ratio: float
    queue_delay_ns: float
    idle_before_first_ns: float
    graph_launches_per_step: float


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(statistics.median(finite)) if finite else math.nan


def step_medians(timelines: list[StepTimeline], phase: str | None = None) -> StepMedians:
    """The medians of the steps of ``timelines`` with GPU events (of ``phase`` when given)."""
    tl = [t for t in timelines if t.gpu_events and (phase is None or t.phase == phase)]
    return StepMedians(
        steps=len(tl),
        busy_frac=_median([t.gpu_busy_ns / t.span_ns for t in tl if t.span_ns > 0]),
        kernels_per_step=_median([float(t.gpu_events) for t in tl]),
        kernel_ns=_median([t.kernel_median_ns for t in tl]),
        launch_overhead_ratio=_median([t.launch_overhead_ratio for t in tl]),
        queue_delay_ns=_median([t.queue_delay_p50_ns for t in tl]),
        idle_before_first_ns=_median([float(t.idle_before_first_ns) for t in tl]),
        graph_launches_per_step=_median([float(t.graph_launches) for t in tl]))


def _engine(name: str | None) -> str | None:
    """``name`` when the registry knows it, else None (every engine's annotations)."""
    if not name:
        return None
    try:
        return ENGINES.get(name).name
    except LookupError:
        return None


def _signature(run_dir: Path) -> _Signature:
    out = []
    for name in EVENT_FILES:
        p = run_dir / name
        if p.is_file():
            st = p.stat()
            out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


@lru_cache(maxsize=_CACHED_RUNS)
def _analyse(path: str, engine: str | None,
             signature: _Signature) -> RunKernels | None:
    del signature  # part of the cache key only: rewritten tables are analysed again
    try:
        events = read_kernel_events(path)
        if events is None:
            return None
        return RunKernels(path, engine, analyze_kernels(events, engine, top_n=TOP_KERNELS))
    except (RunDirError, KernelFrameError, UnknownEngineError) as exc:
        return RunKernels(path, engine, None, f"the kernel tables cannot be analysed: {exc}")


def run_kernels(run_dir: str | Path, engine: str | None) -> RunKernels | None:
    """The kernel analysis of ``run_dir`` (None: it has no ``kernels/`` event tables).
    ``engine``: the run manifest's engine name (an unknown one: every engine's step
    annotations are tried)."""
    d = Path(run_dir)
    sig = _signature(d)
    if not sig:
        return None
    return _analyse(str(d.resolve()), _engine(engine), sig)


def run_kernel_comparison(a: RunKernels, b: RunKernels) -> KernelComparison | None:
    """A (baseline) vs B (candidate) per step (:func:`compare_kernels`), over their decode
    steps when both have decode steps with GPU work (decode is what an A/B of serving
    settings usually moves; a prefill step would dilute it), else over all steps. None
    unless both were analysed. Steps are cut on the engine's annotations when both runs
    name the same engine, else on every engine's. Kept like the analyses (the figure and
    the table of an A/B report share one)."""
    if a.analysis is None or b.analysis is None:
        return None
    phase = ("decode" if "decode" in a.analysis.phase_shares
             and "decode" in b.analysis.phase_shares else None)
    engine = a.engine if a.engine == b.engine else None
    return _compare((a.path, _signature(Path(a.path))), (b.path, _signature(Path(b.path))),
                    engine, phase)


@lru_cache(maxsize=_CACHED_RUNS)
def _compare(a: tuple[str, _Signature], b: tuple[str, _Signature], engine: str | None,
             phase: str | None) -> KernelComparison | None:
    """(path, its tables' signature: part of the cache key only) of A and of B."""
    try:
        ea, eb = read_kernel_events(a[0]), read_kernel_events(b[0])
        if ea is None or eb is None:
            return None
        return compare_kernels(ea, eb, engine=engine, phase=phase, top_n=TOP_KERNELS)
    except (RunDirError, KernelFrameError, UnknownEngineError):
        return None
