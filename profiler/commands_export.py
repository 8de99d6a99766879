"""``servescope export perfetto RUN [--out FILE]``: the run's merged timeline as one trace
file for Perfetto's UI (reports/perfetto)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from servescope.exitcodes import EXIT_OK, EXIT_USAGE

__all__ = ["perfetto_command"]


def perfetto_command(run: Path, out: Path | None) -> int:
    from reports.perfetto import export_perfetto
    from servescope.rundir.layout import RunDirError

    err = Console(stderr=True, soft_wrap=True)
    try:
        result = export_perfetto(run, out)
    except (RunDirError, OSError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    con = Console(soft_wrap=True, highlight=False)
    con.print(f"wrote {escape(str(result.path))} ({result.events:,} events, "
              f"{result.bytes / 1e6:.1f} MB): open it at https://ui.perfetto.dev")
    for kind, n in result.counts.items():
        con.print(f"  {escape(kind)}: {n:,}")
    if not result.counts:
        con.print("  (the run has nothing to draw: no requests, samples or kernel events)")
    for note in result.notes:
        con.print(f"  note: {escape(note)}")
    return EXIT_OK
