"""A run's summary: counts, window, throughput, latency statistics, goodput and warnings.

Data only: :func:`summarize` returns typed dataclasses; rendering is the reports' job.

- Only measured requests (``phase == "measure"``) count; warm-up requests are excluded and
  counted. The **window** runs from the first send to the last end (``t_last_ns``) among
  measured requests, whatever their outcome.
- **error rate** = non-success / measured. **request throughput** = successful / window.
  Token throughputs sum the tokens of successful requests over the window.
- Latency statistics cover successful measured requests only; ITL samples are pooled over
  them. Schedule lag covers every measured request that was sent (open loop only).
- **client lag** (``client_lag_ns``): per output event of the successful measured requests,
  the client's socket read minus the kernel's receive time; ``None`` when no event had a
  kernel time. Event times themselves are the kernel's where ``event_clocks`` says
  ``kernel_rx``, so a lagging client does not bend TTFT or ITL.
- With several sweep steps among measured requests, ``steps`` holds one summary per step
  (each with its own window) besides the whole-run summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from analyzers.context import RunContext
from analyzers.goodput import SLO, Goodput, goodput
from analyzers.itl import TOKENS_CLIENT, TOKENS_ONE_PER_EVENT, ITLSamples
from analyzers.request_metrics import INPUT_PLANNED, INPUT_UNKNOWN, OUTPUT_EVENTS
from analyzers.stats import Stats, describe
from analyzers.timeline import BoolArray, Timeline
from servescope.records import Outcome

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunSource

__all__ = ["DEFAULT_LAG_WARN_MS", "LatencySummary", "RunSummary", "send_to_last", "summarize",
           "summarize_context"]

DEFAULT_LAG_WARN_MS = 10.0  # p99 schedule lag above this is reported as a warning
_NS_PER_MS = 1_000_000
_SUCCESS = Outcome.SUCCESS.value


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Statistics in nanoseconds; the from-intended ones are ``None`` for closed loop."""

    ttft_ns: Stats
    itl_per_event_ns: Stats
    itl_per_token_ns: Stats
    tpot_ns: Stats
    e2e_ns: Stats
    e2e_done_ns: Stats
    schedule_lag_ns: Stats | None
    ttft_from_intended_ns: Stats | None
    e2e_from_intended_ns: Stats | None
    client_lag_ns: Stats | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Summary of a run (``step is None``) or of one sweep step.

    Window times are monotonic ns (``-1`` with no measured request). ``outcomes`` has every
    :class:`Outcome` value. ``output_tokens_sources`` counts successful requests by where
    their output token count came from (``usage``, ``chunk_usage``, ``events``).
    """

    step: int | None
    window_start_ns: int
    window_end_ns: int
    window_ns: int
    measured_requests: int
    warmup_excluded: int
    outcomes: Mapping[str, int]
    successful_requests: int
    error_rate: float
    request_throughput_per_s: float
    input_tokens: int
    output_tokens: int
    input_token_throughput_per_s: float
    output_token_throughput_per_s: float
    open_loop: bool
    latency: LatencySummary
    output_tokens_sources: Mapping[str, int]
    goodput: Goodput | None
    warnings: tuple[str, ...]
    steps: tuple[RunSummary, ...] = ()
    # successful measured requests by the clock of their event times (kernel_rx, socket_read,
    # coroutine_wakeup; "" for runs recorded before the clock was)
    event_clocks: Mapping[str, int] = field(default_factory=dict)


def summarize(run: RunSource, slo: SLO | None = None, *,
              lag_warn_ms: float = DEFAULT_LAG_WARN_MS) -> RunSummary:
    """Summarize ``run``; with ``slo``, add goodput under those objectives. Given a
    :class:`RunContext`, its summary (computed once per ``slo``)."""
    return RunContext.of(run).summary(slo, lag_warn_ms=lag_warn_ms)


def summarize_context(ctx: RunContext, slo: SLO | None = None, *,
                      lag_warn_ms: float = DEFAULT_LAG_WARN_MS) -> RunSummary:
    """What :meth:`RunContext.summary` holds: the summary from the context's members."""
    metrics, itl = ctx.metrics, ctx.itl
    tl = ctx.timeline
    whole = _summarize_rows(metrics, itl, slo, None, lag_warn_ms, tl=tl)
    measured_steps = np.unique(metrics["step"].to_numpy()[_measured(metrics)])
    steps: tuple[RunSummary, ...] = ()
    if measured_steps.size > 1:
        step_col = metrics["step"].to_numpy()
        steps = tuple(
            _summarize_rows(metrics[step_col == s], itl, slo, int(s), lag_warn_ms, tl=tl)
            for s in measured_steps
        )
    unknown = ctx.unknown_engine_warning
    warnings = (*ctx.run.warnings, *ctx.timeline.warnings, *whole.warnings,
                *([unknown] if unknown else []))
    return replace(whole, warnings=warnings, steps=steps)


