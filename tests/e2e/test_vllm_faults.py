"""Faults during ``servescope run -- vllm serve …`` (slow tier): the engine dies mid-run
(SIGKILL to its EngineCore, or to the API server), and the user presses Ctrl-C. servescope
must end quickly with the right exit code, keep every request that finished, record what
happened, and leave no process of the engine behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from profiler.procs import alive
from servescope.rundir.reader import load_run
from tests.collectors._server import free_port
from tests.e2e._support import (
    Background,
    Tracker,
    engine_processes_when_ready,
    finished_ok,
    manifest_json,
    pid_of,
    start_servescope,
    vllm_command,
    vllm_missing,
    wait_for,
)

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(bool(vllm_missing()), reason=vllm_missing() or "-"),
    pytest.mark.timeout(600),
]

FINISHED_BEFORE_FAULT = 8  # successful requests to wait for before the fault


def _start_long_run(tmp_path: Path, tracker: Tracker) -> tuple[Background, dict[int, str], int]:
    """A run far longer than the test (it only ends through the fault), once the engine is
    ready and FINISHED_BEFORE_FAULT requests have succeeded: (run, engine pids, finished)."""
    run_dir = tmp_path / "run"
    bg = start_servescope(
        ["run", "--out", str(run_dir), "--concurrency", "4", "--requests", "100000",
         "--input-len", "fixed:32", "--output-len", "fixed:64", "--ready-timeout", "400",
         "--", *vllm_command(free_port())], tracker.tag, run_dir, tmp_path / "servescope.log")

    def ended() -> str:
        rc = bg.proc.poll()
        return "" if rc is None else f"servescope ended with {rc}:\n{bg.output()[-3000:]}"

    procs = wait_for(lambda: engine_processes_when_ready(run_dir), 420, "the engine to be ready",
                     alive_check=ended)
    tracker.sessions |= set(procs)
    done = wait_for(lambda: (n := finished_ok(run_dir)) >= FINISHED_BEFORE_FAULT and n, 120,
                    f"{FINISHED_BEFORE_FAULT} finished requests", alive_check=ended)
    return bg, procs, int(done)


def _assert_nothing_left(run_dir: Path, procs: dict[int, str], tracker: Tracker) -> None:
    stop = manifest_json(run_dir)["engine"]["stop"]
    assert stop["leftover_pids"] == []
    assert [p for p in procs if alive(p)] == []
    assert tracker.live() == {}


@pytest.mark.parametrize("victim", ["VLLM::EngineCore", " serve "])
def test_engine_killed_mid_run(tmp_path, tracker, victim):
    bg, procs, finished = _start_long_run(tmp_path, tracker)
    os.kill(pid_of(procs, victim), signal.SIGKILL)
    t_kill = time.monotonic()
    res = bg.wait(120)
    took = time.monotonic() - t_kill
    assert res.returncode == 1, res.output[-4000:]
    # vLLM's API server notices a dead EngineCore within ~1 s and exits by itself; the
    # watchdog polls every 0.5 s; then the rest of the tree is stopped
    assert took < 30, took
    assert "error: the engine exited with code" in res.text
    assert "during the run" in res.text
    assert "last lines of the engine's log:" in res.text
    assert f"run directory (what was recorded): {bg.run_dir}" in res.text
    run = load_run(bg.run_dir)
    assert run.source == "parquet"
    assert run.manifest.status == "failed"
    assert run.manifest.engine is not None
    error = run.manifest.engine.error
    assert error is not None
    assert error.kind == "exited"
    assert error.log_tail
    if victim == " serve ":
        assert error.returncode == -signal.SIGKILL
    outcomes = run.requests["outcome"].value_counts().to_dict()
    assert outcomes.get("success", 0) >= finished, outcomes  # nothing finished was lost
    _assert_nothing_left(bg.run_dir, procs, tracker)


def test_ctrl_c_mid_run(tmp_path, tracker):
    bg, procs, finished = _start_long_run(tmp_path, tracker)
    os.killpg(bg.proc.pid, signal.SIGINT)  # what the terminal sends to the foreground group
    t_int = time.monotonic()
    res = bg.wait(120)
    took = time.monotonic() - t_int
    assert res.returncode == 130, res.output[-4000:]
    assert took < 40, took
    assert f"run directory: {bg.run_dir} (interrupted)" in res.text
    run = load_run(bg.run_dir)
    assert run.source == "parquet"
    assert run.manifest.status == "interrupted"
    assert run.manifest.engine is not None
    assert run.manifest.engine.error is None
    outcomes = run.requests["outcome"].value_counts().to_dict()
    assert outcomes.get("success", 0) >= finished, outcomes
    assert set(outcomes) <= {"success", "cancelled"}, outcomes  # in-flight ones: cancelled
    stop = run.manifest.engine.stop
    assert stop is not None
    assert stop.signals[0] == "SIGINT"
    assert "SIGKILL" not in stop.signals
    _assert_nothing_left(bg.run_dir, procs, tracker)
