"""SGLang, TensorRT-LLM and Triton, on the constructed examples of tests/data/engines/
(built from the engines' documented names and labels, not captured: see its README)."""

from __future__ import annotations

import pandas as pd
import pytest

from analyzers.engine_signals import engine_signals, engine_window
from analyzers.server_histograms import server_histograms
from tests.engines._engine_run import T0, Page, S, example, write_engine_run

JSON_EP = "http://localhost:8000/metrics"
PROM_EP = "http://localhost:8000/prometheus/metrics"


def last(sig: pd.DataFrame, name: str) -> float | None:
    s = sig[sig["signal"] == name]
    return float(list(s["value"])[-1]) if len(s) else None


@pytest.fixture
def sglang_run(tmp_path):
    return write_engine_run(tmp_path, "sglang", [
        Page(0, example("sglang_before.prom")), Page(30, example("sglang_after.prom"))])


def test_sglang_signals_count_rank_zero_once(sglang_run):
    sig = engine_signals(sglang_run)
    # tp_rank 0 and 1 both report (--enable-metrics-for-all-schedulers): not 32, 10, 6
    assert last(sig, "requests_running") == 16.0
    assert last(sig, "requests_waiting") == 5.0
    assert last(sig, "kv_cache_usage_frac") == pytest.approx(0.62)
    assert last(sig, "preemptions_total") == 3.0
    w = engine_window(sglang_run, T0, T0 + 30 * S)
    assert w.preemptions == 3.0
    assert w.prefix_cache_hits == 18000.0  # 40 x (400 device + 50 host)
    assert w.prefix_cache_queries == 41000.0  # 40 x 1000 + 2 x 500 prompt tokens
    assert w.prefix_cache_hit_rate == pytest.approx(18000 / 41000)
    assert w.prompt_tokens == 41000.0
    assert w.generation_tokens == 40 * 256 + 2 * 100
    assert w.requests_finished == 42.0


def test_sglang_histograms(sglang_run):
    streaming = server_histograms(sglang_run, T0, T0 + 30 * S,
                                  labels={"is_streaming": "true"}).set_index("histogram")
    ttft = streaming.loc["server_ttft_s"]
    # 40 streaming TTFTs: 10 x 0.15, 20 x 0.5, 8 x 0.9, 2 x 3.0 s; default buckets
    # 0.1 0.2 0.4 0.6 0.8 1 2 4 ... -> cumulative 0 10 10 30 30 38 38 40
    # p50: rank 20 in (0.4, 0.6] holding 20 above 10: 0.4 + 0.2 * 10/20 = 0.5
    # p90: rank 36 in (0.8, 1] holding 8 above 30: 0.8 + 0.2 * 6/8 = 0.95
    # p99: rank 39.6 in (2, 4] holding 2 above 38: 2 + 2 * 1.6/2 = 3.6
    assert ttft["count"] == 40
    assert ttft["p50_s"] == pytest.approx(0.5)
    assert ttft["p90_s"] == pytest.approx(0.95)
    assert ttft["p99_s"] == pytest.approx(3.6)
    assert (ttft["p99_lo_s"], ttft["p99_hi_s"]) == (2.0, 4.0)
    assert ttft["mean_s"] == pytest.approx((10 * 0.15 + 20 * 0.5 + 8 * 0.9 + 2 * 3.0) / 40)
    assert "100 ms" in ttft["note"]  # coarse low buckets are flagged
    both = server_histograms(sglang_run, T0, T0 + 30 * S).set_index("histogram")
    assert both.loc["server_ttft_s", "count"] == 42  # the 2 non-streaming ones too
    # ITL is per token: 1000 gaps of 12 ms and 200 of 30 ms
    itl = both.loc["server_itl_s"]
    assert itl["count"] == 1200
    assert itl["p50_s"] == pytest.approx(0.010 + 0.005 * 600 / 1000)
    assert itl["mean_s"] == pytest.approx((1000 * 0.012 + 200 * 0.030) / 1200)
    # queue time is observed by both reporting schedulers: rank 0 only by default
    assert both.loc["server_queue_s", "count"] == 42
    assert "server_tpot_s" not in both.index  # not in these examples


@pytest.fixture
def trtllm_run(tmp_path):
    return write_engine_run(tmp_path, "trtllm", [
        Page(1, example("trtllm_iteration_stats.json"), "trtllm_json", JSON_EP),
        Page(2, example("trtllm_prometheus.prom"), "prometheus", PROM_EP),
        Page(4, example("trtllm_iteration_stats_drained.json"), "trtllm_json", JSON_EP),
    ])