def send_to_last(measured: pd.DataFrame) -> tuple[int, int]:
    """The window of ``measured`` requests: (first send, last end), -1 for none."""
    sends = measured["t_send_ns"].to_numpy()
    sends = sends[sends >= 0]
    lasts = measured["t_last_ns"].to_numpy()
    return (int(sends.min()) if sends.size else -1), (int(lasts.max()) if lasts.size else -1)


def _measured(metrics: pd.DataFrame) -> BoolArray:
    return np.asarray(metrics["phase"].to_numpy() == "measure", dtype=np.bool_)


def _summarize_rows(rows: pd.DataFrame, itl: ITLSamples, slo: SLO | None, step: int | None,
                    lag_warn_ms: float, *, tl: Timeline) -> RunSummary:
    phase = rows["phase"].to_numpy()
    measured = rows[phase == "measure"]
    warmup = int((phase == "warmup").sum())
    ok = measured[measured["outcome"].to_numpy() == _SUCCESS]
    n, n_ok = len(measured), len(ok)

    start, end = send_to_last(measured)
    window_ns = end - start if start >= 0 and end > start else 0
    window_s = window_ns / 1e9 if window_ns > 0 else math.nan

    in_tok = ok["input_tokens"].to_numpy()
    input_tokens = int(in_tok[in_tok >= 0].sum())
    output_tokens = int(ok["output_tokens"].to_numpy().sum())
    counts = measured["outcome"].value_counts()
    outcomes = {o.value: int(counts.get(o.value, 0)) for o in Outcome}
    sources = ok["output_tokens_source"].value_counts()

    latency, open_loop = _latency(measured, ok, itl)
    latency = replace(latency, client_lag_ns=_client_lag(tl, ok))
    req_ok = tl.requests.iloc[ok.index.to_numpy()]
    clocks = (req_ok["ev_clock"].value_counts() if "ev_clock" in req_ok.columns else {})
    warnings = _warnings(rows, measured, ok, warmup=warmup, latency=latency,
                         lag_warn_ms=lag_warn_ms)
    warnings += _client_warnings(req_ok, latency.client_lag_ns, lag_warn_ms)
    return RunSummary(
        step=step,
        window_start_ns=start,
        window_end_ns=end,
        window_ns=window_ns,
        measured_requests=n,
        warmup_excluded=len(rows) - n,
        outcomes=outcomes,
        successful_requests=n_ok,
        error_rate=(n - n_ok) / n if n else math.nan,
        request_throughput_per_s=n_ok / window_s,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        input_token_throughput_per_s=input_tokens / window_s,
        output_token_throughput_per_s=output_tokens / window_s,
        open_loop=open_loop,
        latency=latency,
        output_tokens_sources={str(k): int(v) for k, v in sources.items()},
        goodput=goodput(measured, window_ns, slo) if slo is not None else None,
        warnings=tuple(warnings),
        event_clocks={str(k): int(v) for k, v in clocks.items()},
    )


def _client_lag(tl: Timeline, ok: pd.DataFrame) -> Stats | None:
    """The lag of the output events of ``ok``'s requests that had a kernel time."""
    if tl.ev_lag_ns.size != tl.ev_t_ns.size:
        return None
    rows = np.zeros(tl.n_requests, dtype=np.bool_)
    rows[ok.index.to_numpy()] = True
    lag = tl.ev_lag_ns[tl.ev_output & rows[tl.ev_pos]]
    lag = lag[lag >= 0]
    return describe(lag) if lag.size else None


def _client_warnings(req_ok: pd.DataFrame, lag: Stats | None, lag_warn_ms: float) -> list[str]:
    """What the client's own clocks and token counts say about its numbers."""
    out: list[str] = []
    n_ok = len(req_ok)
    if "ev_clock" in req_ok.columns and n_ok:
        clock = req_ok["ev_clock"].to_numpy()
        other = int(((clock != "kernel_rx") & (clock != "packet_rx") & (clock != "")).sum())
        if other:
            out.append(f"no kernel receive timestamps for {other} of {n_ok} successful "
                       "requests (TLS, or a platform without SO_TIMESTAMPNS): their event "
                       "times are the client's own reads, late by however busy it was")
    if lag is not None and lag.count and lag.p99 > lag_warn_ms * _NS_PER_MS:
        out.append(f"the client read events late: lag p99 {lag.p99 / _NS_PER_MS:.1f} ms "
                   f"(max {lag.max / _NS_PER_MS:.1f} ms) after the kernel received them; "
                   "event times are the kernel's, but a closed loop sent its next requests "
                   "that much later")
    if "tokens_cum_source" in req_ok.columns:
        client = req_ok["tokens_cum_source"].to_numpy() == TOKENS_CLIENT
        if client.any():
            out.append(_token_count_note(req_ok[client]))
    return out


