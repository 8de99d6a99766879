"""Change points and drift in a short series of per-run values (one value per run, in time
order): the statistics behind ``servescope gate --history``.

**Step changes: binary segmentation with a permutation test.** For a segment ``x`` of ``m``
runs and each split ``k`` (at least ``min_segment`` runs on each side) the statistic is the
weighted mean difference ``|mean(x[:k]) − mean(x[k:])| · sqrt(k (m − k) / m)`` (a CUSUM
statistic); ``T`` is its maximum over ``k``. Its p-value is the share of random orderings of
the same values whose ``T`` is at least as large (``scipy.stats.permutation_test``; exact
for ``m ≤ 7``): if the order of the runs does not matter, no split stands out. A significant
split whose relative shift is at least ``min_effect`` is a change point; both halves are then
searched the same way. A shift that came and went in the middle of a short series has no
single split that stands out and is not reported: the gate cares about where the series ends.

**Drift: Kendall's tau and the Theil–Sen slope** (``scipy.stats.kendalltau``,
``scipy.stats.theilslopes``) of the values against the run index: a monotone trend, however
gradual, and its size per run. A slow drift (+2 % a run over 10 runs) often has no single
split that stands out in a short series, but it has a trend.

Both tests are run per series; the caller (``analyzers.history``) corrects their p-values
across series. Power depends on the noise between runs: with ten runs, a step or a total drift
of about three times the run-to-run standard deviation is found nearly always (the tests in
``tests/analyzers/test_changepoint.py`` measure it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ChangePoint", "SeriesChanges", "Trend", "cusum_test", "detect_changes",
           "effect"]

_FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    index: int  # first run of the new segment
    before_mean: float
    after_mean: float
    effect: float  # after vs before: relative (after / before − 1) or a difference
    p_value: float


@dataclass(frozen=True, slots=True)
class Trend:
    slope_per_run: float  # Theil–Sen slope, in the series' unit per run
    total_effect: float  # slope × (n − 1), relative to the median level or as a difference
    p_value: float  # Kendall's tau, two-sided


@dataclass(frozen=True, slots=True)
class SeriesChanges:
    """Change points (sorted by index) and the trend; ``p_value`` is the smaller of the first
    split's and the trend's, times two (Bonferroni over the two tests)."""

    change_points: tuple[ChangePoint, ...]
    trend: Trend | None
    first_split: ChangePoint | None  # the most significant split, kept even when too small
    p_value: float


def effect(before: float, after: float, relative: bool) -> float:
    if not relative:
        return after - before
    return after / before - 1.0 if before else math.nan


def _cusum(x: _FloatArray, min_segment: int) -> tuple[_FloatArray, _FloatArray]:
    """T per row of ``x`` (shape (..., m)) and the split k that attains it."""
    m = x.shape[-1]
    ks = np.arange(min_segment, m - min_segment + 1)
    csum = np.cumsum(x, axis=-1)
    total = csum[..., -1:]
    left = csum[..., ks - 1] / ks
    right = (total - csum[..., ks - 1]) / (m - ks)
    d = np.abs(left - right) * np.sqrt(ks * (m - ks) / m)
    return d.max(axis=-1), ks[d.argmax(axis=-1)].astype(np.float64)


def cusum_test(x: Sequence[float] | _FloatArray, *, min_segment: int = 2,
               n_permutations: int = 2000, seed: int = 0) -> tuple[int, float]:
    """(best split k, permutation p-value) of one segment; (-1, NaN) when too short."""
    from scipy.stats import permutation_test

    arr = np.asarray(x, dtype=np.float64)
    m = arr.size
    if m < 2 * min_segment or np.ptp(arr) == 0:
        return -1, math.nan
    k = _cusum(arr, min_segment)[1]

    def stat(v: _FloatArray, order: _FloatArray, axis: int = -1) -> _FloatArray:
        del axis
        ordered = np.take_along_axis(v, np.argsort(order, axis=-1), axis=-1)
        return _cusum(ordered, min_segment)[0]

    res = permutation_test((arr, np.arange(m, dtype=np.float64)), stat,
                           permutation_type="pairings", vectorized=True,
                           n_resamples=n_permutations, alternative="greater", rng=seed)
    return int(k), float(res.pvalue)


def _trend(x: _FloatArray, relative: bool) -> Trend | None:
    from scipy.stats import kendalltau, theilslopes

    if x.size < 4 or np.ptp(x) == 0:
        return None
    t = np.arange(x.size, dtype=np.float64)
    slope = float(theilslopes(x, t).slope)
    level = float(np.median(x))
    total = slope * (x.size - 1)
    total_eff = (total / level if level else math.nan) if relative else total
    return Trend(slope, total_eff, float(kendalltau(t, x).pvalue))


def detect_changes(values: npt.ArrayLike, *, relative: bool = True, alpha: float = 0.05,
                   min_effect: float = 0.05, min_segment: int = 2,
                   n_permutations: int = 2000, seed: int = 0) -> SeriesChanges:
    """Change points and trend of ``values`` (NaN runs are dropped; indices refer to the
    remaining runs). ``min_effect`` is relative when ``relative`` (0.05 = 5 %), else a
    difference in the values' unit."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    found: list[ChangePoint] = []
    first: list[ChangePoint] = []

    def split(lo: int, hi: int) -> None:
        k, p = cusum_test(x[lo:hi], min_segment=min_segment, n_permutations=n_permutations,
                          seed=seed)
        if k < 0:
            return
        before, after = float(x[lo:lo + k].mean()), float(x[lo + k:hi].mean())
        cp = ChangePoint(lo + k, before, after, effect(before, after, relative), p)
        if not first:
            first.append(cp)
        if p < alpha and abs(cp.effect) >= min_effect:
            found.append(cp)
            split(lo, lo + k)
            split(lo + k, hi)

    split(0, x.size)
    trend = _trend(x, relative)
    ps = [first[0].p_value if first else math.nan, trend.p_value if trend else math.nan]
    finite = [p for p in ps if not math.isnan(p)]
    p_value = min(1.0, 2 * min(finite)) if finite else math.nan
    return SeriesChanges(tuple(sorted(found, key=lambda c: c.index)), trend,
                         first[0] if first else None, p_value)
