"""The ``servescope`` command line: a thin typer layer over library functions.

Every command parses its options and calls one function; heavy modules are imported inside
the command so ``servescope --help`` stays instant.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from collectors.registry import DEFAULT_COLLECT, describe
from profiler.cli_workload import WorkloadOptions, default_run_dir, option_groups
from profiler.commands_bench import bench_app

if TYPE_CHECKING:
    from profiler.engine_run import EngineOptions

app = typer.Typer(
    name="servescope", no_args_is_help=True, add_completion=False,
    help="Profile LLM inference servers: latency from every streamed token, engine metrics, "
         "bottlenecks and regressions.",
)

Url = Annotated[str, typer.Option("--url", help="Server base URL, e.g. http://127.0.0.1:8000")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to create "
                                          "(default runs/<time>-<label>)")]
RunApiKeyEnv = Annotated[str | None, typer.Option(
    help="Environment variable holding the API key (never written anywhere); default: the "
    "serving command's own --api-key, else OPENAI_API_KEY", rich_help_panel="Workload")]
_E = "Engine"
_COLLECT_HELP = f"What to collect, comma-separated: {describe()}"
_REPEAT_HELP = ("Run the workload N times into a run group (OUT/r01 …, OUT/group.json): "
                "compare and gate then measure the run-to-run noise")


def _check_vs(vs: str | None, repeat: int, order: str) -> None:
    """``--vs`` needs ``--repeat N`` (N >= 2); ``--order`` is one of ORDERS."""
    from profiler.repeats import ORDERS

    if order not in ORDERS:
        raise _fail(f"--order {order!r}: use {' or '.join(ORDERS)}")
    if vs is not None and repeat < 2:
        raise _fail("--vs needs --repeat N (N >= 2): the rounds are what an A/B is judged on")


def _vs_argv(vs: str) -> list[str]:
    """``run --vs``'s command split into an argv (shlex: no shell ever runs it)."""
    import shlex

    try:
        argv = shlex.split(vs)
    except ValueError as exc:
        raise _fail(f"--vs {vs!r}: {exc}") from None
    if not argv:
        raise _fail("--vs is empty")
    return argv


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {msg}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@dataclass(slots=True)
class EngineFlags:
    """The engine and collection options of ``run`` and ``attach`` (an option group)."""

    engine: Annotated[str | None, typer.Option(
        "--engine", help="vllm | sglang | trtllm | triton | transformers | openai (default: "
        "recognized from the command, or for attach from the /metrics names)",
        rich_help_panel=_E)] = None
    collect: Annotated[str, typer.Option(help=_COLLECT_HELP, rich_help_panel=_E)
                       ] = DEFAULT_COLLECT
    metrics_interval: Annotated[float, typer.Option(
        help="Seconds between engine metric scrapes", rich_help_panel=_E)] = 1.0
    no_metrics: Annotated[bool, typer.Option(
        "--no-metrics", help="Do not scrape engine metrics (shorthand: leaves metrics out of "
        "--collect)", rich_help_panel=_E)] = False
    metrics_max_bytes: Annotated[int, typer.Option(
        help="Largest metrics page read, bytes (a larger one is refused and counted as "
        "too_large)", rich_help_panel=_E)] = 4 << 20

    gpu_interval: Annotated[float, typer.Option(
        help="Seconds between GPU samples (the gpu collector; GPM windows are as long)",
        rich_help_panel=_E)] = 0.1
    stacks_rate: Annotated[int, typer.Option(
        help="Stack samples a second per engine process (the stacks collector, py-spy)",
        rich_help_panel=_E)] = 50
    stacks_blocking: Annotated[bool, typer.Option(
        "--stacks-blocking", help="Let py-spy stop the engine's threads at each sample "
        "(exact stacks; can slow a torch engine 5-15x)", rich_help_panel=_E)] = False
    hang_after: Annotated[float, typer.Option(
        help="Seconds without a streamed token, requests in flight, before the stacks "
        "collector dumps every engine process (py-spy dump --native)",
        rich_help_panel=_E)] = 30.0

    kernel_steps: Annotated[int, typer.Option(
        help="Engine steps in the kernels collector's profiler window (opened once the load "
        "is steady)", rich_help_panel=_E)] = 32
    kernels_hook: Annotated[bool, typer.Option(
        "--kernels-hook", help="run: let servescope start torch.profiler inside the server's "
        "own Python processes (any PyTorch server; a private channel in the run directory)",
        rich_help_panel=_E)] = False
    kernel_window: Annotated[float, typer.Option(
        help="Seconds of the --kernels-hook window", rich_help_panel=_E)] = 2.0
    kernels_trace_dir: Annotated[str | None, typer.Option(
        help="attach: the directory the server writes its profiler traces to (vLLM's "
        "torch_profiler_dir)", rich_help_panel=_E)] = None
    otlp_endpoint: Annotated[str | None, typer.Option(
        help="Send the run's request spans and client metrics to this OTLP endpoint as "
        "requests finish (every 2 s) and the rest when it ends (http://HOST:4318 or "
        "grpc://HOST:4317; a failure is a warning)",
        rich_help_panel=_E)] = None

    def engine_options(self, **more: Any) -> EngineOptions:
        """The library's options; a bad value is a usage error (exit 2)."""
        from profiler.engine_run import EngineOptions

        try:
            return EngineOptions(engine=self.engine, collect=self.collect,
                                 metrics_interval_s=self.metrics_interval,
                                 metrics_max_bytes=self.metrics_max_bytes,
                                 gpu_interval_s=self.gpu_interval,
                                 stacks_rate_hz=self.stacks_rate,
                                 stacks_blocking=self.stacks_blocking,
                                 hang_after_s=self.hang_after,
                                 kernel_steps=self.kernel_steps,
                                 kernel_window_s=self.kernel_window,
                                 kernels_hook=self.kernels_hook,
                                 kernels_trace_dir=self.kernels_trace_dir,
                                 otlp_endpoint=self.otlp_endpoint,
                                 scrape=not self.no_metrics, **more)
        except ValueError as exc:
            raise _fail(str(exc)) from None


