"""NVIDIA Triton Inference Server with the TensorRT-LLM backend (names from Triton's and the
tensorrtllm_backend's docs; not checked against a running server). Triton's own tracing
(``--trace-config``) and process structure were not researched: no roles, profiler or OTel
facts here."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from servescope.engines.base import DerivedSignal, Histogram, Signal, SignalSpec
from servescope.engines.spec import (
    EngineSpec,
    LaunchWarning,
    MetricsPort,
    MetricsRoute,
    SwitchedOff,
)

__all__ = ["SPEC"]

_KV = "nv_trt_llm_kv_cache_block_metrics"
_REQ = "nv_trt_llm_request_metrics"

_SIGNALS: Mapping[Signal, SignalSpec] = MappingProxyType({
    Signal.KV_CACHE_USAGE_FRAC: SignalSpec((_KV,), {"kv_cache_block_type": "fraction"},
                                           aggregate="mean"),
    Signal.REQUESTS_RUNNING: SignalSpec((_REQ,), {"request_type": "active"}),
    Signal.REQUESTS_WAITING: SignalSpec((_REQ,), {"request_type": "waiting"}),
    Signal.MAX_RUNNING_REQUESTS: SignalSpec((_REQ,), {"request_type": "max"}),
})

_DERIVED: Mapping[Signal, DerivedSignal] = MappingProxyType({
    Signal.KV_CACHE_USAGE_FRAC: DerivedSignal("ratio", (
        SignalSpec((_KV,), {"kv_cache_block_type": "used"}),
        SignalSpec((_KV,), {"kv_cache_block_type": "max"}))),
})

_FIRST_RESPONSE = "nv_inference_first_response_histogram_ms"
_HISTOGRAMS: Mapping[Histogram, tuple[str, ...]] = MappingProxyType({
    Histogram.TTFT_S: (_FIRST_RESPONSE,),
})

_NOTES: Mapping[str, str] = MappingProxyType({
    Histogram.TTFT_S: "time to the first response of a decoupled model (first delivered "
                      "chunk, not necessarily a token); one series per model: filter by "
                      "model (e.g. the ensemble) or an ensemble's steps are mixed in; needs "
                      "--metrics-config histogram_latencies=true",
    Signal.KV_CACHE_USAGE_FRAC: "kv_cache_block_type=fraction gauge of the TensorRT-LLM backend",
})


def _match(argv: Sequence[str], i: int) -> int | None:
    return i + 1 if os.path.basename(argv[i]) == "tritonserver" else None


_WARNINGS = (
    LaunchWarning("tritonserver was started with --allow-metrics=false: no engine metrics",
                  (SwitchedOff("--allow-metrics"),)),
    LaunchWarning("tritonserver was started with --allow-http=false: no HTTP endpoint",
                  (SwitchedOff("--allow-http"),)),
)

SPEC = EngineSpec(
    name="triton",
    display_name="Triton (TensorRT-LLM backend)",
    source="Triton and tensorrtllm_backend metric docs (docs only)",
    # ``tritonserver --model-repository ...``
    launcher=_match,
    default_host=None,  # all interfaces
    default_port=8000,
    host_flags=("--http-address",),
    port_flags=("--http-port",),
    readiness_paths=("/v2/health/ready",),
    api_key_flags=(),  # tritonserver's HTTP endpoint takes no bearer key
    command_warnings=_WARNINGS,
    # Prometheus text on its own port, on --metrics-address or the API's host
    metrics=(MetricsRoute("/metrics", "prometheus", off_switch="--allow-metrics",
                          port=MetricsPort("--metrics-port", 8002, "--metrics-address")),),
    signals=_SIGNALS,
    derived_signals=_DERIVED,
    histograms=_HISTOGRAMS,
    histogram_scale=MappingProxyType({_FIRST_RESPONSE: 0.001}),  # ms
    notes=_NOTES,
)
