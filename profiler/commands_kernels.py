"""``servescope kernels TRACE_OR_RUN [TRACE_B]``: the kernel-timeline analysis of a trace
file a user already has (a torch-profiler Chrome trace, gz or plain) or of a run directory's
``kernels/`` tables, optionally against a second one; a terminal summary and ``--json``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from servescope.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.kernels.window import WindowPlacement

__all__ = ["kernels_command"]


def _events(path: Path) -> pd.DataFrame:
    """The event frame of a run directory or a trace file; ValueError (one line) otherwise."""
    if path.is_dir():
        from analyzers.kernels.load import read_kernel_events

        events = read_kernel_events(path)
        if events is None:
            raise ValueError(f"{path} has no kernels/ tables (a run made without "
                             "--collect kernels?); pass a trace file instead")
        return events
    if not path.is_file():
        raise ValueError(f"{path}: no such trace file or run directory")
    from collectors.kernels import read_trace

    tables = read_trace(path)
    warnings = [t.warnings for t in tables.traces if t.warnings]
    if any(t.events_read == 0 for t in tables.traces) and warnings:
        raise ValueError(f"{path}: {warnings[0]}")
    frame: pd.DataFrame = tables.events().to_pandas()
    return frame


def _run_facts(run_dir: Path, engine: str | None) -> tuple[str | None, WindowPlacement | None]:
    """A run directory's engine (unless given) and where its profiler window fell against the
    steady state (None when the run has no recorded window or no requests to judge by)."""
    from analyzers.context import RunContext
    from analyzers.kernels.window import window_placement
    from servescope.rundir.layout import RunDirError

    try:
        ctx = RunContext(run_dir)
        info = ctx.manifest.engine
        name = engine or (info.name if info is not None and info.name else None)
        steady = ctx.window if len(ctx.measured) else None
    except (RunDirError, OSError, ValueError, KeyError):
        return engine, window_placement(run_dir, None)
    return name, window_placement(run_dir, steady)


def kernels_command(trace: Path, trace_b: Path | None, *, engine: str | None,
                    json_out: Path | None, top: int) -> int:
    from analyzers.kernels import KernelFrameError, analyze_kernels, compare_kernels
    from collectors.kernels import TraceFormatError
    from reports.kernels_view import kernels_json, print_kernels
    from servescope.engines.registry import UnknownEngineError
    from servescope.rundir.layout import RunDirError

    err = Console(stderr=True, soft_wrap=True)
    placement = None
    try:
        if trace.is_dir():
            engine, placement = _run_facts(trace, engine)
        a = _events(trace)
        analysis = analyze_kernels(a, engine=engine, top_n=top)
        comparison = None
        if trace_b is not None:
            comparison = compare_kernels(a, _events(trace_b), engine=engine, top_n=top)
    except (RunDirError, KernelFrameError, TraceFormatError, UnknownEngineError, OSError,
            ValueError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    from reports.console import stdout_console

    out = stdout_console(soft_wrap=True)  # a pipe: wide enough that no header is cut
    if placement is not None:
        from reports.kernels_view import print_placement

        print_placement(out, placement)
    print_kernels(out, analysis, comparison)
    if json_out is not None:
        from servescope.rundir.atomic import atomic_write

        atomic_write(json_out, kernels_json(analysis, comparison))
    return EXIT_OK
