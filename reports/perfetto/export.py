"""``export_perfetto``: one trace file of a run for Perfetto's UI (ui.perfetto.dev).

Format: the Chrome JSON trace-event format (``{"traceEvents": [...], "displayTimeUnit":
"ns"}``), which Perfetto opens directly and writes no binary protobuf for us to depend on;
complete slices (``ph`` X), counters (C), instants (i), flows (``bind_id``) and metadata (M)
naming every process and thread. Every source is on the run's monotonic clock already; the
file's times count from the earliest of them (``otherData.origin_mono_ns``; its wall-clock
time is ``otherData.origin_wall_ns``), in µs with three decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from reports.perfetto.client import client_spans
from reports.perfetto.kernels import kernel_slices
from reports.perfetto.telemetry import engine_counters, gpu_counters, stack_slices
from reports.perfetto.tracks import Tracks
from reports.perfetto.writer import TraceWriter, trace_writer
from servescope.version import __version__

__all__ = ["DEFAULT_NAME", "PerfettoExport", "export_perfetto"]

DEFAULT_NAME = "perfetto.json.gz"


class _Source(Protocol):
    def first_ns(self) -> int | None: ...

    def write(self, w: TraceWriter, tracks: Tracks) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class PerfettoExport:
    """What was written: the file, its event count and, per kind of track, how many."""

    path: Path
    events: int
    bytes: int
    origin_ns: int
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # sources left out and why, one sentence each


def export_perfetto(run_dir: str | Path, out: str | Path | None = None) -> PerfettoExport:
    """Write the run's merged timeline to ``out`` (default ``RUN/perfetto.json.gz``; gzip
    when the name ends in ``.gz``). :class:`~servescope.rundir.layout.RunDirError` (one line)
    for a directory that is not a readable run."""
    from servescope.rundir.reader import load_run

    run = load_run(run_dir)
    path = Path(out) if out is not None else run.path / DEFAULT_NAME
    notes = list(run.warnings)
    client = client_spans(run)
    if client.skipped:
        notes.append(f"{client.skipped} request(s) without a send or start time left out")
    sources: list[_Source] = [client]
    for found, why in (engine_counters(run), gpu_counters(run.path), stack_slices(run.path),
                       kernel_slices(run.path)):
        if why:
            notes.append(why)
        if found is not None:
            sources.append(found)
    firsts = [t for t in (s.first_ns() for s in sources) if t is not None]
    origin = min(firsts) if firsts else run.manifest.clock.mono_ns
    other = {"tool": "servescope", "servescope_version": __version__,
             "run_id": run.manifest.run_id, "origin_mono_ns": origin,
             "origin_wall_ns": run.manifest.clock.to_wall_ns(origin),
             "clock": "ts = (t_ns - origin_mono_ns) / 1000 µs, t_ns on the run's monotonic "
                      "clock (docs/run-format.md, Clocks)"}
    tracks = Tracks()
    counts: dict[str, int] = {}
    with trace_writer(path, origin, other) as w:
        for source in sources:
            counts.update(source.write(w, tracks))
        for event in tracks.metadata():
            w.emit(event)
        events = w.events
    return PerfettoExport(path, events, path.stat().st_size, origin, counts, tuple(notes))
