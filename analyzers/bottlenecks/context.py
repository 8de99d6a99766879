"""What every bottleneck rule looks at: :class:`RuleContext`, a narrow view of the run's
:class:`~analyzers.context.RunContext` (which computes each member once).

The **window** the rules judge is the steady-state window of the run's measured requests
(:mod:`analyzers.steady_state`) when one was found, else the whole load; a sweep is judged
over its whole load (its steps run at different loads). Engine gauges are the scrapes inside
that window; engine counters are differenced across it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from servescope.engines.base import Knob, Signal

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunContext
    from analyzers.engine_signals import EngineWindow
    from analyzers.gpu.figures import GpuFigures
    from analyzers.gpu.load import GpuTables
    from analyzers.itl import ITLSamples
    from analyzers.stacks_summary import StacksSummary
    from analyzers.steady_state import SteadyWindow
    from analyzers.timeline import Timeline
    from servescope.engines.spec import EngineSpec
    from servescope.rundir.reader import RunData

__all__ = ["RuleContext", "build_context", "mark_set_flags"]

_GENERIC_KNOB = {
    Knob.KV_CACHE_SIZE: "give the engine's KV cache more memory",
    Knob.MAX_BATCH: "raise the engine's limit on sequences running at once",
    Knob.PREFILL_CHUNK: "make the engine prefill long prompts in smaller chunks",
    Knob.PREFIX_CACHE: "enable the engine's prefix cache",
    Knob.MAX_MODEL_LEN: "raise the engine's maximum context length, or send shorter requests",
    Knob.CUDA_GRAPHS: "run the engine's decode step in CUDA graphs (most engines' default; "
                      "check that no eager-mode flag is set)",
    Knob.ASYNC_SCHEDULING: "turn on the engine's asynchronous scheduling, if it has one "
                           "(the scheduler's CPU work overlaps the GPU's step)",
    Knob.QUANTIZATION: "serve a quantized checkpoint and an FP8 KV cache (fewer bytes read "
                       "per decode step)",
}


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the rules read: members of the run's :class:`~analyzers.context.RunContext`
    (:meth:`of`), and the helpers the rules share."""

    run: RunData
    timeline: Timeline
    metrics: pd.DataFrame  # request_metrics, every request
    measured: pd.DataFrame  # phase == "measure"
    ok: pd.DataFrame  # measured and successful
    itl: ITLSamples
    window: SteadyWindow  # what the rules judge (whole load when no steady state)
    spec: EngineSpec | None  # None: no engine recorded, or one this version does not know
    engine_args: tuple[str, ...]  # the engine's own flags (empty when attached)
    attached: bool
    signals: pd.DataFrame | None  # t_ns, signal, value (None: no engine metrics)
    engine: EngineWindow | None  # engine signals summarized over the window
    engine_whole: EngineWindow | None  # ... from the first scrape to the last
    histograms: pd.DataFrame  # server histograms over the window (may be empty)
    workload: Mapping[str, Any]
    gpu: GpuFigures | None = None  # GPU figures over the window (None: no GPU recorded)
    stacks: StacksSummary | None = None  # the engine's CPU stacks (None: none sampled)
    gpu_tables: GpuTables | None = None  # the GPU collector's rows (None: no GPU recorded)

    @classmethod
    def of(cls, ctx: RunContext) -> RuleContext:
        """The rules' view of ``ctx`` (what :attr:`RunContext.rules` holds)."""
        run, spec = ctx.run, ctx.spec
        eng = run.manifest.engine
        return cls(
            run=run, timeline=ctx.timeline, metrics=ctx.metrics, measured=ctx.measured,
            ok=ctx.ok, itl=ctx.itl, window=ctx.window, spec=spec,
            engine_args=_engine_args(run, spec), attached=eng is not None and eng.attached,
            signals=ctx.signals, engine=ctx.engine, engine_whole=ctx.engine_whole,
            histograms=ctx.histograms, workload=run.manifest.workload,
            gpu=ctx.gpu_window, stacks=ctx.stacks, gpu_tables=ctx.gpu)

    @property
    def start_ns(self) -> int:
        return self.window.start_ns

    @property
    def end_ns(self) -> int:
        return self.window.end_ns

    def action(self, knob: Knob) -> str:
        """How to turn ``knob`` on this run's engine, in its own flag names (flags the
        serving command already has are said to be set)."""
        if self.spec is not None:
            text = self.spec.tuning.get(knob)
            if text:
                return f"{self.spec.name}: {mark_set_flags(text, self.engine_args)}"
        return _GENERIC_KNOB[knob]

    def histogram_mean_s(self, name: str) -> float:
        """Mean of a server histogram over the window (NaN if the engine has none)."""
        h = self.histograms
        if h.empty or "histogram" not in h.columns:
            return math.nan
        rows = h[h["histogram"] == name]
        return float(rows["mean_s"].iloc[0]) if len(rows) else math.nan

    def gauge(self, signal: Signal) -> tuple[np.ndarray, np.ndarray]:
        """(t_ns, value) of a gauge's snapshots inside the window (empty arrays if none)."""
        if self.signals is None:
            return np.empty(0, np.int64), np.empty(0)
        s = self.signals
        rows = s[(s["signal"] == signal.value) & (s["t_ns"] >= self.start_ns)
                 & (s["t_ns"] <= self.end_ns)].sort_values("t_ns")
        return rows["t_ns"].to_numpy(np.int64), rows["value"].to_numpy(np.float64)

    def counter_steps(self, signal: Signal) -> tuple[np.ndarray, np.ndarray]:
        """(t_ns, increase since the previous snapshot) of a counter over the window, the
        first snapshot at or before the window start being the baseline."""
        if self.signals is None:
            return np.empty(0, np.int64), np.empty(0)
        s = self.signals
        rows = s[(s["signal"] == signal.value) & (s["t_ns"] <= self.end_ns)].sort_values("t_ns")
        t, v = rows["t_ns"].to_numpy(np.int64), rows["value"].to_numpy(np.float64)
        base = np.searchsorted(t, self.start_ns, side="right") - 1
        t, v = t[max(base, 0):], v[max(base, 0):]
        if t.size < 2:
            return np.empty(0, np.int64), np.empty(0)
        return t[1:], np.maximum(np.diff(v), 0.0)

    def requests_overlapping(self, t0_ns: np.ndarray, t1_ns: np.ndarray) -> np.ndarray:
        """Ids of measured requests in flight (send..last) during any [t0, t1] interval."""
        send = self.measured["t_send_ns"].to_numpy(np.int64)
        last = self.measured["t_last_ns"].to_numpy(np.int64)
        hit = np.zeros(send.size, dtype=np.bool_)
        for a, b in zip(t0_ns, t1_ns, strict=True):
            hit |= (send <= b) & (last >= a)
        return self.measured["request_id"].to_numpy()[hit]


