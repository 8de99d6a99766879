"""One run, analysed from one place: :class:`RunContext`.

A run directory is loaded once, and everything derived from it is computed once, on first
use, then shared by every analysis that needs it: the summary, the analysis and its
bottleneck rules, the engine view, the peer definitions, the comparison's samples and the
report's inputs. ``summarize``, ``analyze``, ``compare``, ``gate``, ``report`` and the end
of ``run``/``attach`` each make one context per run directory and hand it to the analyzers
(which also take a :class:`~servescope.rundir.reader.RunData` and make their own).

Members (each computed at most once):

- ``run`` (loaded on first use when the context was made from a path), ``timeline``,
  ``itl``, ``metrics`` (:func:`~analyzers.request_metrics.request_metrics`, every request),
  ``measured`` (phase ``measure``) and ``ok`` (measured and successful);
- ``window``: the steady-state window of the measured requests when the run has one step
  (:mod:`analyzers.steady_state`), the whole load for a sweep (its steps ran at different
  loads);
- the engine: ``spec`` (None when the run names no engine, or one this version does not
  know: ``unknown_engine_warning`` says so), ``engine_tables`` (read once), ``signals``,
  and the engine over three spans: ``engine``/``histograms`` over ``window`` (what the rules
  judge), ``engine_load`` from the client's first measured send to the last scrape (what
  ``summarize`` and ``compare`` show) and ``engine_whole`` (first to last scrape);
- below the HTTP layer (None when the run recorded none): ``gpu``, the GPU collector's tables
  (:func:`analyzers.gpu.load.read_gpu`), ``gpu_window``, the GPU figures over ``window``
  (:func:`analyzers.gpu.window.gpu_figures`), and ``stacks``, the engine's CPU stacks
  summarized (:func:`analyzers.stacks_summary.summarize_stacks`);
- per argument set: ``summary(slo)``, ``analysis(slo, n_resamples, seed)``; and ``rules``,
  the bottleneck rules' view.

A member that cannot be computed raises as the function behind it does (RunDirError for an
unreadable run); the engine members are None (or empty) when the engine's data cannot be
used, as the summary and the rules have always treated it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from analyzers.bottlenecks.context import RuleContext
    from analyzers.engine_signals import EngineWindow
    from analyzers.goodput import SLO
    from analyzers.gpu.figures import GpuFigures
    from analyzers.gpu.load import GpuTables
    from analyzers.itl import ITLSamples
    from analyzers.run_analysis import RunAnalysis
    from analyzers.server_histograms import HistogramDelta
    from analyzers.stacks_summary import StacksSummary
    from analyzers.steady_state import SteadyWindow
    from analyzers.summary import RunSummary
    from analyzers.timeline import Timeline
    from servescope.engines.base import Histogram
    from servescope.engines.spec import EngineSpec
    from servescope.rundir.engine_tables import EngineTables
    from servescope.rundir.manifest import Manifest
    from servescope.rundir.reader import RunData

__all__ = ["HISTOGRAM_COLUMNS", "EngineLoad", "RunContext", "RunSource"]

HISTOGRAM_COLUMNS = ("histogram", "family", "count", "sum_s", "mean_s")


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """The engine from the client's first measured send (the counters' baseline; the first
    scrape when nothing was sent) to the last scrape, taken after the load ended."""

    window: EngineWindow
    histograms: Mapping[Histogram, HistogramDelta]  # the engine's canonical histograms


class RunContext:
    """One run and everything derived from it, each computed once (see the module doc).

    Made from a loaded run or a run directory's path (loaded on first use, once).
    """

    def __init__(self, source: RunData | str | Path) -> None:
        from servescope.rundir.reader import RunData

        self._run: RunData | None = None
        if isinstance(source, RunData):
            self._run, self._path = source, source.path
        else:
            self._path = Path(source)
        self._summaries: dict[tuple[SLO | None, float], RunSummary] = {}
        self._analyses: dict[tuple[SLO | None, int, int], RunAnalysis] = {}

    @classmethod
    def of(cls, source: RunSource) -> RunContext:
        """``source`` itself when it is a context, else a new context of it."""
        return source if isinstance(source, RunContext) else cls(source)

    def __repr__(self) -> str:
        return f"RunContext({str(self.path)!r})"

    # ------------------------------------------------------------------ the run's requests

    @property
    def path(self) -> Path:
        return self._path

    @property
    def run(self) -> RunData:
        """The run, loaded on first use (RunDirError when it cannot be)."""
        if self._run is None:
            from servescope.rundir.reader import load_run

            self._run = load_run(self._path)
        return self._run

    @property
    def manifest(self) -> Manifest:
        return self.run.manifest

    @cached_property
    def timeline(self) -> Timeline:
        from analyzers.timeline import build_timeline

        return build_timeline(self.run)

    @cached_property
    def itl(self) -> ITLSamples:
        from analyzers.itl import itl_samples

        return itl_samples(self.timeline)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        from analyzers.request_metrics import request_metrics

        return request_metrics(self.timeline, itl=self.itl)

    @cached_property
    def measured(self) -> pd.DataFrame:
        m = self.metrics
        measured: pd.DataFrame = m[m["phase"].to_numpy() == "measure"]
        return measured

    @cached_property
    def ok(self) -> pd.DataFrame:
        m = self.measured
        ok: pd.DataFrame = m[m["outcome"].to_numpy() == "success"]
        return ok

    @cached_property
    def is_sweep(self) -> bool:
        """Measured requests of more than one sweep step."""
        return bool(np.unique(self.measured["step"].to_numpy()).size > 1)

    @cached_property
    def window(self) -> SteadyWindow:
        from analyzers.steady_state import steady_window, whole_load

        if self.is_sweep:  # each step has its own steady state: the whole load
            return whole_load(self.measured, "a sweep: the rules judge the whole load")
        steps = np.unique(self.measured["step"].to_numpy())
        return steady_window(self.measured, step=int(steps[0]) if steps.size else 0)

    def summary(self, slo: SLO | None = None, *,
                lag_warn_ms: float | None = None) -> RunSummary:
        """:func:`analyzers.summary.summarize` of the run, once per ``slo`` (``lag_warn_ms``:
        None for the summary's default)."""
        from analyzers.summary import DEFAULT_LAG_WARN_MS, summarize_context

        lag = DEFAULT_LAG_WARN_MS if lag_warn_ms is None else lag_warn_ms
        key = (slo, lag)
        if key not in self._summaries:
            self._summaries[key] = summarize_context(self, slo, lag_warn_ms=lag)
        return self._summaries[key]

    def analysis(self, slo: SLO | None = None, *, n_resamples: int = 1000,
                 seed: int = 0) -> RunAnalysis:
        """:func:`analyzers.run_analysis.analyze_run` of the run, once per argument set."""
        key = (slo, n_resamples, seed)
        if key not in self._analyses:
            from analyzers.run_analysis import analyze_context

            self._analyses[key] = analyze_context(self, slo, n_resamples=n_resamples,
                                                  seed=seed)
        return self._analyses[key]

    @cached_property
    def rules(self) -> RuleContext:
        """What the bottleneck rules read, taken from this context."""
        from analyzers.bottlenecks.context import RuleContext

        return RuleContext.of(self)

    # ------------------------------------------------------------- below the HTTP layer

    @cached_property
    def gpu(self) -> GpuTables | None:
        """The GPU collector's tables, read once; None when the run recorded no GPU."""
        from analyzers.gpu.load import read_gpu

        return read_gpu(self.path)

    @cached_property
    def gpu_window(self) -> GpuFigures | None:
        """The GPU figures over ``window`` (the client's steady state), beside its latency;
        None without GPU data."""
        from analyzers.gpu.window import gpu_figures

        tables = self.gpu
        if tables is None:
            return None
        w = self.window
        note = "steady state" if w.found else f"whole load: {w.reason}"
        return gpu_figures(tables, w.start_ns, w.end_ns, self.ok, note)

    @cached_property
    def stacks(self) -> StacksSummary | None:
        """The engine's CPU stacks summarized; None when the run sampled none."""
        from analyzers.stacks_summary import summarize_stacks

        return summarize_stacks(self.path, self.spec)

    # ------------------------------------------------------------------------ the engine

    @cached_property
    def _spec_and_warning(self) -> tuple[EngineSpec | None, str | None]:
        from servescope.engines.registry import UnknownEngineError, get_spec

        eng = self.manifest.engine
        if eng is None or not eng.name:
            return None, None
        try:
            return get_spec(eng.name), None
        except UnknownEngineError as exc:  # a newer servescope's engine
            return None, f"{exc}: the run is analysed without engine signals"

    @property
    def spec(self) -> EngineSpec | None:
        """The engine the run names; None without one or for one this version lacks."""
        return self._spec_and_warning[0]

    @property
    def unknown_engine_warning(self) -> str | None:
        """What to tell the user when the run names an engine this version does not know."""
        return self._spec_and_warning[1]

    @cached_property
    def _tables_read(self) -> EngineTables | RunDirError | None:
        from servescope.rundir.engine_tables import read_engine_tables

        try:
            return read_engine_tables(self.path)
        except RunDirError as exc:  # kept, and raised by each use: read once all the same
            return exc

    @property
    def engine_tables(self) -> EngineTables | None:
        """The engine's metrics tables, read once; None when the run scraped no engine.
        RunDirError when they cannot be read."""
        tables = self._tables_read
        if isinstance(tables, RunDirError):
            raise tables
        return tables

    @cached_property
    def _engine_data(self) -> tuple[EngineSpec, EngineTables, pd.DataFrame] | None:
        """(spec, tables, signals), or None when the engine's data cannot be used."""
        from analyzers.engine_signals import signals_from_metrics

        spec = self.spec
        if spec is None or not (self.path / "engine").is_dir():
            return None
        tables = self._tables_read
        if tables is None or isinstance(tables, RunDirError):
            return None
        return spec, tables, signals_from_metrics(tables.metrics, spec)

    @property
    def signals(self) -> pd.DataFrame | None:
        """DataFrame(t_ns, signal, value) of the engine's canonical signals (None: none)."""
        data = self._engine_data
        return data[2] if data is not None else None

    def _engine_window(self, start_ns: int | None, end_ns: int | None) -> EngineWindow | None:
        from analyzers.engine_signals import window_over

        data = self._engine_data
        return window_over(data[2], data[1].scrapes, start_ns, end_ns) if data else None

    @cached_property
    def engine(self) -> EngineWindow | None:
        """The engine's signals summarized over ``window``."""
        return self._engine_window(self.window.start_ns, self.window.end_ns)

    @cached_property
    def engine_whole(self) -> EngineWindow | None:
        """The engine's signals from its first scrape (the counters' baseline) to its last."""
        return self._engine_window(None, None)

    @cached_property
    def histograms(self) -> pd.DataFrame:
        """The server histograms over ``window`` (:func:`server_histograms`' columns; empty
        with :data:`HISTOGRAM_COLUMNS` when the engine has none)."""
        import pandas as pd

        from analyzers.server_histograms import histogram_deltas, histogram_rows

        data = self._engine_data
        if data is not None:
            spec, tables, _ = data
            w = self.window
            found = histogram_rows(histogram_deltas(tables, spec, w.start_ns, w.end_ns), spec)
            if not found.empty:
                return found
        return pd.DataFrame(columns=list(HISTOGRAM_COLUMNS))

    @cached_property
    def engine_load(self) -> EngineLoad | None:
        """The engine over the load (:class:`EngineLoad`); None when the run scraped no
        engine this version knows, or its endpoint never answered."""
        from analyzers.server_histograms import histogram_deltas
        from analyzers.summary import send_to_last

        data = self._engine_data
        first_send = send_to_last(self.measured)[0]
        start = first_send if first_send > 0 else None
        window = self._engine_window(start, None)
        if data is None or window is None or window.n_snapshots == 0:
            return None
        return EngineLoad(window, histogram_deltas(data[1], data[0], window.start_ns,
                                                   window.end_ns))


RunSource: TypeAlias = "RunContext | RunData | str | Path"
"""What the analyzers take: a context, a loaded run, or a run directory's path."""
