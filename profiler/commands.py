"""What the CLI commands do, as plain functions returning an exit code (tests call these)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from analyzers.context import RunContext

__all__ = ["analyze_command", "model_tokenizer", "selftest_command",
           "summarize_command"]  # run and attach: profiler.commands_run

from servescope.exitcodes import EXIT_OK, EXIT_USAGE


def _err(console: Console, msg: str) -> None:
    console.print(f"[bold red]error:[/] {escape(msg)}", highlight=False)


def model_tokenizer(command: Sequence[str]) -> Path | None:
    """The ``tokenizer.json`` of a local model directory named in the serving command (as a
    positional argument or a flag's value), if there is exactly one such directory."""
    from servescope.engines._argv import flag_value

    explicit = flag_value(command, "--tokenizer", "--tokenizer-path")
    if explicit is not None:  # the engine uses this one: its file, or none if not local
        path = Path(explicit) / "tokenizer.json"
        return path if path.is_file() else None
    found: list[Path] = []
    for tok in command[1:]:
        value = tok.partition("=")[2] if tok.startswith("-") and "=" in tok else tok
        if not value or value.startswith("-") or "/" not in value:
            continue
        path = Path(value) / "tokenizer.json"
        try:
            if path.is_file() and path not in found:
                found.append(path)
        except OSError:
            continue
    return found[0] if len(found) == 1 else None


def summarize_command(run: Path, definitions: str, slo: str | None) -> int:
    from analyzers.context import RunContext
    from servescope.rundir.layout import RunDirError

    try:
        _print_summary(RunContext(run), definitions, slo)
    except (RunDirError, ValueError) as exc:
        _err(Console(stderr=True, soft_wrap=True), str(exc))
        return EXIT_USAGE
    return EXIT_OK


def analyze_command(run: Path, slo: str | None, json_out: Path | None) -> int:
    """Steady state, CIs, decomposition, sweep and bottleneck findings of a run directory."""
    import json

    from analyzers.context import RunContext
    from analyzers.run_analysis import analyze_run
    from reports.analysis_view import analysis_json, print_analysis
    from servescope.rundir.layout import RunDirError

    err = Console(stderr=True, soft_wrap=True)
    try:
        from analyzers.goodput import parse_slo

        parsed = parse_slo(slo) if slo else None
        ctx = RunContext(run)
        if ctx.run.requests.empty:
            raise RunDirError(f"{run} has no requests: nothing to analyse")
        result = analyze_run(ctx, parsed)
        text = (json.dumps(analysis_json(result), indent=1, allow_nan=False)
                if json_out is not None else "")
    except (RunDirError, ValueError) as exc:
        _err(err, str(exc))
        return EXIT_USAGE
    from reports.console import stdout_console

    console = stdout_console()  # a pipe: wide enough that no cell is cut
    print_analysis(console, result)
    if json_out is not None:
        try:
            json_out.write_text(text)
        except OSError as exc:
            _err(err, f"cannot write {json_out}: {exc}")
            return EXIT_USAGE
        console.print(f"analysis: {json_out}", markup=False, highlight=False)
    return EXIT_OK


def _findings_and_report(ctx: RunContext) -> None:
    """The bottleneck findings, then ``report.html`` in the run directory, from the run's
    context (its analysis, shared with the summary printed before). A failure is a warning
    and the run keeps its exit code: everything recorded is already on disk."""
    from analyzers.report_inputs import gather_run
    from profiler.commands_report import write_run_report
    from reports.analysis_view import print_finding
    from reports.console import stdout_console

    console = stdout_console()  # a pipe: wide enough that no cell is cut
    try:
        if ctx.run.requests.empty:
            return
        inputs = gather_run(ctx)
    except Exception as exc:  # noqa: BLE001 - never lose a recorded run to an analysis bug
        console.print(f"[yellow]warning: the analysis failed: {escape(str(exc))}[/]")
        return
    findings = inputs.analysis.findings
    if not findings:
        console.print("[green]bottlenecks: none found by the rules[/]")
    for f in findings:
        print_finding(console, f)
    console.print(f"details: servescope analyze {ctx.path}", markup=False, highlight=False)
    try:
        path = write_run_report(ctx.path, inputs)
    except Exception as exc:  # noqa: BLE001 - never lose a recorded run to a report bug
        console.print(f"[yellow]warning: the HTML report failed: {escape(str(exc))}[/]")
        return
    console.print(f"report: {path}", markup=False, highlight=False)


def _print_summary(ctx: RunContext, definitions: str, slo: str | None) -> None:
    """The run's summary and engine view, then (``definitions``) its numbers under other
    tools' definitions: all computed from ``ctx``, then rendered."""
    from analyzers.definitions import definition_tables
    from analyzers.goodput import parse_slo
    from analyzers.side_by_side import engine_view
    from reports.console import stdout_console
    from reports.terminal import print_definition_tables, print_summary

    parsed = parse_slo(slo) if slo else None
    summary = ctx.summary(parsed)
    engine = engine_view(ctx, summary)
    console = stdout_console()  # a pipe: wide enough that no cell is cut
    print_summary(console, ctx.run, summary, engine)
    if definitions:
        print_definition_tables(console, definition_tables(ctx, definitions))


def selftest_command(*, concurrency: int, requests: int, ttft_ms: float, itl_ms: float,
                     output_tokens: int, tokens_per_event: int, ceiling_s: float,
                     workers: int, out: Path) -> int:
    from rich.table import Table

    from profiler.calibration import run_selftest

    console = Console()
    console.print(f"selftest: {requests} requests at {concurrency} streams against the "
                  f"reference server (TTFT {ttft_ms:g} ms, ITL {itl_ms:g} ms, "
                  f"{tokens_per_event} token(s)/event)…")
    r = run_selftest(out, concurrency=concurrency, requests=requests, ttft_ms=ttft_ms,
                     itl_ms=itl_ms, output_tokens=output_tokens,
                     tokens_per_event=tokens_per_event, ceiling_s=ceiling_s, workers=workers)
    a = r.accuracy
    t = Table(title="client timing error vs the server's own timestamps (ms)")
    for col in ("metric", "p50", "p99", "p99.9", "max", "samples"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for name, s in (("TTFT error", a.ttft_error_ns), ("ITL error", a.itl_error_ns),
                    ("|ITL error|", a.abs_itl_error_ns), ("E2E error", a.e2e_error_ns)):
        t.add_row(name, *(f"{v / 1e6:.3f}" for v in (s.p50, s.p99, s.p999, s.max)),
                  str(s.count))
    console.print(t)
    if a.requests_unmatched or a.event_count_mismatches:
        console.print(f"[yellow]{a.requests_unmatched} requests unmatched, "
                      f"{a.event_count_mismatches} with a different event count[/]")
    if r.ceiling is not None:
        c = r.ceiling
        console.print(
            f"ingestion ceiling ({c.concurrency} streams, {c.workers} worker(s)): "
            f"{c.events_per_s:,.0f} events/s, {c.requests_per_s:,.1f} requests/s, "
            f"{c.client_cpu_us_per_event:.1f} µs client CPU per event, {c.errors} errors")
    console.print(f"results: {out / 'selftest.json'}", markup=False)
    return EXIT_OK
