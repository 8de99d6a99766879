"""Rules over the engine's own signals, joined with the client's view.

Each rule returns a :class:`~analyzers.findings.Finding` or None; thresholds are module
constants, documented in docs/analysis.md. They judge the context's window (steady state when
found) and need the engine's metrics: without them they stay silent.
"""

from __future__ import annotations

import math

import numpy as np

from analyzers.bottlenecks.context import RuleContext
from analyzers.findings import Evidence, Finding, Severity, sample_ids
from servescope.engines._argv import flag_value
from servescope.engines.base import Knob, Signal

__all__ = ["batch_cap_queueing", "kv_cache_saturation", "prefix_cache_low"]

KV_FULL_FRAC = 0.85  # KV-cache usage at or above this is "nearly full" (block granularity)
BATCH_WAITING_FRAC = 0.30  # waiting > 0 in at least this share of the window's snapshots
BATCH_AT_CAP_FRAC = 0.50  # ...and running at the cap (± one slot) in this share of those
PREFIX_LOW_RATIO = 0.5  # hit rate below half of what the workload's sharing allows
QUEUE_CRITICAL_FRAC = 0.5  # batch cap: critical when queueing is half of the mean TTFT


def _window(ctx: RuleContext) -> tuple[int, int]:
    return ctx.start_ns, ctx.end_ns


def kv_cache_saturation(ctx: RuleContext) -> Finding | None:
    """KV cache (nearly) full and the engine preempting (evicting running requests to
    recompute them later): every preemption throws away work and stalls its request."""
    if ctx.engine is None:
        return None
    _, kv = ctx.gauge(Signal.KV_CACHE_USAGE_FRAC)
    t_pre, pre = ctx.counter_steps(Signal.PREEMPTIONS_TOTAL)
    preemptions = float(pre.sum()) if pre.size else 0.0
    if kv.size == 0:
        return None
    full = kv >= KV_FULL_FRAC
    if preemptions <= 0 and not full.any():
        return None
    _, waiting = ctx.gauge(Signal.REQUESTS_WAITING)
    if preemptions <= 0:
        # full but nothing evicted: admission is KV-bound only if requests waited while full
        if waiting.size != kv.size or not (waiting[full] > 0).any():
            return None
        severity = Severity.WARNING
    else:
        severity = Severity.CRITICAL if full.any() else Severity.WARNING
    # requests in flight while preemptions happened (between the two scrapes that saw them)
    hit = pre > 0
    prev = np.concatenate([[ctx.start_ns], t_pre[:-1]]) if t_pre.size else t_pre
    affected = ctx.requests_overlapping(prev[hit], t_pre[hit]) if hit.any() else np.empty(0)
    # requests in flight at some point of the window: the preemptions' denominator
    n_req = int(ctx.requests_overlapping(np.array([ctx.start_ns]), np.array([ctx.end_ns])).size)
    w0, w1 = _window(ctx)
    if preemptions > 0:
        summary = (f"KV-cache usage reached {kv.max():.0%} (≥ {KV_FULL_FRAC:.0%} in "
                   f"{full.mean():.0%} of snapshots) and the engine preempted "
                   f"{preemptions:.0f} times ({100 * preemptions / max(n_req, 1):.1f} per 100 "
                   f"requests in the window); preempted requests are recomputed, which costs "
                   f"TTFT, ITL and throughput.")
    else:
        summary = (f"KV-cache usage reached {kv.max():.0%} (≥ {KV_FULL_FRAC:.0%} in "
                   f"{full.mean():.0%} of snapshots) while up to {waiting.max():.0f} requests "
                   f"waited: new requests are admitted only as blocks free up.")
    return Finding(
        rule="kv_cache_saturation", severity=severity,
        title="KV cache full: requests are preempted" if preemptions > 0
        else "KV cache full: admission waits for free blocks",
        summary=summary,
        evidence=(
            Evidence("kv_usage_max_frac", float(kv.max())),
            Evidence("kv_usage_mean_frac", float(kv.mean())),
            Evidence("kv_full_snapshot_frac", float(full.mean()),
                     f"snapshots with usage ≥ {KV_FULL_FRAC:.0%}"),
            Evidence("preemptions", preemptions),
            Evidence("preemptions_per_100_requests", 100 * preemptions / max(n_req, 1)),
            Evidence("waiting_max", float(waiting.max()) if waiting.size else math.nan),
            Evidence("snapshots", float(kv.size)),
        ),
        window_start_ns=w0, window_end_ns=w1,
        requests_affected=int(np.unique(affected).size), request_ids=sample_ids(affected),
        actions=(ctx.action(Knob.KV_CACHE_SIZE),
                 "or " + ctx.action(Knob.MAX_BATCH).replace("raise", "lower", 1)
                 + " so fewer sequences compete for the cache",
                 "or lower max_tokens / prompt lengths if the workload allows"),
    )


