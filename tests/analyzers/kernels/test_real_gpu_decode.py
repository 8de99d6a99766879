"""Real GPU traces recorded on an H200 (2026-12-04, torch 2.11, ``pytest -m gpu
tests/gpu/test_decode_traces.py`` with ``SERVESCOPE_KEEP_TRACES``): the same 8-layer
Llama-shaped decode step, 30 ``ProfilerStep``s, run eagerly and replayed from a CUDA
graph (``benchmarks/gpu/decode_traces.py``). The analysis must call the eager loop
launch-bound and the graph loop not, and its per-step kernel counts, GPU busy time and
graph attribution must match a computation straight from the JSON."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from analyzers.kernels import analyze_kernels
from collectors.kernels.ingest import read_trace

GPU_TRACES = Path(__file__).parents[2] / "data" / "traces" / "gpu"
EAGER = GPU_TRACES / "h200-decode-eager.json.gz"
GRAPH = GPU_TRACES / "h200-decode-graph.json.gz"


def independent_steps(path: Path) -> list[dict[str, Any]]:
    """Per ``ProfilerStep#N`` (CPU-side annotation): the GPU events (kernel, memcpy, memset)
    whose launching call (runtime or driver API, same correlation id) starts inside it, their
    count, the union of their intervals (ns; ``ts``/``dur`` are µs with ns decimals), and
    how many came from a ``cudaGraphLaunch``."""
    with gzip.open(path, "rt") as fh:
        ev = json.load(fh)["traceEvents"]
    steps = sorted((e for e in ev if str(e.get("name", "")).startswith("ProfilerStep#")
                    and e.get("cat") == "user_annotation"), key=lambda e: e["ts"])
    launches = {e["args"]["correlation"]: e for e in ev
                if e.get("cat") in ("cuda_runtime", "cuda_driver")
                and "correlation" in e.get("args", {})}
    gpu = [e for e in ev if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    out = []
    for s in steps:
        lo, hi = s["ts"], s["ts"] + s["dur"]
        mine = [k for k in gpu
                if (lc := launches.get(k["args"].get("correlation"))) and lo <= lc["ts"] < hi]
        spans = sorted((round(k["ts"] * 1000), round((k["ts"] + k["dur"]) * 1000))
                       for k in mine)
        busy, end = 0, None
        for a, b in spans:
            if end is None or a > end:
                busy += b - a
                end = b
            elif b > end:
                busy += b - end
                end = b
        graph = sum(1 for k in mine
                    if "GraphLaunch" in launches[k["args"]["correlation"]]["name"])
        out.append({"gpu_events": len(mine), "busy_ns": busy, "graph_kernels": graph,
                    "kernels": sum(1 for k in mine if k["cat"] == "kernel")})
    return out


def _analysis(path: Path) -> Any:
    return analyze_kernels(read_trace(path).events().to_pandas())


@pytest.mark.parametrize("path", [EAGER, GRAPH], ids=["eager", "graph"])
def test_per_step_figures_match_the_json(path: Path) -> None:
    res = _analysis(path)
    want = independent_steps(path)
    assert len(res.steps) == len(want) == 30
    assert all(s.source.value == "profiler_step" for s in res.steps)
    assert [t.gpu_events for t in res.timelines] == [w["gpu_events"] for w in want]
    assert [t.kernels for t in res.timelines] == [w["kernels"] for w in want]
    assert [t.graph_kernels for t in res.timelines] == [w["graph_kernels"] for w in want]
    for t, w in zip(res.timelines, want, strict=True):
        assert abs(t.gpu_busy_ns - w["busy_ns"]) <= 1_000 + 0.001 * w["busy_ns"]
    assert res.gpu_events_outside_steps == 0


def test_eager_is_launch_bound_and_graph_is_not() -> None:
    eager, graph = _analysis(EAGER), _analysis(GRAPH)
    assert eager.verdict.launch_bound
    assert eager.verdict.launch_bound_steps == 30
    assert eager.verdict.idle_frac > 0.9
    assert not graph.verdict.launch_bound
    assert graph.verdict.launch_bound_span_frac < 0.5
    # the same work: 237 GPU events a step either way (the graph's replayed nodes are its
    # kernels, attributed to the one cudaGraphLaunch of the step)
    assert all(t.graph_launches == 1 and t.graph_kernels >= 230 for t in graph.timelines)
    assert all(t.graph_launches == 0 and t.graph_kernels == 0 for t in eager.timelines)
    # a step waits ~14x less on the host with the graph (eager 8.3 ms, graph 1.15 ms median)
    e_span = sorted(t.span_ns for t in eager.timelines)[15]
    g_span = sorted(t.span_ns for t in graph.timelines)[15]
    assert e_span > 5 * g_span
