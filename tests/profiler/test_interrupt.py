"""Stopping the client mid-run: Ctrl-C finalizes a valid run; SIGKILL still leaves every
completed request readable from the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from profiler.selftest.process import RefServerHandle
from servescope.rundir.reader import load_run


def _start(url: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "profiler.cli", "attach", "--url", url, "--out", str(out),
            "--concurrency", "4", "--requests", "100000", "--input-len", "fixed:8",
            "--output-len", "fixed:40", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_journal_lines(out: Path, n: int, timeout_s: float = 30.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        lines = sum(p.read_bytes().count(b"\n") for p in out.glob("journal/worker-*.jsonl"))
        if lines >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} requests finished in {timeout_s} s")


def test_ctrl_c_leaves_a_valid_interrupted_run(refserver: RefServerHandle, tmp_path: Path
                                               ) -> None:
    refserver.reset()  # truth of this test only
    out = tmp_path / "run"
    proc = _start(refserver.url, out, "--workers", "1")
    _wait_for_journal_lines(out, 12)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    run = load_run(out)
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "interrupted"
    assert run.source == "parquet"
    req = run.requests
    ok = set(req.loc[req["outcome"] == "success", "x_request_id"])
    assert len(ok) >= 12
    # every request the client saw finish is in the run, and in-flight ones are 'cancelled'
    assert set(req["outcome"]) <= {"success", "cancelled"}
    assert (req["outcome"] == "cancelled").sum() <= 4
    # no request the server finished is missing from the run (cancelled ones are in it too)
    finished = {t["request_id"] for t in refserver.truth() if t["ended"] == "complete"}
    assert finished <= set(req["x_request_id"])


def test_ctrl_c_with_worker_processes(refserver: RefServerHandle, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(refserver.url, out, "--workers", "2")
    _wait_for_journal_lines(out, 12)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err  # from servescope or from a worker
    run = load_run(out)
    assert run.manifest.status == "interrupted"
    assert set(run.requests["worker_id"]) == {0, 1}
    assert (run.requests["outcome"] == "success").sum() >= 12


def test_sigkill_keeps_every_completed_request(refserver: RefServerHandle, tmp_path: Path
                                               ) -> None:
    out = tmp_path / "run"
    proc = _start(refserver.url, out)
    _wait_for_journal_lines(out, 12)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    run = load_run(out)
    assert run.source == "journal"
    assert run.manifest.status == "running"
    assert any("did not finish" in w for w in run.warnings)
    req = run.requests
    assert len(req) >= 12
    assert (req["outcome"] == "success").all()
    assert (req["n_events"] == 10).all()  # whole timelines: 8 outputs (server cap), usage, [DONE]