def _batch_cap(ctx: RuleContext, running: np.ndarray) -> tuple[float, str]:
    """The engine's cap on running sequences and where it came from: the engine spec's
    batch-cap flag on the command line, else the engine's own gauge, else the plateau."""
    flags = ctx.spec.batch_cap_flags if ctx.spec is not None else ()
    v = flag_value(ctx.engine_args, *flags) if flags else None
    if v is not None and v.isdigit():
        return float(v), f"{flags[0]} on the engine's command line"
    _, cap = ctx.gauge(Signal.MAX_RUNNING_REQUESTS)
    if cap.size and cap.max() > 0:
        return float(cap.max()), "the engine's own max-running gauge"
    return float(running.max()), "the most requests seen running (the plateau)"


def batch_cap_queueing(ctx: RuleContext) -> Finding | None:
    """Requests wait in the engine's queue while the running batch sits at its cap and the KV
    cache has room: the cap, not memory, limits the batch."""
    if ctx.engine is None:
        return None
    _, running = ctx.gauge(Signal.REQUESTS_RUNNING)
    t_wait, waiting = ctx.gauge(Signal.REQUESTS_WAITING)
    if running.size < 3 or waiting.size != running.size:
        return None
    queued = waiting > 0
    if queued.mean() < BATCH_WAITING_FRAC:
        return None
    cap, cap_source = _batch_cap(ctx, running)
    # the gauge is read between scheduler steps, when a finished sequence's slot may not be
    # refilled yet: "at the cap" allows one free slot (or 10 % of a large cap)
    slack = float(round(0.1 * cap)) if cap >= 10 else (1.0 if cap >= 2 else 0.0)
    at_cap = running[queued] >= cap - slack
    _, kv = ctx.gauge(Signal.KV_CACHE_USAGE_FRAC)
    kv_max = float(kv.max()) if kv.size else math.nan
    # KV full instead is the KV rule's case
    if at_cap.mean() < BATCH_AT_CAP_FRAC or (kv.size and kv_max >= KV_FULL_FRAC):
        return None
    queue_ms = 1e3 * ctx.histogram_mean_s("server_queue_s")
    ttft_ms = 1e3 * ctx.histogram_mean_s("server_ttft_s")
    ok = ctx.ok
    t_end = ok["t_last_ns"].to_numpy(np.int64)
    win = ok[(t_end >= ctx.start_ns) & (t_end <= ctx.end_ns)]
    client_ttft_ms = (float(np.nanmean(win["ttft_ns"].to_numpy(np.float64))) / 1e6
                      if len(win) else math.nan)
    share = queue_ms / client_ttft_ms if client_ttft_ms > 0 else math.nan
    severity = Severity.CRITICAL if share >= QUEUE_CRITICAL_FRAC else Severity.WARNING
    if cap_source.startswith("the most requests seen"):
        severity = Severity.WARNING  # a plateau, not a known setting: say so, not louder
    queued_t = t_wait[queued]
    prev = np.concatenate([[ctx.start_ns], t_wait[:-1]])[queued]
    affected = ctx.requests_overlapping(prev, queued_t)
    w0, w1 = _window(ctx)
    return Finding(
        rule="batch_cap_queueing", severity=severity,
        title="Requests queue behind a capped batch",
        summary=(f"{waiting[queued].mean():.1f} requests waited on average in "
                 f"{queued.mean():.0%} of snapshots while {running[queued].mean():.1f} ran "
                 f"(cap {cap:.0f}, from {cap_source}) and the KV cache was at most "
                 f"{kv_max:.1%} full; queueing took {queue_ms:.0f} ms of the "
                 f"{client_ttft_ms:.0f} ms mean TTFT."),
        evidence=(
            Evidence("batch_cap", cap, cap_source),
            Evidence("waiting_snapshot_frac", float(queued.mean())),
            Evidence("waiting_mean", float(waiting[queued].mean())),
            Evidence("waiting_max", float(waiting.max())),
            Evidence("running_at_cap_frac", float(at_cap.mean()),
                     f"of the snapshots with requests waiting, running ≥ cap − {slack:.0f}"),
            Evidence("running_max", float(running.max())),
            Evidence("kv_usage_max_frac", kv_max),
            Evidence("server_queue_mean_ms", queue_ms),
            Evidence("server_ttft_mean_ms", ttft_ms),
            Evidence("client_ttft_mean_ms", client_ttft_ms),
            Evidence("queue_share_of_ttft_frac", share),
        ),
        window_start_ns=w0, window_end_ns=w1,
        requests_affected=int(np.unique(affected).size), request_ids=sample_ids(affected),
        actions=(ctx.action(Knob.MAX_BATCH),
                 "the KV cache has room for a larger batch; watch ITL as the batch grows"),
    )


