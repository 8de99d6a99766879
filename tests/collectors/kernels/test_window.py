"""The kernels collector's window, end to end in one process: the steady-state gate on the
load's activity, the engine's /start_profile and /stop_profile (a loopback server that
answers as vLLM does and writes the real vLLM-CPU capture as its trace), ingestion on the
run's clock, and the in-process hook's channel in a real child Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collectors.base import Activity, ActivityBoard, CollectContext, EngineFacts
from collectors.kernels.collector import KernelCollector
from collectors.kernels.launch import HOOK_ENV, HOOK_PATH
from collectors.kernels.window import HookWindow, SteadyGate
from servescope.clock import now_ns, take_anchor

TRACE = Path(__file__).parents[2] / "data" / "traces" / \
    "tinyrun_rank0.1795344569314968630.pt.trace.json.gz"
S = 1_000_000_000


def test_gate_waits_for_the_target_in_flight_with_tokens_arriving() -> None:
    gate = SteadyGate(target_in_flight=8, settle_s=1.0)
    assert gate.need == 6  # three quarters of 8
    t = 10 * S
    assert not gate.update(Activity(t, t, 8, 10), t)
    assert not gate.update(Activity(t, t, 8, 10), t + S // 2)
    assert not gate.update(Activity(t, t, 5, 10), t + S // 2 + 1)  # dropped below: restart
    assert not gate.update(Activity(t, t + S, 8, 20), t + S)
    assert not gate.update(Activity(t, t + 2 * S - 1, 8, 30), t + 2 * S - 1)
    assert gate.update(Activity(t, t + 2 * S, 8, 40), t + 2 * S)
    # tokens stopped arriving more than a second ago: not steady
    stalled = SteadyGate(target_in_flight=0, settle_s=0.0)
    assert stalled.need == 1
    assert not stalled.update(Activity(t, t, 3, 10), t + 2 * S)
    assert stalled.update(Activity(t, t + 2 * S, 3, 11), t + 2 * S)


def test_gate_waits_for_the_first_completion() -> None:
    """The analysis' steady state starts no earlier than the first completion: a closed
    loop's first wave (all in flight, tokens arriving) is still ramp-up."""
    gate = SteadyGate(target_in_flight=4, settle_s=1.0)
    t = 10 * S
    for i in range(5):  # 4 s loaded, tokens arriving, nothing ended yet
        assert not gate.update(Activity(t, t + i * S, 4, 10 + i, 0), t + i * S)
    assert not gate.update(Activity(t, t + 5 * S, 4, 20, 1), t + 5 * S)  # first end: settle
    assert not gate.update(Activity(t, t + 6 * S - 1, 4, 21, 2), t + 6 * S - 1)
    assert gate.update(Activity(t, t + 6 * S, 4, 22, 3), t + 6 * S)


