"""The two load generators the collector-overhead benchmark runs against the same engine:
how each is started and how its own result files are read into one shape of numbers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.overhead_engine import MODEL, VLLM

__all__ = ["servescope_argv", "servescope_numbers", "vllm_bench_argv", "vllm_bench_numbers"]


def servescope_argv(
    url: str, out: Path, a: argparse.Namespace, seed: int, every_s: float | None
) -> list[str]:
    """``servescope attach``; ``every_s``: the scrape interval, None for ``--no-metrics``."""
    return [
        sys.executable, "-m", "profiler.cli", "attach", "--url", url, "--out", str(out),
        "--engine", "vllm", "--model", "tiny", "--tokenizer", str(MODEL),
        "--input-len", f"fixed:{a.input_len}", "--output-len", f"fixed:{a.output_len}",
        "--concurrency", str(a.concurrency), "--requests", str(a.requests),
        "--seed", str(seed),
        *(["--metrics-interval", f"{every_s:g}"] if every_s else ["--no-metrics"]),
    ]  # fmt: skip


def vllm_bench_argv(url: str, out: Path, a: argparse.Namespace, seed: int) -> list[str]:
    return [
        str(VLLM), "bench", "serve", "--backend", "vllm", "--base-url", url,
        "--endpoint", "/v1/completions", "--model", "tiny", "--tokenizer", str(MODEL),
        "--dataset-name", "random", "--random-input-len", str(a.input_len),
        "--random-output-len", str(a.output_len), "--ignore-eos",
        "--num-prompts", str(a.requests), "--max-concurrency", str(a.concurrency),
        "--request-rate", "inf", "--seed", str(seed), "--disable-tqdm",
        "--save-result", "--result-dir", str(out), "--result-filename", "result.json",
    ]  # fmt: skip


def servescope_numbers(out: Path) -> dict[str, Any]:
    from analyzers.summary import summarize
    from servescope.rundir.reader import load_run

    run = load_run(out)
    s = summarize(run)
    scrapes = run.manifest.engine.scrapes if run.manifest.engine is not None else None
    return {
        "completed": s.successful_requests,
        "failed": s.measured_requests - s.successful_requests,
        "duration_s": s.window_ns / 1e9,
        "output_tok_per_s": s.output_token_throughput_per_s,
        "req_per_s": s.request_throughput_per_s,
        "ttft_p50_ms": s.latency.ttft_ns.p50 / 1e6,
        "itl_p50_ms": s.latency.itl_per_token_ns.p50 / 1e6,
        "scrapes_ok": scrapes.ok if scrapes else None,
        "scraper_cpu_s": scrapes.cpu_ns_total / 1e9 if scrapes else None,
        "status": run.manifest.status,
    }


def vllm_bench_numbers(out: Path) -> dict[str, Any]:
    r = json.loads((out / "result.json").read_text())
    return {
        "completed": r["completed"],
        "failed": r["failed"],
        "duration_s": r["duration"],
        "output_tok_per_s": r["output_throughput"],
        "req_per_s": r["request_throughput"],
        "ttft_p50_ms": r["median_ttft_ms"],
        "itl_p50_ms": r["median_itl_ms"],
        "status": "complete",
    }
