"""TensorRT-LLM ``trtllm-serve`` (names from main-branch source snapshots, see
docs/engines.md; not pinned to a release and not checked against a running server)."""

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
    has_flag,
    parse_port,
    python_module,
)
from servescope.engines._defaults import AdapterDefaults
from servescope.engines.base import Histogram, Knob, MetricsFormat, Signal, SignalSpec
from servescope.engines.extensions import DerivedSignal, MetricsEndpoint

__all__ = ["ITER_PREFIX", "TrtllmAdapter"]

ITER_PREFIX = "trtllm_iter:"  # JSON iteration-stat fields, flattened: trtllm_iter:kvCacheStats.x

# Subcommands of trtllm-serve that start something other than the OpenAI server.
_OTHER_SUBCOMMANDS = frozenset({"disaggregated", "disaggregated_mpi_worker",
                                "mm_embedding_serve", "grpc", "visual_gen"})
_MODULE = "tensorrt_llm.commands.serve"


def _it(field: str) -> str:
    return ITER_PREFIX + field


_REUSED = SignalSpec(("trtllm_kv_cache_reused_blocks_total", _it("kvCacheStats.reusedBlocks")))
_MISSED = SignalSpec(("trtllm_kv_cache_missed_blocks_total", _it("kvCacheStats.missedBlocks")))

_SIGNALS: Mapping[Signal, SignalSpec] = MappingProxyType({
    Signal.KV_CACHE_USAGE_FRAC: SignalSpec(("trtllm_kv_cache_utilization",), aggregate="mean"),
    Signal.REQUESTS_RUNNING: SignalSpec(("trtllm_num_requests_running",
                                         _it("numActiveRequests"))),
    Signal.REQUESTS_WAITING: SignalSpec(("trtllm_num_requests_waiting",
                                         _it("numQueuedRequests"))),
    # Cumulative since the server started, in KV blocks (not tokens).
    Signal.PREFIX_CACHE_HITS_TOTAL: _REUSED,
    Signal.PROMPT_TOKENS_TOTAL: SignalSpec(("trtllm_prompt_tokens_total",)),
    Signal.GENERATION_TOKENS_TOTAL: SignalSpec(("trtllm_generation_tokens_total",)),
    Signal.REQUESTS_FINISHED_TOTAL: SignalSpec(("trtllm_request_success_total",
                                                "trtllm_num_requests_completed_total")),
    Signal.MAX_RUNNING_REQUESTS: SignalSpec(("trtllm_max_num_active_requests",
                                             _it("maxNumActiveRequests"))),
})

_DERIVED: Mapping[Signal, DerivedSignal] = MappingProxyType({
    Signal.KV_CACHE_USAGE_FRAC: DerivedSignal("ratio", (
        SignalSpec((_it("kvCacheStats.usedNumBlocks"),)),
        SignalSpec((_it("kvCacheStats.maxNumBlocks"),)))),
    Signal.PREFIX_CACHE_QUERIES_TOTAL: DerivedSignal("sum", (_REUSED, _MISSED)),
})

_HISTOGRAMS: Mapping[Histogram, tuple[str, ...]] = MappingProxyType({
    Histogram.TTFT_S: ("trtllm_time_to_first_token_seconds",),
    Histogram.TPOT_S: ("trtllm_time_per_output_token_seconds",),
    Histogram.E2E_S: ("trtllm_e2e_request_latency_seconds",),
    Histogram.QUEUE_S: ("trtllm_request_queue_time_seconds",),
    Histogram.PREFILL_S: ("trtllm_request_prefill_time_seconds",),
    Histogram.DECODE_S: ("trtllm_request_decode_time_seconds",),
})

_NOTES: Mapping[str, str] = MappingProxyType({
    Histogram.TTFT_S: "engine-side arrival to first token: HTTP parsing and tokenization are "
                      "excluded (perf_metrics server_arrival_time has them)",
    Histogram.TPOT_S: "per finished request: (last - first token) / (output tokens - 1)",
    Signal.PREFIX_CACHE_HITS_TOTAL: "KV blocks reused (blocks, not tokens)",
    Signal.PREFIX_CACHE_QUERIES_TOTAL: "KV blocks reused + missed (blocks, not tokens)",
    Signal.KV_CACHE_USAGE_FRAC: "used / max KV blocks",
})


