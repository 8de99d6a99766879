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
import queue
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.client.target import Target
from collectors.timeline import TimelineRecorder
from profiler import aio, signals
from profiler.driver import DriveStats, Shard, drive
from profiler.procs import set_parent_death_signal
from servescope.redact import known_secrets, register_secrets

__all__ = ["COUNTERS", "WorkerError", "WorkerJob", "run_in_process", "run_workers"]

COUNTERS = 5  # per worker: sent, done, errors, in_flight, stream chunks received
READY_TIMEOUT_S = 120.0  # a worker imports the client and builds its shard
STOP_TIMEOUT_S = 30.0  # a stopped worker writes its in-flight requests as cancelled


class WorkerError(RuntimeError):
    """A worker process could not start its share of the run."""


@dataclass(slots=True)
class WorkerJob:
    shard: Shard
    target: Target
    run_dir: Path
    # the parent's registered secret values: the worker removes them from what it writes
    secrets: list[str] = field(default_factory=known_secrets)


def _publish(stats: DriveStats, counters: Any, base: int) -> None:
    counters[base] = stats.sent
    counters[base + 1] = stats.done
    counters[base + 2] = stats.errors
    counters[base + 3] = stats.in_flight
    counters[base + 4] = stats.chunks()


async def run_in_process(job: WorkerJob, stats: DriveStats | None = None,
                         counters: Any = None,
                         stop_signals: tuple[int, ...] | None = None,
                         stopped: Any = None) -> DriveStats:
    """Drive one shard in this process; a stop signal (by default those the main process
    stops on, :func:`profiler.signals.loop_signals`) cancels it cleanly (in-flight requests
    are written as cancelled) instead of killing the process mid-write. The signals'
    previous handlers are back afterwards. ``stopped()`` true once the handlers are in place:
    a stop signal came before them, so the drive is cancelled at once."""
    stats = stats if stats is not None else DriveStats()
    sigs = signals.loop_signals() if stop_signals is None else stop_signals
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_drive_and_publish(job, stats, counters))
    previous = {sig: signal.getsignal(sig) for sig in sigs}

    def on_signal(sig: int) -> None:
        if signals.accept(sig):
            task.cancel()

    for sig in sigs:
        loop.add_signal_handler(sig, on_signal, sig)
    if stopped is not None and stopped():
        task.cancel()
    try:
        # Everything allocated so far (imports, the workload) is long-lived: move it out of
        # the collector's reach, so a full collection during the run does not walk it and
        # stall the event loop (that showed up as 5 ms gaps in every stream at once).
        gc.collect()
        gc.freeze()
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        raise KeyboardInterrupt from None
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, previous[sig])
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


_STOP_ASKED = [False]  # a worker's SIGTERM outside its drive: only noted, never raised


def _note_stop(_sig: int, _frame: object) -> None:
    _STOP_ASKED[0] = True


def _stop_asked() -> bool:
    return _STOP_ASKED[0]


def _worker_entry(job: WorkerJob, ready: Any, start: Any, counters: Any, parent: int) -> None:
    """A worker: its parent stops it with SIGTERM (the terminal's SIGINT and SIGHUP are
    blocked from its birth: the parent gets them and stops the workers in order), and it dies
    with its parent, however the parent dies. No signal ever raises here: outside the drive
    SIGTERM is noted and looked at, inside it cancels the drive."""
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above
        return
    for sig in signals.TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _note_stop)
    register_secrets(job.secrets)
    ready.put(job.shard.worker_id)
    t0 = None
    while t0 is None and not _stop_asked() and os.getppid() == parent:
        with contextlib.suppress(queue.Empty):
            t0 = start.get(timeout=0.2)
            if t0 is None:  # the parent stopped the run before it began
                return
    if t0 is None or _stop_asked():
        return
    job.shard.t0_ns = t0
    job.shard.stop_at_ns = None if job.shard.stop_at_ns is None else t0 + job.shard.stop_at_ns
    if job.shard.warmup_until_ns is not None:
        job.shard.warmup_until_ns += t0
    with contextlib.suppress(KeyboardInterrupt):  # the drive was cancelled: all written
        aio.run(run_in_process(job, counters=counters, stop_signals=(signal.SIGTERM,),
                               stopped=_stop_asked))


def run_workers(jobs: list[WorkerJob], lead_ns: int = 500_000_000,
                on_tick: Any = None, tick_s: float = 0.5) -> bool:
    """Run one job per process. In each job, ``stop_at_ns`` and ``warmup_until_ns`` are
    offsets from the common start (the parent fixes ``t0`` once every worker is ready).

    Returns False when interrupted (Ctrl-C / SIGTERM / SIGHUP): the workers are told to stop,
    they write their in-flight requests as cancelled, and the caller still finalizes the run.
    Every wait is bounded; a second interrupt kills the workers at once.
    """
    from servescope.clock import now_ns

    ctx = mp.get_context("spawn")
    counters: Any = ctx.Array("q", COUNTERS * len(jobs), lock=False)
    with signals.blocked():  # the resource tracker starts here: deaf to the terminal too
        ready = ctx.Queue()
        starts = [ctx.Queue() for _ in jobs]
    procs = [ctx.Process(target=_worker_entry, args=(j, ready, s, counters, os.getpid()),
                         daemon=False) for j, s in zip(jobs, starts, strict=True)]
    interrupted = False
    try:
        with signals.shielded_spawn():
            for p in procs:
                p.start()
        _wait_ready(procs, ready)
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
    finally:
        _stop_workers(procs, starts)
    return not interrupted and all(p.exitcode == 0 for p in procs)


def _wait_ready(procs: list[Any], ready: Any) -> None:
    n, deadline = 0, time.monotonic() + READY_TIMEOUT_S
    while n < len(procs):
        try:
            ready.get(timeout=0.2)
            n += 1
            continue
        except queue.Empty:
            pass
        dead = [p for p in procs if p.exitcode is not None]
        if dead:
            raise WorkerError(f"client worker process {dead[0].pid} exited with code "
                              f"{dead[0].exitcode} before it was ready")
        if time.monotonic() > deadline:
            raise WorkerError(f"client workers not ready within {READY_TIMEOUT_S:g} s")


def _stop_workers(procs: list[Any], starts: list[Any]) -> None:
    """Tell every worker still running to stop (SIGTERM: in-flight requests are written as
    cancelled), wait at most STOP_TIMEOUT_S (less after a second interrupt), SIGKILL the
    rest."""
    for s in starts:
        with contextlib.suppress(OSError, ValueError):
            s.put(None)  # a worker still waiting for t0 exits at once
            s.cancel_join_thread()
    for p in procs:
        if p.is_alive() and p.pid is not None:
            _signal(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while (any(p.is_alive() for p in procs) and time.monotonic() < deadline
           and not signals.escalate()):
        for p in procs:
            if p.pid is not None:
                p.join(timeout=0.1)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5.0)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
