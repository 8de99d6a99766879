"""What one run's report shows, gathered from its context: :class:`RunInputs`.

:func:`gather_run` takes the run's :class:`~analyzers.context.RunContext` (its analysis,
timeline, ITL samples and engine signals, each computed once and shared with the summary and
the comparison); ``reports.html`` renders a :class:`RunInputs` and calls no analyzer (so its
figures are tested as data on inputs built from run directories with chosen timings). Raw
per-event data is not kept here beyond the per-event ITL gaps the timeline bins; what is
plotted is reduced in :mod:`reports.html.series`. With GPU telemetry: the GPU series of the
report's time axis (:func:`analyzers.gpu_series.series_of` on the context's GPU tables), the
GPU figures of the steady-state window (``RunContext.gpu_window``); with stacks, their
summary (``RunContext.stacks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analyzers.timeline import FloatArray, IntArray

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunSource
    from analyzers.goodput import SLO
    from analyzers.gpu.figures import GpuFigures
    from analyzers.gpu_series import GpuSeries
    from analyzers.run_analysis import RunAnalysis
    from analyzers.stacks_summary import StacksSummary
    from servescope.rundir.manifest import Manifest

__all__ = ["ErrorGroup", "RunInputs", "gather_run"]

MAX_ERROR_GROUPS = 8
MAX_OUTPUTS = 10


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Failed measured requests with one outcome, HTTP status and message."""

    outcome: str
    status: int
    message: str
    count: int


@dataclass(frozen=True, slots=True)
class RunInputs:
    label: str  # the run's id (its directory name at creation)
    path: str
    manifest: Manifest
    analysis: RunAnalysis
    # request_metrics rows of the measured requests (phase "measure"), every outcome
    measured: pd.DataFrame
    origin_ns: int  # time zero of the report's time axes: the first measured send
    itl_t_ns: IntArray  # arrival of the later event of each per-event ITL gap (successful)
    itl_gap_ns: FloatArray  # the gap (servescope's itl_per_event_ns samples)
    itl_token_ns: FloatArray  # per-token ITL samples of the successful measured requests
    signals: pd.DataFrame | None  # engine_signals: t_ns, signal, value (None: no engine)
    errors: tuple[ErrorGroup, ...]
    outputs: tuple[tuple[int, str], ...]  # (request id, output text): only with include_text
    load_warnings: tuple[str, ...]
    # the GPU collector's series over the report's time axis (None: no GPU recorded)
    gpu: GpuSeries | None = None
    # the GPU figures over the steady-state window, beside its latency (RunContext.gpu_window)
    gpu_figures: GpuFigures | None = None
    stacks: StacksSummary | None = None  # the engine's CPU stacks (RunContext.stacks)


def _errors(requests: pd.DataFrame) -> tuple[ErrorGroup, ...]:
    """The most frequent failures among ``requests`` (rows of the run's request table)."""
    bad = requests[requests["outcome"].to_numpy() != "success"]
    if bad.empty:
        return ()
    cols = bad[["outcome", "status", "error"]].copy()
    cols["error"] = cols["error"].fillna("").astype(str)
    cols["status"] = cols["status"].fillna(-1).astype(np.int64)
    counts = cols.value_counts(sort=True).head(MAX_ERROR_GROUPS)
    return tuple(ErrorGroup(str(o), int(s), str(e), int(c))
                 for (o, s, e), c in counts.items())


def _outputs(measured: pd.DataFrame, requests: pd.DataFrame) -> tuple[tuple[int, str], ...]:
    if "output_text" not in requests.columns:
        return ()
    text = requests.set_index("request_id")["output_text"]
    order = measured.sort_values("e2e_ns", ascending=False, na_position="last")
    out: list[tuple[int, str]] = []
    for rid in order["request_id"].to_numpy():
        t = text.get(rid)
        if isinstance(t, str) and t:
            out.append((int(rid), t))
        if len(out) >= MAX_OUTPUTS:
            break
    return tuple(out)


def gather_run(run: RunSource, slo: SLO | None = None, *, include_text: bool = False,
               n_resamples: int = 1000) -> RunInputs:
    """Everything a report of ``run`` shows (from its :class:`RunContext` when given one).
    RunDirError for a run without requests."""
    from analyzers.context import RunContext
    from analyzers.gpu_series import series_of
    from servescope.rundir.layout import RunDirError

    ctx = RunContext.of(run)
    data = ctx.run
    if data.requests.empty:
        raise RunDirError(f"{data.path} has no requests: nothing to report")
    analysis = ctx.analysis(slo, n_resamples=n_resamples)
    measured = ctx.measured.reset_index(drop=True)
    ok_rows = np.zeros(len(ctx.metrics), dtype=np.bool_)
    ok_rows[ctx.ok.index.to_numpy()] = True
    tl = ctx.timeline
    sel = tl.select(tl.ev_output)
    gap_t = sel.t_ns[sel.later]
    keep = ok_rows[sel.gap_pos()]
    sends = measured["t_send_ns"].to_numpy(np.int64)
    sends = sends[sends >= 0]
    origin = analysis.summary.window_start_ns
    if origin < 0:
        origin = int(sends.min()) if sends.size else 0
    last = measured["t_last_ns"].max()  # the timeline's right edge
    end = int(last) if np.isfinite(last) else int(origin)
    return RunInputs(
        label=data.manifest.run_id or data.path.name,
        path=str(data.path),
        manifest=data.manifest,
        analysis=analysis,
        measured=measured,
        origin_ns=int(origin),
        itl_t_ns=np.asarray(gap_t[keep], dtype=np.int64),
        itl_gap_ns=np.asarray(sel.gap_ns()[keep], dtype=np.float64),
        itl_token_ns=np.asarray(ctx.itl.per_token_of(ok_rows), dtype=np.float64),
        signals=ctx.signals,
        errors=_errors(tl.requests.loc[ctx.measured.index]),
        outputs=_outputs(measured, data.requests) if include_text else (),
        load_warnings=tuple(data.warnings),
        gpu=None if ctx.gpu is None else series_of(
            ctx.gpu.devices, ctx.gpu.samples, ctx.gpu.gpm, origin_ns=int(origin),
            t0_ns=int(origin), t1_ns=max(end, int(origin))),
        gpu_figures=ctx.gpu_window,
        stacks=ctx.stacks,
    )
