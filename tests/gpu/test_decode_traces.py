"""On a real NVIDIA GPU: the same torch decode step run eagerly and replayed from a CUDA graph
(``benchmarks/gpu/decode_traces.py``), recorded with torch.profiler; the kernel analysis must
call the eager loop launch-bound and the graph loop not, with per-step numbers, and its
per-step kernel counts and busy time must match a computation straight from the JSON.

``pytest -m gpu tests/gpu/test_decode_traces.py -s`` (skips without torch or CUDA). With
``SERVESCOPE_KEEP_TRACES=DIR`` the two traces are copied there (they are the recorded real
traces CI re-reads: ``tests/data/traces/gpu/``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gpu

STEPS = 30


def _cuda() -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _cuda()
    from benchmarks.gpu.decode_traces import DecodeShape, record_decode_trace

    out = tmp_path_factory.mktemp("decode")
    shape = DecodeShape(layers=8, batch=8)
    files = {}
    for mode in ("eager", "graph"):
        path = out / f"h200-decode-{mode}.json.gz"
        info = record_decode_trace(path, graph=mode == "graph", steps=STEPS, shape=shape)
        print(json.dumps(info))
        files[mode] = path
    keep = os.environ.get("SERVESCOPE_KEEP_TRACES")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for p in files.values():
            shutil.copy(p, Path(keep) / p.name)
    return files


def _analysis(path: Path) -> Any:
    from analyzers.kernels import analyze_kernels
    from collectors.kernels.ingest import read_trace

    return analyze_kernels(read_trace(path).events().to_pandas())


def test_eager_is_launch_bound_and_graph_is_not(traces: dict[str, Path]) -> None:
    eager, graph = _analysis(traces["eager"]), _analysis(traces["graph"])
    for name, res in (("eager", eager), ("graph", graph)):
        tl = [t for t in res.timelines if t.gpu_events]
        print(name, json.dumps(res.verdict.to_json()),
              "steps", len(res.steps), "wall_ms_p50",
              statistics.median(t.wall_ns for t in tl) / 1e6,
              "busy_ms_p50", statistics.median(t.gpu_busy_ns for t in tl) / 1e6,
              "kernels_p50", statistics.median(t.gpu_events for t in tl))
    assert eager.verdict.launch_bound, eager.verdict
    assert not graph.verdict.launch_bound, graph.verdict
    assert eager.verdict.idle_frac > 0.5 > graph.verdict.idle_frac
    # the same work: kernels per step within a few (the graph adds its own copies)
    assert abs(eager.verdict.kernels_per_step_median - graph.verdict.kernels_per_step_median) < 8


@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_per_step_counts_match_the_json(traces: dict[str, Path], mode: str) -> None:
    res = _analysis(traces[mode])
    from tests.analyzers.kernels.test_real_gpu_decode import independent_steps

    want = independent_steps(traces[mode])
    assert len(res.steps) == len(want) >= STEPS
    assert [t.gpu_events for t in res.timelines] == [w["gpu_events"] for w in want]
    assert [t.graph_kernels for t in res.timelines] == [w["graph_kernels"] for w in want]
    for t, w in zip(res.timelines, want, strict=True):
        assert abs(t.gpu_busy_ns - w["busy_ns"]) <= 1_000 + 0.001 * w["busy_ns"]
