"""NVIDIA Triton Inference Server with the TensorRT-LLM backend (names from Triton's and the
tensorrtllm_backend's docs; not checked against a running server)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from servescope.engines._argv import (
    Launch,
    connect_host,
    find_launch,
    flag_value,
    parse_port,
    switch_value,
    url_host,
    url_scheme,
)
from servescope.engines._argv import base_url as make_base_url
from servescope.engines._defaults import AdapterDefaults
from servescope.engines.base import Histogram, MetricsFormat, Signal, SignalSpec
from servescope.engines.extensions import DerivedSignal, MetricsEndpoint

__all__ = ["TritonAdapter"]

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


@dataclass(frozen=True, slots=True)
class TritonAdapter(AdapterDefaults):
    """``tritonserver --model-repository ...``.

    HTTP on ``--http-address`` (default all interfaces) ``--http-port`` (default 8000), ready
    when ``/v2/health/ready`` answers 200; Prometheus text at ``/metrics`` on a separate port,
    ``--metrics-port`` (default 8002), unless ``--allow-metrics=false``.
    """

    @property
    def name(self) -> str:
        return "triton"

    @property
    def default_port(self) -> int:
        return 8000

    @property
    def default_metrics_port(self) -> int:
        return 8002

    def launch(self, argv: Sequence[str]) -> Launch | None:
        return find_launch(argv, _match)

    def _args(self, argv: Sequence[str]) -> tuple[str, ...]:
        launch = self.launch(argv)
        return launch.args if launch else ()

    def address(self, argv: Sequence[str]) -> tuple[str, int]:
        args = self._args(argv)
        port = parse_port(flag_value(args, "--http-port"), "--http-port", self.default_port)
        return connect_host(flag_value(args, "--http-address")), port

    @property
    def readiness_paths(self) -> Sequence[str]:
        return ("/v2/health/ready",)

    @property
    def api_key_flags(self) -> tuple[str, ...]:
        return ()  # tritonserver's HTTP endpoint takes no bearer key

    @property
    def metrics_path(self) -> str | None:
        return "/metrics"  # on the metrics port, not the API port: see metrics_endpoints

    @property
    def metrics_format(self) -> MetricsFormat:
        return "prometheus"

    def metrics_endpoints(
        self, argv: Sequence[str], base_url: str,
    ) -> tuple[MetricsEndpoint, ...]:
        args = self._args(argv)
        if not switch_value(args, "--allow-metrics", True):
            return ()
        port = parse_port(flag_value(args, "--metrics-port"), "--metrics-port",
                          self.default_metrics_port)
        address = flag_value(args, "--metrics-address")
        host = connect_host(address) if address is not None else url_host(base_url)
        return (MetricsEndpoint(make_base_url(host, port, url_scheme(base_url)) + "/metrics",
                                "prometheus"),)

    def launch_warnings(self, argv: Sequence[str]) -> tuple[str, ...]:
        args = self._args(argv)
        out: list[str] = []
        if not switch_value(args, "--allow-metrics", True):
            out.append("tritonserver was started with --allow-metrics=false: no engine metrics")
        if not switch_value(args, "--allow-http", True):
            out.append("tritonserver was started with --allow-http=false: no HTTP endpoint")
        return tuple(out)

    @property
    def signals(self) -> Mapping[Signal, SignalSpec]:
        return _SIGNALS

    @property
    def derived_signals(self) -> Mapping[Signal, DerivedSignal]:
        return _DERIVED

    @property
    def histograms(self) -> Mapping[Histogram, tuple[str, ...]]:
        return _HISTOGRAMS

    @property
    def histogram_scale(self) -> Mapping[str, float]:
        return MappingProxyType({_FIRST_RESPONSE: 0.001})

    @property
    def notes(self) -> Mapping[str, str]:
        return _NOTES
