"""Run a workload against a server and leave a complete run directory: the library entry
point behind ``servescope attach`` (and, with an engine, ``servescope run``)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.client import timed
from collectors.client.progress import Progress
from collectors.client.target import Target
from profiler import aio, signals
from profiler.driver import DriveStats, Shard
from profiler.scaleout import COUNTERS, WorkerJob, run_in_process, run_workers
from profiler.workloads.arrivals import arrival_offsets_ns
from profiler.workloads.datasets import build_sessions
from profiler.workloads.sessions import Session
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, WorkloadError
from servescope.clock import take_anchor
from servescope.redact import redact_argv
from servescope.rundir.atomic import RunDirWriteError, is_disk_full
from servescope.rundir.layout import JOURNAL_DIR, RunDirError
from servescope.rundir.manifest import (
    ClientInfo,
    ClientStep,
    EngineInfo,
    Manifest,
    gpu_inventory,
    host_fingerprint,
    write_manifest,
)
from servescope.rundir.space import (
    RESERVE_BYTES,
    Reserve,
    journal_sizes,
    lines_since,
    room_for_tables,
)
from servescope.rundir.tables import count_journals, finalize_tables

__all__ = ["LoadConfig", "LoadResult", "Progress", "prepare_run_dir", "run_load"]

_NS = 1_000_000_000
_DURATION_POOL = 1000  # sessions built for a duration-only run (cycled)


@dataclass(frozen=True, slots=True)
class LoadConfig:
    target: Target
    dataset: DatasetSpec
    arrival: ArrivalSpec
    out_dir: Path
    num_requests: int | None = None  # sessions per step
    duration_s: float | None = None  # per step, after warm-up
    warmup_requests: int = 0
    warmup_s: float = 0.0
    seed: int = 0
    sweep: tuple[float, ...] = ()  # rates (open loop) or concurrencies (closed loop)
    workers: int = 1
    drain_timeout_s: float = 600.0
    command_line: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.num_requests is None and self.duration_s is None:
            raise WorkloadError("give a request count (--requests) or a duration (--duration)")
        if self.num_requests is not None and self.num_requests < 1:
            raise WorkloadError("--requests must be at least 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise WorkloadError("--duration must be positive")
        if self.workers < 1:
            raise WorkloadError("--workers must be at least 1")
        if self.warmup_requests < 0 or self.warmup_s < 0:
            raise WorkloadError("warm-up must not be negative")
        if any(v <= 0 for v in self.sweep):
            raise WorkloadError("sweep values must be positive")
        if self.arrival.kind == "closed" and self.workers > 1:
            streams = min(int(v) for v in self.sweep) if self.sweep else (
                self.arrival.concurrency or 1)
            if streams < self.workers:
                # a worker with no stream of its own would never send its share
                raise WorkloadError(
                    f"a closed loop of {streams} stream(s) cannot be split over "
                    f"{self.workers} workers: use --workers {streams} or fewer, or raise "
                    "--concurrency")



@dataclass(slots=True)
class LoadResult:
    """``error``: one line when the run could not be recorded as asked ("" otherwise): the
    journal could not be written (a full disk; the run stopped at once, ``status``
    ``interrupted``), or the final tables could not be (the journal is kept instead)."""

    run_dir: Path
    status: str
    requests: int
    warnings: list[str]
    error: str = ""


def prepare_run_dir(out_dir: Path) -> Path:
    """Create the run directory; refuse to mix a new run into an existing one."""
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RunDirError(f"{out_dir} already exists and is not empty; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _step_arrivals(cfg: LoadConfig) -> list[ArrivalSpec]:
    if not cfg.sweep:
        return [cfg.arrival]
    if cfg.arrival.kind == "trace":
        raise WorkloadError("a trace replay cannot be swept; use --time-scale instead")
    if cfg.arrival.kind == "closed":
        return [dataclasses.replace(cfg.arrival, concurrency=int(v)) for v in cfg.sweep]
    return [dataclasses.replace(cfg.arrival, rate_per_s=v) for v in cfg.sweep]


def _sessions_needed(cfg: LoadConfig, arrival: ArrivalSpec) -> int:
    if cfg.num_requests is not None:
        return cfg.num_requests + cfg.warmup_requests
    if arrival.kind in ("closed", "trace"):
        return _DURATION_POOL
    rate = arrival.rate_per_s or 1.0
    return max(1, math.ceil(rate * ((cfg.duration_s or 0) + cfg.warmup_s) * 1.05) + 1)


def _shards(cfg: LoadConfig, arrival: ArrivalSpec, sessions: list[Session], step: int,
            first_index: int) -> list[Shard]:
    """Deal one step's sessions to the workers (round robin) with the same schedule."""
    w = cfg.workers
    if arrival.kind == "trace":
        offsets: list[int] | None = [s.arrival_offset_ns or 0 for s in sessions]
    elif arrival.kind == "closed":
        offsets = None
    else:
        offsets = arrival_offsets_ns(arrival, len(sessions), cfg.seed + step)
    stop_rel = None
    if cfg.duration_s is not None:
        stop_rel = int((cfg.duration_s + cfg.warmup_s) * _NS)
    warm_rel = int(cfg.warmup_s * _NS) if cfg.warmup_s else None
    shards = []
    for k in range(w):
        conc = arrival.concurrency or 1
        share = conc // w + (1 if k < conc % w else 0)
        max_sessions = None
        if offsets is None:
            if cfg.num_requests is not None:
                total = cfg.num_requests + cfg.warmup_requests
                max_sessions = total // w + (1 if k < total % w else 0)
            else:
                max_sessions = 10**15
        shards.append(Shard(
            sessions=sessions[k::w], t0_ns=0,
            offsets_ns=None if offsets is None else offsets[k::w],
            concurrency=max(share, 0),
            max_in_flight=None if offsets is None else _cap_share(arrival.concurrency, w, k),
            stop_at_ns=stop_rel, max_sessions=max_sessions,
            warmup_sessions=cfg.warmup_requests // w + (1 if k < cfg.warmup_requests % w else 0),
            warmup_until_ns=warm_rel, step=step, worker_id=k, n_workers=w,
            first_index=first_index, drain_timeout_s=cfg.drain_timeout_s,
        ))
    return shards


