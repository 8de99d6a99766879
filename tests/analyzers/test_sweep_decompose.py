"""Knee, max goodput and the TTFT/E2E decomposition against numbers the test chose."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analyzers.decompose import decompose
from analyzers.sweep import knee_index


def test_knee_of_a_hockey_stick():
    # throughput grows linearly then saturates while latency explodes
    x = [100, 200, 300, 400, 420, 430]
    y = [50, 52, 55, 60, 200, 900]
    assert knee_index(x, y) == 3  # the last point before latency takes off


def test_no_knee_for_a_straight_line_or_too_few_points():
    assert knee_index([1, 2, 3, 4], [10, 20, 30, 40]) is None
    assert knee_index([1, 2], [1, 5]) is None
    assert knee_index([1, 2, 3], [5, 5, 5]) is None


def test_knee_ignores_step_order():
    x = [430, 100, 300, 200, 420, 400]
    y = [900, 50, 55, 52, 200, 60]
    assert knee_index(x, y) == 5  # the (400, 60) point, wherever it sits in the input


def _hist(**means: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame([{"histogram": k, "family": k, "count": c, "sum_s": c * m,
                          "mean_s": m} for k, (c, m) in means.items()])


def test_decomposition_adds_up():
    ok = pd.DataFrame({"ttft_ns": np.full(10, 300e6), "e2e_ns": np.full(10, 1000e6)})
    hist = _hist(server_ttft_s=(10, 0.280), server_queue_s=(10, 0.100),
                 server_prefill_s=(10, 0.150), server_decode_s=(10, 0.600),
                 server_e2e_s=(10, 0.900))
    ttft, e2e = decompose(ok, hist)
    parts = {p.name: p.mean_ns / 1e6 for p in ttft.parts}
    assert parts == pytest.approx({"queue": 100, "prefill": 150, "engine other": 30,
                                   "transport and client": 20})
    assert sum(p.share for p in ttft.parts) == pytest.approx(1.0)
    parts = {p.name: p.mean_ns / 1e6 for p in e2e.parts}
    assert parts == pytest.approx({"queue": 100, "prefill": 150, "decode": 600,
                                   "engine other": 50, "transport and client": 100})
    assert ttft.notes == ()
    assert e2e.notes == ()


def test_decomposition_says_what_is_missing_and_mismatched():
    ok = pd.DataFrame({"ttft_ns": np.full(10, 300e6), "e2e_ns": np.full(10, 1000e6)})
    hist = _hist(server_queue_s=(20, 0.100))
    ttft, _ = decompose(ok, hist)
    assert [p.name for p in ttft.parts] == ["queue", "unattributed"]
    assert ttft.parts[1].mean_ns == pytest.approx(200e6)
    assert any("no prefill histogram" in n for n in ttft.notes)
    assert decompose(ok, hist.iloc[:0]) == ()
    hist = _hist(server_ttft_s=(20, 0.25), server_queue_s=(20, 0.1), server_prefill_s=(20, 0.1))
    ttft, _ = decompose(ok, hist)
    assert any("engine counted 20 requests" in n for n in ttft.notes)
    assert not math.isnan(ttft.parts[-1].share)


def test_sweep_curve_max_goodput_and_highest_load_meeting_the_slo(tmp_path):
    """Three rate steps; latency grows with load: TTFT 20/60/300 ms. SLO TTFT <= 100 ms:
    steps 0 and 1 meet it for every request, step 2 for none."""
    from analyzers.goodput import SLO
    from analyzers.summary import summarize
    from analyzers.sweep import sweep_curve
    from tests.analyzers._rundir import out, request, write_run

    recs, rid = [], 0
    for step, (rate, ttft) in enumerate([(10, 20.0), (20, 60.0), (40, 300.0)]):
        for k in range(rate):  # one second of arrivals at `rate`
            t = 10_000.0 * step + 1000.0 * k / rate
            r = request(rid, t, [out(t + ttft), out(t + ttft + 10)], done_ms=t + ttft + 10,
                        completion_tokens=2)
            r.step = step
            recs.append(r)
            rid += 1
    run = write_run(tmp_path, recs)
    workload = {"steps": [{"kind": "poisson", "rate_per_s": r} for r in (10, 20, 40)]}
    slo = SLO(ttft_ms=100)
    curve = sweep_curve(summarize(run, slo), workload, slo)
    assert curve is not None
    assert [p.offered for p in curve.points] == [10, 20, 40]
    assert [p.slo_attainment for p in curve.points] == [1.0, 1.0, 0.0]
    assert curve.highest_load_meeting_slo_step == 1
    assert curve.max_goodput_step == 1  # step 2 has more requests but none is good
    assert [p.ttft_p50_ns / 1e6 for p in curve.points] == pytest.approx([20, 60, 300])
    # E2E p99 30/70/310 ms against 10/20/40 req/s: scaled, the middle point lies 0.19 below
    # the chord, so latency takes off after step 1
    assert curve.knee_step == 1
    assert curve.notes == ()
    # an SLO no request meets: no max-goodput step, no step meeting it
    strict = SLO(ttft_ms=1)
    none = sweep_curve(summarize(run, strict), workload, strict)
    assert none is not None
    assert none.max_goodput_step is None
    assert none.highest_load_meeting_slo_step is None
    assert any("no step met the SLOs" in n for n in none.notes)
    with pytest.raises(ValueError, match="knee latency"):
        sweep_curve(summarize(run), workload, knee_latency="ttft_p42")
