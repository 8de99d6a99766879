"""``servescope run`` when the engine never becomes ready or exits at once (fast tier: stand-in
commands, no vLLM). Exit 1 with the reason and the engine's log tail, a run directory with
status ``failed`` and ``engine.error``, and no process of the command left behind."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.collectors._server import free_port
from tests.e2e._support import REPO, Tracker, manifest_json, run_servescope
from tests.faults._signal_support import assert_nothing_left

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
    engine = m["engine"]
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
    err = m["engine"]["error"]
    assert err["kind"] == "exited"
    assert err["returncode"] == 3
    assert "boom: no such model" in err["log_tail"]
    assert m["engine"]["stop"]["leftover_pids"] == []
    assert not (out / "requests.parquet").exists()  # no load was started
    assert tracker.live() == {}


def test_command_not_found(tmp_path, tracker):
    res, out = _run(tmp_path, tracker, [str(tmp_path / "no-such-server")])
    assert res.returncode == 1, res.output
    assert "cannot start" in res.text
    assert "no-such-server" in res.text
    m = manifest_json(out)
    assert m["status"] == "failed"
    assert m["engine"]["error"]["kind"] == "exited"


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
    assert manifest_json(out)["engine"]["error"]["kind"] == "exited"


# An engine that serves readiness and model discovery, and exits with code 3 at the N-th
# request for PATH: the engine dying at each step after readiness, deterministically.
DIES_AT = r"""
import http.server, json, os, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
seen = {}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        seen[self.path] = seen.get(self.path, 0) + 1
        if self.path == path and seen[self.path] >= n:
            print(f"RuntimeError: engine died at {path}", file=sys.stderr, flush=True)
            os._exit(3)
        body = json.dumps({"data": [{"id": "m"}]} if self.path == "/v1/models" else {})
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


@pytest.mark.parametrize(("path", "n", "workers"), [
    ("/v1/models", 2, "1"),  # during model discovery, right after readiness
    ("/metrics", 1, "2"),  # as the scraper starts: the watchdog stops workers being born
    ("/metrics", 2, "2"),
])
def test_engine_dies_right_after_ready(tmp_path, tracker, path, n, workers):
    port = free_port()
    out = tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url",
                          f"http://127.0.0.1:{port}", "--duration", "60", "--workers", workers,
                          "--concurrency", workers,
                          "--", sys.executable, "-c", DIES_AT, str(port), path, str(n)],
                         tracker.tag, timeout_s=45)
    assert res.returncode == 1, res.output
    assert "Traceback" not in res.output, res.output
    assert "KeyboardInterrupt" not in res.output, res.output
    assert "the engine exited with code 3" in res.text
    assert f"RuntimeError: engine died at {path}" in res.text  # the log tail
    m = manifest_json(out)
    assert m["status"] == "failed"
    assert m["engine"]["error"]["returncode"] == 3
    assert m["engine"]["stop"]["leftover_pids"] == []
    assert_nothing_left(tracker)  # the resource tracker ends just after servescope


def test_autodetected_command_exits_at_once(tmp_path, tracker):
    """Recognized from the command (a ``vllm`` executable, no --engine, no --url)."""
    port = free_port()
    vllm = tmp_path / "bin" / "vllm"
    vllm.parent.mkdir()
    vllm.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                    "from tests.faults.fake_engine import main\nmain(sys.argv[3:])\n")
    vllm.chmod(0o755)
    out = tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--requests", "4", "--workers", "2",
                          "--concurrency", "2", "--", str(vllm), "serve", "m", "--port",
                          str(port), "--exit-at-once", "3"],
                         tracker.tag, timeout_s=45)
    assert res.returncode == 1, res.output
    assert "Traceback" not in res.output
    assert "the engine exited with code 3" in res.text
    assert "fake engine failed to start (as asked)" in res.text
    assert manifest_json(out)["engine"]["error"]["kind"] == "exited"
    assert_nothing_left(tracker)  # the resource tracker ends just after servescope


KEY = "sk-servescope-test-0123456789"


@pytest.mark.parametrize("form", [("--api-key", KEY), (f"--api-key={KEY}",)])
def test_api_key_from_the_serving_command(tmp_path, tracker, form):
    """An engine started with an API key answers 401 without it: servescope sends the
    command's key on its own requests (readiness, models, the workload) and writes it
    nowhere, even though the engine logs it."""
    port = free_port()
    out = tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url",
                          f"http://127.0.0.1:{port}", "--requests", "6", "--output-len",
                          "fixed:4", "--workers", "2", "--concurrency", "2", "--",
                          sys.executable, "-m",
                          "tests.faults.fake_engine", "--port", str(port), *form,
                          "--log-secret", KEY], tracker.tag, timeout_s=60)
    assert res.returncode == 0, res.output[-3000:]
    m = manifest_json(out)
    assert m["status"] == "complete"
    req = pd.read_parquet(out / "requests.parquet")
    assert (req["outcome"] == "success").all()
    assert len(req) == 6
    assert KEY not in res.output
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert "REDACTED" in (out / "engine" / "stdout.log").read_text()  # it was logged
    titles = " ".join(m["engine"]["processes"].values())
    assert "--api-key" in titles
    assert KEY not in titles
    assert_nothing_left(tracker)  # the resource tracker ends just after servescope


def test_refused_readiness_names_the_401s(tmp_path, tracker, monkeypatch):
    """A key the server does not accept (the user's own, by --api-key-env): the not-ready
    message says what the server answered."""
    monkeypatch.setenv("SERVESCOPE_TEST_WRONG_KEY", "not-the-right-key")
    port = free_port()
    out = tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url",
                          f"http://127.0.0.1:{port}", "--requests", "4", "--ready-timeout", "3",
                          "--api-key-env", "SERVESCOPE_TEST_WRONG_KEY", "--",
                          sys.executable, "-m", "tests.faults.fake_engine", "--port", str(port),
                          "--api-key", KEY], tracker.tag, timeout_s=45)
    assert res.returncode == 1, res.output
    assert "Traceback" not in res.output
    assert "not ready after 3 s (/v1/models never answered 200" in res.text
    assert re.search(r"it answered HTTP 401 \d+ times", res.text), res.text
    assert KEY not in res.output
    assert "not-the-right-key" not in res.output
    assert manifest_json(out)["engine"]["error"]["kind"] == "not_ready"
    assert_nothing_left(tracker)  # the resource tracker ends just after servescope
