"""Samples as counters and the stack summary: the engine's canonical signals (one counter
track per signal), the GPU collector's NVML and GPM readings (per GPU and metric), and per
sampled engine thread one slice over the stack sampler's window with its on-CPU share and
hottest functions (a summary of the window, not a timeline of it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from reports.perfetto.tracks import ENGINE_PID, GPU_PID, STACKS_PID, Tracks
from reports.perfetto.writer import TraceWriter

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.gpu.load import GpuTables
    from analyzers.stacks_summary import StacksSummary
    from servescope.rundir.reader import RunData

__all__ = ["EngineCounters", "GpuCounters", "StackSlices", "engine_counters", "gpu_counters",
           "stack_slices"]

TOP_FUNCTIONS = 5  # hottest functions (by self samples) named in a thread's slice


def _finite(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _min(values: list[int]) -> int | None:
    kept = [v for v in values if v >= 0]
    return min(kept) if kept else None


@dataclass(frozen=True, slots=True)
class EngineCounters:
    """``engine_signals`` of the run: DataFrame(t_ns, signal, value)."""

    signals: pd.DataFrame

    def first_ns(self) -> int | None:
        return _min([int(self.signals["t_ns"].min())]) if len(self.signals) else None

    def write(self, w: TraceWriter, tracks: Tracks) -> dict[str, int]:
        """One ``C`` event per snapshot named ``engine`` with one arg per signal it had:
        Perfetto makes a counter track per arg (``engine kv_cache_usage_frac``, ...)."""
        if not len(self.signals):
            return {}
        tracks.process(ENGINE_PID, "engine metrics")
        n = 0
        for t_ns, rows in self.signals.groupby("t_ns", sort=True):
            args = {str(s): float(v) for s, v in zip(rows["signal"], rows["value"], strict=True)
                    if _finite(v)}
            if args:
                w.emit({"ph": "C", "name": "engine", "pid": ENGINE_PID,
                        "ts": w.us(cast(int, t_ns)), "args": args})
                n += len(args)
        return {"engine counter samples": n,
                "engine counter tracks": int(self.signals["signal"].nunique())}


def engine_counters(run: RunData) -> tuple[EngineCounters | None, str]:
    """The run's engine signals, or None and why not ("" when it scraped no engine)."""
    from analyzers.engine_signals import engine_signals
    from servescope.rundir.engine_tables import engine_dir
    from servescope.rundir.layout import RunDirError

    if not engine_dir(run.path).is_dir():
        return None, ""
    try:
        return EngineCounters(engine_signals(run)), ""
    except RunDirError as exc:
        return None, f"engine metrics left out: {exc}"


@dataclass(frozen=True, slots=True)
class GpuCounters:
    """The GPU collector's tables and the metrics drawn from them
    (:data:`analyzers.gpu_series.METRICS`, the report's own)."""

    tables: GpuTables

    def first_ns(self) -> int | None:
        s, g = self.tables.samples, self.tables.gpm
        return _min([int(s["t_ns"].min()) if len(s) else -1,
                     int(g["t_start_ns"].min()) if len(g) else -1])

    def write(self, w: TraceWriter, tracks: Tracks) -> dict[str, int]:
        """NVML readings at their ``t_ns``; a GPM window's values at its start (a counter
        holds its value until the next one: the window it covers). Counter ``GPU i`` (``GPU
        i MIG g`` for a MIG instance's GPM) with one arg per metric; a missing value is no
        arg, so the track keeps the previous reading."""
        from analyzers.gpu_series import METRICS

        nvml = {col: (name, scale) for name, (src, col, scale) in METRICS.items()
                if src == "nvml"}
        gpm = {m: (name, scale) for name, (src, m, scale) in METRICS.items() if src == "gpm"}
        s, g = self.tables.samples, self.tables.gpm
        if not len(s) and not len(g):
            return {}
        tracks.process(GPU_PID, "GPU telemetry")
        n, names = 0, set[str]()
        cols = [c for c in nvml if c in s.columns]
        for r in s[["t_ns", "gpu_index", *cols]].to_dict("records"):
            args = {nvml[c][0]: float(r[c]) * nvml[c][1] for c in cols if _finite(r[c])}
            if args:
                name = f"GPU {int(r['gpu_index'])}"
                w.emit({"ph": "C", "name": name, "pid": GPU_PID, "ts": w.us(int(r["t_ns"])),
                        "args": args})
                n += len(args)
                names.update(f"{name} {k}" for k in args)
        g = g[g["metric"].isin(list(gpm))]
        keys = ["gpu_index", "mig_gpu_instance", "t_start_ns"]
        for key, rows in g.groupby(keys, sort=True, dropna=False):
            gpu, mig, t0 = cast(tuple[int, float, int], key)
            args = {gpm[m][0]: float(v) * gpm[m][1]
                    for m, v in zip(rows["metric"], rows["value"], strict=True) if _finite(v)}
            if args:
                name = f"GPU {int(gpu)}" + (f" MIG {int(mig)}" if _finite(mig) else "")
                w.emit({"ph": "C", "name": name, "pid": GPU_PID, "ts": w.us(int(t0)),
                        "args": args})
                n += len(args)
                names.update(f"{name} {k}" for k in args)
        return {"GPU counter samples": n, "GPU counter tracks": len(names)}


