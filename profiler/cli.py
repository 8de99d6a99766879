"""The ``servescope`` command line: a thin typer layer over library functions.

Every command parses its options and calls one function; heavy modules are imported inside
the command so ``servescope --help`` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from profiler.cli_workload import WorkloadOptions, default_run_dir

app = typer.Typer(
    name="servescope", no_args_is_help=True, add_completion=False,
    help="Profile LLM inference servers: latency from every streamed token, engine metrics, "
         "bottlenecks and regressions.",
)

_W = "Workload"
Url = Annotated[str, typer.Option("--url", help="Server base URL, e.g. http://127.0.0.1:8000")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to create "
                                          "(default runs/<time>-<label>)")]
Model = Annotated[str | None, typer.Option(help="Model name (default: first of /v1/models)",
                                           rich_help_panel=_W)]
EndpointOpt = Annotated[str, typer.Option(help="completions | chat", rich_help_panel=_W)]
Dataset = Annotated[str, typer.Option(help="synthetic | jsonl | sharegpt | shared_prefix | "
                                      "multi_turn | trace", rich_help_panel=_W)]
DatasetPath = Annotated[str | None, typer.Option(help="Data file for jsonl/sharegpt/trace",
                                                 rich_help_panel=_W)]
Tokenizer = Annotated[str | None, typer.Option(help="tokenizer.json or a directory with one "
                                               "(real-token prompts and counts)",
                                               rich_help_panel=_W)]
InputLen = Annotated[str, typer.Option(help="Prompt tokens: fixed:N | uniform:LO,HI | "
                                       "normal:MEAN,SD | lognormal:MEAN,SD", rich_help_panel=_W)]
OutputLen = Annotated[str | None, typer.Option(help="max_tokens, same forms as --input-len",
                                               rich_help_panel=_W)]
Concurrency = Annotated[int | None, typer.Option(help="Closed loop: requests in flight; with "
                                                 "--rate: a cap", rich_help_panel=_W)]
Rate = Annotated[float | None, typer.Option(help="Open loop: requests per second",
                                            rich_help_panel=_W)]
Arrival = Annotated[str, typer.Option(help="Open-loop arrivals: poisson | constant | gamma",
                                      rich_help_panel=_W)]
Burstiness = Annotated[float, typer.Option(help="Gamma shape k (<1 bursty, 1 = Poisson)",
                                           rich_help_panel=_W)]
Requests = Annotated[int | None, typer.Option(help="Requests (sessions) per step "
                                              "(default 100 unless --duration)",
                                              rich_help_panel=_W)]
Duration = Annotated[float | None, typer.Option(help="Seconds per step", rich_help_panel=_W)]
WarmupReq = Annotated[int, typer.Option(help="Warm-up requests, excluded from metrics",
                                        rich_help_panel=_W)]
WarmupS = Annotated[float, typer.Option(help="Warm-up seconds, excluded from metrics",
                                        rich_help_panel=_W)]
Sweep = Annotated[str | None, typer.Option(help="Sweep rates (with --rate) or concurrencies: "
                                           "1,2,4 | 1:16:x2 | 2:10:+2", rich_help_panel=_W)]
Seed = Annotated[int, typer.Option(help="Seed for prompts, lengths and arrivals",
                                   rich_help_panel=_W)]
Workers = Annotated[int, typer.Option(help="Client worker processes", rich_help_panel=_W)]
Groups = Annotated[int, typer.Option(help="shared_prefix: groups", rich_help_panel=_W)]
PrefixLen = Annotated[int, typer.Option(help="shared_prefix: prefix tokens", rich_help_panel=_W)]
Turns = Annotated[str, typer.Option(help="multi_turn: turns per conversation",
                                    rich_help_panel=_W)]
ThinkTime = Annotated[float, typer.Option(help="multi_turn: seconds between turns",
                                          rich_help_panel=_W)]
TimeScale = Annotated[float, typer.Option(help="trace: replay speed-up", rich_help_panel=_W)]
MultiTurn = Annotated[bool, typer.Option("--multi-turn", help="sharegpt: keep every human turn "
                                         "of a conversation", rich_help_panel=_W)]
ChunkUsage = Annotated[bool, typer.Option("--per-chunk-usage/--no-per-chunk-usage",
                                          help="Ask for usage on every event (exact tokens "
                                          "per event)", rich_help_panel=_W)]
IgnoreEos = Annotated[bool, typer.Option("--ignore-eos/--no-ignore-eos",
                                         help="Send ignore_eos so outputs reach max_tokens",
                                         rich_help_panel=_W)]
ReqTimeout = Annotated[float, typer.Option(help="Per-request limit, seconds",
                                           rich_help_panel=_W)]
StallTimeout = Annotated[float, typer.Option(help="Give up on a stream silent this long, "
                                             "seconds", rich_help_panel=_W)]
MaxResponse = Annotated[int, typer.Option(help="Largest non-streamed answer read, bytes (a larger "
                                          "one ends invalid_response)", rich_help_panel=_W)]
ApiKeyEnv = Annotated[str, typer.Option(help="Environment variable holding the API key "
                                        "(never written anywhere)", rich_help_panel=_W)]
RunApiKeyEnv = Annotated[str | None, typer.Option(
    help="Environment variable holding the API key (never written anywhere); default: the "
    "serving command's own --api-key, else OPENAI_API_KEY", rich_help_panel=_W)]


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {msg}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


EngineOpt = Annotated[str | None, typer.Option(
    "--engine", help="vllm | sglang | trtllm | triton | openai (default: recognized from the "
    "command, or for attach from the /metrics names)", rich_help_panel="Engine")]
MetricsInterval = Annotated[float, typer.Option(help="Seconds between engine metric scrapes",
                                                rich_help_panel="Engine")]
NoMetrics = Annotated[bool, typer.Option("--no-metrics", help="Do not scrape engine metrics",
                                         rich_help_panel="Engine")]
MetricsMax = Annotated[int, typer.Option(help="Largest metrics page read, bytes (a larger one is "
                                         "refused and counted as too_large)",
                                         rich_help_panel="Engine")]


def _workload(values: dict[str, object]) -> WorkloadOptions:
    """The WorkloadOptions fields out of a command's parameters."""
    from dataclasses import fields

    return WorkloadOptions(**{f.name: values[f.name] for f in fields(WorkloadOptions)
                              if f.name in values})  # type: ignore[arg-type]


