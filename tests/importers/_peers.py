"""The peer tools' captured result files (tests/data/peers/README.md) and how to import them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from profiler.importers import import_run
from servescope.rundir.reader import RunData, load_run

PEERS = Path(__file__).resolve().parents[1] / "data" / "peers"
VLLM_OK = PEERS / "vllm-bench" / "vllm_bench_serve.json"
VLLM_FAULTS = PEERS / "vllm-bench" / "vllm_bench_serve_faults.json"
AIPERF_OK = PEERS / "aiperf" / "ok" / "profile_export.jsonl"
AIPERF_FAULTS = PEERS / "aiperf" / "faults" / "profile_export.jsonl"
AIPERF_TRACE = PEERS / "aiperf" / "http-trace" / "profile_export.jsonl"
GUIDELLM_OK = PEERS / "guidellm" / "benchmarks.json"
GUIDELLM_FAULTS = PEERS / "guidellm" / "benchmarks_faults.json"

NS_PER_MS = 1e6
# Float rounding: the tools print float ms/s; we store integer ns (one rounding each).
NS_TOL = 2.0


def imported(source: Path, tmp_path: Path, tool: str | None = None,
             name: str = "run") -> RunData:
    import_run(source, tmp_path / name, tool)
    return load_run(tmp_path / name)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ns(values_ms: Any) -> np.ndarray:
    return np.asarray(values_ms, dtype=np.float64) * NS_PER_MS
