"""``servescope report RUN [RUN_B] -o report.html`` and the report ``run``/``attach`` write.

:func:`report_command` returns an exit code: 0, or 2 with one line on stderr for anything
it cannot report on (a missing or unreadable run directory, a newer schema, a run without
requests, an output it cannot write; an unexpected error too, never a traceback).
:func:`write_run_report` is the library call that writes ``RUN/report.html``; it raises
:class:`~servescope.rundir.layout.RunDirError` (or ``OSError``) and leaves the choice of what
to do to its caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from analyzers.context import RunContext
    from analyzers.goodput import SLO
    from analyzers.report_inputs import RunInputs

__all__ = ["REPORT_FILE", "build_report", "report_command", "write_run_report"]

from servescope.exitcodes import EXIT_OK, EXIT_USAGE

REPORT_FILE = "report.html"


def build_report(run: Path | RunContext, run_b: Path | RunContext | None = None, *,
                 include_text: bool = False, slo: SLO | None = None,
                 links_from: Path | None = None) -> str:
    """The report's HTML: of ``run`` alone, or ``run`` (A, baseline) against ``run_b`` (B).
    One context per run: its analysis and the comparison share its members. ``links_from``:
    the directory the page is saved in (links to the run's files start there; None: the
    run directory)."""
    from analyzers.compare import compare_runs
    from analyzers.context import RunContext
    from analyzers.report_inputs import gather_run
    from reports.html import ab_report_html, run_report_html

    if run_b is None and not isinstance(run, RunContext):
        from reports.html.sections_bench import bench_report_html, is_bench_run

        if is_bench_run(run):  # a servescope bench run: bandwidth, no requests
            return bench_report_html(run)
    ctx_a = RunContext.of(run)
    a = gather_run(ctx_a, slo, include_text=include_text)
    if run_b is None:
        return run_report_html(a, links_from=None if links_from is None else str(links_from))
    ctx_b = RunContext.of(run_b)
    b = gather_run(ctx_b, slo, include_text=include_text)
    return ab_report_html(a, b, compare_runs(ctx_a, ctx_b, slo=slo))


def _write(path: Path, text: str) -> None:
    """Never a half-written report (:func:`servescope.rundir.atomic.atomic_write`)."""
    from servescope.rundir.atomic import atomic_write

    atomic_write(path, text.encode("utf-8"))


def write_run_report(run_dir: Path, inputs: RunInputs | None = None) -> Path:
    """Write ``run_dir/report.html`` (the report of that run) and return its path;
    ``inputs``: the run's :func:`analyzers.report_inputs.gather_run`, when the caller has it
    already."""
    path = Path(run_dir) / REPORT_FILE
    if inputs is None:
        _write(path, build_report(Path(run_dir)))
    else:
        from reports.html import run_report_html

        _write(path, run_report_html(inputs))
    return path


def report_command(run: Path, run_b: Path | None, out: Path, *, include_text: bool = False,
                   slo: str | None = None) -> int:
    """Write the HTML report of ``run`` (or of ``run`` against ``run_b``) to ``out``."""
    from analyzers.goodput import parse_slo
    from servescope.rundir.layout import RunDirError

    err = Console(stderr=True, soft_wrap=True)
    try:
        html = build_report(run, run_b, include_text=include_text,
                            slo=parse_slo(slo) if slo else None,
                            links_from=out.resolve().parent)
        _write(out, html)
    except (RunDirError, ValueError, OSError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - one line and exit 2, never a traceback
        err.print(f"[bold red]error:[/] internal error ({escape(type(exc).__name__)}: "
                  f"{escape(str(exc))}); please report it", highlight=False)
        return EXIT_USAGE
    size = out.stat().st_size
    err.print(f"report: {out} ({size / 1e6:.1f} MB)", markup=False, highlight=False)
    return EXIT_OK
