"""``servescope import FILE [--tool NAME] --out DIR``: a peer tool's results as a run directory."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

__all__ = ["import_command"]

from servescope.exitcodes import EXIT_FAIL, EXIT_OK, EXIT_USAGE


def import_command(source: Path, out: Path, tool: str | None) -> int:
    """Import ``source`` into the new run directory ``out`` and print its summary, with the
    tool's own metric definitions beside ours. 0: imported; 2: bad input (unreadable or
    unrecognized file, unknown tool, ``out`` not empty); 1: writing failed."""
    from profiler.importers import ImportFormatError, UnknownImporterError, import_run
    from servescope.rundir.layout import RunDirError

    err = Console(stderr=True, soft_wrap=True)
    try:
        res = import_run(source, out, tool)
    except (ImportFormatError, UnknownImporterError, RunDirError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot write {escape(str(out))}: {escape(str(exc))}",
                  highlight=False)
        return EXIT_FAIL
    version = res.version if res.version != "unknown" else "(version not in the file)"
    err.print(f"imported {res.requests} requests from {escape(res.tool)} {escape(version)} "
              f"({escape(str(source))})", highlight=False)
    err.print(f"run directory: [bold]{escape(str(res.run_dir))}[/] (imported)", highlight=False)
    err.print("reconstructed (manifest.imported.reconstructed):", highlight=False)
    for line in res.reconstructed:
        err.print(f"  - {escape(line)}", highlight=False)
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    _print_summary(res.run_dir, res.definitions)
    return EXIT_OK


def _print_summary(run_dir: Path, definitions: str) -> None:
    """The imported run's summary (and its numbers under other tools' definitions), from one
    analysis context, as ``summarize`` prints them."""
    from analyzers.context import RunContext
    from profiler.commands import _print_summary as print_run_summary

    print_run_summary(RunContext(run_dir), definitions, None)
