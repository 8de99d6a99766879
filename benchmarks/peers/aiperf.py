"""NVIDIA AIPerf 0.13.0 (``.bench/aiperf``), ``aiperf profile`` closed-loop.

Invocation as verified in peers.md section 5, on ``/v1/completions`` with
``--use-server-token-count`` (the reference server's text does not round-trip through the
local tokenizer; every other tool here also counts the server's ``usage``), server metrics
and GPU telemetry off, no UI, worker count left at AIPerf's default for this machine.
``HF_HUB_OFFLINE`` is left unset: with it 0.13.0 rejects a local tokenizer directory.

Counts and duration: ``profile_export_aiperf.json`` (``completed_request_count``,
``total_usage_completion_tokens``, ``benchmark_duration``); window and content events
(``len(inter_chunk_latency) + 1`` per request): ``profile_export.jsonl``
(``credit_issued_ns`` / ``request_end_ns`` are epoch ns).
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

__all__ = ["parse_artifacts", "run", "run_workers"]

TOOL = "aiperf"
_ROOT = Path(__file__).resolve().parents[2]
AIPERF = _ROOT / ".bench" / "aiperf" / "bin" / "aiperf"


def _argv(spec: CellSpec, out: Path, workers: int | None) -> list[str]:
    workers_flag = [] if workers is None else ["--workers-max", str(workers)]
    return [
        str(AIPERF), "profile", "--model", spec.model, "--url", spec.url,
        "--endpoint-type", "completions", "--streaming",
        "--tokenizer", str(spec.tokenizer_dir), "--use-server-token-count",
        "--synthetic-input-tokens-mean", str(spec.input_tokens),
        "--synthetic-input-tokens-stddev", "0",
        "--output-tokens-mean", str(spec.output_tokens), "--output-tokens-stddev", "0",
        "--extra-inputs", "ignore_eos:true",
        "--concurrency", str(spec.concurrency), "--request-count", str(spec.requests),
        "--ui-type", "none", "--no-server-metrics", "--no-gpu-telemetry",
        "--output-artifact-dir", str(out), "--export-level", "records", "--random-seed", "0",
        *workers_flag,
    ]  # fmt: skip


def _metric(summary: dict[str, Any], name: str) -> float | None:
    entry = summary.get(name)
    return float(entry["avg"]) if isinstance(entry, dict) and "avg" in entry else None


def _scan_records(path: Path) -> tuple[int, int, int, int, int]:
    """(first credit ns, last end ns, content events, errored records, busy ns) of the jsonl."""
    first, last, events, errors, busy = 2**63, 0, 0, 0, 0
    with path.open() as fh:
        for line in fh:
            rec = json.loads(line)
            meta = rec.get("metadata", {})
            first = min(first, int(meta.get("credit_issued_ns", first)))
            last = max(last, int(meta.get("request_end_ns", last)))
            busy += int(meta.get("request_end_ns", 0)) - int(meta.get("request_start_ns", 0))
            if rec.get("error"):
                errors += 1
                continue
            icl = rec.get("metrics", {}).get("inter_chunk_latency", {}).get("value")
            events += len(icl) + 1 if isinstance(icl, list) else 0
    return first, last, events, errors, busy


def parse_artifacts(out: Path) -> tuple[ToolReport, dict[str, object]]:
    """AIPerf's own counts, duration and window from its artifact directory."""
    summary = json.loads((out / "profile_export_aiperf.json").read_text())
    completed = int(_metric(summary, "completed_request_count") or 0)
    duration = _metric(summary, "benchmark_duration") or 0.0
    tokens = _metric(summary, "total_usage_completion_tokens")
    first, last, events, errors, busy = _scan_records(out / "profile_export.jsonl")
    notes = []
    if summary.get("error_summary"):
        notes.append(f"error_summary: {json.dumps(summary['error_summary'])[:300]}")
    report = ToolReport(
        completed=completed,
        failed=errors,
        duration_s=duration,
        window_mono_ns=(wall_to_mono_ns(first), wall_to_mono_ns(last)) if last else None,
        tool_output_tokens=None if tokens is None else int(tokens),
        tool_content_events=events,
        busy_s=busy / 1e9,
        notes=tuple(notes),
    )
    extra: dict[str, object] = {
        "aiperf_effective_concurrency": _metric(summary, "effective_concurrency"),
        "aiperf_credit_to_start_latency_ms": _metric(summary, "credit_to_start_latency"),
    }
    return report, extra


def run(spec: CellSpec) -> CellResult:
    """One AIPerf cell, worker count left at AIPerf's default for this machine."""
    return run_workers(spec, None)


def run_workers(spec: CellSpec, workers: int | None) -> CellResult:
    """One AIPerf cell with ``--workers-max workers`` (None: AIPerf's default)."""
    tool = TOOL if workers is None else f"{TOOL} --workers-max {workers}"
    if not AIPERF.exists():
        return error_result(tool, spec, f"{AIPERF} not found (bash benchmarks/install_peers.sh)")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = spec.work_dir / "artifacts"
    proc = run_measured(_argv(spec, out, workers), spec, env=env, cwd=spec.work_dir)
    try:
        report, extra = parse_artifacts(out)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return error_result(tool, spec, f"{type(exc).__name__}: {exc}\n{proc.tail()}", proc)
    return make_result(tool, spec, proc, report, extra=extra)
