from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.workloads.errors import WorkloadError
from profiler.workloads.spec import (
    ARRIVAL_KINDS,
    DATASET_KINDS,
    ArrivalSpec,
    DatasetSpec,
    LengthDist,
)

N = 50_000


def _stats(values: list[int]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def test_normal_matches_mean_and_stdev() -> None:
    mean, sd = _stats(LengthDist.normal(128, 32).sample(np.random.default_rng(0), N))
    assert mean == pytest.approx(128, rel=0.01)
    assert sd == pytest.approx(32, rel=0.03)


def test_lognormal_mean_and_stdev_are_of_the_lengths_not_the_log() -> None:
    values = LengthDist.lognormal(128, 64).sample(np.random.default_rng(1), N)
    mean, sd = _stats(values)
    assert mean == pytest.approx(128, rel=0.02)
    assert sd == pytest.approx(64, rel=0.05)
    assert np.median(values) < 128  # right-skewed, unlike a normal


def test_uniform_covers_both_ends_inclusive() -> None:
    values = LengthDist.uniform(64, 256).sample(np.random.default_rng(2), N)
    assert min(values) == 64
    assert max(values) == 256
    mean, sd = _stats(values)
    assert mean == pytest.approx(160, rel=0.01)
    assert sd == pytest.approx(math.sqrt((193**2 - 1) / 12), rel=0.02)


def test_fixed_is_constant() -> None:
    assert LengthDist.fixed(17).sample(np.random.default_rng(3), 100) == [17] * 100


def test_clipping_to_min_and_max() -> None:
    values = LengthDist.normal(100, 50, lo=80, hi=120).sample(np.random.default_rng(4), 5000)
    assert min(values) == 80
    assert max(values) == 120
    assert all(isinstance(v, int) for v in values)


def test_lower_clip_keeps_lengths_at_least_one() -> None:
    values = LengthDist.normal(2, 10).sample(np.random.default_rng(5), 5000)
    assert min(values) == 1
    assert sum(v == 1 for v in values) > 1000  # much of the mass lies below 1


def test_sample_is_reproducible() -> None:
    d = LengthDist.lognormal(300, 200)
    assert d.sample(np.random.default_rng(9), 50) == d.sample(np.random.default_rng(9), 50)
    assert d.sample(np.random.default_rng(9), 50) != d.sample(np.random.default_rng(10), 50)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed:128", LengthDist("fixed", 128)),
        (" Uniform: 64 , 256 ", LengthDist("uniform", 160, min=64, max=256)),
        ("normal:128,32", LengthDist("normal", 128, 32)),
        ("lognormal:128,64", LengthDist("lognormal", 128, 64)),
        ("normal:128,32,16", LengthDist("normal", 128, 32, min=16)),
        ("lognormal:128,64,1,1024", LengthDist("lognormal", 128, 64, min=1, max=1024)),
    ],
)
def test_parse(text: str, expected: LengthDist) -> None:
    parsed = LengthDist.parse(text)
    assert parsed == expected
    assert LengthDist.parse(parsed.to_text()) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fixd:128", "did you mean 'fixed'"),
        ("gauss:1,2", "valid: fixed, uniform, normal, lognormal"),
        ("fixed", "expected fixed:N"),
        ("fixed:", "expected fixed:N"),
        ("fixed:abc", "not a number"),
        ("fixed:12.5", "integers"),
        ("fixed:0", "outside"),
        ("uniform:64", "expected"),
        ("uniform:256,64", "max must be >= 256"),
        ("normal:128", "expected"),
        ("normal:128,-1", "stdev must be >= 0"),
        ("lognormal:128,0", "stdev must be > 0"),
        ("normal:128,32,1,2,3", "expected"),
        ("normal:nan,3", "finite"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        LengthDist.parse(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "uniform", "mean": 5}, "needs max"),
        ({"kind": "uniform", "mean": 5, "min": 1, "max": 20}, r"\(min\+max\)/2"),
        ({"kind": "fixed", "mean": 5, "stdev": 1}, "no stdev"),
        ({"kind": "normal", "mean": 5, "stdev": 1, "min": 0}, "min must be >= 1"),
        ({"kind": "normal", "mean": 500, "stdev": 1, "max": 100}, "outside"),
        ({"kind": "poisson", "mean": 5}, "unknown length distribution"),
    ],
)
def test_length_dist_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        LengthDist(**kwargs)  # type: ignore[arg-type]


def test_workload_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        LengthDist.parse("nope:1")


def test_arrival_spec_valid_forms() -> None:
    assert not ArrivalSpec("closed", concurrency=4).open_loop
    assert ArrivalSpec("poisson", rate_per_s=2.5, concurrency=8).open_loop
    assert ArrivalSpec("gamma", rate_per_s=1, burstiness=0.3).burstiness == 0.3
    assert ArrivalSpec("trace", concurrency=16).kind == "trace"
    assert ARRIVAL_KINDS == ("closed", "constant", "poisson", "gamma", "trace")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "closed"}, "needs concurrency"),
        ({"kind": "closed", "concurrency": 0}, "concurrency must be >= 1"),
        ({"kind": "closed", "concurrency": 2, "rate_per_s": 1.0}, "takes no rate"),
        ({"kind": "poisson"}, "needs rate_per_s"),
        ({"kind": "constant", "rate_per_s": 0.0}, "must be > 0"),
        ({"kind": "constant", "rate_per_s": math.inf}, "finite"),
        ({"kind": "poisson", "rate_per_s": 1.0, "burstiness": 0.5}, "only applies to gamma"),
        ({"kind": "gamma", "rate_per_s": 1.0, "burstiness": 0.0}, "burstiness must be > 0"),
        ({"kind": "trace", "rate_per_s": 1.0}, "takes no rate"),
        ({"kind": "bursty", "rate_per_s": 1.0}, "valid: closed, constant"),
    ],
)
def test_arrival_spec_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        ArrivalSpec(**kwargs)  # type: ignore[arg-type]


def test_dataset_spec_defaults_and_errors() -> None:
    spec = DatasetSpec("synthetic")
    assert spec.output_len_or_default() == LengthDist("fixed", 128)
    assert spec.input_len == LengthDist("fixed", 256)
    with pytest.raises(WorkloadError, match="did you mean 'sharegpt'"):
        DatasetSpec("sharegtp")  # type: ignore[arg-type]
    with pytest.raises(WorkloadError, match=", ".join(DATASET_KINDS)):
        DatasetSpec("csv")  # type: ignore[arg-type]
    with pytest.raises(WorkloadError, match="jsonl: needs path"):
        DatasetSpec("jsonl")
    with pytest.raises(WorkloadError, match="num_groups must be >= 1"):
        DatasetSpec("shared_prefix", num_groups=0)
    with pytest.raises(WorkloadError, match="time_scale must be > 0"):
        DatasetSpec("trace", path="t.jsonl", time_scale=0)
    with pytest.raises(WorkloadError, match="think_time_s must be >= 0"):
        DatasetSpec("multi_turn", think_time_s=-1)
    with pytest.raises(WorkloadError, match="input_len must be a LengthDist"):
        DatasetSpec("synthetic", input_len="fixed:3")  # type: ignore[arg-type]
