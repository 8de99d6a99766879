"""The client's timing against the reference server's own timestamps (same CLOCK_MONOTONIC):
TTFT and ITL within the bounds servescope achieves today at p99 with 64 concurrent streams,
and per-token ITL right when the server sends several tokens per event."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzers.itl import itl_samples
from profiler.calibration import measure_accuracy, spread_lengths
from profiler.selftest.schedule import RefSchedule
from servescope.rundir.reader import load_run
from tests._quiet import RunQueueSampler

_MS = 1_000_000
# What the user-space timestamps achieve at 64 streams on a 2-core machine that also runs the
# server: issue 13 measured 10.7-13.4 ms p99 TTFT error against an independent paced server
# (this file once claimed 1 ms, which held only on a quieter machine). Kernel receive
# timestamps (issue 13) are what brings this under 1 ms; tighten these bounds with them.
TTFT_P99_BOUND_MS, ITL_P99_BOUND_MS = 20.0, 15.0


def test_ttft_and_itl_error_bounded_at_64_streams(tmp_path: Path) -> None:
    """64 streams, 5 ms between tokens, 32-96 tokens each; the first request of each stream
    (the connection-opening burst) is warm-up and excluded.

    The measurement shares a 2-core machine with the reference server and anything else
    running, so it gets up to three attempts: a client whose error really is above the
    bounds fails all three. If other processes oversubscribed the CPUs during every attempt, the
    error measured is theirs, not the client's, and the test is skipped saying so (on the
    quiet CI machine it asserts). Every attempt's numbers are in the message."""
    sched = RefSchedule(ttft_ms=20, itl_ms=5, output_tokens=256)
    seen = []
    for attempt in range(3):
        with RunQueueSampler() as rq:
            r = measure_accuracy(tmp_path / f"acc{attempt}", concurrency=64, requests=256,
                                 schedule=sched, server_args=("--spin-us", "0"),
                                 output_len=spread_lengths(64))
        assert r.requests_matched == 256  # measured; the 64 warm-up requests come on top
        assert r.event_count_mismatches == 0
        assert r.itl_error_ns.count > 256 * 30
        seen.append((r.abs_ttft_error_ns.p99 / _MS, r.abs_itl_error_ns.p99 / _MS,
                     f"oversubscribed {rq.fraction:.0%}"))
        if (r.abs_ttft_error_ns.p99 < TTFT_P99_BOUND_MS * _MS
                and r.abs_itl_error_ns.p99 < ITL_P99_BOUND_MS * _MS):
            return
    msg = f"p99 |TTFT error|, |ITL error| in ms per attempt: {seen}"
    if all(float(x[2].split()[1].rstrip("%")) > 1 for x in seen):
        pytest.skip("other processes oversubscribed the CPUs in every attempt; " + msg)
    raise AssertionError(msg)


def test_per_token_itl_with_several_tokens_per_event(tmp_path: Path) -> None:
    # 4 tokens per event every 8 ms: 2 ms per token, not 8 ms and not three zeros
    sched = RefSchedule(ttft_ms=10, itl_ms=8, output_tokens=32, tokens_per_event=4)
    with RunQueueSampler() as rq:
        r = measure_accuracy(tmp_path / "acc", concurrency=8, requests=32, schedule=sched,
                             server_args=("--spin-us", "0"), warmup_requests=0)
    if rq.fraction > 0.01 and float(np.min(itl_samples(load_run(tmp_path / "acc"))
                                           .per_token_ns)) < 0.5 * _MS:
        # two events read together: only a stalled client does that, and it was not alone
        pytest.skip(f"other processes oversubscribed the CPUs ({rq.fraction:.0%} of samples)")
    assert r.requests_matched == 32
    itl = itl_samples(load_run(tmp_path / "acc"))
    per_token = itl.per_token_ns / _MS
    per_event = itl.per_event_ns / _MS
    assert len(per_event) == 32 * 7  # 8 events per request, 7 gaps
    # 7 gaps x 4 tokens each; the 3 extra tokens of the first event have no gap
    assert len(per_token) == 32 * 7 * 4
    assert abs(float(np.median(per_token)) - 2.0) < 0.1
    assert abs(float(np.median(per_event)) - 8.0) < 0.4
    assert float(np.min(per_token)) > 0.5  # no zero gaps
