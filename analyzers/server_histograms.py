"""Server-side latency percentiles from the engine's own Prometheus histograms.

For a window [start_ns, end_ns] each canonical histogram (TTFT, ITL, TPOT, E2E, queue,
prefill, decode; whichever the engine exposes) is the DIFFERENCE of its cumulative bucket
counts between the last scrape at or before ``start_ns`` and the last scrape at or before
``end_ns`` (series summed by ``le``, optionally filtered by labels). Percentiles follow
Prometheus' ``histogram_quantile``: find the bucket holding rank q·count, interpolate linearly
inside it (the first bucket starts at 0; a rank in the +Inf bucket returns the highest finite
bound). Each percentile comes with the bounds of its bucket: the true value lies there, and
the interpolated value is only as good as the bucket is narrow ("server TTFT p50 is between
10 and 20 ms").

Histograms in other units are converted to seconds with the engine spec's ``histogram_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from analyzers.engine_signals import engine_inputs, label_match

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunSource
    from servescope.engines.base import Histogram
    from servescope.engines.spec import EngineSpec
    from servescope.rundir.engine_tables import EngineTables

__all__ = [
    "HistogramDelta",
    "Percentile",
    "histogram_delta",
    "histogram_deltas",
    "histogram_quantile",
    "histogram_rows",
    "server_histograms",
]

DEFAULT_QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True, slots=True)
class Percentile:
    """``value_s`` interpolated as Prometheus does; the true value is in [lo_s, hi_s]."""

    q: float
    value_s: float
    lo_s: float
    hi_s: float


def histogram_quantile(q: float, bounds: Sequence[float],
                       cumulative: Sequence[float]) -> Percentile:
    """Prometheus ``histogram_quantile`` on sorted upper ``bounds`` (the last +Inf) and their
    cumulative counts. NaN for an empty histogram or one without a +Inf bucket."""
    nan = math.nan
    if len(bounds) < 2 or not math.isinf(bounds[-1]) or not 0 <= q <= 1:
        return Percentile(q, nan, nan, nan)
    counts = _running_max(cumulative)  # repair non-monotonic buckets, as Prometheus does
    total = counts[-1]
    if total <= 0:
        return Percentile(q, nan, nan, nan)
    rank = q * total
    b = next((i for i, c in enumerate(counts[:-1]) if c >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return Percentile(q, bounds[-2], bounds[-2], math.inf)
    if b == 0 and bounds[0] <= 0:
        return Percentile(q, bounds[0], bounds[0], bounds[0])
    start, end = (bounds[b - 1], bounds[b]) if b > 0 else (0.0, bounds[0])
    in_bucket = counts[b] - (counts[b - 1] if b > 0 else 0.0)
    below = counts[b - 1] if b > 0 else 0.0
    if in_bucket <= 0:
        return Percentile(q, end, start, end)
    return Percentile(q, start + (end - start) * ((rank - below) / in_bucket), start, end)


def _running_max(values: Sequence[float]) -> list[float]:
    out: list[float] = []
    m = -math.inf
    for v in values:
        m = max(m, v)
        out.append(m)
    return out


@dataclass(frozen=True, slots=True)
class HistogramDelta:
    """One histogram family over a window: bucket bounds (s) and cumulative count deltas."""

    family: str
    bounds_s: tuple[float, ...]
    cumulative: tuple[float, ...]
    count: float
    sum_s: float
    t_base_ns: int  # the baseline scrape's t_ns (-1: none, counted from zero)
    t_end_ns: int
    notes: tuple[str, ...] = ()

    @property
    def mean_s(self) -> float:
        return self.sum_s / self.count if self.count > 0 else math.nan

    def quantile(self, q: float) -> Percentile:
        return histogram_quantile(q, self.bounds_s, self.cumulative)


def _le(labels: Mapping[str, str]) -> float:
    return float(labels["le"])


def _snapshot(rows: pd.DataFrame, family: str) -> tuple[dict[tuple[tuple[str, str], ...],
                                                              dict[float, float]],
                                                         dict[tuple[tuple[str, str], ...], float]]:
    """Per series (labels without ``le``): {le: cumulative count}, and the series' sums."""
    buckets: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
    sums: dict[tuple[tuple[str, str], ...], float] = {}
    for sample, lab, value in zip(rows["sample"], rows["lab"], rows["value"], strict=True):
        key = tuple(sorted((k, v) for k, v in lab.items() if k != "le"))
        if sample == family + "_bucket" and "le" in lab:
            buckets.setdefault(key, {})[_le(lab)] = float(value)
        elif sample == family + "_sum":
            sums[key] = float(value)
    return buckets, sums


