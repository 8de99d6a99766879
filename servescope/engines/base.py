"""The vocabulary engine specs are written in: canonical signals, histograms and knobs, and
how one canonical signal is read from an engine's own metric families.

Every :class:`~servescope.engines.spec.EngineSpec` maps its engine's names onto these; the
analyzers speak only this vocabulary, so a run of any engine is analysed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

__all__ = [
    "DerivedSignal",
    "Histogram",
    "Knob",
    "MetricsFormat",
    "Signal",
    "SignalSpec",
]

MetricsFormat = Literal["prometheus", "trtllm_json", "none"]


class Signal(StrEnum):
    """Canonical engine signals; the unit is in the name."""

    KV_CACHE_USAGE_FRAC = "kv_cache_usage_frac"  # gauge, 0..1
    REQUESTS_RUNNING = "requests_running"  # gauge
    REQUESTS_WAITING = "requests_waiting"  # gauge
    PREEMPTIONS_TOTAL = "preemptions_total"  # counter (SGLang: retractions)
    PREFIX_CACHE_QUERIES_TOTAL = "prefix_cache_queries_total"  # counter (tokens or blocks)
    PREFIX_CACHE_HITS_TOTAL = "prefix_cache_hits_total"  # counter, same unit as queries
    PROMPT_TOKENS_TOTAL = "prompt_tokens_total"  # counter
    GENERATION_TOKENS_TOTAL = "generation_tokens_total"  # counter
    REQUESTS_FINISHED_TOTAL = "requests_finished_total"  # counter
    MAX_RUNNING_REQUESTS = "max_running_requests"  # gauge/config: the batch cap


class Knob(StrEnum):
    """Engine settings the bottleneck rules recommend changing; each spec names its own
    flags for them (``EngineSpec.tuning``)."""

    KV_CACHE_SIZE = "kv_cache_size"  # memory given to the KV cache
    MAX_BATCH = "max_batch"  # most sequences running at once
    PREFILL_CHUNK = "prefill_chunk"  # tokens per scheduler step / chunked prefill
    PREFIX_CACHE = "prefix_cache"  # reuse of shared prompt prefixes
    MAX_MODEL_LEN = "max_model_len"  # longest prompt + output accepted
    CUDA_GRAPHS = "cuda_graphs"  # capture the step in CUDA graphs (launch-bound steps)
    ASYNC_SCHEDULING = "async_scheduling"  # overlap the scheduler's CPU work with the GPU
    QUANTIZATION = "quantization"  # fewer bytes per weight / KV entry (memory-bound decode)


class Histogram(StrEnum):
    """Canonical server-side latency histograms (seconds, Prometheus cumulative buckets)."""

    TTFT_S = "server_ttft_s"
    ITL_S = "server_itl_s"
    TPOT_S = "server_tpot_s"
    E2E_S = "server_e2e_s"
    QUEUE_S = "server_queue_s"
    PREFILL_S = "server_prefill_s"
    DECODE_S = "server_decode_s"


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """Where a canonical signal comes from: the first of ``families`` present in a scrape
    (newest name first, renamed older ones after), optionally restricted to samples whose
    labels include ``labels``, multiplied by ``scale``. Several matching series (e.g. one per
    engine/DP rank) are summed for counters and running/waiting gauges, and averaged for
    fractions (``aggregate``)."""

    families: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    scale: float = 1.0
    aggregate: Literal["sum", "mean", "max"] = "sum"


@dataclass(frozen=True, slots=True)
class DerivedSignal:
    """A canonical signal computed from several specs when no direct family is present:
    ``sum`` adds the parts (TensorRT-LLM prefix-cache queries = reused + missed blocks),
    ``ratio`` divides the first by the second (KV usage = used / max blocks)."""

    op: Literal["sum", "ratio"]
    parts: tuple[SignalSpec, ...]
