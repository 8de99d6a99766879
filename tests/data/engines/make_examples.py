"""Write the constructed SGLang / TensorRT-LLM / Triton metrics examples in this folder.

Not captures: the names, labels and buckets follow the engines' source as summarized in
``shared/reference/engines.md`` (SGLang 0.5.23 ``metrics_collector.py``; TensorRT-LLM
``metrics/collector.py`` and ``jsonSerialization.cpp`` on main; Triton/tensorrtllm_backend
docs). The SGLang and TensorRT-LLM Prometheus pages are rendered by prometheus_client itself
(the library both engines use, in multiprocess mode, so without ``_created`` lines); the Triton
page is written by hand in prometheus-cpp's style (integers without ``.0``, ``le`` last); the
TensorRT-LLM JSON is compact, as Starlette's JSONResponse writes it. The observation values are
chosen so that percentiles can be worked out by hand (see the tests). Run from the repo root:

    .venv/bin/python tests/data/engines/make_examples.py
"""

from __future__ import annotations

import json
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

HERE = Path(__file__).parent
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

SG_TTFT = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400]
SG_ITL = [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040,
          0.060, 0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000]
SG_E2E = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600,
          1200, 1800, 2400]
SG_QUEUE = [0.0, 0.001, 0.005, 0.010, 0.050, 0.100, 0.200, 0.500, 1, 2, 3, 4, 5, 10]