@app.command()
@option_groups
def attach(
    url: Url, out: Out = None,
    pid: Annotated[int | None, typer.Option(help="The server's PID (recorded, for CPU "
                                            "profiling)", rich_help_panel=_E)] = None,
    repeat: Annotated[int, typer.Option(help=_REPEAT_HELP, rich_help_panel=_E)] = 1,
    vs: Annotated[str | None, typer.Option(
        "--vs", metavar="URL_B", help="A/B: a second server (B); with --repeat N both are "
        "run N times, interleaved in rounds, into OUT/A and OUT/B (compare and gate then "
        "judge the per-round differences)", rich_help_panel=_E)] = None,
    order: Annotated[str, typer.Option(
        help="With --vs: alternate (A B A B …) or shuffled (each round in a random order "
        "from --seed)", rich_help_panel=_E)] = "alternate",
    *, flags: EngineFlags, workload: WorkloadOptions,
) -> None:
    """Profile a server that is already running (servescope never stops it)."""
    from profiler.commands_run import attach_command

    _check_vs(vs, repeat, order)
    eopts = flags.engine_options(pid=pid)
    code = attach_command(url, workload, eopts, out or default_run_dir("attach"), sys.argv,
                          pid=pid, repeat=repeat, vs=vs, order=order)
    raise typer.Exit(code)


@app.command(context_settings={"allow_interspersed_args": False})
@option_groups
def run(
    command: Annotated[list[str], typer.Argument(
        help="The serving command, after --, e.g. -- vllm serve MODEL --port 8000",
        show_default=False)],
    out: Out = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="Where the server answers (default: from the command's flags)",
        rich_help_panel=_E)] = None,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness",
                                                 rich_help_panel=_E)] = 900.0,
    repeat: Annotated[int, typer.Option(help=_REPEAT_HELP, rich_help_panel=_E)] = 1,
    restart_between: Annotated[bool, typer.Option(
        "--restart-between", help="With --repeat: stop and start the engine between repeats "
        "(default: started once)", rich_help_panel=_E)] = False,
    vs: Annotated[str | None, typer.Option(
        "--vs", metavar="'COMMAND_B'", help="A/B: a second serving command (B, one quoted "
        "string, split like a shell would but never run by one); with --repeat N both are "
        "run N times, interleaved in rounds, each run starting and stopping its engine, into "
        "OUT/A and OUT/B", rich_help_panel=_E)] = None,
    order: Annotated[str, typer.Option(
        help="With --vs: alternate (A B A B …) or shuffled (each round in a random order "
        "from --seed)", rich_help_panel=_E)] = "alternate",
    *, flags: EngineFlags, workload: WorkloadOptions,
    api_key_env: RunApiKeyEnv = None,  # noqa: ARG001 - run's own; it reaches workload
) -> None:
    """Start a serving command (no shell), wait until it is ready, profile it, stop it."""
    from profiler.commands_run import run_command

    _check_vs(vs, repeat, order)
    vs_command = _vs_argv(vs) if vs is not None else None
    if vs_command is not None and restart_between:
        raise _fail("--vs always starts and stops each run's engine: drop --restart-between")
    eopts = flags.engine_options(url=url, ready_timeout_s=ready_timeout)
    code = run_command(command, workload, eopts, out or default_run_dir("run"), sys.argv,
                       repeat=repeat, restart_between=restart_between, vs=vs_command,
                       order=order)
    raise typer.Exit(code)


