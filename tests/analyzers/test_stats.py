from __future__ import annotations

import math

import numpy as np
import pytest

from analyzers.stats import describe


def test_describe_exact_values():
    s = describe([4.0, 1.0, 3.0, 2.0])
    assert s.count == 4
    assert s.mean == 2.5
    assert s.stdev == pytest.approx(math.sqrt(1.25))  # population stdev (ddof=0)
    assert (s.min, s.max) == (1.0, 4.0)
    # linear method: rank (n - 1) * p / 100 over the sorted values 1, 2, 3, 4
    assert s.p50 == pytest.approx(2.5)  # rank 1.5
    assert s.p90 == pytest.approx(3.7)  # rank 2.7
    assert s.p95 == pytest.approx(3.85)  # rank 2.85
    assert s.p99 == pytest.approx(3.97)  # rank 2.97
    assert s.p999 == pytest.approx(3.997)  # rank 2.997


def test_nan_samples_are_dropped():
    s = describe(np.array([np.nan, 5.0, np.nan]))
    assert s.count == 1
    assert s.mean == s.p99 == s.min == s.max == 5.0
    assert s.stdev == 0.0


@pytest.mark.parametrize("values", [[], np.array([]), [math.nan]])
def test_empty_gives_count_zero_and_nan(values):
    s = describe(values)
    assert s.count == 0
    assert all(math.isnan(v) for k, v in s.to_dict().items() if k != "count")


def test_scaled_converts_units():
    s = describe([1_000_000.0, 3_000_000.0]).scaled(1e-6)
    assert (s.count, s.mean, s.min, s.max, s.stdev) == (2, 2.0, 1.0, 3.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        s.scaled(0)
