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
