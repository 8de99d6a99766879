"""servescope killed with SIGKILL (no handler runs): its guardian process stops what it had
started — the engine with its children and daemons, the client workers, the scraper, the
multiprocessing resource tracker — and never touches a server it did not start. A daemon that
the engine double-forks into a session of its own is found (servescope is a child subreaper)
and stopped at the normal end too, and reported."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profiler.procs import alive
from tests.collectors._server import free_port
from tests.e2e._support import manifest_json, run_servescope, start_servescope, wait_for
from tests.faults._signal_support import (
    LONG,
    assert_nothing_left,
    fake_engine,
    start_run,
    tracked,
    wait_engine_started,
    wait_finished,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def tracker():
    yield from tracked()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigkill_mid_load_leaves_nothing(tmp_path, tracker, workers):
    bg = start_run(tmp_path, tracker, ["--child"], "--workers", workers)
    wait_finished(bg)
    assert len(tracker.live()) >= 4 + int(workers)  # servescope, guardian, engine + child, …
    os.kill(bg.proc.pid, signal.SIGKILL)
    bg.proc.wait(10)
    assert_nothing_left(tracker, timeout_s=12)


def test_sigkill_while_the_engine_loads(tmp_path, tracker):
    """Killed before readiness: the engine, its child and its daemon (a session of its own,
    re-parented to servescope) all go."""
    bg = start_run(tmp_path, tracker, ["--ready-after", "60", "--child", "--daemon"])
    wait_engine_started(bg)
    daemon = _daemon_pid(bg.run_dir)
    assert alive(daemon)
    os.kill(bg.proc.pid, signal.SIGKILL)
    bg.proc.wait(10)
    assert_nothing_left(tracker, timeout_s=12)
    assert not alive(daemon)


def test_sigkill_attach_spares_the_server(tmp_path, tracker):
    """attach never owns the server: the guardian stops only servescope's own processes."""
    port = free_port()
    server = subprocess.Popen(fake_engine(port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        run_dir = tmp_path / "run"
        bg = start_servescope(["attach", "--url", f"http://127.0.0.1:{port}", "--out",
                               str(run_dir), *LONG, "--workers", "2"], tracker.tag, run_dir,
                              tmp_path / "servescope.log")
        wait_finished(bg)
        os.kill(bg.proc.pid, signal.SIGKILL)
        bg.proc.wait(10)
        assert_nothing_left(tracker, timeout_s=12)
        assert server.poll() is None  # still serving
    finally:
        server.kill()
        server.wait()


def test_daemon_of_the_engine_is_stopped_and_reported(tmp_path, tracker):
    port = free_port()
    out = tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url",
                          f"http://127.0.0.1:{port}", "--requests", "6", "--output-len",
                          "fixed:4", "--", *fake_engine(port, "--daemon")], tracker.tag,
                         timeout_s=60)
    assert res.returncode == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    daemon = _daemon_pid(out)
    m = manifest_json(out)
    stop = m["engine"]["stop"]
    assert str(daemon) in stop["outside_group"]
    assert stop["leftover_pids"] == []
    assert any(str(daemon) in w and "stopped" in w for w in m["warnings"])
    assert f"engine processes outside its process group (daemons): {daemon}" in res.text
    assert_nothing_left(tracker)


def test_guardian_cpu_is_small(tmp_path):
    """The guardian's own CPU while it watches (one /proc scan per period)."""
    parent = subprocess.Popen(["python3", "-c", "import time; time.sleep(60)"])
    r, w = os.pipe()
    g = subprocess.Popen([sys.executable, "-m", "profiler.guardian", str(parent.pid),
                          str(r)], pass_fds=(r,), start_new_session=True)
    os.close(r)
    try:
        time.sleep(1.0)  # past its start-up (imports)
        cpu0, t0 = _cpu_s(g.pid), time.monotonic()
        time.sleep(6.0)
        cpu_per_s = (_cpu_s(g.pid) - cpu0) / (time.monotonic() - t0)
        print(f"guardian CPU: {cpu_per_s * 1000:.2f} ms per s "
              f"({len(os.listdir('/proc'))} /proc entries)")
        assert cpu_per_s < 0.02  # under 2 % of one core
        os.write(w, b"done\n")
        assert g.wait(5) == 0
    finally:
        os.close(w)
        g.kill()
        parent.kill()
        parent.wait()
        g.wait()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _daemon_pid(run_dir) -> int:
    log = run_dir / "engine" / "stdout.log"
    text = wait_for(lambda: re.search(r"daemon pid (\d+)", log.read_text()), 30,
                    "the daemon's pid")
    return int(text.group(1))
