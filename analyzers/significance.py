"""The tests behind a comparison's verdicts, and the correction for running many of them.

- :func:`rank_test`: Mann–Whitney U (two-sided, scipy) on two samples of per-request values:
  is a value of B as likely to be above a value of A as below it?
- :func:`welch_test`: Welch's t-test on two samples of slice rates (their means are the
  throughputs being compared).
- :func:`proportion_test`: Fisher's exact test on the 2×2 table (events / non-events, A / B),
  and Newcombe's hybrid-score interval (method 10 of Newcombe 1998, from two Wilson
  intervals) for the difference of the two proportions.
- :func:`adjust_pvalues`: Holm (family-wise error, the default: a gate should not cry wolf)
  or Benjamini–Hochberg (false-discovery rate, ``scipy.stats.false_discovery_control``).

Every function returns NaN where the test is undefined (too few samples, all values equal)
rather than raising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from analyzers.bootstrap import Interval

__all__ = ["Correction", "adjust_pvalues", "proportion_test", "rank_test", "welch_test"]


class Correction(StrEnum):
    HOLM = "holm"
    BH = "bh"


def _clean(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64).ravel()
    return arr[~np.isnan(arr)]


def rank_test(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sided Mann–Whitney U p-value; NaN with fewer than 2 values on a side or when every
    value is equal."""
    from scipy.stats import mannwhitneyu

    xa, xb = _clean(a), _clean(b)
    if xa.size < 2 or xb.size < 2:
        return math.nan
    if np.all(xa == xa[0]) and np.all(xb == xa[0]):
        return math.nan
    return float(mannwhitneyu(xa, xb, alternative="two-sided").pvalue)


def welch_test(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sided Welch t-test p-value; NaN with fewer than 2 values on a side or zero
    variance on both."""
    from scipy.stats import ttest_ind

    xa, xb = _clean(a), _clean(b)
    if xa.size < 2 or xb.size < 2 or (np.ptp(xa) == 0 and np.ptp(xb) == 0):
        return math.nan
    return float(ttest_ind(xa, xb, equal_var=False).pvalue)


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def proportion_test(k_a: int, n_a: int, k_b: int, n_b: int, *,
                    confidence: float = 0.95) -> tuple[Interval, float]:
    """(difference ``k_b/n_b − k_a/n_a`` with Newcombe's interval, Fisher exact p-value)."""
    from scipy.stats import fisher_exact

    if n_a < 1 or n_b < 1:
        return Interval(math.nan, math.nan, math.nan, confidence, min(n_a, n_b),
                        "no requests on a side"), math.nan
    pa, pb = k_a / n_a, k_b / n_b
    la, ua = _wilson(k_a, n_a, confidence)
    lb, ub = _wilson(k_b, n_b, confidence)
    d = pb - pa
    low = d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    p = float(fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue)
    return Interval(d, low, high, confidence, min(n_a, n_b), "Newcombe hybrid score"), p


def adjust_pvalues(pvalues: Sequence[float], method: Correction = Correction.HOLM) -> list[float]:
    """Adjusted p-values (compare each with α); NaN entries stay NaN and are not counted."""
    ps = np.asarray(pvalues, dtype=np.float64)
    out = np.full(ps.size, math.nan)
    idx = np.flatnonzero(~np.isnan(ps))
    if idx.size == 0:
        return out.tolist()
    p = ps[idx]
    if method is Correction.BH:
        from scipy.stats import false_discovery_control

        adj = np.asarray(false_discovery_control(p, method="bh"), dtype=np.float64)
    else:  # Holm step-down: p_(i) · (m − i), made monotone, capped at 1
        m = p.size
        order = np.argsort(p, kind="stable")
        stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    out[idx] = adj
    return out.tolist()
