"""``servescope run`` when the engine never becomes ready or exits at once (fast tier: stand-in
commands, no vLLM). Exit 1 with the reason and the engine's log tail, a run directory with
status ``failed`` and ``engine.error``, and no process of the command left behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.collectors._server import free_port
from tests.e2e._support import Tracker, manifest_json, run_servescope

pytestmark = pytest.mark.timeout(60)

# Prints like an engine loading, starts a grandchild (an engine is a process tree), then
# neither listens nor exits.
NEVER_READY = ("import subprocess, sys, time; "
               "print('loading weights for model-under-test', file=sys.stderr, flush=True); "
               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
               "time.sleep(600)")
EXITS_AT_ONCE = "import sys; print('boom: no such model', file=sys.stderr); sys.exit(3)"


def _run(tmp_path: Path, tracker: Tracker, command: list[str], *extra: str):
    out = tmp_path / "run"
    url = f"http://127.0.0.1:{free_port()}"
    res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url", url,
                          "--requests", "4", *extra, "--", *command], tracker.tag, timeout_s=45)
    return res, out


def test_never_ready_times_out_with_log_tail(tmp_path, tracker):
    res, out = _run(tmp_path, tracker, [sys.executable, "-c", NEVER_READY], "--ready-timeout", "3")
    assert res.returncode == 1, res.output
    assert "not ready after 3 s" in res.text
    assert "/health never answered 200" in res.text
    assert "loading weights for model-under-test" in res.text  # the log tail
    assert res.seconds < 30  # 3 s of waiting, then a SIGINT stops the tree at once
    m = manifest_json(out)
    assert m["status"] == "failed"
    engine = m["extra"]["engine"]
    assert engine["error"]["kind"] == "not_ready"
    assert "loading weights for model-under-test" in engine["error"]["log_tail"]
    assert engine["stop"]["signals"] == ["SIGINT"]
    assert engine["stop"]["leftover_pids"] == []
    assert "loading weights" in (out / "engine" / "stderr.log").read_text()
    assert tracker.live() == {}  # the command and its grandchild are gone


def test_exits_at_once_reports_code_and_tail(tmp_path, tracker):
    res, out = _run(tmp_path, tracker, [sys.executable, "-c", EXITS_AT_ONCE])
    assert res.returncode == 1, res.output
    assert "the engine exited with code 3" in res.text
    assert "boom: no such model" in res.text
    assert f"run directory (what was recorded): {out}" in res.text
    m = manifest_json(out)
    assert m["status"] == "failed"
    err = m["extra"]["engine"]["error"]
    assert err["kind"] == "exited"
    assert err["returncode"] == 3
    assert "boom: no such model" in err["log_tail"]
    assert m["extra"]["engine"]["stop"]["leftover_pids"] == []
    assert not (out / "requests.parquet").exists()  # no load was started
    assert tracker.live() == {}


def test_command_not_found(tmp_path, tracker):
    res, out = _run(tmp_path, tracker, [str(tmp_path / "no-such-server")])
    assert res.returncode == 1, res.output
    assert "cannot start" in res.text
    assert "no-such-server" in res.text
    m = manifest_json(out)
    assert m["status"] == "failed"
    assert m["extra"]["engine"]["error"]["kind"] == "exited"


def test_unrecognized_command_is_bad_input(tmp_path, tracker):
    res = run_servescope(["run", "--out", str(tmp_path / "run"), "--", sys.executable, "-m",
                          "http.server", "0"], tracker.tag, timeout_s=30)
    assert res.returncode == 2, res.output
    assert "pass --engine NAME" in res.text
    assert "vllm" in res.text
    assert not (tmp_path / "run").exists()  # refused before anything started
    assert tracker.live() == {}


def test_brackets_in_the_serving_command(tmp_path, tracker):
    """A serving command may carry brackets, e.g. a stop string ``[/INST]``: servescope must
    treat it as text (here: exit 1 'exited with code 3', not a crash)."""
    res, out = _run(tmp_path, tracker, [sys.executable, "-c", EXITS_AT_ONCE, "--stop",
                                        "[/INST]"])
    assert "MarkupError" not in res.output
    assert res.returncode == 1, res.output
    assert "the engine exited with code 3" in res.text
    assert "[/INST]" in res.text  # shown as given in the "starting" line
    assert manifest_json(out)["extra"]["engine"]["error"]["kind"] == "exited"
