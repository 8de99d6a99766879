"""The ``stacks`` collector: CPU stacks of every engine process, with py-spy.

At start, and again every :data:`RESCAN_S` (engines start their workers lazily), it finds the
engine's processes (``ctx.engine_pids()``), labels each by its title with the engine spec's
process roles, and starts one ``py-spy record --nonblocking --rate R --format speedscope
--threads`` per Python process (a process that is not Python is listed once, not sampled).
Without ``--idle``: a sample is a tick at which the thread ran, so a thread's samples over
the ticks is how busy it was, and hot functions are where CPU time went, not where threads
wait. At stop each py-spy gets SIGINT and writes its file (bounded; then killed), and the
files are summarized into ``stacks/processes.json``, ``threads.parquet`` and ``hot.parquet``.
While the load runs, a :class:`~collectors.stacks.hangs.HangWatcher` dumps every process
when tokens stop.

Missing ptrace permission is not fatal: it is found before py-spy starts when it can be
(capabilities, Yama's ptrace_scope, the engine's uid) or from py-spy's error text, and
becomes one warning naming the fix. Nothing here raises into the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.base import CollectContext, CollectorStats, CollectorUnavailable
from collectors.stacks.hangs import HangWatcher
from collectors.stacks.procs import (
    PERMISSION_FIX,
    find_py_spy,
    is_permission_error,
    not_python_reason,
    ptrace_problem,
    role_for,
    title_of,
)
from collectors.stacks.pyspy import DUMP_TIMEOUT_S, Recorder, prepare_signals
from collectors.stacks.speedscope import SpeedscopeError, hot_frames, read_speedscope, threads_of
from collectors.stacks.tables import write_tables
from servescope.records.stacks import HotFrame, StackProcess, StackThread
from servescope.rundir.layout import STACKS_DIR, RunDirError

__all__ = ["RESCAN_S", "StackCollector"]

RESCAN_S = 2.0  # new engine processes are found within this
_TICK_S = 0.25  # the watcher's check of the load's activity
_SIGINT_WAIT_S = 8.0  # py-spy writes its file after SIGINT (a long run's file is large)
_SUMMARY_S = 30.0  # summarizing the speedscope files; past it the files are left as they are
_SLACK_S = 5.0
_DEFAULTS: dict[str, Any] = {"rate_hz": 50, "blocking": False, "hang_after_s": 30.0}


@dataclass(frozen=True, slots=True)
class _Options:
    rate_hz: int
    blocking: bool
    hang_after_s: float


def _options(opts: Mapping[str, Any]) -> _Options:
    """The collector's options (``ValueError`` for an unknown or bad one)."""
    unknown = set(opts) - set(_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown stacks option(s): {', '.join(sorted(unknown))}")
    o = {**_DEFAULTS, **opts}
    rate, hang = int(o["rate_hz"]), float(o["hang_after_s"])
    if not 1 <= rate <= 1000:
        raise ValueError(f"stacks rate_hz must be 1 to 1000, got {rate}")
    if not hang > 0:
        raise ValueError(f"stacks hang_after_s must be positive, got {hang}")
    return _Options(rate, bool(o["blocking"]), hang)


@dataclass(slots=True)
class _Proc:
    pid: int
    role: str
    title: str
    recorder: Recorder | None = None
    error: str = ""  # why it was not sampled, or what went wrong
    skipped: bool = False  # not Python, or exited before sampling: a note, not an error


def _files(run_dir: Path, role: str, pid: int) -> tuple[Path, Path]:
    """A process's speedscope file and py-spy log."""
    stem = f"{role}-{pid}"
    return (run_dir / STACKS_DIR / f"{stem}.speedscope.json",
            run_dir / STACKS_DIR / f"{stem}.py-spy.log")


class StackCollector:
    """Samples the engine's processes with py-spy (module doc). Options
    (``ctx.options["stacks"]``): ``rate_hz`` (50), ``blocking`` (False: ``--nonblocking``),
    ``hang_after_s`` (30)."""

    name = "stacks"
    label = "stack sampler"

    def __init__(self, py_spy: str | None = None) -> None:
        self.py_spy = py_spy
        self._ctx: CollectContext | None = None
        self._opts = _Options(**_DEFAULTS)
        self._procs: dict[int, _Proc] = {}
        self._first_pid: int | None = None
        self._permission = ""  # the one warning about ptrace
        self._watcher: HangWatcher | None = None
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None  # made where it runs (not picklable)
        self._loop_error = ""

    # -- in servescope's process
    def validate_environment(self) -> None:
        self.py_spy = self.py_spy or find_py_spy()
        if self.py_spy is None:
            raise CollectorUnavailable("the stacks collector needs py-spy: pip install "
                                       "'servescope[profiling]'")

    def skip_reason(self, ctx: CollectContext) -> str:
        if ctx.engine.pid is None:
            return (f"{self.label}: the engine's processes are unknown (attach without "
                    "--pid); CPU stacks not sampled")
        return ""

    def stop_bound_s(self, ctx: CollectContext) -> float:
        """A hang dump in flight (twice the dump timeout), py-spy writing its files after
        SIGINT, the summary, slack."""
        _options(ctx.options_for(self.name))
        return 2 * DUMP_TIMEOUT_S + _SIGINT_WAIT_S + _SUMMARY_S + _SLACK_S

    # -- where it runs
    def start(self, ctx: CollectContext) -> None:
        self._opts = _options(ctx.options_for(self.name))
        self.py_spy = self.py_spy or find_py_spy()
        if self.py_spy is None:
            raise CollectorUnavailable("py-spy not found: pip install 'servescope[profiling]'")
        self._ctx = ctx
        self._first_pid = ctx.engine.pid
        (ctx.run_dir / STACKS_DIR).mkdir(parents=True, exist_ok=True)
        prepare_signals()
        if problem := ptrace_problem(ctx.engine_pids()):
            self._permission = self._permission_text(problem)
        self._scan()
        if not self._permission and ctx.activity is not None:
            self._watcher = HangWatcher(ctx.activity, ctx.run_dir, self.py_spy,
                                        self._opts.hang_after_s, self._targets)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,),
                                        name="stacks-scan", daemon=True)
        self._thread.start()

    @staticmethod
    def _permission_text(why: str) -> str:
        return (f"py-spy may not read the engine's processes ({why}): CPU stacks not "
                f"sampled; {PERMISSION_FIX}")

    def _loop(self, stop: threading.Event) -> None:
        next_scan = time.monotonic() + RESCAN_S
        while not stop.wait(_TICK_S):
            try:
                if time.monotonic() >= next_scan:
                    next_scan += RESCAN_S
                    self._scan()
                if self._watcher is not None:
                    self._watcher.check(time.monotonic_ns())
            except Exception as exc:  # noqa: BLE001 - counted; the sampling goes on
                self._loop_error = self._loop_error or f"{type(exc).__name__}: {exc}"

    def _scan(self) -> None:
        """Start py-spy on engine processes not seen before; note py-spy that ended; label
        again the processes whose title changed (a worker sets its title after its imports,
        seconds after it appeared)."""
        ctx = self._ctx
        if ctx is None:
            return
        for pid in ctx.engine_pids():
            if pid not in self._procs:
                self._procs[pid] = self._begin(ctx, pid)
        for p in self._procs.values():
            if p.recorder is not None and not p.recorder.poll() and p.recorder.error:
                self._note_failure(p, p.recorder.error)
        self._relabel(ctx)

    def _relabel(self, ctx: CollectContext) -> None:
        """Role again the processes whose title changed (while they still run)."""
        for p in self._procs.values():
            if not p.skipped and (title := title_of(p.pid)) and title != p.title:
                p.title = title
                p.role = role_for(title, ctx.engine.process_roles, first=p.pid == self._first_pid)

    def _begin(self, ctx: CollectContext, pid: int) -> _Proc:
        title = title_of(pid)
        proc = _Proc(pid, role_for(title, ctx.engine.process_roles,
                                   first=pid == self._first_pid), title)
        if reason := not_python_reason(pid):
            proc.error, proc.skipped = reason + "; not sampled", True
            return proc
        if self._permission or self.py_spy is None:
            proc.error = "no ptrace permission; not sampled"
            return proc
        out, log = _files(ctx.run_dir, proc.role, pid)
        rec = Recorder(self.py_spy, pid, out, log, rate_hz=self._opts.rate_hz,
                       blocking=self._opts.blocking)
        proc.recorder = rec
        if not rec.start():
            proc.error = rec.error
        return proc

    def _note_failure(self, p: _Proc, error: str) -> None:
        p.error = error
        if is_permission_error(error) and not self._permission:
            self._permission = self._permission_text(f"py-spy: {error}")

    def _targets(self) -> list[tuple[int, str]]:
        """The processes a hang dump covers: every Python engine process still there."""
        return [(p.pid, p.role) for p in self._procs.values()
                if not p.skipped and Path(f"/proc/{p.pid}").exists()]

    def stop(self) -> CollectorStats:
        ctx = self._ctx
        if ctx is None:
            return CollectorStats(self._counts(0, 0, 0))
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:  # a hang dump in flight ends within its bound
            self._thread.join(2 * DUMP_TIMEOUT_S + 1)
        self._relabel(ctx)
        recorders = [p.recorder for p in self._procs.values() if p.recorder is not None]
        for rec in recorders:
            rec.interrupt()
        deadline = time.monotonic_ns() + int(_SIGINT_WAIT_S * 1e9)
        for rec in recorders:
            rec.finish(deadline)
        for p in self._procs.values():
            if p.recorder is not None and p.recorder.error and not p.error:
                self._note_failure(p, p.recorder.error)
            if p.recorder is not None:  # the files carry the role the process ended with
                p.recorder.rename(*_files(ctx.run_dir, p.role, p.pid))
        rows, threads, hot, problems = self._summarize(ctx.run_dir)
        try:
            write_tables(ctx.run_dir, rows, threads, hot)
        except RunDirError as exc:
            problems.append(f"stack tables not written: {exc}")
        samples = sum(r.samples for r in rows)
        stats = CollectorStats(self._counts(samples, len(threads), len(problems)))
        stats.error = self._error_text(problems)
        return stats

    def _summarize(self, run_dir: Path) -> tuple[list[StackProcess], list[StackThread],
                                                 list[HotFrame], list[str]]:
        rows: list[StackProcess] = []
        threads: list[StackThread] = []
        hot: list[HotFrame] = []
        problems: list[str] = []
        until = time.monotonic() + _SUMMARY_S
        for p in sorted(self._procs.values(), key=lambda q: q.pid):
            rec, samples, rel = p.recorder, 0, ""
            if rec is not None and rec.out.exists():
                rel = str(rec.out.relative_to(run_dir))
                if time.monotonic() > until:
                    p.error = p.error or "not summarized in time; the speedscope file is kept"
                else:
                    try:
                        profile = read_speedscope(rec.out)
                        ticks = round((rec.t_end_ns - rec.t_start_ns) / 1e9 * self._opts.rate_hz)
                        samples = profile.samples
                        threads += threads_of(profile, p.pid, p.role, ticks)
                        hot += hot_frames(profile, p.pid, p.role)
                    except (OSError, SpeedscopeError) as exc:
                        p.error = p.error or str(exc)
            elif rec is not None and not p.error:
                p.error = "py-spy wrote no file"
            if p.error and not p.skipped:
                problems.append(f"{p.role}-{p.pid}: {p.error}")
            rows.append(StackProcess(p.pid, p.role, p.title, rel, samples,
                                     rec.t_start_ns if rec else -1, rec.t_end_ns if rec else -1,
                                     p.error))
        return rows, threads, hot, problems

    def _counts(self, samples: int, threads: int, errors: int) -> dict[str, Any]:
        hangs = self._watcher.hangs if self._watcher is not None else []
        return {"processes": sum(p.recorder is not None for p in self._procs.values()),
                "skipped": sum(p.skipped for p in self._procs.values()),
                "samples": samples, "threads": threads, "hang_dumps": len(hangs),
                "errors": errors + bool(self._loop_error), "rate_hz": self._opts.rate_hz,
                "blocking": self._opts.blocking, "hang_after_s": self._opts.hang_after_s}

    def _error_text(self, problems: list[str]) -> str:
        """One sentence for the run's warnings: ptrace first, then hangs, then failures."""
        parts = [self._permission] if self._permission else []
        if self._watcher is not None and (hangs := self._watcher.summary()):
            parts.append(hangs)
        if self._loop_error:
            parts.append(f"the process scan failed: {self._loop_error}")
        if problems and not self._permission:
            n = len(self._procs) - sum(p.skipped for p in self._procs.values())
            parts.append(f"{len(problems)} problem(s) over {n} engine processes; first "
                         f"{problems[0]}")
        return "; ".join(parts)