def _engine_args(run: RunData, spec: EngineSpec | None) -> tuple[str, ...]:
    eng = run.manifest.engine
    argv: Sequence[str] = (eng.command or ()) if eng is not None else ()
    if spec is None or not argv:
        return ()
    launch = spec.launch(argv)
    return tuple(launch.args) if launch is not None else ()


def build_context(run: RunData | RunContext) -> RuleContext:
    """The rules' view of ``run`` (of its :class:`~analyzers.context.RunContext`, shared
    with everything else that analyses it when one is given)."""
    from analyzers.context import RunContext

    return RunContext.of(run).rules


_FLAG = re.compile(r"(?P<verb>(?:remove|drop) )?(?P<flag>--[a-z0-9][a-z0-9-]*)")


def mark_set_flags(text: str, engine_args: Sequence[str]) -> str:
    """``text`` with what the serving command (``engine_args``, as ``--flag`` or
    ``--flag=value``) already holds of the ``--flags`` it names: "already set in this run"
    for a flag to add, "this run has" for one the text says to remove or drop."""
    have = {a.split("=", 1)[0] for a in engine_args if a.startswith("--")}
    added: dict[str, None] = {}
    removed: dict[str, None] = {}
    for m in _FLAG.finditer(text):
        if m["flag"] in have:
            (removed if m["verb"] else added)[m["flag"]] = None
    notes = ([f"this run has {', '.join(removed)}"] if removed else []) + (
        [f"already set in this run: {', '.join(added)}"] if added else [])
    return f"{text} ({'; '.join(notes)})" if notes else text
