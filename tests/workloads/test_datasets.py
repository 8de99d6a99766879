from __future__ import annotations

import pytest

import profiler.workloads as wl
from profiler.workloads.datasets import DATASET_BUILDERS, build_sessions
from profiler.workloads.errors import WorkloadError
from profiler.workloads.spec import DATASET_KINDS, DatasetSpec


def test_registry_covers_every_dataset_kind() -> None:
    assert sorted(DATASET_BUILDERS) == sorted(DATASET_KINDS)


def test_unknown_kind_lists_valid_kinds() -> None:
    spec = DatasetSpec("synthetic")
    object.__setattr__(spec, "kind", "sharegtp")  # as if validation had been bypassed
    with pytest.raises(WorkloadError, match=r"did you mean 'sharegpt'.*valid: jsonl, multi_turn"):
        build_sessions(spec, 1, 0)


@pytest.mark.parametrize(("n", "seed", "message"), [
    (0, 0, "n must be an integer >= 1"),
    (2, -1, "seed must be an integer >= 0"),
    (True, 0, "n must be"),
])
def test_bad_n_or_seed(n: int, seed: int, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        build_sessions(DatasetSpec("synthetic"), n, seed)


def test_public_api_exports_exist() -> None:
    for name in wl.__all__:
        assert hasattr(wl, name), name
