"""What the CLI commands do, as plain functions returning an exit code (tests call these)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from profiler.cli_workload import WorkloadOptions

__all__ = ["attach_command", "summarize_command"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(console: Console, msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True)


def attach_command(url: str, opts: WorkloadOptions, out: Path, argv: list[str]) -> int:
    import os

    from profiler.client.discovery import DiscoveryError, discover_model
    from profiler.client.target import TargetError
    from profiler.loadrun import run_load
    from profiler.rundir.layout import RunDirError
    from profiler.workloads.spec import WorkloadError
    from reports.live import LiveView

    console = Console(stderr=True)
    try:
        model = opts.model or discover_model(url, os.environ.get(opts.api_key_env))
        cfg = opts.to_config(url, model, out, argv)
    except (DiscoveryError, TargetError, WorkloadError, ValueError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    try:
        with LiveView(console, f"{model} @ {url}") as live:
            result = run_load(cfg, on_progress=live.update)
    except (RunDirError, WorkloadError) as exc:
        _err(console, str(exc))
        return EXIT_USAGE
    console.print(f"run directory: [bold]{result.run_dir}[/] ({result.status}, "
                  f"{result.requests} requests)")
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    _print_summary(result.run_dir, "", None)
    return EXIT_INTERRUPTED if result.status == "interrupted" else EXIT_OK


def summarize_command(run: Path, definitions: str, slo: str | None) -> int:
    from profiler.rundir.layout import RunDirError

    try:
        _print_summary(run, definitions, slo)
    except (RunDirError, ValueError) as exc:
        _err(Console(stderr=True), str(exc))
        return EXIT_USAGE
    return EXIT_OK


def _print_summary(run: Path, definitions: str, slo: str | None) -> None:
    from analyzers.summary import SLO, summarize
    from profiler.rundir.reader import load_run
    from reports.terminal import print_definitions, print_summary

    data = load_run(run)
    parsed = SLO.parse(slo) if slo else None
    summary = summarize(data, parsed)
    console = Console()
    print_summary(console, data, summary)
    if definitions:
        print_definitions(console, data, definitions)
