"""vLLM (V1 engine; names checked against 0.33.0 source and real 0.32.0 CPU captures)."""

from __future__ import annotations

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
from servescope.engines.extensions import MetricsEndpoint

__all__ = ["VllmAdapter"]

# ``python -m MODULE`` forms that start the OpenAI-compatible server.
_MODULES = frozenset({
    "vllm.entrypoints.openai.api_server",  # deprecated but still shipped in 0.32
    "vllm.entrypoints.launchers.api_server.entry",
})
_CLI_MODULE = "vllm.entrypoints.cli.main"  # what the ``vllm`` console script runs

_SIGNALS: Mapping[Signal, SignalSpec] = MappingProxyType({
    # "perc" is historical: the value is a 0..1 fraction. Renamed from gpu_cache_usage_perc
    # in ~0.9 (PR #18354); the old name was removed in ~0.12.
    Signal.KV_CACHE_USAGE_FRAC: SignalSpec(
        ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"), aggregate="mean"),
    Signal.REQUESTS_RUNNING: SignalSpec(("vllm:num_requests_running",)),
    Signal.REQUESTS_WAITING: SignalSpec(("vllm:num_requests_waiting",)),
    Signal.PREEMPTIONS_TOTAL: SignalSpec(("vllm:num_preemptions_total",)),
    # Tokens looked up / found in the prefix cache (V1). The gpu_ names are pre-0.9.
    Signal.PREFIX_CACHE_QUERIES_TOTAL: SignalSpec(
        ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")),
    Signal.PREFIX_CACHE_HITS_TOTAL: SignalSpec(
        ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")),
    Signal.PROMPT_TOKENS_TOTAL: SignalSpec(("vllm:prompt_tokens_total",)),
    Signal.GENERATION_TOKENS_TOTAL: SignalSpec(("vllm:generation_tokens_total",)),
    Signal.REQUESTS_FINISHED_TOTAL: SignalSpec(("vllm:request_success_total",)),
})

_HISTOGRAMS: Mapping[Histogram, tuple[str, ...]] = MappingProxyType({
    Histogram.TTFT_S: ("vllm:time_to_first_token_seconds",),
    # time_per_output_token_seconds was the same per-step computation; deprecated 0.11,
    # removed 0.13 (PR #24110, #32661).
    Histogram.ITL_S: ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    Histogram.TPOT_S: ("vllm:request_time_per_output_token_seconds",),
    Histogram.E2E_S: ("vllm:e2e_request_latency_seconds",),
    Histogram.QUEUE_S: ("vllm:request_queue_time_seconds",),
    Histogram.PREFILL_S: ("vllm:request_prefill_time_seconds",),
    Histogram.DECODE_S: ("vllm:request_decode_time_seconds",),
})

_NOTES: Mapping[str, str] = MappingProxyType({
    Histogram.TTFT_S: "frontend arrival (HTTP request parsed, before tokenization) to the "
                      "frontend processing the first token; includes queueing and prefill",
    Histogram.ITL_S: "one sample per engine step per running request (a step carrying k "
                     "tokens, e.g. speculative decoding, counts once); smallest bucket 10 ms",
    Histogram.TPOT_S: "per finished request: decode time / (output tokens - 1)",
    Histogram.QUEUE_S: "engine-core QUEUED to first SCHEDULED",
    Signal.PREFIX_CACHE_QUERIES_TOTAL: "prompt tokens looked up in the prefix cache",
    Signal.KV_CACHE_USAGE_FRAC: "fraction of KV blocks in use (0..1) despite the _perc name",
})


def _match(argv: Sequence[str], i: int) -> int | None:
    tok = argv[i].rsplit("/", 1)[-1]
    if tok == "vllm" and i + 1 < len(argv) and argv[i + 1] == "serve":
        return i + 2
    mod = python_module(argv, i)
    if mod is None:
        return None
    name, j = mod
    if name in _MODULES:
        return j
    if name == _CLI_MODULE and j < len(argv) and argv[j] == "serve":
        return j + 1
    return None


_TUNING: Mapping[Knob, str] = MappingProxyType({
    Knob.KV_CACHE_SIZE: "give the KV cache more memory: raise --gpu-memory-utilization (GPU), "
                        "VLLM_CPU_KVCACHE_SPACE (GiB, vLLM-CPU), or drop "
                        "--num-gpu-blocks-override; --kv-cache-dtype fp8 halves its size per token",
    Knob.MAX_BATCH: "raise --max-num-seqs (sequences running at once)",
    Knob.PREFILL_CHUNK: "lower --max-num-batched-tokens (smaller prefill chunks per step), or "
                        "limit concurrent long prefills with --max-num-partial-prefills and "
                        "--long-prefill-token-threshold",
    Knob.PREFIX_CACHE: "enable prefix caching (--enable-prefix-caching; remove "
                       "--no-enable-prefix-caching) and keep shared prefixes identical and at "
                       "the start of the prompt",
    Knob.MAX_MODEL_LEN: "raise --max-model-len, or send shorter prompts / smaller max_tokens",
})


@dataclass(frozen=True, slots=True)
class VllmAdapter(AdapterDefaults):
    """``vllm serve MODEL ...`` or ``python -m vllm.entrypoints.openai.api_server ...``.

    Listens on ``--host`` (default: all interfaces) and ``--port`` (default 8000); ready when
    ``/health`` (engine alive, no generation) and ``/v1/models`` answer 200; Prometheus text at
    ``/metrics`` on the API port.
    """

    @property
    def name(self) -> str:
        return "vllm"

    @property
    def default_port(self) -> int:
        return 8000

    def launch(self, argv: Sequence[str]) -> Launch | None:
        return find_launch(argv, _match)

    def address(self, argv: Sequence[str]) -> tuple[str, int]:
        launch = self.launch(argv)
        args = launch.args if launch else ()
        port = parse_port(flag_value(args, "--port"), "--port", self.default_port)
        return connect_host(flag_value(args, "--host")), port

    @property
    def readiness_paths(self) -> Sequence[str]:
        return ("/health", "/v1/models")

    @property
    def api_key_env(self) -> tuple[str, ...]:
        return ("VLLM_API_KEY",)  # read when --api-key is not given

    @property
    def metrics_path(self) -> str | None:
        return "/metrics"

    @property
    def metrics_format(self) -> MetricsFormat:
        return "prometheus"

    def metrics_endpoints(
        self, argv: Sequence[str], base_url: str,  # noqa: ARG002 - Protocol signature
    ) -> tuple[MetricsEndpoint, ...]:
        return (MetricsEndpoint(base_url.rstrip("/") + "/metrics", "prometheus"),)

    def launch_warnings(self, argv: Sequence[str]) -> tuple[str, ...]:
        launch = self.launch(argv)
        args = launch.args if launch else ()
        out: list[str] = []
        if has_flag(args, "--disable-log-stats", "--disable_log_stats"):
            out.append("vLLM was started with --disable-log-stats: /metrics still answers but "
                       "engine metrics stop updating; drop the flag to get engine signals")
        if has_flag(args, "--uds"):
            out.append("vLLM listens on a Unix socket (--uds); servescope connects over TCP")
        if has_flag(args, "--config"):
            out.append("host/port are read from the command's flags only, not its --config file")
        return tuple(out)

    @property
    def signals(self) -> Mapping[Signal, SignalSpec]:
        return _SIGNALS

    @property
    def histograms(self) -> Mapping[Histogram, tuple[str, ...]]:
        return _HISTOGRAMS

    @property
    def tuning(self) -> Mapping[Knob, str]:
        return _TUNING

    @property
    def notes(self) -> Mapping[str, str]:
        return _NOTES
