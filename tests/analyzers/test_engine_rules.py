"""The batch-cap rule reads the cap from the engine spec's ``batch_cap_flags`` (no branching on
engine names): vLLM ``--max-num-seqs``, SGLang ``--max-running-requests``; an engine with no
such flag, or a command without it, falls back to the plateau of running requests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyzers.bottlenecks import build_context, find_bottlenecks
from servescope.rundir.reader import RunData, load_run
from tests.analyzers._gate_runs import add_engine, synthetic_run

PAGES = {  # running at 4, 3 waiting, KV cache mostly free
    "vllm": ("vllm:num_requests_running 4\nvllm:num_requests_waiting 3\n"
             "vllm:kv_cache_usage_perc 0.3\n"),
    "sglang": ("sglang:num_running_reqs 4\nsglang:num_queue_reqs 3\n"
               "sglang:token_usage 0.3\n"),
    "trtllm": ("trtllm_num_requests_running 4\ntrtllm_num_requests_waiting 3\n"
               "trtllm_kv_cache_utilization 0.3\n"),
}


def _queued_run(root: Path, engine: str, command: list[str]) -> RunData:
    run = synthetic_run(root, engine, np.full(40, 50.0), gap_ms=20.0)
    page = PAGES[engine].encode()
    run = add_engine(run, [(t, page) for t in range(0, 1000, 25)])
    path = run.path / "manifest.json"
    data = json.loads(path.read_text())
    section = data["engine"]
    section.update(name=engine, command=command)
    path.write_text(json.dumps(data))
    return load_run(run.path)


@pytest.mark.parametrize(("engine", "command", "cap", "source"), [
    ("vllm", ["vllm", "serve", "m", "--max-num-seqs", "4"], 4.0,
     "--max-num-seqs on the engine's command line"),
    ("vllm", ["env", "X=1", "vllm", "serve", "m", "--max_num_seqs=4"], 4.0,
     "--max-num-seqs on the engine's command line"),
    ("sglang", ["python", "-m", "sglang.launch_server", "--max-running-requests", "4"], 4.0,
     "--max-running-requests on the engine's command line"),
    ("vllm", ["vllm", "serve", "m"], 4.0, "the most requests seen running (the plateau)"),
    # trtllm-serve names no batch-cap flag: its --max_batch_size is not read as the cap
    ("trtllm", ["trtllm-serve", "m", "--max_batch_size", "4"], 4.0,
     "the most requests seen running (the plateau)"),
])
def test_batch_cap_comes_from_the_spec(tmp_path, engine, command, cap, source):
    ctx = build_context(_queued_run(tmp_path, engine, command))
    assert ctx.spec is not None
    assert ctx.spec.name == engine
    found = {f.rule: f for f in find_bottlenecks(ctx)}
    f = found["batch_cap_queueing"]
    assert f.value("batch_cap") == cap
    assert f.evidence[0].detail == source
    assert any(flag in f.actions[0] for flag in (ctx.spec.batch_cap_flags or ("",)))


def test_actions_say_which_flags_the_run_already_sets() -> None:
    """On the H200, transformers serve --cb-use-cuda-graph still read launch-bound, and the
    action told the user to add the flag the command already had."""
    from analyzers.bottlenecks.context import mark_set_flags

    text = "--cb-use-cuda-graph (replay the decode step as a CUDA graph) and --compile"
    assert mark_set_flags(text, ("/m", "--continuous-batching")) == text
    assert mark_set_flags(text, ("/m", "--cb-use-cuda-graph", "--port", "8000")) == (
        f"{text} (already set in this run: --cb-use-cuda-graph)")
    both = mark_set_flags(text, ("--compile=true", "--cb-use-cuda-graph"))
    assert both.endswith("(already set in this run: --cb-use-cuda-graph, --compile)")
    # a flag the text says to remove, present in the run: named as the run's
    vllm = "keep CUDA graphs on (remove --enforce-eager) and raise --max-num-seqs"
    assert mark_set_flags(vllm, ("--enforce-eager", "--max-num-seqs", "8")) == (
        f"{vllm} (this run has --enforce-eager; already set in this run: --max-num-seqs)")
    # a flag that only starts the same is not the flag
    assert mark_set_flags("--max-num-seqs", ("--max-num-seqs-extra",)) == "--max-num-seqs"
