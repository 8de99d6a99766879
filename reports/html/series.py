"""What the report plots, reduced from analyzer outputs so the page stays small and fast.

Pure numpy, no plotting. A report never embeds raw per-event data (that stays in the run
directory); every reduction here says what it did, and the figures print that on the plot:

- :func:`ecdf`: an empirical CDF drawn at most ``max_points`` of its exact steps, spaced
  evenly in probability and denser in the tail (p90 and above), always including the max.
- :func:`time_edges`: one bin width for a whole time axis, a "nice" width (0.1, 0.2, 0.5,
  1, 2, 5, 10 … s) giving at most ``max_bins`` bins.
- :func:`rate_per_s`: events per second in each bin. :func:`in_flight_mean`: the
  time-weighted mean number of requests in flight in each bin (exact integral of the step
  function). :func:`binned_percentiles`: percentiles of the samples in each bin (NaN for an
  empty bin). :func:`binned_max`: a gauge's largest snapshot in each bin.
- :func:`sample_rows`: a seeded random sample of rows plus the ``keep_top`` largest values,
  so a down-sampled scatter never hides the worst requests.
- :func:`counter_increments`: a cumulative counter's increase between snapshots (a drop is a
  restart: the value after it is the increase).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Ecdf",
    "binned_max",
    "binned_percentiles",
    "counter_increments",
    "ecdf",
    "in_flight_mean",
    "rate_per_s",
    "sample_rows",
    "time_edges",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_NICE_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
           900.0, 1800.0, 3600.0)


@dataclass(frozen=True, slots=True)
class Ecdf:
    """Points ``(x[i], p[i])`` of an empirical CDF: ``p`` is the fraction of samples ≤ x."""

    x: FloatArray
    p: FloatArray
    n: int  # samples behind it

    @property
    def sampled(self) -> bool:
        return self.x.size < self.n


def ecdf(values: npt.ArrayLike, max_points: int = 400) -> Ecdf:
    """The ECDF of the finite ``values``, at most ``max_points`` of its steps."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = np.sort(v[np.isfinite(v)])
    n = int(v.size)
    if n == 0:
        return Ecdf(np.empty(0), np.empty(0), 0)
    if n <= max_points:
        idx = np.arange(n)
    else:
        body = np.linspace(0.0, 1.0, max_points * 2 // 3)
        tail = 1.0 - np.logspace(-1.0, math.log10(1.0 / n), max_points - body.size)
        levels = np.concatenate([body, tail])
        idx = np.unique(np.clip(np.round(levels * (n - 1)).astype(np.int64), 0, n - 1))
        idx = np.union1d(idx, [n - 1])
    return Ecdf(v[idx], (idx + 1) / n, n)


def time_edges(t0_ns: int, t1_ns: int, max_bins: int = 150) -> FloatArray:
    """Bin edges in seconds from ``t0_ns``, covering [t0, t1] with one nice width."""
    span_s = max((t1_ns - t0_ns) / 1e9, 1e-3)
    want = span_s / max_bins
    width = next((w for w in _NICE_S if w >= want), math.ceil(want / 3600.0) * 3600.0)
    n = max(1, math.ceil(span_s / width))
    return np.arange(n + 1, dtype=np.float64) * width


def _bin_of(t_s: FloatArray, edges: FloatArray) -> IntArray:
    """Bin index of each time (-1 outside the edges; the last edge belongs to the last bin)."""
    idx = np.searchsorted(edges, t_s, side="right") - 1
    idx = np.where(t_s == edges[-1], edges.size - 2, idx)
    return np.where((idx >= 0) & (idx < edges.size - 1), idx, -1).astype(np.int64)


def rate_per_s(t_s: npt.ArrayLike, edges: FloatArray) -> FloatArray:
    """How many of the times ``t_s`` fall in each bin, per second of bin."""
    t = np.asarray(t_s, dtype=np.float64)
    b = _bin_of(t[np.isfinite(t)], edges)
    counts = np.bincount(b[b >= 0], minlength=edges.size - 1).astype(np.float64)
    return counts / np.diff(edges)


def in_flight_mean(start_s: npt.ArrayLike, end_s: npt.ArrayLike,
                   edges: FloatArray) -> FloatArray:
    """Time-weighted mean count of intervals [start, end) open during each bin."""
    s = np.asarray(start_s, dtype=np.float64)
    e = np.asarray(end_s, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(e) & (e >= s)
    t = np.concatenate([s[ok], e[ok]])
    d = np.concatenate([np.ones(int(ok.sum())), -np.ones(int(ok.sum()))])
    if t.size == 0:
        return np.zeros(edges.size - 1)
    order = np.argsort(t, kind="stable")
    t, d = t[order], d[order]
    level = np.cumsum(d)  # on [t[k], t[k+1])
    area = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(t))])  # at t[k]

    def area_at(x: FloatArray) -> FloatArray:
        k = np.searchsorted(t, x, side="right") - 1
        before = k < 0
        k = np.clip(k, 0, t.size - 1)
        out = area[k] + level[k] * (x - t[k])
        return np.where(before, 0.0, out)

    return np.diff(area_at(edges)) / np.diff(edges)


def binned_percentiles(t_s: npt.ArrayLike, values: npt.ArrayLike, edges: FloatArray,
                       qs: tuple[float, ...] = (50.0, 99.0)) -> dict[float, FloatArray]:
    """Per bin, each percentile (numpy "linear") of the finite values in it; NaN if none."""
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(v)
    b = _bin_of(t[keep], edges)
    v = v[keep][b >= 0]
    b = b[b >= 0]
    nb = edges.size - 1
    out = {q: np.full(nb, np.nan) for q in qs}
    if v.size == 0:
        return out
    order = np.lexsort((v, b))
    b, v = b[order], v[order]
    starts = np.searchsorted(b, np.arange(nb), side="left")
    ends = np.searchsorted(b, np.arange(nb), side="right")
    for i in np.flatnonzero(ends > starts):
        seg = v[starts[i]:ends[i]]
        for q in qs:
            out[q][i] = float(np.percentile(seg, q, method="linear"))
    return out


def binned_max(t_s: npt.ArrayLike, values: npt.ArrayLike, edges: FloatArray) -> FloatArray:
    """Per bin, the largest finite value in it; NaN for a bin without one."""
    return binned_percentiles(t_s, values, edges, (100.0,))[100.0]


def sample_rows(values: npt.ArrayLike, max_rows: int, *, keep_top: int = 50,
                seed: int = 0) -> IntArray:
    """Sorted row indices: all rows when there are at most ``max_rows``, else a seeded random
    sample of ``max_rows - keep_top`` plus the ``keep_top`` rows of largest value."""
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    if n <= max_rows:
        return np.arange(n, dtype=np.int64)
    top_k = min(keep_top, max_rows)
    finite = np.where(np.isfinite(v), v, -np.inf)
    top = np.argsort(finite, kind="stable")[n - top_k:]
    rest = np.setdiff1d(np.arange(n), top)
    rng = np.random.default_rng(seed)
    pick = rng.choice(rest, size=max_rows - top_k, replace=False)
    return np.sort(np.concatenate([top, pick])).astype(np.int64)


def counter_increments(t_s: npt.ArrayLike, values: npt.ArrayLike) -> tuple[FloatArray,
                                                                         FloatArray]:
    """(time, increase since the previous snapshot) of a cumulative counter."""
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.size < 2:
        return np.empty(0), np.empty(0)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    d = np.diff(v)
    inc = np.where(d >= 0, d, v[1:])
    inc = np.where(np.isfinite(inc), inc, 0.0)
    return t[1:], inc
