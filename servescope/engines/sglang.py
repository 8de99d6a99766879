"""SGLang (names from the 0.5.23 wheel and ``srt/observability/metrics_collector.py`` on main;
not checked against a running server)."""

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
from servescope.engines.extensions import MetricsEndpoint

__all__ = ["SglangAdapter"]

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
})


@dataclass(frozen=True, slots=True)
class SglangAdapter(AdapterDefaults):
    """``python -m sglang.launch_server ...`` or ``sglang serve ...``.

    Listens on ``--host`` (default 127.0.0.1) and ``--port`` (default 30000). Readiness is
    ``/health`` then ``/v1/models``; note that in 0.5.23 ``/health`` also submits a 1-token
    generation probe (``SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION`` defaults to true), excluded
    from SGLang's metrics, so readiness must not be polled during a measured window.
    Prometheus text at ``/metrics`` only with ``--enable-metrics``.
    """

    @property
    def name(self) -> str:
        return "sglang"

    @property
    def default_port(self) -> int:
        return 30000

    def launch(self, argv: Sequence[str]) -> Launch | None:
        return find_launch(argv, _match)

    def address(self, argv: Sequence[str]) -> tuple[str, int]:
        launch = self.launch(argv)
        args = launch.args if launch else ()
        port = parse_port(flag_value(args, "--port"), "--port", self.default_port)
        return connect_host(flag_value(args, "--host") or "127.0.0.1"), port

    @property
    def readiness_paths(self) -> Sequence[str]:
        return ("/health", "/v1/models")

    @property
    def metrics_path(self) -> str | None:
        return "/metrics"

    @property
    def metrics_format(self) -> MetricsFormat:
        return "prometheus"

    def metrics_enabled(self, argv: Sequence[str]) -> bool:
        """False when the command visibly lacks ``--enable-metrics`` (True when attaching
        with no command: then only a scrape can tell)."""
        launch = self.launch(argv)
        return launch is None or has_flag(launch.args, "--enable-metrics")

    def metrics_endpoints(
        self, argv: Sequence[str], base_url: str,
    ) -> tuple[MetricsEndpoint, ...]:
        # Without --enable-metrics the route does not exist: optional, asked once.
        return (MetricsEndpoint(base_url.rstrip("/") + "/metrics", "prometheus",
                                optional=not self.metrics_enabled(argv)),)

    def launch_warnings(self, argv: Sequence[str]) -> tuple[str, ...]:
        out: list[str] = []
        if not self.metrics_enabled(argv):
            out.append("SGLang serves /metrics only with --enable-metrics; add it to the "
                       "command to get engine signals and server-side histograms")
        launch = self.launch(argv)
        if launch is not None and has_flag(launch.args, "--enable-metrics-for-all-schedulers"):
            out.append("--enable-metrics-for-all-schedulers: servescope reads rank-0 "
                       "schedulers only (tp_rank=0, pp_rank=0) to avoid double counting")
        return tuple(out)

    @property
    def signals(self) -> Mapping[Signal, SignalSpec]:
        return _SIGNALS

    @property
    def histograms(self) -> Mapping[Histogram, tuple[str, ...]]:
        return _HISTOGRAMS

    @property
    def histogram_labels(self) -> Mapping[str, Mapping[str, str]]:
        # the queue-time histogram is observed by each reporting scheduler
        return MappingProxyType({"sglang:queue_time_seconds": _SCHED})

    @property
    def tuning(self) -> Mapping[Knob, str]:
        return _TUNING

    @property
    def notes(self) -> Mapping[str, str]:
        return _NOTES
