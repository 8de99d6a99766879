from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.workloads.arrivals import arrival_offsets_ns, sweep_values
from profiler.workloads.errors import WorkloadError
from profiler.workloads.spec import ArrivalSpec

N = 40_000


def _gaps_s(spec: ArrivalSpec, seed: int = 0) -> np.ndarray:
    offsets = arrival_offsets_ns(spec, N, seed)
    assert offsets[0] == 0
    gaps = np.diff(np.asarray(offsets, dtype=np.int64))
    assert (gaps >= 0).all()
    return gaps / 1e9


def _cv(gaps: np.ndarray) -> float:
    return float(gaps.std() / gaps.mean())


def test_constant_is_exact() -> None:
    offsets = arrival_offsets_ns(ArrivalSpec("constant", rate_per_s=3.0), 7, 0)
    assert offsets == [0, 333_333_333, 666_666_667, 1_000_000_000, 1_333_333_333,
                       1_666_666_667, 2_000_000_000]
    assert arrival_offsets_ns(ArrivalSpec("constant", rate_per_s=4), 3, 99) == [
        0, 250_000_000, 500_000_000]


def test_poisson_mean_and_cv() -> None:
    gaps = _gaps_s(ArrivalSpec("poisson", rate_per_s=20.0))
    assert gaps.mean() == pytest.approx(1 / 20, rel=0.02)
    assert _cv(gaps) == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize("k", [0.25, 1.0, 4.0, 50.0])
def test_gamma_mean_is_one_over_rate_and_cv_one_over_sqrt_k(k: float) -> None:
    gaps = _gaps_s(ArrivalSpec("gamma", rate_per_s=8.0, burstiness=k), seed=3)
    assert gaps.mean() == pytest.approx(1 / 8, rel=0.03)
    assert _cv(gaps) == pytest.approx(1 / math.sqrt(k), rel=0.05)


def test_reproducible_and_seed_dependent() -> None:
    spec = ArrivalSpec("gamma", rate_per_s=5.0, burstiness=0.5)
    a = arrival_offsets_ns(spec, 500, 7)
    assert a == arrival_offsets_ns(spec, 500, 7)
    assert a != arrival_offsets_ns(spec, 500, 8)
    assert all(isinstance(v, int) for v in a)


def test_closed_and_trace_have_no_schedule() -> None:
    with pytest.raises(WorkloadError, match="closed-loop arrivals have no schedule"):
        arrival_offsets_ns(ArrivalSpec("closed", concurrency=4), 10, 0)
    with pytest.raises(WorkloadError, match="arrival_offset_ns"):
        arrival_offsets_ns(ArrivalSpec("trace"), 10, 0)
    assert arrival_offsets_ns(ArrivalSpec("poisson", rate_per_s=1.0), 0, 0) == []
    with pytest.raises(WorkloadError, match="n must be an integer >= 0"):
        arrival_offsets_ns(ArrivalSpec("poisson", rate_per_s=1.0), -1, 0)
    with pytest.raises(WorkloadError, match="seed must be an integer >= 0"):
        arrival_offsets_ns(ArrivalSpec("poisson", rate_per_s=1.0), 3, -2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2,4,8", [1, 2, 4, 8]),
        (" 0.5 , 3 ", [0.5, 3]),
        ("1:8:x2", [1, 2, 4, 8]),
        ("1:10:x2", [1, 2, 4, 8]),
        ("1:27:*3", [1, 3, 9, 27]),
        ("2:10:+2", [2, 4, 6, 8, 10]),
        ("0.1:0.5:+0.1", [0.1, 0.2, 0.3, 0.4, 0.5]),
        ("5:5:+1", [5]),
        ("1e3:4e3:x2", [1000, 2000, 4000]),
    ],
)
def test_sweep_values(text: str, expected: list[float]) -> None:
    assert sweep_values(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("1,,2", "'' is not a number"),
        ("1,two", "'two' is not a number"),
        ("0,1", "must be finite and > 0"),
        ("inf", "must be finite"),
        ("8:1:x2", "stop 1 is below start 8"),
        ("1:8:x1", "factor must be > 1"),
        ("1:8:+0", "> 0"),
        ("1:8", "expected START:STOP:xFACTOR"),
        ("1:8:^2", "expected START:STOP"),
        ("1:1e9:+1", "more than 1000 values"),
    ],
)
def test_sweep_errors(text: str, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        sweep_values(text)
