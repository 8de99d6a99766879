"""Helpers for the process and signal fault tests: ``servescope run`` against the fake engine
(``tests.faults.fake_engine``) in the background, in a session of its own as a terminal would
start it, and signals sent the way a terminal sends them (to the whole process group)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.collectors._server import free_port
from tests.e2e._support import (
    Background,
    CliResult,
    Tracker,
    finished_ok,
    manifest_json,
    start_servescope,
    wait_for,
)

LONG = ("--duration", "120", "--concurrency", "4", "--input-len", "fixed:8",
        "--output-len", "fixed:40")


def tracked() -> Iterator[Tracker]:
    """The body of each module's ``tracker`` fixture: whatever of the test is still alive
    afterwards is killed (the tests assert that nothing is)."""
    t = Tracker()
    yield t
    t.kill()


def fake_engine(port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "tests.faults.fake_engine", "--port", str(port), *args]


def start_run(tmp_path: Path, tracker: Tracker, engine_args: list[str] | tuple[str, ...] = (),
              *extra: str, workload: tuple[str, ...] = LONG,
              command: list[str] | None = None) -> Background:
    """``servescope run --engine vllm --url ... -- fake_engine`` in the background."""
    run_dir = tmp_path / "run"
    port = free_port()
    cmd = command if command is not None else fake_engine(port, *engine_args)
    return start_servescope(
        ["run", "--out", str(run_dir), "--engine", "vllm", "--url",
         f"http://127.0.0.1:{port}", *workload, *extra, "--", *cmd],
        tracker.tag, run_dir, tmp_path / "servescope.log")


def ended(bg: Background) -> str:
    rc = bg.proc.poll()
    return "" if rc is None else f"servescope ended with {rc}:\n{bg.output()[-3000:]}"


def wait_finished(bg: Background, n: int = 8, timeout_s: float = 40.0) -> int:
    """Wait until ``n`` requests succeeded (the run is well under way)."""
    return int(wait_for(lambda: (k := finished_ok(bg.run_dir)) >= n and k, timeout_s,
                        f"{n} finished requests", alive_check=lambda: ended(bg)))


def wait_output(bg: Background, text: str, timeout_s: float = 30.0) -> None:
    wait_for(lambda: text in bg.output(), timeout_s, repr(text),
             alive_check=lambda: ended(bg))


def wait_engine_started(bg: Background) -> None:
    """The fake engine has started (it logs before it loads)."""
    log = bg.run_dir / "engine" / "stderr.log"
    wait_for(lambda: "fake engine loading" in log.read_text(), 30, "the engine to start",
             alive_check=lambda: ended(bg))


def signal_group(bg: Background, sig: int) -> None:
    """As a terminal does: to every process of servescope's group (it leads its session)."""
    os.killpg(bg.proc.pid, sig)


def assert_nothing_left(tracker: Tracker, timeout_s: float = 8.0) -> None:
    """No process of the test is alive (allowing the helpers a moment to exit)."""
    try:
        wait_for(lambda: not tracker.live(), timeout_s, "every process to end")
    except AssertionError:
        pass
    left = tracker.live()
    assert left == {}, left


def assert_clean_stop(res: CliResult, run_dir: Path, code: int, status: str = "interrupted",
                      ) -> dict[str, Any]:
    """Exit code, no traceback from anyone, the run's status; returns the stop record."""
    assert res.returncode == code, res.output[-4000:]
    assert "Traceback" not in res.output, res.output[-4000:]
    assert "KeyboardInterrupt" not in res.output, res.output[-4000:]
    m = manifest_json(run_dir)
    assert m["status"] == status, (m["status"], res.output[-3000:])
    stop: dict[str, Any] = m["engine"]["stop"]
    assert stop["leftover_pids"] == []
    return stop


__all__ = ["LONG", "assert_clean_stop", "assert_nothing_left", "ended", "fake_engine",
           "signal_group", "start_run", "tracked", "wait_engine_started", "wait_finished",
           "wait_output"]
