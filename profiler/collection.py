"""The collectors a run chose (``--collect``), around its load.

Each is made and its environment checked before the engine starts (:func:`prepare`: a missing
dependency or permission is a usage error then, not a failure mid-run), started in a child
process of its own once the engine is ready, with the terminal's signals blocked (:func:`start`:
a Ctrl-C reaches only servescope, which stops them in order, and a stop signal cannot cut a
start in half), and stopped after the load (:func:`stop`), each one's counts recorded under its
name: the metrics scraper's in the engine's section (``engine.scrapes``), any other's in the
manifest's ``collectors`` section (:func:`record`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.base import (
    ActivityBoard,
    CollectContext,
    Collector,
    EngineFacts,
    LaunchAmender,
    LiveSource,
)
from collectors.child import ChildRunner, start_children, stop_children
from collectors.registry import make_collectors
from profiler import signals
from servescope.clock import now_ns, take_anchor
from servescope.redact import known_secrets
from servescope.rundir.layout import RunDirError
from servescope.rundir.manifest import ScrapeCounts, read_manifest, write_manifest

if TYPE_CHECKING:
    from collectors.client.progress import Progress
    from profiler.engine_run import EngineOptions
    from servescope.engines.spec import EngineSpec
    from servescope.rundir.manifest import EngineInfo

__all__ = ["amend_launch", "context", "kernel_options", "prepare", "record", "start", "stop",
           "with_gauges"]


def prepare(opts: EngineOptions) -> list[Collector]:
    """The chosen collectors, each made and its ``validate_environment()`` passed:
    :class:`collectors.base.CollectorUnavailable` (one line naming the fix) otherwise."""
    return make_collectors(opts.collectors(), opts.registry)


def kernel_options(opts: EngineOptions, target_in_flight: int = 0) -> dict[str, Any]:
    """The kernels collector's options (``target_in_flight``: the load's closed-loop
    concurrency, which the window waits for; 0: any)."""
    return {"steps": opts.kernel_steps, "hook": opts.kernels_hook,
            "trace_dir": opts.kernels_trace_dir, "duration_s": opts.kernel_window_s,
            "target_in_flight": target_in_flight}


def amend_launch(collectors: Sequence[Collector], engine: str, argv: Sequence[str],  # noqa: PLR0917
                 env: dict[str, str], run_dir: Path, opts: EngineOptions
                 ) -> tuple[list[str], dict[str, str], list[str]]:
    """The serving command and environment after every collector that must change them
    (:class:`LaunchAmender`), and what each changed (lines for the user)."""
    out_argv, out_env, notes = list(argv), dict(env), []
    for c in collectors:
        if isinstance(c, LaunchAmender):
            change = c.amend_launch(engine, out_argv, out_env, run_dir, kernel_options(opts))
            out_argv, out_env = change.argv, change.env
            notes += [f"{c.name}: {n}" for n in change.notes]
    return out_argv, out_env, notes


def context(spec: EngineSpec, argv: Sequence[str], base_url: str,  # noqa: PLR0917
            run_dir: Path, opts: EngineOptions, pid: int | None,
            target_in_flight: int = 0) -> CollectContext:
    """What the collectors start with, for an engine that is ready."""
    from collectors.live_gauges import live_families

    facts = EngineFacts(spec.name, tuple(argv), pid, spec.metrics_endpoints(argv, base_url),
                        live_families(spec), spec.process_roles,
                        _cuda_visible_devices(bool(argv), pid))
    return CollectContext(run_dir, base_url, facts, take_anchor(), opts.headers(),
                          tuple(known_secrets()),
                          {"metrics": {"interval_s": opts.metrics_interval_s,
                                       "max_body_bytes": opts.metrics_max_bytes},
                           "gpu": {"interval_s": opts.gpu_interval_s},
                           "stacks": {"rate_hz": opts.stacks_rate_hz,
                                      "blocking": opts.stacks_blocking,
                                      "hang_after_s": opts.hang_after_s},
                           "kernels": kernel_options(opts, target_in_flight)},
                          ActivityBoard())


def _cuda_visible_devices(started: bool, pid: int | None) -> str | None:
    """CUDA_VISIBLE_DEVICES as the engine got it: a started engine inherits servescope's
    environment; an attached one's (``--pid``) is read from /proc when allowed (None
    otherwise)."""
    if started:
        return os.environ.get("CUDA_VISIBLE_DEVICES")
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read(1 << 20).split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"CUDA_VISIBLE_DEVICES="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def start(collectors: Sequence[Collector], ctx: CollectContext, warnings: list[str]
          ) -> list[ChildRunner]:
    """Each collector in its own child, started from a thread with the terminal's signals
    blocked; those skipped or not started are warnings."""
    if not collectors:
        return []
    return start_children(collectors, ctx, warnings, run=signals.run_in_shielded_thread)


def stop(running: Sequence[ChildRunner], info: EngineInfo, warnings: list[str]
         ) -> dict[str, dict[str, Any]]:
    """Stop every running collector (bounded); the metrics scraper's counts go to
    ``info.scrapes``, every other collector's are returned by name (for :func:`record`)."""
    others: dict[str, dict[str, Any]] = {}
    for name, stats in stop_children(running, warnings).items():
        if name == "metrics":
            info.scrapes = ScrapeCounts.from_json(stats.to_json())
        else:
            others[name] = stats.to_json()
    return others


def record(run_dir: Path, counts: dict[str, dict[str, Any]], warnings: list[str]) -> None:
    """The counts of collectors other than metrics, in the manifest's ``collectors``
    section under each one's name (nothing is written when there are none)."""
    if not counts:
        return
    try:
        manifest = read_manifest(run_dir)
        manifest.collectors.update(counts)
        write_manifest(run_dir, manifest)
    except RunDirError as exc:  # a full disk: the run is recorded; these are details
        warnings.append(f"collector counts not recorded: {exc}")


def with_gauges(on_progress: Callable[[Progress], None] | None,
                running: Sequence[ChildRunner], board: ActivityBoard | None = None
                ) -> Callable[[Progress], None] | None:
    """The progress callback, with the latest live gauges filled in (from every collector
    that has them) and the load's activity written to ``board`` for the collectors (so a
    callback exists whenever a collector runs, live view or not)."""
    live = [r.collector for r in running if isinstance(r.collector, LiveSource)]
    if not running or (not live and board is None):
        return on_progress
    cb = on_progress

    def update(p: Progress) -> None:
        if board is not None:
            board.write(now_ns(), p.in_flight, p.chunks, p.done)
        if cb is None:
            return
        values: dict[str, float] = {}
        for source in live:
            values.update(source.live_values())
        p.engine = values
        cb(p)

    return update
