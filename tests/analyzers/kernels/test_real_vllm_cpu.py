"""The real vLLM-CPU capture (vLLM 0.32.0, CPU only: annotations and CPU ops, no kernels):
steps cut on its execute_context_* annotations, checked against a computation straight from
``json.load``."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from typing import Any

from analyzers.kernels import analyze_kernels
from tests.analyzers.kernels._events import VLLM_CPU_TRACE, load_chrome_trace, ns


def independent() -> tuple[list[dict[str, Any]], list[int]]:
    with gzip.open(VLLM_CPU_TRACE, "rt") as f:
        events = json.load(f)["traceEvents"]
    steps = sorted((e for e in events if e.get("cat") == "user_annotation"
                    and e["name"].startswith("execute_context_")), key=lambda e: e["ts"])
    ops = [ns(e["ts"]) for e in events if e.get("cat") == "cpu_op"]
    counts = [sum(1 for t in ops if ns(s["ts"]) <= t < ns(s["ts"]) + ns(s["dur"]))
              for s in steps]
    return steps, counts


def test_steps_cut_on_vllm_annotations() -> None:
    steps, op_counts = independent()
    res = analyze_kernels(load_chrome_trace(VLLM_CPU_TRACE), engine="vllm")
    assert len(res.steps) == len(steps) == 34
    assert [s.name for s in res.steps] == [e["name"] for e in steps]
    assert [s.dur_ns for s in res.steps] == [ns(e["dur"]) for e in steps]
    assert [t.wall_ns for t in res.timelines] == [ns(e["dur"]) for e in steps]
    assert [t.cpu_ops for t in res.timelines] == op_counts
    assert sum(op_counts) > 8000  # nearly all of the 8982 CPU ops fall inside steps
    phases = Counter(s.phase.value for s in res.steps)
    expected: Counter[str] = Counter()
    for e in steps:
        m = re.fullmatch(r"execute_context_(\d+)\((\d+)\)_generation_(\d+)\((\d+)\)",
                         str(e["name"]))
        assert m is not None
        c, g = int(m[1]), int(m[3])
        expected["mixed" if c and g else "prefill" if c else "decode" if g else "empty"] += 1
    assert phases == expected == Counter(decode=31, prefill=1, mixed=1, empty=1)
    first = res.steps[0]
    assert (first.phase.value, first.prefill_reqs, first.prefill_tokens, first.batch_reqs) == (
        "prefill", 1, 10, 1)
    # CPU only: no GPU events, so no GPU figures and no launch-bound verdict
    assert res.gpu_events == 0
    assert all(t.gpu_events == 0 and not t.launch_bound for t in res.timelines)
    assert not res.verdict.launch_bound
    assert res.verdict.steps_with_gpu == 0
    json.dumps(res.to_json(), allow_nan=False)  # NaNs are written as null
    # without naming the engine, every engine's patterns are tried: the same steps
    anyone = analyze_kernels(load_chrome_trace(VLLM_CPU_TRACE))
    assert [(s.name, s.t_start_ns, s.phase) for s in anyone.steps] == [
        (s.name, s.t_start_ns, s.phase) for s in res.steps]
    # SGLang's patterns do not match vLLM's names: no annotation, no GPU event, no step
    assert analyze_kernels(load_chrome_trace(VLLM_CPU_TRACE), engine="sglang").steps == []


def test_bad_frames_give_one_line_errors() -> None:
    import pandas as pd
    import pytest

    from analyzers.kernels import KernelFrameError

    good = load_chrome_trace(VLLM_CPU_TRACE).head(3)
    with pytest.raises(KernelFrameError, match="lack columns: correlation_id"):
        analyze_kernels(good.drop(columns=["correlation_id"]))
    with pytest.raises(KernelFrameError, match="unknown kind"):
        analyze_kernels(good.assign(kind="gpu_thing"))
    with pytest.raises(KernelFrameError, match="must be a DataFrame, not list"):
        analyze_kernels([1, 2])  # type: ignore[arg-type]
    empty = analyze_kernels(pd.DataFrame(columns=list(good.columns)))
    assert empty.steps == []
    assert not empty.verdict.launch_bound
