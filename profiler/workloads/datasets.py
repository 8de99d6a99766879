"""Build the sessions of a dataset: one registry from dataset kind to builder.

A builder takes the spec, the number of sessions, the tokenizer and the random generator, and
returns sessions numbered ``0..n-1``. All randomness comes from
``numpy.random.default_rng(seed)``, so a seed gives the same sessions byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from profiler.workloads.errors import WorkloadError
from profiler.workloads.files import build_jsonl, build_sharegpt
from profiler.workloads.sessions import Session
from profiler.workloads.spec import DatasetSpec, unknown_name
from profiler.workloads.synthetic import build_multi_turn, build_shared_prefix, build_synthetic
from profiler.workloads.tokenizer import Tokenizer, load_tokenizer
from profiler.workloads.traces import build_trace

__all__ = ["DATASET_BUILDERS", "DatasetBuilder", "build_sessions"]

DatasetBuilder = Callable[[DatasetSpec, int, Tokenizer, np.random.Generator], list[Session]]

DATASET_BUILDERS: dict[str, DatasetBuilder] = {
    "synthetic": build_synthetic,
    "jsonl": build_jsonl,
    "sharegpt": build_sharegpt,
    "shared_prefix": build_shared_prefix,
    "multi_turn": build_multi_turn,
    "trace": build_trace,
}


def build_sessions(
    spec: DatasetSpec, n: int, seed: int, tokenizer: Tokenizer | None = None
) -> list[Session]:
    """``n`` sessions of the dataset ``spec`` describes, reproducible from ``seed``.

    ``tokenizer`` reuses an already loaded tokenizer; by default ``spec.tokenizer`` is loaded
    (``None`` there means the approximate ``words`` counter).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WorkloadError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkloadError(f"seed must be an integer >= 0, got {seed!r}")
    builder = DATASET_BUILDERS.get(spec.kind)
    if builder is None:
        raise unknown_name("dataset kind", spec.kind, sorted(DATASET_BUILDERS))
    tok = tokenizer if tokenizer is not None else load_tokenizer(spec.tokenizer)
    return builder(spec, n, tok, np.random.default_rng(seed))
