"""The ``kernels`` collector: one bounded profiler window of the engine, in steady state,
ingested into the run's ``kernels/`` tables.

Before the engine starts (``run`` only), :meth:`KernelCollector.amend_launch` enables the
window: the engine's own launch flag with cheap settings (vLLM's ``--profiler-config``: stacks
and shapes off, no frontend trace, traces into ``kernels/raw``), or, when the user asked
(``--kernels-hook``), servescope's in-process torch.profiler hook. While the load runs, a
thread waits until the load is steady (:class:`~collectors.kernels.window.SteadyGate`), opens
the window (``/start_profile`` bounded to ``steps`` engine steps where the engine has such a
bound; the hook for ``duration_s``), and waits for the trace files. At stop a window still
open is closed and its export awaited (bounded), the files are ingested
(:func:`~collectors.kernels.ingest.ingest_traces`, on the run's clock) and the window is
recorded in ``kernels/window.json`` (:class:`~servescope.records.kernels.KernelWindow`).
Nothing here raises into the run.

Options (``ctx.options["kernels"]``): ``steps`` (32), ``hook`` (False), ``trace_dir`` (attach:
where the server writes; None), ``duration_s`` (2: the hook's window), ``settle_s`` (1.5),
``target_in_flight`` (0: any), ``window_timeout_s`` (60: a window open this long is closed),
``export_timeout_s`` (120).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from collectors.base import CollectContext, CollectorStats
from collectors.kernels.launch import LaunchChange, amend_for_hook, amend_for_profiler
from collectors.kernels.window import HookWindow, HttpWindow, SteadyGate, wait_files
from servescope.clock import now_ns
from servescope.records.kernels import KernelWindow
from servescope.rundir.layout import KERNEL_HOOK_DIR, KERNEL_RAW_DIR, KERNEL_WINDOW_FILE

__all__ = ["KernelCollector"]

_DEFAULTS: dict[str, Any] = {"steps": 32, "hook": False, "trace_dir": None, "duration_s": 2.0,
                             "settle_s": 1.5, "target_in_flight": 0, "window_timeout_s": 60.0,
                             "export_timeout_s": 120.0}
_INGEST_S = 120.0
_CALL_S = 10.0  # a start call's answer


@dataclass(frozen=True, slots=True)
class _Options:
    steps: int
    hook: bool
    trace_dir: str | None
    duration_s: float
    settle_s: float
    target_in_flight: int
    window_timeout_s: float
    export_timeout_s: float


def _options(opts: Mapping[str, Any]) -> _Options:
    unknown = set(opts) - set(_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown kernels option(s): {', '.join(sorted(unknown))}")
    o = {**_DEFAULTS, **opts}
    out = _Options(int(o["steps"]), bool(o["hook"]), o["trace_dir"] or None,
                   float(o["duration_s"]), float(o["settle_s"]), int(o["target_in_flight"]),
                   float(o["window_timeout_s"]), float(o["export_timeout_s"]))
    if not 1 <= out.steps <= 100_000:
        raise ValueError(f"--kernel-steps must be 1 to 100000, got {out.steps}")
    if not 0 < out.duration_s <= 600:
        raise ValueError(f"--kernel-window must be between 0 and 600 s, got {out.duration_s}")
    return out


def _profiler(engine: str) -> Any:
    from servescope.engines.registry import get_spec

    try:
        return get_spec(engine).profiler
    except ValueError:
        return None


class KernelCollector:
    """One steady-state profiler window per run (module doc)."""

    name = "kernels"
    label = "kernel profiler window"

    def __init__(self) -> None:
        self._mechanism = ""  # "http" | "hook" | "" (set by amend_launch or at start)
        self._trace_dir: Path | None = None
        self._channel: Path | None = None
        self._amended = False
        self._ctx: CollectContext | None = None
        self._opts = _options({})
        self._rec: KernelWindow | None = None
        self._window: HttpWindow | HookWindow | None = None
        self._load_over: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._files: dict[str, int] = {}
        self._notes: list[str] = []  # what amend_launch changed

    # -- in servescope's process
    def validate_environment(self) -> None:
        """Nothing to check: the window needs no dependency of servescope's own."""

    def amend_launch(self, engine: str, argv: Sequence[str], env: Mapping[str, str],
                     run_dir: Path, options: Mapping[str, Any]) -> LaunchChange:
        """The serving command and environment that make a window possible (``run``)."""
        opts = _options(options)
        raw = run_dir / KERNEL_RAW_DIR
        raw.mkdir(parents=True, exist_ok=True)
        self._amended = True
        profiler = _profiler(engine)
        if opts.hook:
            self._channel = run_dir / KERNEL_HOOK_DIR
            change = amend_for_hook(argv, env, self._channel)
            self._mechanism = "hook"
        elif profiler is not None:
            change = amend_for_profiler(argv, env, profiler, raw)
            self._mechanism = "http"
        else:
            change = LaunchChange(list(argv), dict(env))
        self._trace_dir, self._notes = change.trace_dir, list(change.notes)
        return change

    def skip_reason(self, ctx: CollectContext) -> str:
        opts = _options(ctx.options_for(self.name))
        if opts.hook and not self._amended:
            return ("the in-process hook (--kernels-hook) is set up when servescope starts "
                    "the server: use `servescope run`")
        if opts.hook:
            return ""
        profiler = _profiler(ctx.engine.name)
        if profiler is None:
            return (f"{ctx.engine.name} has no profiler window servescope can open; with "
                    "`servescope run`, --kernels-hook starts torch.profiler inside the "
                    "server's own Python process")
        if not self._amended and profiler.output_dir_field is None and not opts.trace_dir:
            return (f"attached to {ctx.engine.name}: pass --kernels-trace-dir, the trace "
                    "directory the server was started with (its profiler flag)")
        return ""

    def stop_bound_s(self, ctx: CollectContext) -> float:
        o = _options(ctx.options_for(self.name))
        return o.export_timeout_s + _INGEST_S + 10.0

    # -- in the collector's own process
    def start(self, ctx: CollectContext) -> None:
        self._ctx, self._opts = ctx, _options(ctx.options_for(self.name))
        o = self._opts
        raw = ctx.run_dir / KERNEL_RAW_DIR
        raw.mkdir(parents=True, exist_ok=True)
        if not self._amended:  # attach: the engine's routes, traces where it writes them
            self._mechanism = "http"
            self._trace_dir = Path(o.trace_dir) if o.trace_dir else raw
        trace_dir = self._trace_dir or raw
        if self._mechanism == "hook" and self._channel is not None:
            self._window = HookWindow(self._channel, trace_dir, o.duration_s)
        else:
            self._window = HttpWindow(_profiler(ctx.engine.name), ctx.base_url, ctx.headers,
                                      trace_dir, o.steps)
        self._rec = KernelWindow(
            engine=ctx.engine.name, mechanism=self._mechanism, state="not_opened",
            steps_asked=o.steps if self._mechanism == "http" else 0,
            duration_asked_s=o.duration_s if self._mechanism == "hook" else 0.0,
            target_in_flight=o.target_in_flight)
        self._load_over = threading.Event()
        self._thread = threading.Thread(target=self._control, daemon=True,
                                        name="kernels-window")
        self._thread.start()

    def _control(self) -> None:
        try:
            self._run_window()
        except Exception as exc:  # noqa: BLE001 - never raise into the run
            assert self._rec is not None
            self._rec.state, self._rec.reason = "failed", f"{type(exc).__name__}: {exc}"

    def _wait_steady(self) -> bool:
        ctx, rec, over = self._ctx, self._rec, self._load_over
        assert ctx is not None
        assert rec is not None
        assert over is not None
        gate = SteadyGate(self._opts.target_in_flight, self._opts.settle_s)
        while not over.is_set():
            if ctx.activity is not None:
                a = ctx.activity.read()
                if gate.update(a, now_ns()):
                    rec.t_steady_ns, rec.in_flight_at_open = now_ns(), a.in_flight
                    return True
            over.wait(0.1)
        rec.reason = (f"the load ended before it was steady ({gate.need} or more requests in "
                      f"flight with tokens arriving, for {self._opts.settle_s:g} s)")
        return False

    def _run_window(self) -> None:
        rec, w, over, o = self._rec, self._window, self._load_over, self._opts
        assert rec is not None
        assert w is not None
        assert over is not None
        if not self._wait_steady():
            return
        opened = w.open(_CALL_S)
        if not opened.ok:
            rec.state, rec.reason = "failed", opened.error
            return
        rec.t_open_ns, rec.state = opened.t_ns, "open"
        trace_dir = w.trace_dir
        end = opened.t_ns + int(o.window_timeout_s * 1e9)
        if isinstance(w, HookWindow):
            end = min(end, opened.t_ns + int((o.duration_s + o.export_timeout_s) * 1e9))
            while not w.finished() and now_ns() < end and not over.is_set():
                time.sleep(0.1)
            if not w.finished():
                w.close()  # the load ended first: end it now, let the export run
                deadline = time.monotonic() + o.export_timeout_s
                while not w.finished() and time.monotonic() < deadline:
                    time.sleep(0.1)
            rec.processes = {str(pid): str(s.get("state", "?")) for pid, s in
                             sorted(w.statuses().items())}
            stops = [int(s["t_stop_ns"]) for s in w.statuses().values() if "t_stop_ns" in s]
            rec.t_close_ns = max(stops) if stops else now_ns()
            self._files = wait_files(trace_dir, w.before, now_ns() + int(5e9))
        else:
            files: dict[str, int] = {}
            if w.ends_by_itself():
                files = wait_files(trace_dir, w.before, end, stop=over)
            if not files:  # not ended by itself yet: the load is over or the bound passed
                err = w.close(o.export_timeout_s)
                if err:
                    rec.reason = err
            rec.t_close_ns = now_ns()
            self._files = files or wait_files(trace_dir, w.before,
                                              now_ns() + int(o.export_timeout_s * 1e9))
        rec.state = "taken" if self._files else "failed"
        if not self._files and not rec.reason:
            rec.reason = f"no trace file appeared in {trace_dir}"

    def stop(self) -> CollectorStats:
        rec, ctx = self._rec, self._ctx
        if rec is None or ctx is None or self._thread is None or self._load_over is None:
            return CollectorStats()
        self._load_over.set()
        self._thread.join(self._opts.export_timeout_s + 15.0)
        if self._thread.is_alive():
            rec.state, rec.reason = "failed", "the window did not end in time"
        stats = CollectorStats()
        trace_dir = self._window.trace_dir if self._window is not None else ctx.run_dir
        paths = [trace_dir / name for name in sorted(self._files)]
        rec.files = [str(p.relative_to(ctx.run_dir)) if p.is_relative_to(ctx.run_dir)
                     else str(p) for p in paths]
        events = 0
        if paths:
            try:
                from collectors.kernels.ingest import ingest_traces

                records = ingest_traces(paths, ctx.run_dir, ctx.anchor)
                events = sum(r.events_kept for r in records)
                bad = [f"{r.file}: {r.warnings}" for r in records if r.warnings]
                if bad:
                    stats.error = "kernel traces: " + "; ".join(bad)[:500]
            except Exception as exc:  # noqa: BLE001 - the trace files stay for later
                stats.error = f"kernel traces not ingested ({type(exc).__name__}: {exc})"
        if rec.state == "failed" and not stats.error:
            stats.error = f"no kernel window: {rec.reason}"
        self._write(ctx.run_dir, rec, stats)
        stats.counts = {"mechanism": rec.mechanism, "state": rec.state, "files": len(paths),
                        "events_kept": events, "steps_asked": rec.steps_asked,
                        "window_open_s": round((rec.t_close_ns - rec.t_open_ns) / 1e9, 3)
                        if rec.t_open_ns and rec.t_close_ns else 0.0, "launch": self._notes}
        return stats

    @staticmethod
    def _write(run_dir: Path, rec: KernelWindow, stats: CollectorStats) -> None:
        from servescope.jsonio import write_json

        try:
            write_json(run_dir / KERNEL_WINDOW_FILE, asdict(rec))
        except OSError as exc:
            stats.error = (stats.error + "; " if stats.error else "") + \
                f"kernels/window.json not written: {exc}"
