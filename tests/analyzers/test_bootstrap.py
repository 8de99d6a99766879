"""Bootstrap intervals against ground truth: exact estimates, the weighted-percentile shortcut
against materialized resamples, and coverage of known population values over many seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from analyzers.bootstrap import (
    _prepare,
    _weighted_percentiles,
    mean_ratio_ci,
    percentile_cis,
    relative_change_cis,
)

QS = (50.0, 90.0, 99.0)


@pytest.mark.parametrize("clustered", [False, True])
def test_resample_percentiles_equal_numpy_on_the_materialized_resample(clustered: bool) -> None:
    rng = np.random.default_rng(3)
    values = rng.exponential(size=257)
    labels = rng.integers(0, 40, size=values.size) if clustered else None
    s = _prepare(values, labels)
    drawn = rng.integers(0, s.n_clusters, size=(7, s.n_clusters))
    got = _weighted_percentiles(s, drawn, (0.0, 12.5, *QS, 100.0))
    for r in range(drawn.shape[0]):
        if labels is not None:
            inverse = np.unique(labels, return_inverse=True)[1]
            sample = np.concatenate([values[inverse == c] for c in drawn[r]])
        else:
            sample = np.sort(values)[drawn[r]]
        np.testing.assert_allclose(got[:, r], np.percentile(sample, (0.0, 12.5, *QS, 100.0)),
                                   rtol=0, atol=1e-12)


def test_estimate_is_the_reported_percentile_and_nan_is_dropped():
    x = np.array([5.0, 1.0, math.nan, 3.0, 2.0, 4.0])
    cis = percentile_cis(x, QS, n_resamples=200)
    for q in QS:
        assert cis[q].estimate == np.percentile([1, 2, 3, 4, 5], q)
        assert cis[q].low <= cis[q].estimate <= cis[q].high
        assert cis[q].n == 5
        assert cis[q].confidence == 0.95


@pytest.mark.parametrize("values", [[], [7.0], [math.nan, 7.0]])
def test_fewer_than_two_samples_give_nan_bounds_saying_why(values):
    ci = percentile_cis(values, [50])[50.0]
    assert math.isnan(ci.low)
    assert math.isnan(ci.high)
    assert "no interval" in ci.method


def test_one_cluster_gives_nan_bounds():
    ci = percentile_cis([1.0, 2.0, 3.0], [50], clusters=[9, 9, 9])[50.0]
    assert ci.estimate == 2.0
    assert math.isnan(ci.low)
    assert "one cluster" in ci.method


def test_same_seed_same_interval_other_seed_other_interval():
    x = np.random.default_rng(0).lognormal(size=500)
    a = percentile_cis(x, QS, seed=1)
    assert a == percentile_cis(x, QS, seed=1)
    assert a != percentile_cis(x, QS, seed=2)


def test_singleton_clusters_are_the_plain_bootstrap():
    """One cluster per value, labelled by the value's rank (so cluster k is the k-th smallest
    value, as in the unclustered path): the same draws give the same interval."""
    x = np.random.default_rng(5).lognormal(size=300)
    plain = percentile_cis(x, QS, seed=4)
    single = percentile_cis(x, QS, seed=4, clusters=np.argsort(np.argsort(x)))
    for q in QS:
        assert (plain[q].low, plain[q].high) == (single[q].low, single[q].high)


def test_clusters_must_match_values():
    with pytest.raises(ValueError, match="one label per value"):
        percentile_cis([1.0, 2.0, 3.0], [50], clusters=[1, 2])


def test_small_tail_is_flagged():
    ci = percentile_cis(np.arange(100.0), [99])[99.0]
    assert "interval too narrow" in ci.method


def test_coverage_of_known_lognormal_percentiles_is_near_nominal():
    """Across 200 independent samples of 400 lognormal values, the 95 % interval contains the
    true median and p90 about 95 % of the time (binomial sd at 200 trials: 1.5 %)."""
    truth = {50.0: 1.0, 90.0: math.exp(norm.ppf(0.9))}
    hits = dict.fromkeys(truth, 0)
    trials = 200
    for seed in range(trials):
        x = np.random.default_rng(10_000 + seed).lognormal(size=400)
        cis = percentile_cis(x, list(truth), n_resamples=500, seed=seed)
        for q, t in truth.items():
            hits[q] += cis[q].contains(t)
    for q in truth:
        assert 0.90 <= hits[q] / trials <= 0.99, (q, hits[q] / trials)


def test_cluster_bootstrap_covers_correlated_samples_where_the_naive_one_does_not():
    """30 "requests" of 20 samples each: a shared per-request offset (sd 1) plus noise (sd
    0.3), so the pooled samples are ~N(0, 1.09) but strongly correlated within a request. The
    true median is 0. A naive bootstrap treats 600 samples as independent and is far too
    narrow; resampling whole requests is not."""
    trials = 150
    naive = clustered = 0
    labels = np.repeat(np.arange(30), 20)
    for seed in range(trials):
        rng = np.random.default_rng(20_000 + seed)
        x = rng.normal(size=30)[labels] + 0.3 * rng.normal(size=labels.size)
        naive += percentile_cis(x, [50], n_resamples=400, seed=seed)[50.0].contains(0.0)
        clustered += percentile_cis(x, [50], n_resamples=400, seed=seed,
                                    clusters=labels)[50.0].contains(0.0)
    assert naive / trials < 0.6, naive / trials
    assert clustered / trials >= 0.88, clustered / trials


def test_relative_change_of_a_scaled_copy_is_exact_and_inside_the_interval():
    a = np.random.default_rng(1).lognormal(size=1000)
    cis = relative_change_cis(a, a * 1.2, QS)
    for q in QS:
        assert cis[q].estimate == pytest.approx(0.2, abs=1e-12)
        assert cis[q].low < 0.2 < cis[q].high
        assert cis[q].n == 1000


def test_relative_change_coverage_for_independent_samples():
    """B's population is A's scaled by 1.2: the true change of every percentile is +20 %."""
    trials, hits = 150, 0
    for seed in range(trials):
        rng = np.random.default_rng(30_000 + seed)
        a, b = rng.lognormal(size=400), 1.2 * rng.lognormal(size=400)
        hits += relative_change_cis(a, b, [50], n_resamples=400, seed=seed)[50.0].contains(0.2)
    assert 0.90 <= hits / trials <= 0.99, hits / trials


def test_relative_change_with_a_zero_baseline_percentile_is_undefined():
    cis = relative_change_cis([0.0, 0.0, 0.0, 1.0], [1.0, 2.0, 3.0, 4.0], [50, 99])
    assert math.isnan(cis[50.0].estimate)
    assert "relative change undefined" in cis[50.0].method
    assert not math.isnan(cis[99.0].estimate)


def test_relative_change_needs_two_samples_each():
    ci = relative_change_cis([1.0], [1.0, 2.0], [50])[50.0]
    assert math.isnan(ci.low)
    assert ci.method.startswith("A: ")


def test_mean_ratio_interval_covers_the_true_ratio():
    trials, hits = 100, 0
    for seed in range(trials):
        rng = np.random.default_rng(40_000 + seed)
        a, b = rng.normal(100, 5, 10), rng.normal(90, 5, 10)
        hits += mean_ratio_ci(a, b, seed=seed).contains(-0.1)
    assert hits / trials >= 0.85, hits / trials


def test_mean_ratio_of_constant_slices():
    ci = mean_ratio_ci([2.0, 2.0, 2.0], [3.0, 3.0, 3.0])
    assert ci.estimate == pytest.approx(0.5)
    assert ci.low == pytest.approx(0.5)
    assert ci.high == pytest.approx(0.5)
