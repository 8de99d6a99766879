"""Run summaries and goodput against hand-chosen timelines (times in ms after T0)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analyzers.goodput import SLO
from analyzers.summary import summarize
from servescope.records import Outcome
from servescope.rundir.reader import RunData
from tests.analyzers._rundir import MS, out, request, write_run


def test_errors_are_counted_but_kept_out_of_latency(tmp_path):
    recs = [
        request(1, 0.0, [out(10), out(20)], done_ms=21, end_ms=22, completion_tokens=2,
                prompt_tokens=100),
        request(2, 10.0, [out(30), out(50)], done_ms=51, end_ms=52, completion_tokens=2,
                prompt_tokens=100),
        request(3, 20.0, [out(40), out(42)], done_ms=43, end_ms=44, completion_tokens=2,
                prompt_tokens=100),
        # a stream that broke after two output events, and a rejected request
        request(4, 30.0, [out(500), out(900)], end_ms=950, outcome=Outcome.STREAM_ERROR),
        request(5, 40.0, [], end_ms=60, outcome=Outcome.HTTP_ERROR),
    ]
    s = summarize(write_run(tmp_path, recs))
    assert s.measured_requests == 5
    assert s.successful_requests == 3
    assert s.outcomes["success"] == 3
    assert s.outcomes["stream_error"] == s.outcomes["http_error"] == 1
    assert s.outcomes["timeout"] == 0
    assert set(s.outcomes) == {o.value for o in Outcome}
    assert s.error_rate == 2 / 5
    # latency only from the three successes: TTFT 10, 20, 20 ms; E2E 20, 40, 22 ms
    assert s.latency.ttft_ns.count == 3
    assert s.latency.ttft_ns.max == 20 * MS
    assert s.latency.e2e_ns.max == 40 * MS
    assert s.latency.itl_per_event_ns.count == 3  # the failed stream's 400 ms gap is out
    assert s.latency.itl_per_event_ns.max == 20 * MS
    # window: first send 0 to the last end among measured requests (the error's, 950 ms)
    assert (s.window_ns, s.window_end_ns - s.window_start_ns) == (950 * MS, 950 * MS)
    assert s.request_throughput_per_s == pytest.approx(3 / 0.95)
    assert (s.input_tokens, s.output_tokens) == (300, 6)
    assert s.input_token_throughput_per_s == pytest.approx(300 / 0.95)
    assert s.output_token_throughput_per_s == pytest.approx(6 / 0.95)
    assert not s.open_loop
    assert s.latency.schedule_lag_ns is None
    assert s.latency.ttft_from_intended_ns is None
    assert s.goodput is None
    assert s.steps == ()


def test_warmup_is_excluded_from_everything_but_its_count(tmp_path):
    recs = [
        request(1, 0.0, [out(900), out(990)], done_ms=991, completion_tokens=2,
                phase="warmup"),
        request(2, 1000.0, [out(1010), out(1015)], done_ms=1016, end_ms=1020,
                completion_tokens=2, prompt_tokens=5),
    ]
    s = summarize(write_run(tmp_path, recs))
    assert (s.measured_requests, s.warmup_excluded) == (1, 1)
    assert s.window_start_ns == recs[1].t_send_ns
    assert s.window_ns == 20 * MS
    assert s.latency.ttft_ns.max == 10 * MS
    assert s.latency.itl_per_token_ns.count == 1
    assert "1 warm-up requests excluded" in s.warnings


def test_open_loop_reports_lag_and_latency_from_intended(tmp_path):
    recs = [
        # on time
        request(1, 0.0, [out(10), out(20)], done_ms=21, intended_ms=0.0, completion_tokens=2,
                prompt_tokens=1),
        # the client sent it 50 ms late: 10 ms TTFT from send, 60 ms from the schedule
        request(2, 150.0, [out(160), out(170)], done_ms=171, intended_ms=100.0,
                completion_tokens=2, prompt_tokens=1),
    ]
    s = summarize(write_run(tmp_path, recs))
    assert s.open_loop
    lag = s.latency.schedule_lag_ns
    assert lag is not None
    assert (lag.count, lag.min, lag.max) == (2, 0.0, 50 * MS)
    assert s.latency.ttft_ns.max == 10 * MS
    assert s.latency.ttft_from_intended_ns is not None
    assert s.latency.ttft_from_intended_ns.max == 60 * MS
    assert s.latency.e2e_from_intended_ns is not None
    assert s.latency.e2e_from_intended_ns.max == 70 * MS
    # p99 of (0, 50) by linear interpolation = 49.5 ms, above the 10 ms default
    assert any(w.startswith("client fell behind schedule: p99 lag 49.5 ms") for w in s.warnings)
    quiet = summarize(write_run(tmp_path, recs, name="again"), lag_warn_ms=60)
    assert not any("behind schedule" in w for w in quiet.warnings)


def _goodput_run(tmp_path: Path) -> RunData:
    """Five measured requests, window 0..400 ms; one-token-per-event streams.

    A: ttft 100, ITL 10/10, TPOT 20/2 = 10, E2E 120, 3 tokens
    B: ttft 300, ITL 5/5,   TPOT 5,           E2E 310, 3 tokens
    C: ttft 50,  ITL 5/40/5, TPOT 50/3 = 16.7, E2E 100, 4 tokens
    D: ttft 30,  one token (no ITL, no TPOT),  E2E 30,  1 token
    E: HTTP 500, never good
    plus a warm-up request that would be good but is not measured.
    """
    recs = [
        request(1, 0.0, [out(100), out(110), out(120)], done_ms=121, completion_tokens=3),
        request(2, 0.0, [out(300), out(305), out(310)], done_ms=311, completion_tokens=3),
        request(3, 0.0, [out(50), out(55), out(95), out(100)], done_ms=101,
                completion_tokens=4),
        request(4, 0.0, [out(30)], done_ms=31, completion_tokens=1),
        request(5, 0.0, [], end_ms=400, outcome=Outcome.HTTP_ERROR),
        request(6, -50.0, [out(-45)], done_ms=-44, completion_tokens=1, phase="warmup"),
    ]
    return write_run(tmp_path, recs)


@pytest.mark.parametrize(("slo", "good", "tokens", "met"), [
    # each SLO alone
    (SLO(ttft_ms=200), {"A", "C", "D"}, 3 + 4 + 1, {"ttft_ms": 3}),
    (SLO(itl_ms=20), {"A", "B", "D"}, 3 + 3 + 1, {"itl_ms": 3}),  # C has a 40 ms gap
    (SLO(tpot_ms=8), {"B", "D"}, 3 + 1, {"tpot_ms": 2}),  # D's one token counts as met
    (SLO(e2e_ms=200), {"A", "C", "D"}, 8, {"e2e_ms": 3}),
    # all together: only D
    (SLO(ttft_ms=200, itl_ms=20, tpot_ms=8, e2e_ms=200), {"D"}, 1,
     {"ttft_ms": 3, "itl_ms": 3, "tpot_ms": 2, "e2e_ms": 3}),
    # a limit exactly equal to the value is met (<=): C's TTFT is 50 ms
    (SLO(ttft_ms=50), {"C", "D"}, 5, {"ttft_ms": 2}),
])
def test_goodput_under_each_slo(tmp_path, slo, good, tokens, met):
    s = summarize(_goodput_run(tmp_path), slo)
    g = s.goodput
    assert g is not None
    assert s.window_ns == 400 * MS
    assert g.measured_requests == 5
    assert g.good_requests == len(good)
    assert g.good_fraction == len(good) / 5
    assert g.good_requests_per_s == pytest.approx(len(good) / 0.4)
    assert g.good_output_tokens_per_s == pytest.approx(tokens / 0.4)
    assert dict(g.met) == met


def test_slo_must_be_positive():
    with pytest.raises(ValueError, match="ttft_ms"):
        SLO(ttft_ms=0)
    with pytest.raises(ValueError, match="itl_ms"):
        SLO(itl_ms=math.nan)


def test_sweep_steps_get_their_own_summaries(tmp_path):
    recs = [
        request(1, 0.0, [out(10), out(20)], done_ms=21, end_ms=100, completion_tokens=2,
                step=0),
        request(2, 50.0, [out(60), out(70)], done_ms=71, end_ms=100, completion_tokens=2,
                step=0),
        request(3, 1000.0, [out(1030), out(1031)], done_ms=1032, end_ms=1050,
                completion_tokens=2, step=1),
        request(4, 990.0, [out(995)], done_ms=996, completion_tokens=1, step=1,
                phase="warmup"),
    ]
    s = summarize(write_run(tmp_path, recs), SLO(ttft_ms=15))
    assert s.step is None
    assert s.measured_requests == 3
    assert [st.step for st in s.steps] == [0, 1]
    s0, s1 = s.steps
    assert (s0.measured_requests, s0.window_ns, s0.warmup_excluded) == (2, 100 * MS, 0)
    assert (s1.measured_requests, s1.window_ns, s1.warmup_excluded) == (1, 50 * MS, 1)
    assert s0.request_throughput_per_s == pytest.approx(20.0)
    assert s1.latency.ttft_ns.mean == 30 * MS
    assert s0.goodput is not None
    assert s0.goodput.good_requests == 2
    assert s1.goodput is not None
    assert s1.goodput.good_requests == 0


def test_empty_run_gives_empty_stats(tmp_path):
    s = summarize(write_run(tmp_path, []), SLO(ttft_ms=1))
    assert s.measured_requests == s.successful_requests == 0
    assert s.latency.ttft_ns.count == 0
    assert math.isnan(s.latency.ttft_ns.p99)
    assert s.latency.itl_per_token_ns.count == 0
    assert (s.window_start_ns, s.window_ns) == (-1, 0)
    assert math.isnan(s.error_rate)
    assert math.isnan(s.request_throughput_per_s)
    assert s.goodput is not None
    assert s.goodput.good_requests == 0
    assert math.isnan(s.goodput.good_fraction)
    assert "no measured requests: every statistic is empty" in s.warnings


def test_flags_for_guessed_token_counts(tmp_path):
    recs = [
        request(1, 0.0, [out(10), out(20), out(30)], done_ms=31, prompt_tokens_planned=8),
        request(2, 0.0, [out(10, cum=1), out(20, cum=2)], done_ms=21, prompt_tokens=8),
    ]
    s = summarize(write_run(tmp_path, recs))
    assert dict(s.output_tokens_sources) == {"events": 1, "chunk_usage": 1}
    assert s.output_tokens == 3 + 2
    assert s.input_tokens == 16
    assert ("output tokens from event count, not server usage, for 1 of 2 successful "
            "requests") in s.warnings
    assert ("per-token ITL assumes one token per output event for 1 requests "
            "(no per-chunk usage)") in s.warnings
    assert any(w.startswith("input tokens are the workload's planned counts") for w in s.warnings)
