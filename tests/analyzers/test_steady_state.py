"""Steady-state window against runs whose phases the test chose.

A closed loop of C=4 slots, each running back-to-back requests of a known length: the first
completion ends the ramp-up, the last send starts the drain, and exactly the requests sent
after the one and finished before the other are steady."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analyzers.request_metrics import request_metrics
from analyzers.steady_state import steady_window
from tests.analyzers._rundir import out, request, write_run

MS = 1_000_000


def _closed_loop(tmp_path: Path, slots: int, per_slot: int, dur_ms: float,
                 stagger_ms: float = 0.0):
    recs, rid = [], 0
    for s in range(slots):
        t = s * stagger_ms
        for _ in range(per_slot):
            recs.append(request(rid, t, [out(t + dur_ms / 2), out(t + dur_ms)],
                                done_ms=t + dur_ms, completion_tokens=2))
            rid += 1
            t += dur_ms + 1.0
    return write_run(tmp_path, recs)


def test_closed_loop_ramp_and_drain(tmp_path: Path):
    run = _closed_loop(tmp_path, slots=4, per_slot=20, dur_ms=100.0, stagger_ms=10.0)
    m = request_metrics(run)
    w = steady_window(m)
    assert w.found
    send = m["t_send_ns"].to_numpy()
    last = m["t_last_ns"].to_numpy()
    first_done, last_send = int(last.min()), int(send.max())
    assert w.start_ns == first_done  # the batch is full (4 in flight) from 30 ms, before it
    assert w.end_ns == last_send
    expected = set(m["request_id"][(send >= first_done) & (last <= last_send)].tolist())
    assert set(w.steady_ids) == expected
    assert w.excluded_ramp_up == 4  # the first request of every slot
    assert w.steady_requests + w.excluded_ramp_up + w.excluded_drain == 80
    assert w.in_flight_median == 4.0
    assert w.ramp_up_ns == first_done - int(send.min())


def test_open_loop_ramp_ends_when_the_batch_fills(tmp_path: Path):
    # arrivals every 10 ms, each lasting 200 ms: in flight climbs to 20 and stays there. It
    # reaches 90 % of 20 (18) at 170 ms, before the first completion (200.5 ms: its end), so
    # the ramp-up ends at the first completion.
    recs = [request(i, 10.0 * i, [out(10.0 * i + 50), out(10.0 * i + 200)],
                    done_ms=10.0 * i + 200, completion_tokens=2) for i in range(200)]
    run = write_run(tmp_path, recs)
    w = steady_window(request_metrics(run))
    assert w.found
    assert w.in_flight_median == 20.0
    assert w.start_ns - w.load_start_ns == 200 * MS + round(0.5 * MS)
    assert w.end_ns - w.load_start_ns == 1990 * MS


def test_too_short_falls_back_to_the_whole_run(tmp_path: Path):
    run = _closed_loop(tmp_path, slots=8, per_slot=2, dur_ms=100.0)
    w = steady_window(request_metrics(run))
    assert not w.found
    assert w.steady_requests == 16
    assert "whole run" in w.reason
    assert (w.start_ns, w.end_ns) == (w.load_start_ns, w.load_end_ns)


def test_nothing_sent(tmp_path: Path):
    from servescope.records import Outcome

    recs = [request(0, 0.0, [], outcome=Outcome.CONNECTION_ERROR)]
    recs[0].t_send_ns = -1
    w = steady_window(request_metrics(write_run(tmp_path, recs)))
    assert not w.found
    assert w.steady_requests == 0
    assert w.reason == "no measured request was sent"
    assert np.isnan(w.in_flight_median) or w.in_flight_median == 0.0


def test_no_success_means_no_steady_state(tmp_path: Path):
    from servescope.records import Outcome

    recs = [request(i, 10.0 * i, [], outcome=Outcome.CONNECTION_ERROR) for i in range(100)]
    w = steady_window(request_metrics(write_run(tmp_path, recs)))
    assert not w.found
    assert w.reason.startswith("no request succeeded")
