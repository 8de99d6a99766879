"""``servescope export perfetto RUN [--out FILE]``: the run's merged timeline as one trace
file for Perfetto's UI (reports/perfetto). ``servescope export otlp RUN --endpoint URL``: the
run's spans and client metrics to an OTLP backend (reports/otlp)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from servescope.exitcodes import EXIT_OK, EXIT_USAGE

__all__ = ["otlp_command", "perfetto_command"]


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


def otlp_command(run: Path, endpoint: str, timeout_s: float) -> int:
    """Exit 0 once the run was read, even if the endpoint failed (one warning line); exit 2
    for an unreadable run or a bad URL."""
    from servescope.rundir.layout import RunDirError

    err = Console(stderr=True, soft_wrap=True)
    try:
        from reports.otlp import export_otlp
    except ImportError as exc:
        err.print(f"[bold red]error:[/] export otlp needs opentelemetry-sdk and its OTLP "
                  f"exporters: pip install 'servescope[otel]' ({escape(str(exc))})",
                  highlight=False)
        return EXIT_USAGE
    try:
        res = export_otlp(run, endpoint, timeout_s)
    except (RunDirError, OSError, ValueError, KeyError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    con = Console(soft_wrap=True, highlight=False)
    sent = [w for w, ok in (("spans", res.spans_sent), ("metrics", res.metrics_sent)) if ok]
    con.print(f"{res.requests:,} requests: {res.spans:,} spans ({res.engine_spans:,} from the "
              f"engine) and {res.metric_points} metric series; sent to "
              f"{escape(res.endpoint)}: {', '.join(sent) or 'nothing'}")
    for note in res.notes:
        con.print(f"  note: {escape(note)}")
    for w in res.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    return EXIT_OK
