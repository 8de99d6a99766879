"""SGLang (names from the 0.5.23 wheel and ``srt/observability/metrics_collector.py`` on main;
profiler window, process titles and tracing from the 0.5.23 wheel, ``shared/reference/
engines.md`` §2 and ``gpu-half.md`` §C2/§D; not checked against a running server)."""

from __future__ import annotations

import os
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
from servescope.engines.spec import (
    EngineSpec,
    HasFlag,
    LacksFlags,
    LaunchWarning,
    MetricsRoute,
)

__all__ = ["SPEC"]

# Scheduler metrics come from the attention-TP-rank-0 scheduler of each DP rank (or from every
# rank with --enable-metrics-for-all-schedulers, which would double-count a sum): keep rank 0.
# A label a sample does not carry does not filter it, so older versions without tp_rank match.
_SCHED = {"tp_rank": "0", "pp_rank": "0"}
# With priority scheduling the running/queue gauges carry the total under priority="" and a
# per-priority breakdown under priority="<n>": keep the total only.
_QUEUE = {**_SCHED, "priority": ""}

_SIGNALS: Mapping[Signal, SignalSpec] = MappingProxyType({
    # max(full, swa, mamba) pool usage, 0..1
    Signal.KV_CACHE_USAGE_FRAC: SignalSpec(("sglang:token_usage",), _SCHED, aggregate="mean"),
    Signal.REQUESTS_RUNNING: SignalSpec(("sglang:num_running_reqs",), _QUEUE),
    Signal.REQUESTS_WAITING: SignalSpec(("sglang:num_queue_reqs",), _QUEUE),
    # Retractions are SGLang's preemptions.
    Signal.PREEMPTIONS_TOTAL: SignalSpec(("sglang:num_retracted_requests_total",), _SCHED),
    # Both counted by the tokenizer manager when a request finishes, in tokens; cached tokens
    # are split by cache_source (device/host/storage_*, or "total" on older paths), one per
    # request, so the sum over sources is the request's cached tokens.
    Signal.PREFIX_CACHE_QUERIES_TOTAL: SignalSpec(("sglang:prompt_tokens_total",)),
    Signal.PREFIX_CACHE_HITS_TOTAL: SignalSpec(("sglang:cached_tokens_total",)),
    Signal.PROMPT_TOKENS_TOTAL: SignalSpec(("sglang:prompt_tokens_total",)),
    Signal.GENERATION_TOKENS_TOTAL: SignalSpec(("sglang:generation_tokens_total",)),
    Signal.REQUESTS_FINISHED_TOTAL: SignalSpec(("sglang:num_requests_total",)),
})

_HISTOGRAMS: Mapping[Histogram, tuple[str, ...]] = MappingProxyType({
    Histogram.TTFT_S: ("sglang:time_to_first_token_seconds",),
    Histogram.ITL_S: ("sglang:inter_token_latency_seconds",),
    Histogram.TPOT_S: ("sglang:request_time_per_output_token_seconds",),
    Histogram.E2E_S: ("sglang:e2e_request_latency_seconds",),
    Histogram.QUEUE_S: ("sglang:queue_time_seconds",),
})

_NOTES: Mapping[str, str] = MappingProxyType({
    Histogram.TTFT_S: "tokenizer-manager receive time to the first output batch it sees; "
                      "default buckets start at 100 ms, so low TTFTs are coarse",
    Histogram.ITL_S: "per token: the gap between two output batches divided by the new "
                     "tokens and counted that many times (spec decoding normalised)",
    Histogram.QUEUE_S: "waiting-queue entry to first forward",
    Signal.PREEMPTIONS_TOTAL: "retracted requests (SGLang's preemption)",
    Signal.PREFIX_CACHE_HITS_TOTAL: "cached prompt tokens of finished requests",
    Signal.KV_CACHE_USAGE_FRAC: "token_usage: the most used of the full/SWA/mamba pools",
})

_SERVER_MODULES = frozenset({"sglang.launch_server"})