def _match(argv: Sequence[str], i: int) -> int | None:
    if os.path.basename(argv[i]) == "trtllm-serve":
        j = i + 1
    else:
        mod = python_module(argv, i)
        if mod is None or mod[0] != _MODULE:
            return None
        j = mod[1]
    if j < len(argv) and argv[j] == "serve":
        return j + 1
    if j < len(argv) and argv[j] in _OTHER_SUBCOMMANDS:
        return None
    return j  # ``trtllm-serve MODEL ...``: serve is the default command


_TUNING: Mapping[Knob, str] = MappingProxyType({
    Knob.KV_CACHE_SIZE: "give the KV cache more memory: raise "
                        "--kv_cache_free_gpu_memory_fraction",
    Knob.MAX_BATCH: "raise --max_batch_size",
    Knob.PREFILL_CHUNK: "lower --max_num_tokens and enable chunked prefill "
                        "(enable_chunked_prefill: true in --extra_llm_api_options)",
    Knob.PREFIX_CACHE: "enable KV block reuse (kv_cache_config: enable_block_reuse: true in "
                       "--extra_llm_api_options)",
    Knob.MAX_MODEL_LEN: "raise --max_seq_len, or send shorter prompts / smaller max_tokens",
})


@dataclass(frozen=True, slots=True)
class TrtllmAdapter(AdapterDefaults):
    """``trtllm-serve [serve] MODEL ...``.

    Listens on ``--host`` (default localhost) and ``--port`` (default 8000); ready when
    ``/health`` answers 200. Metrics: JSON iteration statistics at ``/metrics`` (drained on
    read, so every body is kept; the PyTorch backend needs ``enable_iter_perf_stats: true`` in
    the ``--config``/``--extra_llm_api_options`` YAML) and Prometheus text at
    ``/prometheus/metrics`` (only with ``return_perf_metrics: true``).
    """

    @property
    def name(self) -> str:
        return "trtllm"

    @property
    def default_port(self) -> int:
        return 8000

    def launch(self, argv: Sequence[str]) -> Launch | None:
        return find_launch(argv, _match)

    def address(self, argv: Sequence[str]) -> tuple[str, int]:
        launch = self.launch(argv)
        args = launch.args if launch else ()
        port = parse_port(flag_value(args, "--port"), "--port", self.default_port)
        return connect_host(flag_value(args, "--host") or "localhost"), port

    @property
    def readiness_paths(self) -> Sequence[str]:
        return ("/health",)

    @property
    def api_key_flags(self) -> tuple[str, ...]:
        return ()  # trtllm-serve has no API-key option (commands/serve.py as read)

    @property
    def metrics_path(self) -> str | None:
        return "/metrics"

    @property
    def metrics_format(self) -> MetricsFormat:
        return "trtllm_json"

    def metrics_endpoints(
        self, argv: Sequence[str], base_url: str,  # noqa: ARG002 - Protocol signature
    ) -> tuple[MetricsEndpoint, ...]:
        base = base_url.rstrip("/")
        return (
            # The handler waits up to 2 s for stats (get_stats_async(2)), so the interval must
            # leave room for that; every body is drained on read.
            MetricsEndpoint(base + "/metrics", "trtllm_json", destructive=True,
                            min_interval_s=3.0),
            MetricsEndpoint(base + "/prometheus/metrics", "prometheus", optional=True),
        )

    def launch_warnings(self, argv: Sequence[str]) -> tuple[str, ...]:
        launch = self.launch(argv)
        if launch is None:
            return ()
        if not has_flag(launch.args, "--config", "--extra_llm_api_options"):
            backend = flag_value(launch.args, "--backend") or "pytorch"
            if backend == "pytorch":
                return ("trtllm-serve (PyTorch backend) records iteration stats only with "
                        "enable_iter_perf_stats: true in a --config YAML, and serves "
                        "/prometheus/metrics only with return_perf_metrics: true",)
        return ()

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
    def tuning(self) -> Mapping[Knob, str]:
        return _TUNING

    @property
    def notes(self) -> Mapping[str, str]:
        return _NOTES