class _SglangServer:
    """The SGLang families servescope maps, with the labels SGLang 0.5.23 puts on them."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        sched = ["model_name", "engine_type", "tp_rank", "pp_rank", "moe_ep_rank"]
        tok = ["model_name", "engine_type"]
        self.running = Gauge("sglang:num_running_reqs", "The number of running requests.",
                             sched, registry=r)
        self.queue = Gauge("sglang:num_queue_reqs",
                           "The number of requests in the waiting queue.", sched, registry=r)
        self.usage = Gauge("sglang:token_usage", "The token usage.", sched, registry=r)
        self.hit = Gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", sched,
                         registry=r)
        self.retracted = Counter("sglang:num_retracted_requests_total",
                                 "Total number of retracted requests.", sched, registry=r)
        self.queue_time = Histogram("sglang:queue_time_seconds",
                                    "Histogram of queueing time in seconds.", sched,
                                    buckets=SG_QUEUE, registry=r)
        self.prompt = Counter("sglang:prompt_tokens_total", "Number of prefill tokens processed.",
                              [*tok, "is_streaming"], registry=r)
        self.gen = Counter("sglang:generation_tokens_total",
                           "Number of generation tokens processed.", [*tok, "is_streaming"],
                           registry=r)
        self.cached = Counter("sglang:cached_tokens_total",
                              "Number of cached prompt tokens by source (device/host/storage).",
                              [*tok, "cache_source"], registry=r)
        self.requests = Counter("sglang:num_requests_total", "Number of requests processed.",
                                [*tok, "is_streaming"], registry=r)
        self.ttft = Histogram("sglang:time_to_first_token_seconds",
                              "Histogram of time to first token in seconds.",
                              [*tok, "is_streaming"], buckets=SG_TTFT, registry=r)
        self.itl = Histogram("sglang:inter_token_latency_seconds",
                             "Histogram of inter-token latency in seconds.", tok,
                             buckets=SG_ITL, registry=r)
        self.e2e = Histogram("sglang:e2e_request_latency_seconds",
                             "Histogram of End-to-end request latency in seconds",
                             [*tok, "is_streaming"], buckets=SG_E2E, registry=r)
        self.tok = {"model_name": MODEL, "engine_type": "unified"}

    def sched(self, rank: int) -> dict[str, str]:
        # tp_rank 1 reports too, as with --enable-metrics-for-all-schedulers
        return {**self.tok, "tp_rank": str(rank), "pp_rank": "0", "moe_ep_rank": "0"}

    def set_scheduler(self, running: int, queue: int, usage: float, retract: int) -> None:
        for rank in (0, 1):
            labels = self.sched(rank)
            self.running.labels(**labels).set(running)
            self.queue.labels(**labels).set(queue)
            self.usage.labels(**labels).set(usage)
            self.hit.labels(**labels).set(0.25)
            if retract:
                self.retracted.labels(**labels).inc(retract)
            else:
                self.retracted.labels(**labels)

    def finish(self, n: int, *, stream: bool, prompt: int, gen: int, ttft: float,
               cached: dict[str, int], e2e: float, queue: float) -> None:
        s = "true" if stream else "false"
        for _ in range(n):
            self.prompt.labels(**self.tok, is_streaming=s).inc(prompt)
            self.gen.labels(**self.tok, is_streaming=s).inc(gen)
            self.requests.labels(**self.tok, is_streaming=s).inc()
            for source, tokens in cached.items():
                self.cached.labels(**self.tok, cache_source=source).inc(tokens)
            self.ttft.labels(**self.tok, is_streaming=s).observe(ttft)
            self.e2e.labels(**self.tok, is_streaming=s).observe(e2e)
            self.queue_time.labels(**self.sched(0)).observe(queue)
            self.queue_time.labels(**self.sched(1)).observe(queue)

    def tokens(self, n: int, gap_s: float) -> None:
        # SGLang observes the per-token gap once per token (observe_inter_token_latency)
        for _ in range(n):
            self.itl.labels(**self.tok).observe(gap_s)

    def page(self) -> bytes:
        return generate_latest(self.registry)


def sglang_pages() -> tuple[bytes, bytes]:
    sg = _SglangServer()
    # before: after a 4-request warm-up
    sg.set_scheduler(running=0, queue=0, usage=0.0, retract=0)
    sg.finish(4, stream=True, prompt=1024, gen=128, ttft=0.15, cached={"device": 256},
              e2e=1.5, queue=0.003)
    sg.tokens(10, 0.005)
    before = sg.page()
    # the load: 40 streaming requests (TTFT 10 x 0.15, 20 x 0.5, 8 x 0.9, 2 x 3.0) and 2
    # non-streaming ones; 1000 decode tokens 12 ms apart and 200 at 30 ms; 3 retractions
    for n, ttft in ((10, 0.15), (20, 0.5), (8, 0.9), (2, 3.0)):
        sg.finish(n, stream=True, prompt=1000, gen=256, ttft=ttft,
                  cached={"device": 400, "host": 50}, e2e=5.0, queue=0.02)
    sg.finish(2, stream=False, prompt=500, gen=100, ttft=0.25, cached={}, e2e=2.0, queue=0.02)
    sg.tokens(1000, 0.012)
    sg.tokens(200, 0.030)
    sg.set_scheduler(running=16, queue=5, usage=0.62, retract=3)
    return before, sg.page()


def trtllm_prometheus_page() -> bytes:
    r = CollectorRegistry()
    lab = ["model_name", "engine_type"]
    values = {"model_name": "undefined", "engine_type": "undefined"}
    Gauge("trtllm_kv_cache_utilization", "KV cache utilization", lab,
          registry=r).labels(**values).set(0.35)
    Gauge("trtllm_kv_cache_hit_rate", "KV cache hit rate", lab,
          registry=r).labels(**values).set(0.4)
    Counter("trtllm_kv_cache_reused_blocks",
            "Cumulative number of KV cache blocks reused (cache hits)", lab,
            registry=r).labels(**values).inc(400)
    Counter("trtllm_kv_cache_missed_blocks",
            "Cumulative number of KV cache blocks missed (cache misses)", lab,
            registry=r).labels(**values).inc(600)
    Gauge("trtllm_num_requests_running", "Number of active requests", lab,
          registry=r).labels(**values).set(8)
    Gauge("trtllm_num_requests_waiting", "Number of queued requests", lab,
          registry=r).labels(**values).set(2)
    Gauge("trtllm_max_num_active_requests", "Maximum number of active requests", lab,
          registry=r).labels(**values).set(256)
    Gauge("trtllm_num_paused_requests", "Number of paused requests", lab,
          registry=r).labels(**values).set(0)
    Counter("trtllm_prompt_tokens_total", "Cumulative number of prompt (input) tokens "
            "processed.", lab, registry=r).labels(**values).inc(51200)
    Counter("trtllm_generation_tokens_total", "Cumulative number of generation (output) "
            "tokens produced.", lab, registry=r).labels(**values).inc(12800)
    Counter("trtllm_request_success_total", "Count of successfully processed requests.",
            [*lab, "finished_reason"], registry=r).labels(
                **values, finished_reason="length").inc(50)
    ttft = Histogram("trtllm_time_to_first_token_seconds",
                     "Histogram of time to first token in seconds.", lab,
                     buckets=[0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                              0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0,
                              2560.0], registry=r)
    for v in [0.03] * 20 + [0.07] * 25 + [0.3] * 5:
        ttft.labels(**values).observe(v)
    return generate_latest(r)


def _iteration(it: int, used: int, reused: int, missed: int, active: int, queued: int,
               paused: int) -> dict[str, object]:
    # Field names of the C++ IterationStats JSON (jsonSerialization.cpp); the timestamp
    # string is a placeholder: servescope keeps it as a label and never parses it.
    return {
        "cpuMemUsage": 0, "gpuMemUsage": 56401920000, "inflightBatchingStats": {
            "avgNumDecodedTokensPerIter": 1.0, "microBatchId": 0, "numContextRequests": 1,
            "numCtxTokens": 512, "numGenRequests": active - 1, "numPausedRequests": paused,
            "numScheduledRequests": active},
        "iter": it, "iterLatencyMS": 16.5, "kvCacheStats": {
            "allocNewBlocks": 3126, "allocTotalBlocks": 3126, "cacheHitRate": 0.4,
            "freeNumBlocks": 4096 - used, "maxNumBlocks": 4096, "missedBlocks": missed,
            "reusedBlocks": reused, "tokensPerBlock": 32, "usedNumBlocks": used},
        "maxBatchSizeRuntime": 256, "maxBatchSizeStatic": 256,
        "maxBatchSizeTunerRecommended": 0, "maxNumActiveRequests": 256,
        "maxNumTokensRuntime": 8192, "maxNumTokensStatic": 8192,
        "maxNumTokensTunerRecommended": 0, "newActiveRequestsQueueLatencyMS": 0.00075,
        "numActiveRequests": active, "numCompletedRequests": 0, "numNewActiveRequests": 1,
        "numQueuedRequests": queued, "pinnedMemUsage": 0, "staticBatchingStats": None,
        "timestamp": f"11-22-2026 12:04:{it % 60:02d}.000000",
    }


def trtllm_json_bodies() -> tuple[bytes, bytes]:
    first = [_iteration(101, 1024, 300, 700, 6, 2, 0),
             _iteration(102, 1434, 400, 800, 8, 2, 1),
             _iteration(103, 1536, 400, 900, 8, 1, 0)]
    return (json.dumps(first, separators=(",", ":")).encode(), b"[]")


def triton_pages() -> tuple[bytes, bytes]:
    def page(active: int, waiting: int, used: int, hist: dict[str, int], total_ms: float,
             success: int) -> bytes:
        frac = used / 4096
        lines = [
            "# HELP nv_inference_request_success Number of successful inference requests, "
            "all batch sizes",
            "# TYPE nv_inference_request_success counter",
            f'nv_inference_request_success{{model="ensemble",version="1"}} {success}',
            f'nv_inference_request_success{{model="tensorrt_llm",version="1"}} {success}',
            "# HELP nv_trt_llm_request_metrics TRT LLM request metrics",
            "# TYPE nv_trt_llm_request_metrics gauge",
            f'nv_trt_llm_request_metrics{{model="tensorrt_llm",request_type="waiting",'
            f'version="1"}} {waiting}',
            'nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="context",'
            'version="1"} 1',
            f'nv_trt_llm_request_metrics{{model="tensorrt_llm",request_type="scheduled",'
            f'version="1"}} {active}',
            'nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="max",'
            'version="1"} 64',
            f'nv_trt_llm_request_metrics{{model="tensorrt_llm",request_type="active",'
            f'version="1"}} {active}',
            "# HELP nv_trt_llm_kv_cache_block_metrics TRT LLM KV cache block metrics",
            "# TYPE nv_trt_llm_kv_cache_block_metrics gauge",
            'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per",'
            'model="tensorrt_llm",version="1"} 64',
            'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",'
            'model="tensorrt_llm",version="1"} 4096',
            f'nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="free",'
            f'model="tensorrt_llm",version="1"}} {4096 - used}',
            f'nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="used",'
            f'model="tensorrt_llm",version="1"}} {used}',
            f'nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="fraction",'
            f'model="tensorrt_llm",version="1"}} {frac}',
            "# HELP nv_inference_first_response_histogram_ms Duration from request to first "
            "response in milliseconds",
            "# TYPE nv_inference_first_response_histogram_ms histogram",
        ]
        cum = 0
        for le in ("100", "500", "2000", "5000", "+Inf"):
            cum += hist.get(le, 0)
            lines.append(f'nv_inference_first_response_histogram_ms_bucket{{model="ensemble",'
                         f'version="1",le="{le}"}} {cum}')
        lines.append(f'nv_inference_first_response_histogram_ms_count{{model="ensemble",'
                     f'version="1"}} {cum}')
        lines.append(f'nv_inference_first_response_histogram_ms_sum{{model="ensemble",'
                     f'version="1"}} {total_ms}')
        return ("\n".join(lines) + "\n").encode()

    before = page(0, 0, 0, {"100": 2}, 120.0, 2)
    after = page(8, 2, 1434, {"100": 12, "500": 20, "2000": 10}, 120.0 + 14200.0, 44)
    return before, after


def main() -> None:
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call] # multiprocess mode has no _created lines
    sg_before, sg_after = sglang_pages()
    (HERE / "sglang_before.prom").write_bytes(sg_before)
    (HERE / "sglang_after.prom").write_bytes(sg_after)
    (HERE / "trtllm_prometheus.prom").write_bytes(trtllm_prometheus_page())
    first, empty = trtllm_json_bodies()
    (HERE / "trtllm_iteration_stats.json").write_bytes(first)
    (HERE / "trtllm_iteration_stats_drained.json").write_bytes(empty)
    tr_before, tr_after = triton_pages()
    (HERE / "triton_before.prom").write_bytes(tr_before)
    (HERE / "triton_after.prom").write_bytes(tr_after)


if __name__ == "__main__":
    main()