def _match(argv: Sequence[str], i: int) -> int | None:
    if os.path.basename(argv[i]) == "sglang" and i + 1 < len(argv):
        if argv[i + 1] == "serve":
            return i + 2
        if argv[i + 1].startswith("--"):  # older ``sglang --model-path ...`` (no subcommand)
            return i + 1
        return None
    mod = python_module(argv, i)
    if mod is not None and mod[0] in _SERVER_MODULES:
        return mod[1]
    return None


_TUNING: Mapping[Knob, str] = MappingProxyType({
    Knob.KV_CACHE_SIZE: "give the KV cache more memory: raise --mem-fraction-static, or "
                        "--kv-cache-dtype fp8_e5m2",
    Knob.MAX_BATCH: "raise --max-running-requests",
    Knob.PREFILL_CHUNK: "lower --chunked-prefill-size (smaller prefill chunks per step)",
    Knob.PREFIX_CACHE: "keep the radix cache on (remove --disable-radix-cache) and use "
                       "--schedule-policy lpm so requests sharing a prefix run together",
    Knob.MAX_MODEL_LEN: "raise --context-length, or send shorter prompts / smaller max_tokens",
    Knob.CUDA_GRAPHS: "keep CUDA graphs on (remove --disable-cuda-graph) and raise "
                      "--cuda-graph-max-bs to the running batch",
    Knob.ASYNC_SCHEDULING: "keep the overlap scheduler on (remove --disable-overlap-schedule)",
    Knob.QUANTIZATION: "--kv-cache-dtype fp8_e5m2 and an FP8 checkpoint (--quantization fp8): "
                       "fewer bytes read per decode step",
})


_WARNINGS = (
    LaunchWarning("SGLang serves /metrics only with --enable-metrics; add it to the command to "
                  "get engine signals and server-side histograms",
                  (LacksFlags(("--enable-metrics",)),)),
    LaunchWarning("--enable-metrics-for-all-schedulers: servescope reads rank-0 schedulers only "
                  "(tp_rank=0, pp_rank=0) to avoid double counting",
                  (HasFlag(("--enable-metrics-for-all-schedulers",)),)),
)

# engines.md §2.6 (0.5.23): the launching process (HTTP + tokenizer manager) keeps its
# command's title; children are titled with setproctitle.
_ROLES = (
    ProcessRole("scheduler", r"sglang::scheduler(?:_(?:[A-Z]+_)*[A-Z]+\d+)*", True,
                ("sglang::scheduler", "sglang::scheduler_TP1", "sglang::scheduler_DP0_TP3",
                 "sglang::scheduler_ATTN_CP1_MOE_DP1_TP0_EP2"),
                "one per TP rank: scheduling and the model forward (only dimensions > 1 "
                "appear in the suffix)"),
    ProcessRole("detokenizer", r"sglang::detokenizer(?:_router)?", False,
                ("sglang::detokenizer", "sglang::detokenizer_router"),
                "detokenizer_router with --tokenizer-worker-num > 1"),
    ProcessRole("frontend", r"sglang::tokenizer_worker:\d+", False,
                ("sglang::tokenizer_worker:4242",), "HTTP workers in multi-tokenizer mode"),
    ProcessRole("coordinator", r"sglang::data_parallel_controller", False,
                ("sglang::data_parallel_controller",), "with data parallelism"),
)

