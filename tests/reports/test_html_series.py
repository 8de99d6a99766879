"""The reductions behind the report's plots, against brute-force answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reports.html.series import (
    binned_max,
    binned_percentiles,
    counter_increments,
    ecdf,
    in_flight_mean,
    rate_per_s,
    sample_rows,
    time_edges,
)


def test_ecdf_small_sample_is_every_step():
    c = ecdf([3.0, 1.0, np.nan, 2.0])
    assert c.x.tolist() == [1.0, 2.0, 3.0]
    assert c.p.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert c.n == 3
    assert not c.sampled


def test_ecdf_large_sample_keeps_exact_steps_and_the_tail():
    v = np.random.default_rng(1).lognormal(0, 1, 100_000)
    c = ecdf(v, max_points=400)
    assert c.sampled
    assert c.x.size <= 401
    s = np.sort(v)
    idx = np.round(c.p * v.size).astype(int) - 1
    assert np.array_equal(c.x, s[idx])  # every point is an exact step of the ECDF
    assert c.x[-1] == s[-1]
    assert c.p[-1] == 1.0
    assert (c.p >= 0.999).sum() >= 20  # the tail is drawn densely


def test_ecdf_empty():
    c = ecdf([np.nan])
    assert c.n == 0
    assert c.x.size == 0


@pytest.mark.parametrize(("span_s", "bins", "width"), [
    (14.6, 150, 0.1), (14.6, 10, 2.0), (300.0, 120, 5.0), (0.0, 100, 0.1), (7200, 100, 120.0)])
def test_time_edges_nice_widths(span_s, bins, width):
    e = time_edges(0, int(span_s * 1e9), bins)
    assert e[0] == 0
    assert e[1] - e[0] == pytest.approx(width)
    assert e[-1] >= span_s
    assert e.size - 1 <= max(bins, 1) or span_s == 0


def test_rate_per_s_counts_per_second():
    edges = np.array([0.0, 0.5, 1.0])
    assert rate_per_s([0.1, 0.2, 0.6, 1.0, 5.0], edges).tolist() == [4.0, 4.0]


def test_in_flight_mean_is_the_time_weighted_mean():
    starts = np.array([0.0, 0.25, 1.5])
    ends = np.array([1.0, 0.75, 2.0])
    edges = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    got = in_flight_mean(starts, ends, edges)
    t = np.linspace(0, 2, 200_001)[:-1] + 0.5e-5  # brute force: sample the step function
    level = ((t[:, None] >= starts) & (t[:, None] < ends)).sum(axis=1)
    want = [level[(t >= a) & (t < b)].mean() for a, b in itertools.pairwise(edges)]
    assert got == pytest.approx(want, abs=1e-3)
    assert got.tolist() == pytest.approx([1.5, 1.5, 0.0, 1.0])


def test_binned_percentiles_and_max():
    t = np.array([0.1, 0.2, 0.3, 0.7, 5.0])
    v = np.array([1.0, 2.0, 3.0, 10.0, 99.0])
    edges = np.array([0.0, 0.5, 1.0, 1.5])
    p = binned_percentiles(t, v, edges, (50.0, 99.0))
    assert p[50.0][:2].tolist() == [2.0, 10.0]
    assert np.isnan(p[50.0][2])
    assert p[99.0][0] == pytest.approx(np.percentile([1, 2, 3], 99))
    assert binned_max(t, v, edges)[:2].tolist() == [3.0, 10.0]


def test_sample_rows_keeps_the_largest_and_is_seeded():
    v = np.arange(10_000, dtype=float)
    rows = sample_rows(v, 2000, keep_top=50, seed=3)
    assert rows.size == 2000
    assert np.all(np.diff(rows) > 0)
    assert set(range(9950, 10_000)) <= set(rows.tolist())
    assert np.array_equal(rows, sample_rows(v, 2000, keep_top=50, seed=3))
    assert sample_rows(v[:10], 2000).tolist() == list(range(10))


def test_counter_increments_survive_a_reset():
    t, inc = counter_increments([3.0, 1.0, 2.0, 4.0], [5.0, 0.0, 2.0, 1.0])
    assert t.tolist() == [2.0, 3.0, 4.0]
    assert inc.tolist() == [2.0, 3.0, 1.0]  # 0→2, 2→5, then a restart: 1 counts