def _cap_share(cap: int | None, w: int, k: int) -> int | None:
    if cap is None:
        return None
    return max(1, cap // w + (1 if k < cap % w else 0))


def run_load(cfg: LoadConfig, on_progress: Callable[[Progress], None] | None = None,
             engine: EngineInfo | None = None,
             run_dir_ready: bool = False) -> LoadResult:
    """Run every step, writing as it goes; always finalizes the run directory, also on
    Ctrl-C (status ``interrupted``) or an unexpected error (status ``failed``).
    ``run_dir_ready``: the caller created ``cfg.out_dir`` (and may have written into it);
    ``engine``: the manifest's engine section (the caller may fill it in as the run goes on).

    A disk that fills up stops the run at once (status ``interrupted``, the reason in
    ``LoadResult.error`` and the manifest's warnings): :class:`Reserve` keeps room for the
    final manifest, and the journal stays as the run's record when the tables do not fit.
    A disk without even that room is a :class:`RunDirError` before anything is sent."""
    run_dir = cfg.out_dir if run_dir_ready else prepare_run_dir(cfg.out_dir)
    reserve = _reserve(run_dir)
    anchor = take_anchor()
    clock, refused = timed.timestamp_source(packets=cfg.target.packet_timestamps)
    steps = _step_arrivals(cfg)
    manifest = Manifest(
        run_id=run_dir.name, started_wall_ns=anchor.wall_ns, clock=anchor,
        host=host_fingerprint(), command_line=redact_argv(list(cfg.command_line)),
        workload=_workload_json(cfg, steps), seed=cfg.seed,
        target={"url": cfg.target.base_url, "model": cfg.target.model,
                "endpoint": cfg.target.endpoint, "stream": cfg.target.stream,
                "per_chunk_usage": cfg.target.per_chunk_usage,
                "ignore_eos": cfg.target.ignore_eos,
                **({} if cfg.target.done_marker else {"done_marker": False})},
        workers=cfg.workers, gpus=gpu_inventory(), engine=engine,
        client=ClientInfo(clock),
    )
    if refused:
        manifest.warnings.append(f"--packet-timestamps: {refused}; events are timed by the "
                                 "kernel's receive time of each read instead")
    try:
        write_manifest(run_dir, manifest)
    except RunDirError:
        reserve.release()
        raise
    status, stop_reason = "complete", ""
    progress = Progress(steps=len(steps))
    first_index = 0
    try:
        for step, arrival in enumerate(steps):
            sessions = build_sessions(cfg.dataset, _sessions_needed(cfg, arrival),
                                      cfg.seed + step)
            progress.step = step
            progress.planned = cfg.num_requests
            shards = _shards(cfg, arrival, sessions, step, first_index)
            usage0 = _client_usage()
            ok, stop_reason = _run_step(cfg, shards, run_dir, progress, on_progress)
            manifest.client.steps.append(
                _step_usage(step, cfg.workers, usage0, _client_usage()))
            first_index += 10**9  # ids of the next step never collide with this one
            if stop_reason or not ok:
                status = "interrupted"
                break
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException:
        status = "failed"
        raise
    finally:
        signals.begin_stop()  # a stop signal now escalates; it never cuts the writing short
        n, error = _finish(run_dir, manifest, status, stop_reason, reserve)
    return LoadResult(run_dir, status, n, manifest.warnings, error)


def _reserve(run_dir: Path) -> Reserve:
    try:
        return Reserve(run_dir)
    except RunDirWriteError as exc:
        if is_disk_full(exc):
            raise RunDirError(f"no space left on device in {run_dir}: a run needs "
                              f"{RESERVE_BYTES >> 10} KiB free to start") from exc
        raise


def _finish(run_dir: Path, manifest: Manifest, status: str, stop_reason: str,
            reserve: Reserve) -> tuple[int, str]:
    """Tables (when there is room: else the journal stays the record) and the final
    manifest; returns (requests kept, the one-line error or "")."""
    reserve.release()  # the room it kept is for now
    tables_error = ""
    if stop_reason and not room_for_tables(run_dir):
        tables_error = "no room left for them"
    else:
        try:
            n, warnings = finalize_tables(run_dir)
        except RunDirWriteError as exc:
            tables_error = str(exc)
    if tables_error:
        n, warnings = count_journals(run_dir)
        warnings.append(f"the tables were not written ({tables_error}); the journal is kept "
                        "and read instead")
    error = ""
    if stop_reason:
        error = f"{stop_reason}: the run stopped; {n} requests kept"
    elif tables_error:
        error = f"{tables_error}: the tables were not written; {n} requests kept in the journal"
    manifest.status = status
    manifest.ended_wall_ns = time.time_ns()
    manifest.warnings.extend(warnings)
    if error:
        manifest.warnings.append(error)
    write_manifest(run_dir, manifest)
    return n, error


def _client_usage() -> tuple[int, int]:
    """(monotonic ns, CPU ns of this process and its reaped children: the client workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    cpu_s = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return time.monotonic_ns(), round(cpu_s * 1e9)


def _step_usage(step: int, workers: int, before: tuple[int, int],
                after: tuple[int, int]) -> ClientStep:
    """The client's CPU use during one step. With workers, their CPU is counted once they
    are reaped (at the end of the step), so the step's total is right. Engines started by
    ``run`` are children too, but are reaped only when stopped, after the last step."""
    return ClientStep(step=step, workers=workers, wall_ns=after[0] - before[0],
                      cpu_ns=after[1] - before[1])


def _run_step(cfg: LoadConfig, shards: list[Shard], run_dir: Path, progress: Progress,
              on_progress: Callable[[Progress], None] | None) -> tuple[bool, str]:
    """(False when interrupted, why the journal could not be written or "")."""
    # each request's traceparent derives from the run's id (servescope.tracecontext)
    cfg = dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, trace_seed=run_dir.name))
    if cfg.workers == 1:
        shard = shards[0]
        shard.t0_ns = 0  # drive() starts the clock once the client is primed
        stats = DriveStats()
        job = WorkerJob(shard, cfg.target, run_dir)
        try:
            aio.run(_with_ticks(job, stats, progress, on_progress))
        except KeyboardInterrupt:
            return False, stats.write_error
        return True, stats.write_error

    def tick(counters: list[int]) -> None:
        n = len(counters) // COUNTERS
        progress.sent = sum(counters[i * COUNTERS] for i in range(n))
        progress.done = sum(counters[i * COUNTERS + 1] for i in range(n))
        progress.errors = sum(counters[i * COUNTERS + 2] for i in range(n))
        progress.in_flight = sum(counters[i * COUNTERS + 3] for i in range(n))
        progress.chunks = sum(counters[i * COUNTERS + 4] for i in range(n))
        if on_progress is not None:
            on_progress(progress)

    jobs = [WorkerJob(s, cfg.target, run_dir) for s in shards]
    before = journal_sizes(run_dir)
    progress.done = 0  # this step's, from the workers' counters
    ok = run_workers(jobs, on_tick=tick)
    # each worker stops at its own failed write; the parent sees it as records that ended
    # (counted) but are not in the journals
    lost = progress.done - lines_since(before, run_dir) if ok else 0
    if lost <= 0:
        return ok, ""
    if shutil.disk_usage(run_dir).free < RESERVE_BYTES:
        return ok, f"no space left on device writing {run_dir / JOURNAL_DIR}"
    return ok, f"{lost} requests could not be written to {run_dir / JOURNAL_DIR}"


async def _with_ticks(job: WorkerJob, stats: DriveStats, progress: Progress,
                      on_progress: Callable[[Progress], None] | None) -> None:
    if on_progress is None:
        await run_in_process(job, stats)
        return

    async def tick() -> None:
        while True:
            progress.sent, progress.done = stats.sent, stats.done
            progress.errors, progress.in_flight = stats.errors, stats.in_flight
            progress.recent_ttft_ns = list(stats.recent_ttft_ns)
            progress.recent_itl_ns = list(stats.recent_itl_ns)
            progress.output_tokens = stats.output_tokens
            progress.chunks = stats.chunks()
            on_progress(progress)
            await asyncio.sleep(0.5)

    ticker = asyncio.create_task(tick())
    try:
        await run_in_process(job, stats)
    finally:
        ticker.cancel()


def _workload_json(cfg: LoadConfig, steps: list[ArrivalSpec]) -> dict[str, Any]:
    return {
        "dataset": dataclasses.asdict(cfg.dataset),
        "arrival": dataclasses.asdict(cfg.arrival),
        "steps": [dataclasses.asdict(s) for s in steps],
        "num_requests": cfg.num_requests, "duration_s": cfg.duration_s,
        "warmup_requests": cfg.warmup_requests, "warmup_s": cfg.warmup_s,
        "workers": cfg.workers,
    }