# engines.md §2.3 and gpu-half.md §C2 (0.5.23 srt/utils/profile_utils.py, srt/environ.py).
_PROFILER = ProfilerControl(
    source="SGLang 0.5.23 (ProfileReq, srt/utils/profile_utils.py, srt/environ.py)",
    launch_flags=(),  # always there
    start=HttpCall("POST", "/start_profile"),  # GET works too
    stop=HttpCall("POST", "/stop_profile"),  # not needed when num_steps is given
    body_fields=("output_dir", "start_step", "num_steps", "activities", "profile_by_stage",
                 "profile_stages", "with_stack", "record_shapes", "profile_id",
                 "merge_profiles", "profile_prefix", "detailed_annotations"),
    steps_field="num_steps",
    output_dir_field="output_dir",
    trace_files=(
        TraceFile("*-TP-*.trace.json.gz", "one per scheduler rank (and stage, by stage)",
                  gzip=True),
        TraceFile("merged-*.trace.json.gz", "every rank in one file (merge_profiles)",
                  gzip=True),
        TraceFile("*-TP-*-memory.pickle", "the MEM activity's snapshot", gzip=False),
    ),
    step_annotations=(
        StepAnnotation(r"step\[(?P<mode>[A-Z_]+) bs=(?P<bs>\d+)(?: toks=(?P<toks>\d+))?"
                       r"(?P<detail>[^\]]*)\]",
                       ("step[EXTEND bs=4 toks=2048]", "step[DECODE bs=32]",
                        "step[MIXED bs=8 toks=530]",
                        "step[EXTEND bs=1 toks=512 c_sq=512 c_sk=512 forward_id=7]")),
    ),
    with_stack=True, record_shapes=True,
    env=MappingProxyType({
        "SGLANG_TORCH_PROFILER_DIR": "output_dir when the body has none (else /tmp)",
        "SGLANG_PROFILE_WITH_STACK": "with_stack's default (true)",
        "SGLANG_PROFILE_RECORD_SHAPES": "record_shapes' default (true)",
        "SGLANG_PROFILE_V2": "1 switches to the newer ProfileManager",
    }),
    start_body=MappingProxyType({"activities": ["CPU", "GPU"], "with_stack": False,
                                 "record_shapes": False}),
)

# engines.md §2.4 (0.5.23 tracing).
_OTEL = OtelTracing(
    source="SGLang 0.5.23 (srt tracing)",
    endpoint_flags=("--otlp-traces-endpoint",), enable_flags=("--enable-trace",),
    default_endpoint="localhost:4317",
    # root span per request: ``Req <rid[:8]>``, prefixed with the role under PD disaggregation
    request_span=r"(?:[a-z]+ )?Req \S{1,8}",
    request_span_examples=("Req 3f2a9c1e", "prefill Req 3f2a9c1e"),
    other_spans=("Scheduler [TP <t>] (host:<host> | pid:<pid>)", "tokenize",
                 "request_process", "prefill_forward", "decode_loop", "decode_forward"),
    attributes=(
        "gen_ai.usage.completion_tokens", "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.cached_tokens", "gen_ai.request.id", "gen_ai.request.max_tokens",
        "gen_ai.request.top_p", "gen_ai.request.top_k", "gen_ai.request.temperature",
        "gen_ai.request.n", "gen_ai.response.model", "gen_ai.response.finish_reasons",
        "gen_ai.latency.time_to_first_token", "gen_ai.latency.e2e",
        "gen_ai.latency.time_in_model_prefill", "gen_ai.latency.time_in_model_decode",
        "gen_ai.latency.time_in_model_inference",
    ),
    env=MappingProxyType({
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc (default, insecure) or http/protobuf",
        "OTEL_SERVICE_NAME": "service name without --otlp-service-name (default sglang)",
        "SGLANG_TRACE_LEVEL": "default 3; POST /set_trace_level?level=N changes it",
    }),
)

SPEC = EngineSpec(
    name="sglang",
    display_name="SGLang",
    source="0.5.23 wheel and metrics_collector.py on main (source only)",
    # ``python -m sglang.launch_server ...`` or ``sglang serve ...``
    launcher=_match,
    default_host="127.0.0.1",
    default_port=30000,
    # In 0.5.23 /health also submits a 1-token generation probe
    # (SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION defaults to true), excluded from SGLang's
    # metrics: readiness must not be polled during a measured window.
    readiness_paths=("/health", "/v1/models"),
    command_warnings=_WARNINGS,
    batch_cap_flags=("--max-running-requests",),
    # Without --enable-metrics the route does not exist: optional, asked once.
    metrics=(MetricsRoute("/metrics", "prometheus", needs_flag="--enable-metrics"),),
    signals=_SIGNALS,
    histograms=_HISTOGRAMS,
    # the queue-time histogram is observed by each reporting scheduler
    histogram_labels=MappingProxyType({"sglang:queue_time_seconds": _SCHED}),
    notes=_NOTES,
    tuning=_TUNING,
    process_roles=_ROLES,
    profiler=_PROFILER,
    otel=_OTEL,
)
