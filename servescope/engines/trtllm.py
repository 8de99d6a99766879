"""TensorRT-LLM ``trtllm-serve`` (names from main-branch source snapshots, see docs/engines.md;
profiler window and tracing from main @070b8549 and the trtllm-serve docs, ``shared/
reference/engines.md`` §3 and ``gpu-half.md`` §C3; not pinned to a release and not checked
against a running server)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from servescope.engines._argv import python_module
from servescope.engines.base import DerivedSignal, Histogram, Knob, Signal, SignalSpec
from servescope.engines.observability import (
    HttpCall,
    OtelTracing,
    ProfilerControl,
    StepAnnotation,
    TraceFile,
)
from servescope.engines.spec import EngineSpec, FlagIs, LacksFlags, LaunchWarning, MetricsRoute

__all__ = ["ITER_PREFIX", "SPEC"]

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
    Knob.CUDA_GRAPHS: "enable CUDA graphs (cuda_graph_config with batch_sizes covering the "
                      "running batch, in --extra_llm_api_options)",
    Knob.ASYNC_SCHEDULING: "keep the overlap scheduler on (disable_overlap_scheduler: false in "
                           "--extra_llm_api_options)",
    Knob.QUANTIZATION: "an FP8 checkpoint and kv_cache_config dtype fp8: fewer bytes read per "
                       "decode step",
})


_WARNINGS = (
    LaunchWarning("trtllm-serve (PyTorch backend) records iteration stats only with "
                  "enable_iter_perf_stats: true in a --config YAML, and serves "
                  "/prometheus/metrics only with return_perf_metrics: true",
                  (LacksFlags(("--config", "--extra_llm_api_options")),
                   FlagIs("--backend", "pytorch", default="pytorch"))),
)

# gpu-half.md §C3 (main @070b8549, ~1.3.0rc: tensorrt_llm/_torch/pyexecutor/profiling.py) and
# engines.md §3.3 (docs trtllm-serve.rst @0434755f). PyTorch backend only; which release
# first has the routes is unconfirmed.
_PROFILER = ProfilerControl(
    source="TensorRT-LLM main @070b8549 (_torch/pyexecutor/profiling.py), unreleased",
    launch_flags=(),
    start=HttpCall("POST", "/start_profile"),  # 409 while a window is open
    stop=HttpCall("POST", "/stop_profile"),  # blocks until the traces are written
    body_fields=("output_dir", "num_steps", "start_step", "activities"),
    steps_field="num_steps",
    output_dir_field="output_dir",
    trace_files=(TraceFile("trtllm-trace-*-rank-*.json", "one per rank, uncompressed",
                           gzip=False),),
    step_annotations=(
        StepAnnotation(r"step\[(?P<mode>[A-Z_]+) bs=(?P<bs>\d+)(?: toks=(?P<toks>\d+))?"
                       r"(?P<detail>[^\]]*)\]",
                       ("step[EXTEND bs=4 toks=2048]", "step[DECODE bs=32]")),
    ),
    with_stack=False, record_shapes=False,
    env=MappingProxyType({
        "TLLM_TORCH_PROFILER_DIR": "output_dir when the body has none (else /tmp)",
        "TLLM_PROFILE_START_STOP": "A-B[,C-D]: iterations toggling cudaProfilerStart/Stop "
                                   "from launch (pair with nsys -c cudaProfilerApi)",
        "TLLM_TORCH_PROFILE_TRACE": "a path: torch.profiler over those iterations too "
                                    "(-rank-<N> appended)",
        "TLLM_PROFILE_RECORD_GC": "1: NVTX ranges for Python GC",
    }),
    start_body=MappingProxyType({"activities": ["CPU", "GPU"]}),  # no stack/shape options
)

# engines.md §3.4 (llmapi/tracing.py @0fb7f758): prototype. The worker's per-request span
# name was not found in the revisions read (likely llm_request, as vLLM): not given.
_OTEL = OtelTracing(
    source="TensorRT-LLM main (llmapi/tracing.py @0fb7f758), prototype",
    endpoint_flags=("--otlp_traces_endpoint",), enable_flags=(), default_endpoint=None,
    request_span=None, request_span_examples=(),
    other_spans=("disaggregated_request",),
    attributes=(
        "gen_ai.usage.completion_tokens", "gen_ai.usage.prompt_tokens",
        "gen_ai.request.max_tokens", "gen_ai.request.top_p", "gen_ai.request.top_k",
        "gen_ai.request.temperature", "gen_ai.request.id", "gen_ai.request.n",
        "gen_ai.latency.time_to_first_token", "gen_ai.latency.e2e",
        "gen_ai.latency.time_in_queue", "gen_ai.latency.kv_cache_transfer_time",
        "gen_ai.response.finish_reasons",
    ),
    env=MappingProxyType({
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc (default) or http/protobuf",
    }),
)

SPEC = EngineSpec(
    name="trtllm",
    display_name="TensorRT-LLM",
    source="main-branch source snapshots (not pinned to a release; source only)",
    # ``trtllm-serve [serve] MODEL ...``
    launcher=_match,
    default_host="localhost",
    default_port=8000,
    readiness_paths=("/health",),
    api_key_flags=(),  # trtllm-serve has no API-key option (commands/serve.py as read)
    command_warnings=_WARNINGS,
    # batch cap: the engine's own gauge (maxNumActiveRequests) is read instead of a flag
    metrics=(
        # JSON iteration statistics, drained on read: every body is kept. The handler waits
        # up to 2 s for stats (get_stats_async(2)), so the interval must leave room for that.
        MetricsRoute("/metrics", "trtllm_json", destructive=True, min_interval_s=3.0),
        # only with return_perf_metrics: true
        MetricsRoute("/prometheus/metrics", "prometheus", optional=True),
    ),
    signals=_SIGNALS,
    derived_signals=_DERIVED,
    histograms=_HISTOGRAMS,
    notes=_NOTES,
    tuning=_TUNING,
    # process titles: not set in the files read (engines.md §3.5); the GPU work runs in the
    # mpi4py-spawned worker children of trtllm-serve, recognizable only as its children
    process_roles=(),
    profiler=_PROFILER,
    otel=_OTEL,
)