@app.command()
def summarize(
    run: Annotated[Path, typer.Argument(help="Run directory")],
    definitions: Annotated[str, typer.Option(
        help="Also report under another tool's definitions: vllm | aiperf | guidellm | all"
    )] = "",
    slo: Annotated[str | None, typer.Option(
        help="Goodput SLOs in ms, e.g. ttft:200,itl:50,tpot:40,e2e:2000")] = None,
) -> None:
    """Print a run directory's summary (no engine, network or GPU needed)."""
    from profiler.commands import summarize_command

    raise typer.Exit(summarize_command(run, definitions, slo))


@app.command()
def analyze(
    run: Annotated[Path, typer.Argument(help="Run directory")],
    slo: Annotated[str | None, typer.Option(
        help="Goodput SLOs in ms, e.g. ttft:200,itl:50,tpot:40,e2e:2000")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the analysis "
                                                  "as JSON to this file")] = None,
) -> None:
    """Find bottlenecks: steady state, percentiles with confidence intervals, where TTFT and
    E2E go, the sweep's knee, and findings with evidence and the engine flag to change."""
    from profiler.commands import analyze_command

    raise typer.Exit(analyze_command(run, slo, json_out))


@app.command()
def kernels(
    trace: Annotated[Path, typer.Argument(help="A torch-profiler trace (.json or .json.gz) "
                                          "or a run directory with kernels/ tables")],
    trace_b: Annotated[Path | None, typer.Argument(help="A second one (B) to compare")
                       ] = None,
    engine: Annotated[str | None, typer.Option(
        help="Whose step annotations to cut steps on (default: every engine's)")] = None,
    top: Annotated[int, typer.Option(help="How many top kernels to list")] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the analysis "
                                                  "as JSON to this file")] = None,
) -> None:
    """Kernel timelines per engine step: GPU busy and idle, launch overhead, kernel
    categories, top kernels, the launch-bound verdict; B against A when given."""
    from profiler.commands_kernels import kernels_command

    if top < 1:
        raise _fail("--top must be at least 1")
    raise typer.Exit(kernels_command(trace, trace_b, engine=engine, json_out=json_out,
                                     top=top))


export_app = typer.Typer(no_args_is_help=True, help="Export a run for other tools.")
app.add_typer(export_app, name="export")
app.add_typer(bench_app, name="bench")  # profiler/commands_bench.py


@export_app.command("perfetto")
def export_perfetto(
    run: Annotated[Path, typer.Argument(help="Run directory")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Trace file to write (default RUN/perfetto.json.gz; gzip when "
        "the name ends in .gz)")] = None,
) -> None:
    """One trace for Perfetto's UI (ui.perfetto.dev): requests, engine and GPU counters,
    stack summary and kernel timelines on the run's clock."""
    from profiler.commands_export import perfetto_command

    raise typer.Exit(perfetto_command(run, out))


@export_app.command("otlp")
def export_otlp(
    run: Annotated[Path, typer.Argument(help="Run directory")],
    endpoint: Annotated[str, typer.Option(
        "--endpoint", help="OTLP collector: http://HOST:4318 (OTLP/HTTP) or grpc://HOST:4317")],
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds per export")] = 5.0,
) -> None:
    """The run's request spans (GenAI conventions; the engine's joined spans under them) and
    client metrics to any OTLP backend (Jaeger, Tempo, an OpenTelemetry Collector)."""
    from profiler.commands_export import otlp_command

    raise typer.Exit(otlp_command(run, endpoint, timeout_s))


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run directory (A)")],
    run_b: Annotated[Path | None, typer.Argument(help="Second run (B) for an A/B report")
                     ] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="HTML file to write (default: RUN/report.html, or "
        "RUN_B/report-ab.html)")] = None,
    slo: Annotated[str | None, typer.Option(
        help="Goodput SLOs in ms, e.g. ttft:200,tpot:40")] = None,
    include_text: Annotated[bool, typer.Option(
        help="Include prompts and outputs kept in the run (off: never shown)")] = False,
) -> None:
    """Write one self-contained HTML report (works offline) of a run, or of A against B."""
    from profiler.commands_report import report_command

    target = out or (run_b / "report-ab.html" if run_b is not None else run / "report.html")
    raise typer.Exit(report_command(run, run_b, target, include_text=include_text, slo=slo))


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline run directory (A)")],
    candidate: Annotated[Path, typer.Argument(help="Candidate run directory (B)")],
    slo: Annotated[str | None, typer.Option(
        help="Goodput SLOs in ms, e.g. ttft:200,tpot:40")] = None,
    min_effect: Annotated[str, typer.Option(
        help="Smallest change that counts, e.g. 5%")] = "5%",
    confidence: Annotated[float, typer.Option(help="Confidence of the intervals")] = 0.95,
    correction: Annotated[str, typer.Option(
        help="Multiple-testing correction: holm | bh")] = "holm",
    metrics: Annotated[str | None, typer.Option(
        help="Only these metrics, comma-separated (e.g. ttft_p99,output_throughput)")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON")
                        ] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown table")] = None,
) -> None:
    """Compare two runs: per metric, the change with its confidence interval, a rank test,
    a noise-aware verdict, engine-side metrics, and what differs between the manifests."""
    from profiler.commands_compare import compare_command

    raise typer.Exit(compare_command(
        baseline, candidate, slo=slo, min_effect=min_effect, confidence=confidence,
        correction=correction, metrics=metrics, json_out=json_out, markdown_out=markdown))


