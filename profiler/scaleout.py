"""Client scale-out: several worker processes, one run, one clock.

Each worker runs :func:`profiler.driver.drive` on its shard and writes its own journal.
All processes of a host share CLOCK_MONOTONIC, and the parent hands every worker the same
start time ``t0_ns`` once all of them are ready, so the merged timelines are on one clock
and one schedule. Live counters go through a shared integer array.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing as mp
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.timeline import TimelineRecorder
from profiler import aio
from profiler.client.target import Target
from profiler.driver import DriveStats, Shard, drive

__all__ = ["COUNTERS", "WorkerJob", "run_in_process", "run_workers"]

COUNTERS = 4  # per worker: sent, done, errors, in_flight


@dataclass(slots=True)
class WorkerJob:
    shard: Shard
    target: Target
    run_dir: Path


def _publish(stats: DriveStats, counters: Any, base: int) -> None:
    counters[base] = stats.sent
    counters[base + 1] = stats.done
    counters[base + 2] = stats.errors
    counters[base + 3] = stats.in_flight


async def run_in_process(job: WorkerJob, stats: DriveStats | None = None,
                         counters: Any = None) -> DriveStats:
    """Drive one shard in this process; SIGINT/SIGTERM cancel it cleanly (in-flight
    requests are written as cancelled) instead of killing the process mid-write."""
    stats = stats if stats is not None else DriveStats()
    # Everything allocated so far (imports, the workload) is long-lived: move it out of the
    # collector's reach, so a full collection during the run does not walk it and stall
    # the event loop (that showed up as 5 ms gaps in every stream at once).
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_drive_and_publish(job, stats, counters))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        raise KeyboardInterrupt from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return stats


async def _drive_and_publish(job: WorkerJob, stats: DriveStats, counters: Any) -> None:
    base = job.shard.worker_id * COUNTERS
    with TimelineRecorder(job.run_dir, job.shard.worker_id) as rec:
        if counters is None:
            await drive(job.shard, job.target, rec, stats)
            return

        async def tick() -> None:
            while True:
                _publish(stats, counters, base)
                await asyncio.sleep(0.25)

        ticker = asyncio.create_task(tick())
        try:
            await drive(job.shard, job.target, rec, stats)
        finally:
            ticker.cancel()
            _publish(stats, counters, base)


def _worker_entry(job: WorkerJob, ready: Any, start: Any, counters: Any) -> None:
    ready.put(job.shard.worker_id)
    t0 = start.get()
    if t0 is None:
        return
    job.shard.t0_ns = t0
    job.shard.stop_at_ns = None if job.shard.stop_at_ns is None else t0 + job.shard.stop_at_ns
    if job.shard.warmup_until_ns is not None:
        job.shard.warmup_until_ns += t0
    with contextlib.suppress(KeyboardInterrupt):
        aio.run(run_in_process(job, counters=counters))


def run_workers(jobs: list[WorkerJob], lead_ns: int = 500_000_000,
                on_tick: Any = None, tick_s: float = 0.5) -> bool:
    """Run one job per process. In each job, ``stop_at_ns`` and ``warmup_until_ns`` are
    offsets from the common start (the parent fixes ``t0`` once every worker is ready).

    Returns False when interrupted (Ctrl-C / SIGTERM): the workers are told to stop, they
    write their in-flight requests as cancelled, and the caller still finalizes the run.
    """
    from profiler.clock import now_ns

    ctx = mp.get_context("spawn")
    counters: Any = ctx.Array("q", COUNTERS * len(jobs), lock=False)
    ready = ctx.Queue()
    starts = [ctx.Queue() for _ in jobs]
    procs = [ctx.Process(target=_worker_entry, args=(j, ready, s, counters), daemon=False)
             for j, s in zip(jobs, starts, strict=True)]
    for p in procs:
        p.start()
    interrupted = False
    try:
        for _ in procs:
            ready.get(timeout=120)
        t0 = now_ns() + lead_ns
        for s in starts:
            s.put(t0)
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=tick_s / max(len(procs), 1))
            if on_tick is not None:
                on_tick(list(counters))
    except KeyboardInterrupt:
        interrupted = True
        for s in starts:
            s.put(None)  # a worker still waiting for t0 exits at once
        for p in procs:
            if p.is_alive() and p.pid is not None:
                _signal(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=30)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    return not interrupted and all(p.exitcode == 0 for p in procs)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
