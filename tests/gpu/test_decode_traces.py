"""On a real NVIDIA GPU: the same torch decode step run eagerly and replayed from a CUDA graph
(``benchmarks/gpu/decode_traces.py``), recorded with torch.profiler; the kernel analysis must
call the eager loop launch-bound and the graph loop not, with per-step numbers, and its
per-step kernel counts and busy time must match a computation straight from the JSON.

``pytest -m gpu tests/gpu/test_decode_traces.py -s`` (skips without torch or CUDA). With
``SERVESCOPE_KEEP_TRACES=DIR`` the two traces are copied there (they are the recorded real
traces CI re-reads: ``tests/data/traces/gpu/``).
"""

from __future__ import annotations

import gzip
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


def _independent(path: Path) -> list[tuple[int, int]]:
    """Per ProfilerStep: (GPU kernels whose launching runtime call starts in it, the union of
    those kernels' intervals in ns); ``ts``/``dur`` are µs with ns decimals."""
    with gzip.open(path, "rt") as fh:
        ev = json.load(fh)["traceEvents"]
    steps = sorted((e for e in ev if str(e.get("name", "")).startswith("ProfilerStep#")
                    and e.get("cat") == "user_annotation"), key=lambda e: e["ts"])
    # runtime calls and driver calls (cuBLAS' nvjet GEMMs go through cuLaunchKernelEx)
    launches = {e["args"]["correlation"]: e["ts"] for e in ev
                if e.get("cat") in ("cuda_runtime", "cuda_driver")
                and "correlation" in e.get("args", {})}
    gpu = [e for e in ev if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    out = []
    for s in steps:
        lo, hi = s["ts"], s["ts"] + s["dur"]
        mine = sorted((round(k["ts"] * 1000), round((k["ts"] + k["dur"]) * 1000)) for k in gpu
                      if lo <= launches.get(k["args"].get("correlation"), -1) < hi)
        busy, end = 0, None
        for a, b in mine:
            if end is None or a > end:
                busy += b - a
                end = b
            elif b > end:
                busy += b - end
                end = b
        out.append((len(mine), busy))
    return out


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
    want = _independent(traces[mode])
    assert len(res.steps) == len(want) >= STEPS
    got = [(t.gpu_events, t.gpu_busy_ns) for t in res.timelines]
    assert [g[0] for g in got] == [w[0] for w in want]
    for (_, b), (_, wb) in zip(got, want, strict=True):
        assert abs(b - wb) <= 1_000 + 0.001 * wb  # rounding of µs decimals to ns
