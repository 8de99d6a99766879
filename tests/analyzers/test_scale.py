"""10,000 requests x 100 events through the real journal, tables and reader."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.request_metrics import request_metrics
from analyzers.summary import summarize
from servescope.records import EventKind, RequestRecord
from tests.analyzers._rundir import T0, write_run

N_REQUESTS, N_EVENTS, GAP_NS = 10_000, 100, 20_000


def _records() -> list[RequestRecord]:
    out = int(EventKind.OUTPUT)
    recs = []
    for i in range(N_REQUESTS):
        t0 = T0 + i * 1_000_000
        rec = RequestRecord(request_id=i, t_send_ns=t0,
                            t_done_ns=t0 + (N_EVENTS + 1) * GAP_NS,
                            t_end_ns=t0 + (N_EVENTS + 2) * GAP_NS,
                            status=200, usage_completion_tokens=2 * N_EVENTS)
        rec.ev_t_ns = [t0 + (j + 1) * GAP_NS for j in range(N_EVENTS)]
        rec.ev_kind = [out] * N_EVENTS
        rec.ev_chars = [4] * N_EVENTS
        rec.ev_tokens_cum = list(range(2, 2 * N_EVENTS + 1, 2))  # two tokens per event
        recs.append(rec)
    return recs


def test_ten_thousand_requests_of_a_hundred_events(tmp_path):
    run = write_run(tmp_path, _records())
    assert len(run.events) == N_REQUESTS * N_EVENTS
    df = request_metrics(run)
    assert len(df) == N_REQUESTS
    assert np.all(df["ttft_ns"].to_numpy() == GAP_NS)
    assert np.all(df["e2e_ns"].to_numpy() == N_EVENTS * GAP_NS)
    assert np.all(df["itl_token_max_ns"].to_numpy() == GAP_NS / 2)
    s = summarize(run)
    assert s.latency.itl_per_event_ns.count == N_REQUESTS * (N_EVENTS - 1)
    assert s.latency.itl_per_token_ns.count == N_REQUESTS * (2 * N_EVENTS - 2)
    assert s.latency.tpot_ns.mean == pytest.approx((N_EVENTS - 1) * GAP_NS / (2 * N_EVENTS - 1))
