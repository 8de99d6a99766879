"""Client-side bottleneck rules on runs whose timings the test chose (the engine tier checks
them on real vLLM runs; these pin the thresholds and the evidence arithmetic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers.bottlenecks import RULES, build_context, find_bottlenecks
from analyzers.bottlenecks.request_rules import client_behind, engine_errors, output_mismatch
from servescope.records import Outcome
from tests.analyzers._rundir import out, request, write_run


def _ok(i: int, t: float, *, intended: float | None = None, tokens: int = 4,
        max_tokens: int = 4, finish: str = "length"):
    evs = [out(t + 10 + 5 * k) for k in range(tokens)]
    return request(i, t, evs, done_ms=t + 10 + 5 * tokens, completion_tokens=tokens,
                   intended_ms=intended, max_tokens=max_tokens, finish_reason=finish)


def test_client_behind_fires_on_lag_with_exact_evidence(tmp_path: Path):
    # 100 open-loop requests every 10 ms; the last 20 were sent 30 ms late
    recs = [_ok(i, 10.0 * i + (30.0 if i >= 80 else 0.0), intended=10.0 * i)
            for i in range(100)]
    ctx = build_context(write_run(tmp_path, recs))
    f = client_behind(ctx)
    assert f is not None
    assert f.value("schedule_lag_max_ms") == pytest.approx(30.0)
    assert f.value("late_request_frac") == pytest.approx(0.2)
    assert f.requests_affected == 20
    assert set(f.request_ids) == set(range(80, 100))
    assert any("--workers" in a for a in f.actions)


def test_client_on_schedule_is_silent(tmp_path: Path):
    recs = [_ok(i, 10.0 * i + 0.5, intended=10.0 * i) for i in range(100)]
    assert client_behind(build_context(write_run(tmp_path, recs))) is None


def test_errors_grouped_by_kind_and_message(tmp_path: Path):
    recs = [_ok(i, 10.0 * i) for i in range(90)]
    for i in range(90, 97):
        r = request(i, 10.0 * i, [], outcome=Outcome.HTTP_ERROR,
                    error="This model's maximum context length is 1024 tokens")
        r.status = 400
        recs.append(r)
    for i in range(97, 100):
        recs.append(request(i, 10.0 * i, [], outcome=Outcome.TIMEOUT, error="stalled"))
    f = engine_errors(build_context(write_run(tmp_path, recs)))
    assert f is not None
    assert f.severity == "critical"  # 10 % >= 5 %
    assert f.value("error_rate_frac") == pytest.approx(0.10)
    assert f.value("count_http_error") == 7
    assert f.value("count_timeout") == 3
    assert f.requests_affected == 10
    assert "max-model-len" in f.actions[0] or "context length" in f.actions[0]
    assert any("--request-timeout" in a for a in f.actions)


def test_short_outputs_counted_with_finish_reasons(tmp_path: Path):
    recs = [_ok(i, 10.0 * i, tokens=8, max_tokens=8) for i in range(40)]
    recs += [_ok(i, 10.0 * i, tokens=3, max_tokens=8, finish="stop") for i in range(40, 50)]
    f = output_mismatch(build_context(write_run(tmp_path, recs)))
    assert f is not None
    assert f.value("short_outputs") == 10
    assert f.value("short_output_frac") == pytest.approx(0.2)
    assert f.value("mean_output_tokens") == pytest.approx((40 * 8 + 10 * 3) / 50)
    assert "stop ×10" in f.summary


def test_a_healthy_constructed_run_is_silent_and_a_broken_rule_is_reported(tmp_path, monkeypatch):
    recs = [_ok(i, 10.0 * i) for i in range(50)]
    ctx = build_context(write_run(tmp_path, recs))
    assert find_bottlenecks(ctx) == []

    def broken(_ctx):
        raise ZeroDivisionError("bug")

    monkeypatch.setitem(RULES, "broken", broken)
    (f,) = find_bottlenecks(ctx)
    assert f.rule == "broken"
    assert "ZeroDivisionError: bug" in f.summary