def gpu_counters(run_dir: Path) -> tuple[GpuCounters | None, str]:
    from analyzers.gpu.load import read_gpu

    tables = read_gpu(run_dir)
    if tables is None:
        return None, ""
    return GpuCounters(tables), "; ".join(tables.warnings)


@dataclass(frozen=True, slots=True)
class StackSlices:
    summary: StacksSummary

    def _windows(self) -> dict[int, tuple[int, int]]:
        return {p.pid: (p.t_start_ns, p.t_end_ns) for p in self.summary.processes
                if 0 <= p.t_start_ns <= p.t_end_ns}

    def first_ns(self) -> int | None:
        times = [a for a, _ in self._windows().values()] + [h.t_ns for h in self.summary.hangs]
        return _min(times)

    def write(self, w: TraceWriter, tracks: Tracks) -> dict[str, int]:
        """Per sampled thread one slice over its process's sampling window, named by its
        on-CPU share (py-spy's active samples over the window's ticks); per stall one
        instant on the process track."""
        windows = self._windows()
        slices = hangs = 0
        for role in self.summary.roles:
            for t in role.threads:
                window = windows.get(t.pid)
                if window is None:
                    continue
                tracks.process(STACKS_PID, "engine CPU stacks (py-spy)")
                tid = tracks.thread(STACKS_PID, (t.pid, t.tid),
                                    f"{t.role} {t.pid}: {t.thread_name} ({t.tid})")
                top = [f"{f.function} ({f.file}:{f.line}) self {f.self_frac:.1%}, "
                       f"total {f.total_frac:.1%}" for f in t.top[:TOP_FUNCTIONS]]
                w.emit({"ph": "X", "name": f"on-CPU {t.active_frac:.0%}", "cat": "stacks",
                        "pid": STACKS_PID, "tid": tid, "ts": w.us(window[0]),
                        "dur": (window[1] - window[0]) / 1000,
                        "args": {"role": t.role, "pid": t.pid, "tid": t.tid,
                                 "thread_name": t.thread_name, "samples": t.samples,
                                 "active_frac": t.active_frac, "hottest_self": top,
                                 "note": "one summary over the sampling window"}})
                slices += 1
        for h in self.summary.hangs:
            tracks.process(STACKS_PID, "engine CPU stacks (py-spy)")
            w.emit({"ph": "i", "s": "p", "name": "engine stalled", "cat": "stacks",
                    "pid": STACKS_PID, "ts": w.us(h.t_ns),
                    "args": {"stalled_s": h.stalled_s, "in_flight": h.in_flight,
                             "dumps": list(h.files)}})
            hangs += 1
        out = {"stack thread slices": slices, "stack thread tracks": tracks.count(STACKS_PID)}
        if hangs:
            out["hang instants"] = hangs
        return out if slices or hangs else {}


def stack_slices(run_dir: Path) -> tuple[StackSlices | None, str]:
    from analyzers.stacks_summary import summarize_stacks

    summary = summarize_stacks(run_dir)
    if summary is None:
        return None, ""
    return StackSlices(summary), "; ".join(summary.warnings)