def _total(buckets: Mapping[tuple[tuple[str, str], ...], Mapping[float, float]]) -> float:
    return sum(max(series.values(), default=0.0) for series in buckets.values())


def _baseline(scrapes: pd.DataFrame, end_scrape: int, t_end: int,
              start_ns: int) -> tuple[int, int, str]:
    """(scrape, t_ns, note) to subtract: the last good scrape of the same endpoint at or
    before ``start_ns``; else the first one inside the window; else none (-1)."""
    ends = dict(zip(scrapes["scrape"].tolist(), scrapes["endpoint"].tolist(), strict=True))
    endpoint = ends.get(end_scrape, "")
    same = sorted((int(t), int(sc)) for sc, t, ok, ep in zip(
        scrapes["scrape"], scrapes["t_end_ns"], scrapes["ok"], scrapes["endpoint"], strict=True)
        if ok and ep == endpoint)
    before = [x for x in same if x[0] <= start_ns]
    if before:
        return before[-1][1], before[-1][0], ""
    inside = [x for x in same if start_ns < x[0] < t_end]
    if inside:
        t, sc = inside[0]
        return sc, t, (f"no scrape before the window start: counted from the first scrape, "
                       f"{(t - start_ns) / 1e6:.0f} ms in (earlier observations lost)")
    return -1, -1, ("no scrape before the window: counted from zero, which includes "
                    "anything observed before the window")


def histogram_delta(metrics: pd.DataFrame, scrapes: pd.DataFrame, family: str, start_ns: int,
                    end_ns: int, *, labels: Mapping[str, str] | None = None,
                    scale: float = 1.0) -> HistogramDelta | None:
    """The family's observations in (start_ns, end_ns], or None if no scrape in the window
    has it."""
    rows = metrics[metrics["sample"].isin((family + "_bucket", family + "_sum"))].copy()
    if rows.empty:
        return None
    rows["lab"] = [orjson.loads(x) for x in rows["labels"]]
    if labels:
        rows = rows[[label_match(d, labels) for d in rows["lab"]]]
    seen = sorted({(int(t), int(sc)) for t, sc in zip(rows["t_ns"], rows["scrape"], strict=True)
                   if t <= end_ns})
    if not seen or seen[-1][0] <= start_ns:
        return None
    t_end, end_scrape = seen[-1]
    base_scrape, t_base, note = _baseline(scrapes, end_scrape, t_end, start_ns)
    notes = [note] if note else []
    end_b, end_s = _snapshot(rows[rows["scrape"] == end_scrape], family)
    base_b, base_s = _snapshot(rows[rows["scrape"] == base_scrape], family)
    reset = _total(end_b) < _total(base_b) or any(
        end_b[k].get(math.inf, 0.0) < v.get(math.inf, 0.0) for k, v in base_b.items()
        if k in end_b)
    if reset:
        notes.append("counts went down between the two scrapes (engine restart?): only the "
                     "observations since the restart are counted")
        base_b, base_s = {}, {}
    delta: dict[float, float] = {}
    for key, series in end_b.items():
        prev = base_b.get(key, {})
        for le, c in series.items():
            delta[le] = delta.get(le, 0.0) + c - prev.get(le, 0.0)
    total_sum = sum(v - base_s.get(k, 0.0) for k, v in end_s.items())
    les = sorted(delta)
    cumulative = tuple(delta[le] for le in les)
    if les and not math.isinf(les[-1]):
        notes.append("no +Inf bucket: percentiles not computable")
    count = cumulative[-1] if cumulative else 0.0
    return HistogramDelta(
        family=family, bounds_s=tuple(le * scale if not math.isinf(le) else le for le in les),
        cumulative=cumulative, count=count, sum_s=total_sum * scale, t_base_ns=t_base,
        t_end_ns=t_end, notes=tuple(notes))


