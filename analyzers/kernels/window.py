"""Where the kernels collector's profiler window fell, against the load's steady state.

The window is what the trace holds: from its first event's start to its last event's end
(every ingested table, on the run's clock). The steady state is the analyzers' own window
(:mod:`analyzers.steady_state`: after the ramp-up, before the drain). The placement is
``inside`` when at least :data:`INSIDE_FRAC` of the traced time lies in the steady state,
``partly`` when some of it does, ``outside`` when none does, and ``unknown`` when the run
found no steady state (too short) or recorded no trace. A kernel analysis of a window that
is not inside describes ramp-up or drain, not the load the user asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzers.kernels.load import EVENT_FILES
from servescope.rundir.layout import KERNEL_WINDOW_FILE

if TYPE_CHECKING:
    from analyzers.steady_state import SteadyWindow

__all__ = ["INSIDE_FRAC", "WindowPlacement", "trace_span_ns", "window_placement"]

INSIDE_FRAC = 0.95


@dataclass(frozen=True, slots=True)
class WindowPlacement:
    """The recorded window (``kernels/window.json``) and where its trace fell."""

    state: str  # the collector's: taken | not_opened | failed
    mechanism: str
    reason: str  # the collector's reason when not taken
    steps_asked: int
    trace_start_ns: int  # -1 without a trace
    trace_end_ns: int
    steady_found: bool
    steady_start_ns: int
    steady_end_ns: int
    inside_frac: float  # of the traced time inside the steady state (nan: unknown)
    verdict: str  # inside | partly | outside | unknown
    t_open_ns: int
    t_close_ns: int

    @property
    def trace_s(self) -> float:
        return max(0, self.trace_end_ns - self.trace_start_ns) / 1e9


def trace_span_ns(run_dir: Path) -> tuple[int, int] | None:
    """First start and last end over every event table of ``run_dir/kernels`` (None: no
    events)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lo, hi = None, None
    for name in EVENT_FILES:
        path = run_dir / name
        if not path.is_file():
            continue
        t = pq.read_table(path, columns=["t_start_ns", "dur_ns"])
        if t.num_rows == 0:
            continue
        start = t["t_start_ns"]
        end = pc.add(start, pc.max_element_wise(t["dur_ns"], 0))
        a, b = pc.min(start).as_py(), pc.max(end).as_py()
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return None if lo is None or hi is None else (int(lo), int(hi))


def window_placement(run_dir: str | Path, steady: SteadyWindow | None
                     ) -> WindowPlacement | None:
    """The placement (module doc); None when the run did not collect kernels."""
    run = Path(run_dir)
    path = run / KERNEL_WINDOW_FILE
    if not path.is_file():
        return None
    try:
        rec: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    span = trace_span_ns(run)
    found = bool(steady is not None and steady.found)
    s0 = steady.start_ns if steady is not None else -1
    s1 = steady.end_ns if steady is not None else -1
    frac, verdict = float("nan"), "unknown"
    if span is not None and found and span[1] > span[0]:
        overlap = max(0, min(span[1], s1) - max(span[0], s0))
        frac = overlap / (span[1] - span[0])
        verdict = "inside" if frac >= INSIDE_FRAC else "partly" if frac > 0 else "outside"
    return WindowPlacement(
        state=str(rec.get("state", "")), mechanism=str(rec.get("mechanism", "")),
        reason=str(rec.get("reason", "")), steps_asked=int(rec.get("steps_asked", 0)),
        trace_start_ns=span[0] if span else -1, trace_end_ns=span[1] if span else -1,
        steady_found=found, steady_start_ns=s0, steady_end_ns=s1, inside_frac=frac,
        verdict=verdict, t_open_ns=int(rec.get("t_open_ns", 0)),
        t_close_ns=int(rec.get("t_close_ns", 0)))