@app.command()
def attach(
    url: Url, out: Out = None, engine: EngineOpt = None,
    metrics_interval: MetricsInterval = 1.0, no_metrics: NoMetrics = False,
    pid: Annotated[int | None, typer.Option(help="The server's PID (recorded, for CPU "
                                            "profiling)", rich_help_panel="Engine")] = None,
    model: Model = None, endpoint: EndpointOpt = "completions",
    dataset: Dataset = "synthetic", dataset_path: DatasetPath = None,
    tokenizer: Tokenizer = None, input_len: InputLen = "fixed:128",
    output_len: OutputLen = None, concurrency: Concurrency = None, rate: Rate = None,
    arrival: Arrival = "poisson", burstiness: Burstiness = 1.0, requests: Requests = None,
    duration: Duration = None, warmup_requests: WarmupReq = 0, warmup_s: WarmupS = 0.0,
    sweep: Sweep = None, seed: Seed = 0, workers: Workers = 1, groups: Groups = 8,
    prefix_len: PrefixLen = 512, turns: Turns = "fixed:3", think_time: ThinkTime = 0.0,
    time_scale: TimeScale = 1.0, multi_turn: MultiTurn = False,
    per_chunk_usage: ChunkUsage = True,
    ignore_eos: IgnoreEos = True, request_timeout: ReqTimeout = 600.0,
    stall_timeout: StallTimeout = 120.0, api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    max_response_bytes: MaxResponse = 64 << 20, metrics_max_bytes: MetricsMax = 4 << 20,
) -> None:
    """Profile a server that is already running (servescope never stops it)."""
    from profiler.commands_run import attach_command
    from profiler.engine_run import EngineOptions

    try:
        eopts = EngineOptions(engine=engine, metrics_interval_s=metrics_interval,
                              metrics_max_bytes=metrics_max_bytes, scrape=not no_metrics)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    code = attach_command(url, _workload(locals()), eopts, out or default_run_dir("attach"),
                          sys.argv, pid=pid)
    raise typer.Exit(code)


@app.command(context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[list[str], typer.Argument(
        help="The serving command, after --, e.g. -- vllm serve MODEL --port 8000",
        show_default=False)],
    out: Out = None, engine: EngineOpt = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="Where the server answers (default: from the command's flags)",
        rich_help_panel="Engine")] = None,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness",
                                                 rich_help_panel="Engine")] = 900.0,
    metrics_interval: MetricsInterval = 1.0, no_metrics: NoMetrics = False,
    model: Model = None, endpoint: EndpointOpt = "completions",
    dataset: Dataset = "synthetic", dataset_path: DatasetPath = None,
    tokenizer: Tokenizer = None, input_len: InputLen = "fixed:128",
    output_len: OutputLen = None, concurrency: Concurrency = None, rate: Rate = None,
    arrival: Arrival = "poisson", burstiness: Burstiness = 1.0, requests: Requests = None,
    duration: Duration = None, warmup_requests: WarmupReq = 0, warmup_s: WarmupS = 0.0,
    sweep: Sweep = None, seed: Seed = 0, workers: Workers = 1, groups: Groups = 8,
    prefix_len: PrefixLen = 512, turns: Turns = "fixed:3", think_time: ThinkTime = 0.0,
    time_scale: TimeScale = 1.0, multi_turn: MultiTurn = False,
    per_chunk_usage: ChunkUsage = True,
    ignore_eos: IgnoreEos = True, request_timeout: ReqTimeout = 600.0,
    stall_timeout: StallTimeout = 120.0, api_key_env: RunApiKeyEnv = None,
    max_response_bytes: MaxResponse = 64 << 20, metrics_max_bytes: MetricsMax = 4 << 20,
) -> None:
    """Start a serving command (no shell), wait until it is ready, profile it, stop it."""
    from profiler.commands_run import run_command
    from profiler.engine_run import EngineOptions

    try:
        eopts = EngineOptions(engine=engine, url=url, ready_timeout_s=ready_timeout,
                              metrics_interval_s=metrics_interval,
                              metrics_max_bytes=metrics_max_bytes, scrape=not no_metrics)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    code = run_command(command, _workload(locals()), eopts, out or default_run_dir("run"),
                       sys.argv)
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