def _pname(q: float) -> str:
    return f"p{q * 100:g}".replace(".", "_")


def histogram_deltas(tables: EngineTables, spec: EngineSpec, start_ns: int | None = None,
                     end_ns: int | None = None, *, labels: Mapping[str, str] | None = None
                     ) -> dict[Histogram, HistogramDelta]:
    """Each canonical histogram the engine exposes over [start_ns, end_ns] (default: the
    first to the last scrape), from the newest family name present; ``labels`` filters the
    series on top of the spec's defaults."""
    scrapes = tables.scrapes
    lo = start_ns if start_ns is not None else (int(scrapes["t_end_ns"].min()) if len(scrapes)
                                                else 0)
    hi = end_ns if end_ns is not None else (int(scrapes["t_end_ns"].max()) if len(scrapes)
                                            else 0)
    out: dict[Histogram, HistogramDelta] = {}
    for hist, families in spec.histograms.items():
        for family in families:
            want = {**spec.histogram_labels.get(family, {}), **(labels or {})}
            d = histogram_delta(tables.metrics, scrapes, family, lo, hi, labels=want,
                                scale=spec.histogram_scale.get(family, 1.0))
            if d is not None:
                out[hist] = d
                break  # newest family name present wins
    return out


def histogram_rows(deltas: Mapping[Histogram, HistogramDelta], spec: EngineSpec, *,
                   quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
    """The table :func:`server_histograms` returns, from :func:`histogram_deltas`."""
    import pandas as pd

    rows: list[dict[str, object]] = []
    for hist, d in deltas.items():
        row: dict[str, object] = {"histogram": hist.value, "family": d.family,
                                  "count": d.count, "sum_s": d.sum_s, "mean_s": d.mean_s}
        for q in quantiles:
            p = d.quantile(q)
            name = _pname(q)
            row[f"{name}_s"], row[f"{name}_lo_s"], row[f"{name}_hi_s"] = (
                p.value_s, p.lo_s, p.hi_s)
        row["t_base_ns"], row["t_end_ns"] = d.t_base_ns, d.t_end_ns
        row["note"] = "; ".join([*([spec.notes[hist]] if hist in spec.notes else []),
                                 *d.notes])
        rows.append(row)
    return pd.DataFrame(rows)


def server_histograms(run: RunSource, start_ns: int | None = None,
                      end_ns: int | None = None, *,
                      quantiles: Sequence[float] = DEFAULT_QUANTILES,
                      labels: Mapping[str, str] | None = None,
                      spec: EngineSpec | None = None) -> pd.DataFrame:
    """One row per canonical histogram the engine exposes, over [start_ns, end_ns] (default:
    the first to the last scrape). Columns: ``histogram, family, count, sum_s, mean_s`` and,
    per quantile, ``p50_s, p50_lo_s, p50_hi_s`` ..., then ``t_base_ns, t_end_ns, note``
    (the engine's definition and anything that limits the numbers). ``labels`` filters the
    series (e.g. ``{"is_streaming": "true"}``, ``{"model": "ensemble"}``) on top of the
    spec's defaults."""
    engine, tables = engine_inputs(run, spec)
    return histogram_rows(histogram_deltas(tables, engine, start_ns, end_ns, labels=labels),
                          engine, quantiles=quantiles)