def test_trtllm_json_entries_are_snapshots(trtllm_run):
    sig = engine_signals(trtllm_run)
    json_t = T0 + 1 * S
    at = sig[sig["t_ns"] == json_t]

    def vals(name: str) -> list[float]:
        return list(at.loc[at["signal"] == name, "value"])

    # one value per iteration entry, in iteration order; KV = used / max blocks
    assert vals("kv_cache_usage_frac") == [1024 / 4096, 1434 / 4096, 1536 / 4096]
    assert vals("requests_running") == [6.0, 8.0, 8.0]
    assert vals("requests_waiting") == [2.0, 2.0, 1.0]
    assert vals("prefix_cache_hits_total") == [300.0, 400.0, 400.0]
    assert vals("prefix_cache_queries_total") == [1000.0, 1200.0, 1300.0]  # reused + missed
    assert vals("max_running_requests") == [256.0] * 3
    assert "preemptions_total" not in set(sig["signal"])  # paused requests are a gauge


def test_trtllm_prometheus_endpoint(trtllm_run):
    sig = engine_signals(trtllm_run)
    at = sig[sig["t_ns"] == T0 + 2 * S].set_index("signal")["value"]
    assert at["kv_cache_usage_frac"] == 0.35
    assert at["requests_running"] == 8.0
    assert at["prefix_cache_hits_total"] == 400.0
    assert at["prefix_cache_queries_total"] == 1000.0
    assert at["prompt_tokens_total"] == 51200.0
    assert at["requests_finished_total"] == 50.0
    hist = server_histograms(trtllm_run).set_index("histogram")
    ttft = hist.loc["server_ttft_s"]
    # one Prometheus scrape only: counted from zero, and said so
    assert ttft["count"] == 50
    assert "counted from zero" in ttft["note"]
    # 20 x 0.03, 25 x 0.07, 5 x 0.3: rank 25 in (0.06, 0.08] holding 25 above 20
    assert ttft["p50_s"] == pytest.approx(0.06 + 0.02 * 5 / 25)
    assert "engine-side arrival" in ttft["note"]


def test_trtllm_window_over_iterations(trtllm_run):
    w = engine_window(trtllm_run, T0, T0 + 1 * S)
    # the entries share the scrape's t_ns; counted from the first (no earlier reading):
    # reused 300 -> 400, reused + missed 1000 -> 1300
    assert w.prefix_cache_hits == 100.0
    assert w.prefix_cache_queries == 300.0
    assert w.prefix_cache_hit_rate == pytest.approx(1 / 3)
    assert any("no reading before the window start" in n for n in w.notes)
    assert w.kv_usage_max == pytest.approx(1536 / 4096)


@pytest.fixture
def triton_run(tmp_path):
    ep = "http://127.0.0.1:8002/metrics"
    return write_engine_run(tmp_path, "triton", [
        Page(0, example("triton_before.prom"), endpoint=ep),
        Page(60, example("triton_after.prom"), endpoint=ep)])


def test_triton_signals(triton_run):
    sig = engine_signals(triton_run)
    assert last(sig, "kv_cache_usage_frac") == pytest.approx(1434 / 4096)
    assert last(sig, "requests_running") == 8.0
    assert last(sig, "requests_waiting") == 2.0
    assert last(sig, "max_running_requests") == 64.0


def test_triton_first_response_histogram_in_ms_is_converted(triton_run):
    ttft = server_histograms(triton_run, labels={"model": "ensemble"}).set_index(
        "histogram").loc["server_ttft_s"]
    # 40 first responses: 10 <= 100 ms, 20 in (100, 500], 10 in (500, 2000]
    # p50: rank 20 in (0.1, 0.5] s holding 20 above 10: 0.1 + 0.4 * 10/20 = 0.3 s
    # p90: rank 36 in (0.5, 2.0] holding 10 above 30: 0.5 + 1.5 * 6/10 = 1.4 s
    assert ttft["count"] == 40
    assert ttft["p50_s"] == pytest.approx(0.3)
    assert (ttft["p50_lo_s"], ttft["p50_hi_s"]) == pytest.approx((0.1, 0.5))
    assert ttft["p90_s"] == pytest.approx(1.4)
    assert ttft["mean_s"] == pytest.approx(14.2 / 40)
    assert "first response" in ttft["note"]
