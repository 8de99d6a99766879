"""Engine signals: the engine's own metrics, mapped to servescope's canonical signals.

:func:`engine_signals` reads ``RUN/engine/metrics.parquet`` (or the journal of a killed run)
and returns one row per canonical signal per snapshot, through the engine spec named in
``manifest.engine.name``. :func:`engine_window` summarizes a time window: KV usage
max/mean, running/waiting max/mean, and counter increases (prefix-cache hits/queries and their
ratio, preemptions, tokens, finished requests) that survive counter resets and failed scrapes.

Resolution rules (the spec's :class:`~servescope.engines.base.SignalSpec`): in each snapshot
the first listed family present wins (newest name first); its samples are filtered by the
spec's labels, where a label a sample does not carry does not filter it (so ``priority=""``
keeps SGLang's totals and old versions without the label); the rest are summed, averaged or
maxed and scaled. A signal with no family present falls back to the spec's derived
definition (sum or ratio of other specs). A snapshot is one scrape, or for TensorRT-LLM's JSON
endpoint one iteration-stat entry (all entries drained by a scrape share its ``t_ns``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from servescope.engines.base import Signal, SignalSpec
from servescope.engines.registry import UnknownEngineError, get_spec
from servescope.engines.spec import EngineSpec
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunSource
    from servescope.rundir.engine_tables import EngineTables
    from servescope.rundir.reader import RunData

__all__ = [
    "COUNTER_SIGNALS",
    "EngineWindow",
    "counter_increase",
    "engine_inputs",
    "engine_signals",
    "engine_window",
    "label_match",
    "run_spec",
    "signals_from_metrics",
    "window_from_signals",
    "window_over",
]

COUNTER_SIGNALS = frozenset({
    Signal.PREEMPTIONS_TOTAL, Signal.PREFIX_CACHE_QUERIES_TOTAL, Signal.PREFIX_CACHE_HITS_TOTAL,
    Signal.PROMPT_TOKENS_TOTAL, Signal.GENERATION_TOKENS_TOTAL, Signal.REQUESTS_FINISHED_TOTAL,
})
_ITER = "trtllm_iter"


def _engine_name(run: RunData) -> str | None:
    engine = run.manifest.engine
    return engine.name if engine is not None and engine.name else None


def run_spec(run: RunData) -> EngineSpec:
    """The engine spec the run recorded in ``manifest.engine.name``; RunDirError
    when it records none or one this version does not know (a newer servescope's)."""
    name = _engine_name(run)
    if name is None:
        raise RunDirError(f"{run.path} records no engine (manifest.engine.name); "
                          "pass the spec explicitly")
    try:
        return get_spec(name)
    except UnknownEngineError as exc:
        raise RunDirError(f"{run.path}: {exc}") from exc


def engine_inputs(run: RunSource,
                  spec: EngineSpec | None = None) -> tuple[EngineSpec, EngineTables]:
    """The run's engine spec and tables (read once per :class:`RunContext`); RunDirError if
    the run scraped no engine or names one this version does not know."""
    from analyzers.context import RunContext

    ctx = RunContext.of(run)
    tables = ctx.engine_tables
    if tables is None:
        raise RunDirError(f"{ctx.path} has no engine metrics (no engine/ directory)")
    return (spec or run_spec(ctx.run)), tables


def label_match(labels: Mapping[str, str], want: Mapping[str, str]) -> bool:
    """True when every wanted label equals the sample's, or the sample lacks it."""
    return all(labels.get(k, v) == v for k, v in want.items())


def _families(engine: EngineSpec) -> set[str]:
    names = {f for spec in engine.signals.values() for f in spec.families}
    for d in engine.derived_signals.values():
        names.update(f for part in d.parts for f in part.families)
    return names


def _iter(labels: Mapping[str, str]) -> int:
    try:
        return int(labels.get("iter", -1))
    except ValueError:
        return -1


def _prepare(metrics: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """The rows of ``names`` with parsed labels and a snapshot key."""
    df = metrics[metrics["sample"].isin(set(names))].copy()
    df["lab"] = [orjson.loads(x) for x in df["labels"]]
    df["iter"] = [_iter(d) if t == _ITER else -1
                  for d, t in zip(df["lab"], df["type"], strict=True)]
    df["snap"] = list(zip(df["scrape"], df["iter"], strict=True))
    return df


def _resolve(df: pd.DataFrame, spec: SignalSpec) -> dict[tuple[int, int], float]:
    out: dict[tuple[int, int], float] = {}
    for family in spec.families:
        rows = df[df["sample"] == family]
        if spec.labels:
            rows = rows[[label_match(d, spec.labels) for d in rows["lab"]]]
        if rows.empty:
            continue
        agg = rows.groupby("snap", sort=False)["value"].agg(spec.aggregate)
        for snap, value in agg.items():
            out.setdefault(snap, float(value) * spec.scale)  # type: ignore[arg-type]
    return out


def signals_from_metrics(metrics: pd.DataFrame, engine: EngineSpec) -> pd.DataFrame:
    """The canonical signals of a metrics table (columns of ``metrics.parquet``)."""
    import pandas as pd

    df = _prepare(metrics, _families(engine))
    times = df.groupby("snap", sort=False)["t_ns"].first().to_dict()
    rows: list[tuple[int, int, str, float]] = []
    derived = engine.derived_signals
    for signal in Signal:
        values: dict[tuple[int, int], float] = {}
        spec = engine.signals.get(signal)
        if spec is not None:
            values = _resolve(df, spec)
        alt = derived.get(signal)
        if alt is not None:
            parts = [_resolve(df, p) for p in alt.parts]
            for snap in set.intersection(*(set(p) for p in parts)) - set(values):
                vals = [p[snap] for p in parts]
                if alt.op == "sum":
                    values[snap] = math.fsum(vals)
                elif vals[1] > 0:
                    values[snap] = vals[0] / vals[1]
        rows.extend((int(times[s]), s[1], signal.value, v) for s, v in values.items())
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return pd.DataFrame({
        "t_ns": pd.array([r[0] for r in rows], dtype="int64"),
        "signal": pd.array([r[2] for r in rows], dtype="object"),
        "value": pd.array([r[3] for r in rows], dtype="float64"),
    })


def engine_signals(run: RunSource, spec: EngineSpec | None = None) -> pd.DataFrame:
    """DataFrame(t_ns, signal, value): every canonical signal the engine exposed, per
    snapshot, time-ordered (``t_ns`` = the scrape's ``t_end_ns``)."""
    engine, tables = engine_inputs(run, spec)
    return signals_from_metrics(tables.metrics, engine)


# ---------------------------------------------------------------------------- windows


def counter_increase(t_ns: list[int], values: list[float], start_ns: int,
                     end_ns: int) -> tuple[float | None, int, str]:
    """How much a cumulative counter grew over [start_ns, end_ns].

    From the last reading at or before ``start_ns`` (else the first inside, with a note) to
    the last at or before ``end_ns``, adding every rise and, after a drop (the engine
    restarted and the counter began again at 0), the value after the drop. Returns
    (increase or None without two readings, resets seen, note).
    """
    base = [i for i, t in enumerate(t_ns) if t <= start_ns]
    inside = [i for i, t in enumerate(t_ns) if start_ns < t <= end_ns]
    note = ""
    if base:
        first = base[-1]
    elif inside:
        first = inside[0]
        note = (f"no reading before the window start; counted from the first one, "
                f"{(t_ns[first] - start_ns) / 1e6:.0f} ms in")
    else:
        return None, 0, "no reading in the window"
    last = inside[-1] if inside else first
    if last == first:
        return (0.0 if base and inside else None), 0, note or "one reading only"
    total, resets = 0.0, 0
    for a, b in zip(values[first:last], values[first + 1:last + 1], strict=True):
        if math.isnan(a) or math.isnan(b):
            continue
        if b >= a:
            total += b - a
        else:
            total += b
            resets += 1
    return total, resets, note


@dataclass(frozen=True, slots=True)
class EngineWindow:
    """Engine signals over [start_ns, end_ns]. None means "not exposed / not computable"."""

    start_ns: int
    end_ns: int
    n_snapshots: int
    sample_interval_s: float | None  # median gap between snapshots in the window
    max_gap_s: float | None
    failed_scrapes: int
    kv_usage_max: float | None
    kv_usage_mean: float | None
    running_max: float | None
    running_mean: float | None
    waiting_max: float | None
    waiting_mean: float | None
    prefix_cache_hits: float | None
    prefix_cache_queries: float | None
    prefix_cache_hit_rate: float | None  # hits increase / queries increase
    preemptions: float | None
    prompt_tokens: float | None
    generation_tokens: float | None
    requests_finished: float | None
    counter_resets: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def _gauge(sig: pd.DataFrame, name: Signal, start_ns: int,
           end_ns: int) -> tuple[float | None, float | None]:
    s = sig[(sig["signal"] == name.value) & (sig["t_ns"] >= start_ns) & (sig["t_ns"] <= end_ns)]
    vals = s["value"].dropna()
    if vals.empty:
        return None, None
    return float(vals.max()), float(vals.mean())


def window_from_signals(sig: pd.DataFrame, start_ns: int, end_ns: int,
                        scrapes: pd.DataFrame | None = None) -> EngineWindow:
    """:class:`EngineWindow` from an :func:`engine_signals` table (and the scrapes table, for
    the failed-scrape count)."""
    notes: list[str] = []
    incs: dict[Signal, float | None] = {}
    resets = 0
    for name in COUNTER_SIGNALS:
        s = sig[sig["signal"] == name.value]
        if s.empty:
            incs[name] = None
            continue
        inc, r, note = counter_increase(s["t_ns"].tolist(), s["value"].tolist(), start_ns,
                                        end_ns)
        incs[name] = inc
        resets += r
        if note:
            notes.append(f"{name.value}: {note}")
        if r:
            notes.append(f"{name.value}: {r} counter reset(s) (engine restart?) in the window")
    snaps = sorted(set(sig.loc[(sig["t_ns"] >= start_ns) & (sig["t_ns"] <= end_ns), "t_ns"]))
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(snaps)]
    interval = sorted(gaps)[len(gaps) // 2] if gaps else None
    max_gap = max(gaps) if gaps else None
    if interval and max_gap and max_gap > 2.5 * interval:
        notes.append(f"gauges have a {max_gap:.1f} s hole (failed or skipped scrapes); "
                     f"max/mean use the snapshots there are")
    failed = 0
    if scrapes is not None and not scrapes.empty:
        inwin = scrapes[(scrapes["t_start_ns"] >= start_ns) & (scrapes["t_start_ns"] <= end_ns)]
        failed = int((~inwin["ok"] & (inwin["outcome"] != "absent")).sum())
        if failed:
            notes.append(f"{failed} scrape(s) failed in the window")
    hits, queries = incs[Signal.PREFIX_CACHE_HITS_TOTAL], incs[Signal.PREFIX_CACHE_QUERIES_TOTAL]
    kv = _gauge(sig, Signal.KV_CACHE_USAGE_FRAC, start_ns, end_ns)
    run = _gauge(sig, Signal.REQUESTS_RUNNING, start_ns, end_ns)
    wait = _gauge(sig, Signal.REQUESTS_WAITING, start_ns, end_ns)
    return EngineWindow(
        start_ns=start_ns, end_ns=end_ns, n_snapshots=len(snaps), sample_interval_s=interval,
        max_gap_s=max_gap, failed_scrapes=failed,
        kv_usage_max=kv[0], kv_usage_mean=kv[1], running_max=run[0], running_mean=run[1],
        waiting_max=wait[0], waiting_mean=wait[1],
        prefix_cache_hits=hits, prefix_cache_queries=queries,
        prefix_cache_hit_rate=(hits / queries if hits is not None and queries else None),
        preemptions=incs[Signal.PREEMPTIONS_TOTAL],
        prompt_tokens=incs[Signal.PROMPT_TOKENS_TOTAL],
        generation_tokens=incs[Signal.GENERATION_TOKENS_TOTAL],
        requests_finished=incs[Signal.REQUESTS_FINISHED_TOTAL],
        counter_resets=resets, notes=tuple(notes),
    )


def window_over(sig: pd.DataFrame, scrapes: pd.DataFrame, start_ns: int | None = None,
                end_ns: int | None = None) -> EngineWindow:
    """:func:`window_from_signals` over [start_ns, end_ns], by default from the first scrape
    (then the counters' baseline) to the last."""
    n = len(scrapes)
    lo = start_ns if start_ns is not None else (int(scrapes["t_end_ns"].min()) if n else 0)
    hi = end_ns if end_ns is not None else (int(scrapes["t_end_ns"].max()) if n else 0)
    return window_from_signals(sig, lo, hi, scrapes)


def engine_window(run: RunSource, start_ns: int | None = None,
                  end_ns: int | None = None, spec: EngineSpec | None = None) -> EngineWindow:
    """Engine signals summarized over [start_ns, end_ns] (default: from the first scrape,
    which is then the counters' baseline, to the last)."""
    engine, tables = engine_inputs(run, spec)
    return window_over(signals_from_metrics(tables.metrics, engine), tables.scrapes, start_ns,
                       end_ns)
