"""GuideLLM 0.8.1 (``.bench/guidellm``), ``guidellm run`` with the concurrent profile.

Invocation as verified in peers.md section 5, with ``request_format=/v1/completions`` and a
``max_requests`` constraint; worker processes left at GuideLLM's default. It sends
``ignore_eos`` and ``stream_options`` (``include_usage``, ``continuous_usage_stats``) by
itself and prefers the server's usage counts.

Counts and duration: ``benchmarks.json`` -> ``benchmarks[0]``: ``metrics.request_totals``,
``metrics.output_token_count.successful.total_sum``, ``duration``; window:
``scheduler_metrics.measure_start_time`` / ``measure_end_time`` (epoch seconds); content
events: ``info.timings.token_iterations`` summed over successful requests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmarks.peers.common import (
    CellResult,
    CellSpec,
    ToolReport,
    error_result,
    make_result,
    run_measured,
    wall_to_mono_ns,
)

__all__ = ["run"]

TOOL = "guidellm"
_ROOT = Path(__file__).resolve().parents[2]
GUIDELLM = _ROOT / ".bench" / "guidellm" / "bin" / "guidellm"


def _argv(spec: CellSpec, out: Path) -> list[str]:
    return [
        str(GUIDELLM), "run",
        "--backend",
        f"kind=openai_http,target={spec.url},model={spec.model},request_format=/v1/completions",
        "--tokenizer", f"kind=huggingface_auto,model={spec.tokenizer_dir}",
        "--data",
        f"kind=synthetic_text,prompt_tokens={spec.input_tokens},output_tokens={spec.output_tokens}",
        "--profile", f"kind=concurrent,streams={spec.concurrency}",
        "--constraint", f"kind=max_requests,count={spec.requests}",
        "--output", f"kind=json,path={out}",
        "--disable-console-interactive",
    ]  # fmt: skip


def parse_benchmarks(path: Path) -> tuple[ToolReport, dict[str, object]]:
    """GuideLLM's own counts, duration and window from its ``benchmarks.json``."""
    bench: dict[str, Any] = json.loads(path.read_text())["benchmarks"][0]
    totals = bench["metrics"]["request_totals"]
    sched = bench["scheduler_metrics"]
    tokens = bench["metrics"]["output_token_count"]["successful"]["total_sum"]
    events = sum(
        int(r["info"]["timings"].get("token_iterations") or 0)
        for r in bench["requests"]["successful"]
    )
    busy = sum(
        float(r["request_end_time"]) - float(r["request_start_time"])
        for r in (*bench["requests"]["successful"], *bench["requests"]["errored"])
        if r.get("request_end_time") and r.get("request_start_time")
    )
    t0 = wall_to_mono_ns(int(float(sched["measure_start_time"]) * 1e9))
    t1 = wall_to_mono_ns(int(float(sched["measure_end_time"]) * 1e9))
    strategy = bench["config"]["strategy"]
    notes = [f"{w.get('code')}: {w.get('message')}" for w in bench.get("warnings", [])]
    listed = len(bench["requests"]["successful"])
    if listed != int(totals["successful"]):
        notes.append(f"benchmarks.json lists {listed} successful requests, totals say {totals}")
    errors = {str(r["info"].get("error")) for r in bench["requests"]["errored"]}
    if errors:
        notes.append(f"errors: {', '.join(sorted(errors))[:300]}")
    report = ToolReport(
        completed=int(totals["successful"]),
        failed=int(totals["errored"]) + int(totals["incomplete"]),
        duration_s=float(bench["duration"]),
        window_mono_ns=(t0, t1),
        tool_output_tokens=int(tokens),
        tool_content_events=events,
        busy_s=busy,
        notes=tuple(notes),
    )
    concurrency = bench["metrics"].get("request_concurrency", {}).get("successful", {})
    extra: dict[str, object] = {
        "guidellm_worker_count": strategy.get("worker_count"),
        "guidellm_concurrency_mean": concurrency.get("mean"),
        "guidellm_concurrency_max": concurrency.get("max"),
    }
    return report, extra


def run(spec: CellSpec) -> CellResult:
    """One GuideLLM cell."""
    if not GUIDELLM.exists():
        return error_result(TOOL, spec, f"{GUIDELLM} not found (bash benchmarks/install_peers.sh)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = spec.work_dir / "benchmarks.json"
    proc = run_measured(_argv(spec, out), spec, env=env, cwd=spec.work_dir)
    try:
        report, extra = parse_benchmarks(out)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return error_result(TOOL, spec, f"{type(exc).__name__}: {exc}\n{proc.tail()}", proc)
    return make_result(TOOL, spec, proc, report, extra=extra)
