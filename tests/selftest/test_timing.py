"""The truth matches the schedule: measured on a real server process on loopback.

The numbers are printed (``pytest -s``) so they can be reported. On an idle 2-core machine
TTFT error is a few µs at p50 and tens of µs at p99; the strict bounds below (p50 < 0.5 ms,
p99 < 2 ms) hold there. When the host is oversubscribed during the measurement (more
runnable tasks than CPUs in over 1 % of 2 ms samples of ``/proc/stat``, e.g. other jobs
benchmarking beside us) the OS deschedules the server for milliseconds and no user-space
server can keep to a schedule, so the bounds are loosened and the test says so; the truth
stays honest either way (it records what was done).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from profiler.selftest.process import RefServerHandle, start_refserver
from profiler.selftest.schedule import RefSchedule
from tests._quiet import RunQueueSampler

TTFT_MS = 10.0
ITL_MS = 2.0
TOKENS = 10
REQUESTS = 160
CONCURRENCY = 16


@pytest.fixture(scope="module")
def server() -> Iterator[RefServerHandle]:
    with start_refserver(RefSchedule(ttft_ms=TTFT_MS, itl_ms=ITL_MS)) as handle:
        yield handle


async def _run(url: str) -> None:
    body = {"model": "ref", "prompt": "a b", "max_tokens": TOKENS, "stream": True}
    todo = iter(range(REQUESTS))
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            for i in todo:
                headers = {"x-request-id": f"timing-{i}"}
                async with session.post(url + "/v1/completions", json=body, headers=headers) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] / 1e3  # µs


def _errors(records: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    ttft_err: list[int] = []
    event_err: list[int] = []
    for rec in records:
        first = rec["kinds"].index("output")
        ttft_err.append(rec["t_event_ns"][first] - rec["t_recv_ns"] - round(TTFT_MS * 1e6))
        event_err += [t - s for t, s in zip(rec["t_event_ns"], rec["t_sched_ns"], strict=True)]
    return ttft_err, event_err


def test_truth_is_monotonic_and_never_early(server):
    server.reset()
    asyncio.run(_run(server.url))
    records = server.truth()
    assert len(records) == REQUESTS
    for rec in records:
        times = [rec["t_recv_ns"], rec["t_headers_ns"], *rec["t_event_ns"], rec["t_done_ns"]]
        assert times == sorted(times)
        assert all(t >= s for t, s in zip(rec["t_event_ns"], rec["t_sched_ns"], strict=True))
        assert rec["t_sched_ns"][0] == rec["t_recv_ns"] + round(TTFT_MS * 1e6)
        sched = rec["t_sched_ns"][:TOKENS]
        steps = {b - a for a, b in itertools.pairwise(sched)}
        assert steps == {round(ITL_MS * 1e6)}
        assert rec["tokens"] == [1] * TOKENS + [0]
        assert rec["ended"] == "complete"


def test_schedule_accuracy(server):
    ttft_err: list[int] = []
    event_err: list[int] = []
    p50_us, p99_us = 500, 2000
    for _attempt in range(3):  # retries: a neighbour's burst can spoil a single run
        server.reset()
        with RunQueueSampler() as sampler:
            asyncio.run(_run(server.url))
        ttft_err, event_err = _errors(server.truth())
        busy = sampler.fraction > 0.01
        if busy:
            p50_us, p99_us = 5000, 50000
        if _pct(ttft_err, 0.99) < p99_us and _pct(event_err, 0.99) < p99_us:
            break
    print(
        f"\nTTFT truth - schedule: p50 {_pct(ttft_err, 0.5):.0f} µs, "
        f"p99 {_pct(ttft_err, 0.99):.0f} µs, max {max(ttft_err) / 1e3:.0f} µs; "
        f"all events: p50 {_pct(event_err, 0.5):.0f} µs, p99 {_pct(event_err, 0.99):.0f} µs, "
        f"mean {statistics.fmean(event_err) / 1e3:.0f} µs (n={len(event_err)}); "
        f"run queue above {os.cpu_count()} CPUs in {sampler.fraction:.1%} of samples"
        + (" - OVERSUBSCRIBED, loose bounds" if busy else "")
    )
    assert _pct(ttft_err, 0.5) < p50_us
    assert _pct(ttft_err, 0.99) < p99_us
    assert _pct(event_err, 0.99) < p99_us
