"""What a comparison needs from one run: its summary and the samples behind each number.

:func:`run_samples` takes a run's :class:`~analyzers.context.RunContext` (or makes one) and
returns, besides its summary (the context's, which ``summarize`` shows: every point estimate a
comparison reports comes from it, so ``compare`` and ``summarize`` never disagree):

- per-request latency values of the successful measured requests (``ttft_ns``, ``tpot_ns``,
  ``e2e_ns``, and ``itl_mean_ns``, the request's mean per-token ITL, for rank tests);
- the pooled per-token ITL samples and the request each came from (the bootstrap's clusters);
- **slice rates**: the measurement window cut into ``n_slices`` equal slices; per slice the
  output tokens (each successful request's ``output_tokens`` spread evenly over its output
  events, counted when each event arrived), the successful requests ending in it, and the
  good ones (with an SLO), each divided by the slice's length. The mean of the slice rates is
  exactly the summary's throughput (tokens / window), and the slices are the samples the
  rate's noise is judged from (batch means);
- the engine's window and server histograms (bucket count deltas) from the client's first
  send to the last scrape (the context's ``engine_load``), when the run scraped an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analyzers.timeline import FloatArray, IntArray

if TYPE_CHECKING:
    from analyzers.context import RunSource
    from analyzers.engine_signals import EngineWindow
    from analyzers.goodput import SLO
    from analyzers.server_histograms import HistogramDelta
    from analyzers.summary import RunSummary
    from servescope.rundir.reader import RunData

__all__ = ["DEFAULT_SLICES", "RunSamples", "run_samples"]

DEFAULT_SLICES = 10
_LATENCY_COLUMNS = ("ttft_ns", "tpot_ns", "e2e_ns")


@dataclass(frozen=True, slots=True)
class RunSamples:
    """One run's summary and samples (see the module doc). Rates are per second."""

    path: Path
    run: RunData
    summary: RunSummary
    latency_ns: Mapping[str, FloatArray]  # ttft_ns, tpot_ns, e2e_ns, itl_mean_ns
    itl_ns: FloatArray  # pooled per-token ITL samples of successful measured requests
    itl_request: IntArray  # request row of each ITL sample
    slice_rates: Mapping[str, FloatArray]  # output_throughput, request_throughput, goodput
    engine: EngineWindow | None
    server: Mapping[str, HistogramDelta]  # canonical histogram name -> delta over the window
    good: int  # good requests (-1 without an SLO)
    # a bench run's bw_<bench> -> per-repeat bytes/s (analyzers/bandwidth.py); {} otherwise
    bandwidth: Mapping[str, FloatArray] = field(default_factory=dict)

    @property
    def bench_only(self) -> bool:
        """A bench run: bandwidth samples and no measured requests."""
        return bool(self.bandwidth) and self.summary.measured_requests == 0


def run_samples(run: RunSource, slo: SLO | None = None, *,
                n_slices: int = DEFAULT_SLICES) -> RunSamples:
    """Gather the samples of ``run`` (a run directory is loaded; a :class:`RunContext`
    gives its members). RunDirError for an unreadable run."""
    from analyzers.bandwidth import bandwidth_samples
    from analyzers.context import RunContext
    from analyzers.goodput import good_mask

    ctx = RunContext.of(run)
    summary = ctx.summary(slo)
    tl, itl, metrics = ctx.timeline, ctx.itl, ctx.metrics
    measured = metrics["phase"].to_numpy() == "measure"
    ok = measured & (metrics["outcome"].to_numpy() == "success")
    latency = {c: np.asarray(metrics[c].to_numpy()[ok], dtype=np.float64)
               for c in _LATENCY_COLUMNS}
    latency["itl_mean_ns"] = np.asarray(metrics["itl_token_mean_ns"].to_numpy()[ok],
                                        dtype=np.float64)
    rows = np.asarray(ok, dtype=np.bool_)
    good = good_mask(metrics, slo) & measured if slo is not None else None

    start, end = summary.window_start_ns, summary.window_end_ns
    edges = _edges(start, end, n_slices)
    rates: dict[str, FloatArray] = {}
    if edges is not None:
        widths_s = np.diff(edges).astype(np.float64) / 1e9
        out_sel = tl.select(tl.ev_output & rows[tl.ev_pos])
        tokens = metrics["output_tokens"].to_numpy().astype(np.float64)
        n_out = np.maximum(metrics["n_output_events"].to_numpy(), 1).astype(np.float64)
        weights = (tokens / n_out)[out_sel.pos]
        no_event = ok & (metrics["n_output_events"].to_numpy() == 0)
        t_last = metrics["t_last_ns"].to_numpy()
        t_tok = np.concatenate([out_sel.t_ns, t_last[no_event]])
        w_tok = np.concatenate([weights, tokens[no_event]])
        rates["output_throughput"] = _binned(t_tok, w_tok, edges) / widths_s
        rates["request_throughput"] = _binned(t_last[ok], None, edges) / widths_s
        if good is not None:
            rates["goodput"] = _binned(t_last[good], None, edges) / widths_s
    load = ctx.engine_load
    return RunSamples(
        path=ctx.path, run=ctx.run, summary=summary, latency_ns=latency,
        itl_ns=itl.per_token_of(rows), itl_request=itl.per_token_row[rows[itl.per_token_row]],
        slice_rates=rates, engine=load.window if load is not None else None,
        server={str(h): d for h, d in load.histograms.items()} if load is not None else {},
        good=int(good.sum()) if good is not None else -1,
        bandwidth=bandwidth_samples(ctx.path),
    )


def _edges(start: int, end: int, n: int) -> IntArray | None:
    if start < 0 or end <= start or n < 1:
        return None
    return np.asarray([start + (end - start) * i // n for i in range(n + 1)], dtype=np.int64)


def _binned(t_ns: IntArray, weights: FloatArray | None, edges: IntArray) -> FloatArray:
    """Sum of ``weights`` (or count) per slice; the last slice includes its end."""
    idx = np.searchsorted(edges, t_ns, side="right") - 1
    idx = np.where(t_ns == edges[-1], edges.size - 2, idx)
    keep = (idx >= 0) & (idx < edges.size - 1)
    w = None if weights is None else weights[keep]
    return np.bincount(idx[keep], weights=w, minlength=edges.size - 1).astype(np.float64)