class _Vllm(BaseHTTPRequestHandler):
    """Answers /start_profile and /stop_profile as vLLM 0.32 does (200, empty body); the
    window "runs" max_iterations steps, then writes its trace into the configured dir."""

    trace_dir: Path
    calls: list[tuple[str, dict[str, object], int]]
    missing = False

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n) or b"{}")
        self.calls.append((self.path, body, now_ns()))
        if self.missing:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"detail":"Not Found"}')
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if self.path == "/start_profile":
            def write() -> None:
                time.sleep(0.3)
                part = self.trace_dir / ".writing"
                shutil.copy(TRACE, part)
                os.replace(part, self.trace_dir / "dp0_pp0_tp0_dcp0_ep0_rank0.1.pt.trace.json.gz")
            threading.Thread(target=write).start()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[str, type[_Vllm]]]:
    handler = type("H", (_Vllm,), {"trace_dir": tmp_path / "run" / "kernels" / "raw",
                                   "calls": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()


def _ctx(run: Path, url: str, **opts: object) -> CollectContext:
    return CollectContext(run, url, EngineFacts("vllm", ("vllm", "serve", "/m")), take_anchor(),
                          options={"kernels": {"settle_s": 0.3, "target_in_flight": 4,
                                               **opts}},
                          activity=ActivityBoard())


def _feed(board: ActivityBoard, in_flight: int, seconds: float) -> None:
    chunks, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        chunks += 1
        board.write(now_ns(), in_flight, chunks)
        time.sleep(0.02)


def test_window_opens_in_steady_state_and_its_trace_is_ingested(tmp_path: Path,
                                                                  engine) -> None:
    url, handler = engine
    run = tmp_path / "run"
    c = KernelCollector()
    change = c.amend_launch("vllm", ["vllm", "serve", "/m"], {}, run, {"steps": 16})
    assert "--profiler-config" in change.argv
    ctx = _ctx(run, url, steps=16)
    assert c.skip_reason(ctx) == ""
    c.start(ctx)
    assert ctx.activity is not None
    _feed(ctx.activity, 2, 0.6)  # below the target (3 of 4): no window
    assert handler.calls == []
    t_loaded = now_ns()
    _feed(ctx.activity, 4, 2.5)
    stats = c.stop()
    assert stats.error == ""
    (path, body, t_call), *rest = handler.calls
    assert path == "/start_profile"
    assert body == {"max_iterations": 16}
    assert t_call - t_loaded >= 0.3 * S  # the settle time passed first
    assert [p for p, _, _ in rest] == []  # it ended by itself: no stop needed
    win = json.loads((run / "kernels" / "window.json").read_text())
    assert win["state"] == "taken"
    assert win["mechanism"] == "http"
    assert win["steps_asked"] == 16
    assert win["in_flight_at_open"] == 4
    assert win["t_steady_ns"] <= win["t_open_ns"] <= win["t_close_ns"]
    assert win["files"] == ["kernels/raw/dp0_pp0_tp0_dcp0_ep0_rank0.1.pt.trace.json.gz"]
    traces = pq.read_table(run / "kernels" / "traces.parquet").to_pylist()
    assert len(traces) == 1
    assert traces[0]["events_kept"] == stats.counts["events_kept"] > 0
    assert stats.counts["state"] == "taken"
    assert stats.counts["files"] == 1
    assert any("--profiler-config" in n for n in stats.counts["launch"])


def test_load_ending_before_steady_state_opens_nothing(tmp_path: Path, engine) -> None:
    url, handler = engine
    run = tmp_path / "run"
    c = KernelCollector()
    c.amend_launch("vllm", ["vllm", "serve", "/m"], {}, run, {})
    ctx = _ctx(run, url, settle_s=5.0)
    c.start(ctx)
    assert ctx.activity is not None
    _feed(ctx.activity, 4, 0.5)
    stats = c.stop()
    assert handler.calls == []
    win = json.loads((run / "kernels" / "window.json").read_text())
    assert win["state"] == "not_opened"
    assert "before it was steady" in win["reason"]
    assert stats.counts["files"] == 0
    assert not (run / "kernels" / "traces.parquet").exists()


def test_a_server_without_the_profiler_routes_is_one_clear_error(tmp_path: Path,
                                                                 engine) -> None:
    url, handler = engine
    handler.missing = True
    run = tmp_path / "run"
    c = KernelCollector()
    ctx = _ctx(run, url, settle_s=0.1, trace_dir=str(tmp_path / "theirs"))  # attached
    assert c.skip_reason(ctx) == ""
    c.start(ctx)
    assert ctx.activity is not None
    _feed(ctx.activity, 4, 0.6)
    stats = c.stop()
    assert "HTTP 404" in stats.error
    assert "profiler flag" in stats.error
    assert "\n" not in stats.error


def test_skip_reasons_name_the_fix(tmp_path: Path) -> None:
    c = KernelCollector()
    ctx = CollectContext(tmp_path, "http://x", EngineFacts("vllm"), take_anchor())
    assert "--kernels-trace-dir" in c.skip_reason(ctx)  # attached vLLM, dir unknown
    ts = CollectContext(tmp_path, "http://x", EngineFacts("transformers"), take_anchor())
    assert "--kernels-hook" in c.skip_reason(ts)
    hooked = CollectContext(tmp_path, "http://x", EngineFacts("transformers"), take_anchor(),
                            options={"kernels": {"hook": True}})
    assert "servescope run" in c.skip_reason(hooked)  # attach cannot set up the hook
    with pytest.raises(ValueError, match="--kernel-steps"):
        KernelCollector().stop_bound_s(CollectContext(
            tmp_path, "http://x", EngineFacts("vllm"), take_anchor(),
            options={"kernels": {"steps": 0}}))


def test_hook_channel_in_a_real_child_python_without_torch(tmp_path: Path) -> None:
    """A Python started with the hook on its path says hello, answers a window with
    'skipped' (no torch here), and still runs the sitecustomize it shadows."""
    channel, other = tmp_path / "hook", tmp_path / "other"
    channel.mkdir(mode=0o700)
    other.mkdir()
    (other / "sitecustomize.py").write_text(
        f"open({str(tmp_path / 'chained')!r}, 'w').write('yes')\n")
    env = {**os.environ, HOOK_ENV: str(channel),
           "PYTHONPATH": os.pathsep.join([str(HOOK_PATH), str(other)])}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"], env=env)
    try:
        deadline = time.monotonic() + 10
        w = HookWindow(channel, tmp_path / "raw", duration_s=0.5)
        while not w.hooked() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.hooked() == [child.pid]
        assert (tmp_path / "chained").read_text() == "yes"
        opened = w.open(timeout_s=5)
        assert not opened.ok
        assert "torch is not imported here" in opened.error
        assert w.statuses()[child.pid]["state"] == "skipped"
    finally:
        child.kill()
        child.wait()