def _expected_hit_rate(ctx: RuleContext) -> tuple[float, str] | None:
    """The prefix-cache hit rate a workload built to share prefixes allows, or None."""
    ds = ctx.workload.get("dataset", {})
    kind = ds.get("kind")
    if kind == "shared_prefix":
        prefix = float(ds.get("prefix_len") or 0)
        suffix = float((ds.get("input_len") or {}).get("mean") or 0)
        groups = float(ds.get("num_groups") or 1)
        n = max(len(ctx.measured), 1)
        if prefix <= 0:
            return None
        # every request but the first of each group can reuse its group's prefix
        reusable = prefix / (prefix + suffix) * max(0.0, 1 - groups / n)
        return reusable, (f"shared_prefix: {groups:.0f} groups, {prefix:.0f}-token prefix, "
                          f"{suffix:.0f}-token suffix")
    return None


def prefix_cache_low(ctx: RuleContext) -> Finding | None:
    """A workload built to share prefixes, and the engine reuses far less than it could."""
    expected = _expected_hit_rate(ctx)
    if expected is None or ctx.engine is None:
        return None
    allow, how = expected
    hits, queries = ctx.engine.prefix_cache_hits, ctx.engine.prefix_cache_queries
    rate = ctx.engine.prefix_cache_hit_rate
    disabled = not queries  # None or 0: the engine looked nothing up
    if not disabled and rate is None:
        return None  # lookups counted but hits not exposed: nothing to judge
    if not disabled and rate is not None and rate >= PREFIX_LOW_RATIO * allow:
        return None
    w0, w1 = _window(ctx)
    ids = ctx.ok["request_id"].to_numpy()
    shown = "no lookups (prefix caching off?)" if disabled else f"{rate:.1%}"
    return Finding(
        rule="prefix_cache_low", severity=Severity.WARNING,
        title="Shared prefixes are not reused",
        summary=(f"The workload shares prefixes ({how}), so about {allow:.0%} of prompt "
                 f"tokens could come from the prefix cache; the engine's hit rate was "
                 f"{shown}. Every request pays the full prefill."),
        evidence=(
            Evidence("expected_hit_rate_frac", allow, how),
            Evidence("hit_rate_frac", rate if rate is not None else math.nan),
            Evidence("prefix_cache_hits", hits if hits is not None else math.nan),
            Evidence("prefix_cache_queries", queries if queries is not None else math.nan),
        ),
        window_start_ns=w0, window_end_ns=w1,
        requests_affected=int(ids.size), request_ids=sample_ids(ids),
        actions=(ctx.action(Knob.PREFIX_CACHE),
                 "or " + ctx.action(Knob.KV_CACHE_SIZE).split(": ", 1)[-1]
                 + " so cached prefixes are not evicted"),
    )
