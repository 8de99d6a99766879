"""Workloads: what to send (datasets → sessions) and when (arrival schedules), seeded.

The driver consumes :class:`Session` lists from :func:`build_sessions` and, for open-loop
runs, offsets from :func:`arrival_offsets_ns`. The same seed gives the same workload byte for
byte.
"""

from __future__ import annotations

from profiler.workloads.arrivals import arrival_offsets_ns, sweep_values
from profiler.workloads.datasets import DATASET_BUILDERS, build_sessions
from profiler.workloads.errors import WorkloadError
from profiler.workloads.sessions import Session, TokenCountSource, Turn, with_arrivals
from profiler.workloads.spec import (
    DEFAULT_OUTPUT_LEN,
    ArrivalSpec,
    DatasetSpec,
    LengthDist,
)
from profiler.workloads.tokenizer import HFTokenizer, Tokenizer, WordsTokenizer, load_tokenizer

__all__ = [
    "DATASET_BUILDERS",
    "DEFAULT_OUTPUT_LEN",
    "ArrivalSpec",
    "DatasetSpec",
    "HFTokenizer",
    "LengthDist",
    "Session",
    "TokenCountSource",
    "Tokenizer",
    "Turn",
    "WordsTokenizer",
    "WorkloadError",
    "arrival_offsets_ns",
    "build_sessions",
    "load_tokenizer",
    "sweep_values",
    "with_arrivals",
]