@app.command()
def gate(
    candidate: Annotated[list[Path] | None, typer.Argument(
        help="Candidate run directory (with --history: runs or directories of runs)")] = None,
    budgets: Annotated[Path | None, typer.Option(help="Budgets file (TOML)")] = None,
    baseline: Annotated[Path | None, typer.Option(help="Baseline run directory")] = None,
    baseline_store: Annotated[Path | None, typer.Option(
        help="Directory of runs: the newest complete one is the baseline")] = None,
    history: Annotated[bool, typer.Option(
        "--history", help="Look for change points and drift over a series of runs")] = False,
    metrics: Annotated[str | None, typer.Option(help="--history: metrics to follow")] = None,
    min_effect: Annotated[str, typer.Option(help="--history: smallest change that counts")
                          ] = "5%",
    alpha: Annotated[float, typer.Option(help="--history: significance level")] = 0.05,
    slo: Annotated[str | None, typer.Option(help="--history: goodput SLOs in ms")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the Markdown summary here "
                                                  "(also appended to $GITHUB_STEP_SUMMARY)")
                        ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result as JSON")
                        ] = None,
) -> None:
    """Fail CI on a regression: exit 0 pass, 1 regression, 2 invalid input or invalid run."""
    from profiler.commands_compare import gate_entry

    raise typer.Exit(gate_entry(
        candidate or [], history=history, budgets=budgets, baseline=baseline,
        baseline_store=baseline_store, junit=junit, markdown=markdown, json_out=json_out,
        metrics=metrics, min_effect=min_effect, alpha=alpha, slo=slo))


@app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="vllm bench serve result JSON, AIPerf "
                                           "profile_export.jsonl or GuideLLM benchmarks.json")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to create")],
    tool: Annotated[str | None, typer.Option(
        help="vllm-bench | aiperf | guidellm (default: recognized from the file)")] = None,
) -> None:
    """Turn another tool's results into a run directory, for analyze, compare and gate."""
    from profiler.commands_import import import_command

    raise typer.Exit(import_command(source, out, tool))


@app.command()
def selftest(
    concurrency: Annotated[int, typer.Option(help="Concurrent streams")] = 64,
    requests: Annotated[int, typer.Option(help="Requests for the accuracy check")] = 256,
    ttft_ms: Annotated[float, typer.Option(help="Reference TTFT")] = 20.0,
    itl_ms: Annotated[float, typer.Option(help="Reference inter-token gap")] = 5.0,
    output_tokens: Annotated[int, typer.Option(help="Tokens per answer")] = 64,
    tokens_per_event: Annotated[int, typer.Option(help="Tokens per SSE event")] = 1,
    ceiling_s: Annotated[float, typer.Option(help="Seconds for the ceiling check (0 skips)")
                         ] = 5.0,
    workers: Annotated[int, typer.Option(help="Client worker processes")] = 1,
    out: Out = None,
) -> None:
    """Measure this client's own timing error and ingestion ceiling on this machine,
    against a loopback reference server with an exact schedule."""
    from profiler.commands import selftest_command

    raise typer.Exit(selftest_command(
        concurrency=concurrency, requests=requests, ttft_ms=ttft_ms, itl_ms=itl_ms,
        output_tokens=output_tokens, tokens_per_event=tokens_per_event,
        ceiling_s=ceiling_s, workers=workers, out=out or default_run_dir("selftest"),
    ))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def refserver(ctx: typer.Context) -> None:
    """Serve the loopback reference server (options: servescope refserver --help-server)."""
    from profiler.selftest.serve import main as serve_main

    raise typer.Exit(serve_main(list(ctx.args)))


@app.command()
def version() -> None:
    """Print servescope's version."""
    from servescope.version import __version__

    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
