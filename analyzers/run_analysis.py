"""One run, analysed: the steady-state window, percentiles with bootstrap confidence
intervals, throughput in steady state, the TTFT/E2E decomposition, the sweep curve and the
bottleneck findings. Data only (:class:`RunAnalysis`); reports render it.

- Percentile CIs are over the **steady-state** successful requests (the whole load when no
  steady state was found; ``steady.found`` says which): per-request TTFT, TPOT and E2E, and
  per-token ITL resampled by request (its samples within one request are correlated). A
  sweep has none here (it mixes loads): its per-step percentiles are in ``sweep``.
- The decomposition compares the engine's histogram means with the client's mean over the
  same requests: the successful ones that ended between the two scrapes the histogram
  deltas were taken from.
- Steady-state throughput counts the successful requests that **ended** inside the window,
  and their output tokens, over the window's length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analyzers.bootstrap import Interval, percentile_cis
from analyzers.bottlenecks import find_bottlenecks
from analyzers.context import RunContext
from analyzers.decompose import Decomposition, decompose
from analyzers.findings import Finding
from analyzers.goodput import SLO
from analyzers.steady_state import SteadyWindow
from analyzers.summary import RunSummary
from analyzers.sweep import SweepCurve, sweep_curve

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunSource
    from analyzers.gpu.figures import GpuFigures

__all__ = ["CI_PERCENTILES", "RunAnalysis", "analyze_context", "analyze_run"]

CI_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0)


@dataclass(frozen=True, slots=True)
class RunAnalysis:
    summary: RunSummary  # the whole run (all measured requests)
    steady: SteadyWindow
    steady_request_throughput_per_s: float
    steady_output_token_throughput_per_s: float
    # metric ("ttft_ns", "tpot_ns", "e2e_ns", "itl_per_token_ns") → percentile → interval
    percentile_cis: Mapping[str, Mapping[float, Interval]]
    decomposition: tuple[Decomposition, ...]
    sweep: SweepCurve | None
    findings: tuple[Finding, ...]
    # the GPU figures over the same steady window as the latencies above (None: no GPU
    # recorded); docs/metrics.md "GPU figures"
    gpu: GpuFigures | None = None


def analyze_run(run: RunSource, slo: SLO | None = None, *, n_resamples: int = 1000,
                seed: int = 0) -> RunAnalysis:
    """The analysis of ``run``; given a :class:`RunContext`, its analysis (computed once per
    argument set, from the context's members)."""
    return RunContext.of(run).analysis(slo, n_resamples=n_resamples, seed=seed)


def analyze_context(ctx: RunContext, slo: SLO | None = None, *, n_resamples: int = 1000,
                    seed: int = 0) -> RunAnalysis:
    """What :meth:`RunContext.analysis` holds."""
    summary = ctx.summary(slo)
    steady = ctx.window
    ok = ctx.ok
    in_steady = ok[np.isin(ok["request_id"].to_numpy(), np.asarray(steady.steady_ids))]
    cis: dict[str, Mapping[float, Interval]] = {}
    if not ctx.is_sweep:
        # a sweep mixes loads: its per-step percentiles are in the sweep curve instead
        for col in ("ttft_ns", "tpot_ns", "e2e_ns"):
            cis[col] = percentile_cis(in_steady[col].to_numpy(np.float64), CI_PERCENTILES,
                                      n_resamples=n_resamples, seed=seed)
        rows = np.zeros(len(ctx.metrics), dtype=np.bool_)
        rows[in_steady.index.to_numpy()] = True
        itl_rows = ctx.itl.per_token_row
        pick = rows[itl_rows]
        cis["itl_per_token_ns"] = percentile_cis(
            ctx.itl.per_token_ns[pick], CI_PERCENTILES, n_resamples=n_resamples, seed=seed,
            clusters=itl_rows[pick])
    window_s = steady.window_ns / 1e9 if steady.window_ns > 0 else math.nan
    ended = ok["t_last_ns"].to_numpy(np.int64)
    inside = (ended >= steady.start_ns) & (ended <= steady.end_ns)
    return RunAnalysis(
        summary=summary, steady=steady,
        steady_request_throughput_per_s=float(inside.sum()) / window_s,
        steady_output_token_throughput_per_s=float(
            ok["output_tokens"].to_numpy()[inside].sum()) / window_s,
        percentile_cis=cis,
        decomposition=decompose(_same_requests(ok, ctx.histograms), ctx.histograms),
        sweep=sweep_curve(summary, ctx.manifest.workload, slo),
        findings=tuple(find_bottlenecks(ctx.rules)),
        gpu=ctx.gpu_window,
    )


def _same_requests(ok: pd.DataFrame, hist: pd.DataFrame) -> pd.DataFrame:
    """The successful requests the engine's histogram deltas counted: those that ended
    between the two scrapes the deltas were taken from."""
    if hist.empty or "t_end_ns" not in hist.columns:
        return ok.iloc[:0]
    base, end = int(hist["t_base_ns"].iloc[0]), int(hist["t_end_ns"].iloc[0])
    t = ok["t_last_ns"].to_numpy(np.int64)
    return ok[((t > base) | (base < 0)) & (t <= end)]