def _token_count_note(rows: pd.DataFrame) -> str:
    """The client's token counts against the server's usage, for requests it counted."""
    mine = rows["client_completion_tokens"].to_numpy()
    theirs = rows["usage_completion_tokens"].to_numpy()
    known = theirs >= 0
    diff = np.abs(mine[known] - theirs[known])
    note = (f"per-event token counts of {len(rows)} requests are the client's tokenizer's "
            "(no per-chunk usage)")
    if (diff > 0).any():
        return (note + f"; they differ from the server's usage in {int((diff > 0).sum())} of "
                f"{int(known.sum())} (mean |difference| {float(diff.mean()):.1f} tokens)")
    return note + ("; they match the server's usage" if known.any() else "")


def _latency(measured: pd.DataFrame, ok: pd.DataFrame,
             itl: ITLSamples) -> tuple[LatencySummary, bool]:
    rows = np.zeros(len(itl.per_request), dtype=np.bool_)
    rows[ok.index.to_numpy()] = True  # request_metrics rows are the request-table rows
    open_loop = bool((measured["t_intended_ns"].to_numpy() >= 0).any())

    def stats(col: str) -> Stats:
        return describe(ok[col].to_numpy())

    return LatencySummary(
        ttft_ns=stats("ttft_ns"),
        itl_per_event_ns=describe(itl.per_event_of(rows)),
        itl_per_token_ns=describe(itl.per_token_of(rows)),
        tpot_ns=stats("tpot_ns"),
        e2e_ns=stats("e2e_ns"),
        e2e_done_ns=stats("e2e_done_ns"),
        schedule_lag_ns=describe(measured["schedule_lag_ns"].to_numpy()) if open_loop else None,
        ttft_from_intended_ns=stats("ttft_from_intended_ns") if open_loop else None,
        e2e_from_intended_ns=stats("e2e_from_intended_ns") if open_loop else None,
    ), open_loop


def _warnings(rows: pd.DataFrame, measured: pd.DataFrame, ok: pd.DataFrame, *, warmup: int,
              latency: LatencySummary, lag_warn_ms: float) -> list[str]:
    out: list[str] = []
    n_ok = len(ok)
    if measured.empty:
        out.append("no measured requests: every statistic is empty")
    if warmup:
        out.append(f"{warmup} warm-up requests excluded")
    other = len(rows) - len(measured) - warmup
    if other:
        out.append(f"{other} requests with an unknown phase excluded")
    n_events = int((ok["output_tokens_source"].to_numpy() == OUTPUT_EVENTS).sum())
    if n_events:
        out.append(f"output tokens from event count, not server usage, for {n_events} of "
                   f"{n_ok} successful requests")
    multi = ok["n_output_events"].to_numpy() > 1
    assumed = int((multi & (ok["itl_tokens_source"].to_numpy() == TOKENS_ONE_PER_EVENT)).sum())
    if assumed:
        out.append(f"per-token ITL assumes one token per output event for {assumed} requests "
                   "(no per-chunk usage)")
    src = ok["input_tokens_source"].to_numpy()
    if (planned := int((src == INPUT_PLANNED).sum())):
        out.append(f"input tokens are the workload's planned counts, not server usage, for "
                   f"{planned} of {n_ok} successful requests")
    if (unknown := int((src == INPUT_UNKNOWN).sum())):
        out.append(f"input tokens unknown for {unknown} of {n_ok} successful requests "
                   "(left out of input throughput)")
    no_output = int((ok["n_output_events"].to_numpy() == 0).sum())
    if no_output:
        out.append(f"{no_output} successful requests had no output event (no TTFT, E2E)")
    lag = latency.schedule_lag_ns
    if lag is not None and lag.count and lag.p99 > lag_warn_ms * _NS_PER_MS:
        out.append(f"client fell behind schedule: p99 lag {lag.p99 / _NS_PER_MS:.1f} ms "
                   f"(max {lag.max / _NS_PER_MS:.1f} ms); see the from-intended latencies")
    return out
