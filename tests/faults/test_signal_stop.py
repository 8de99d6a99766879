"""Stop signals to ``servescope run`` (fast tier, the fake engine): Ctrl-C, SIGTERM and a
hangup each stop the run cleanly — the workers and the engine stopped, the run directory
finalized with status ``interrupted``, exit 128 + the signal, no traceback from any process,
no process left. A second Ctrl-C while a stubborn engine is being stopped kills it at once."""

from __future__ import annotations

import signal

import pytest

from servescope.rundir.reader import load_run
from tests.e2e._support import manifest_json
from tests.faults._signal_support import (
    assert_clean_stop,
    assert_nothing_left,
    signal_group,
    start_run,
    tracked,
    wait_engine_started,
    wait_finished,
    wait_output,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def tracker():
    yield from tracked()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_terminal_signal_with_workers(tmp_path, tracker, sig, code):
    """Ctrl-C / hangup of the terminal: the signal reaches every process of the group."""
    bg = start_run(tmp_path, tracker, [], "--workers", "2")
    wait_finished(bg)
    signal_group(bg, sig)
    res = bg.wait(60)
    stop = assert_clean_stop(res, bg.run_dir, code)
    assert stop["signals"] == ["SIGINT"]  # the engine stopped at the first, gentle signal
    assert f"stopped by {signal.Signals(sig).name}" in res.text
    assert_nothing_left(tracker)


def test_sigterm_with_workers(tmp_path, tracker):
    """SIGTERM to servescope alone (as ``kill PID`` or a supervisor): the same clean stop,
    and the workers stop with it instead of sending requests on their own."""
    bg = start_run(tmp_path, tracker, [], "--workers", "2")
    done = wait_finished(bg)
    bg.proc.send_signal(signal.SIGTERM)
    res = bg.wait(60)
    assert_clean_stop(res, bg.run_dir, 143)
    req = load_run(bg.run_dir).requests
    assert (req["outcome"] == "success").sum() >= done  # every finished request is kept
    assert set(req["outcome"]) <= {"success", "cancelled"}
    assert_nothing_left(tracker)


def test_sigterm_in_process_client(tmp_path, tracker):
    """One worker (the client runs in servescope's own event loop): SIGTERM stops it too."""
    bg = start_run(tmp_path, tracker, [])
    wait_finished(bg)
    bg.proc.send_signal(signal.SIGTERM)
    res = bg.wait(60)
    assert_clean_stop(res, bg.run_dir, 143)
    assert_nothing_left(tracker)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_while_waiting_for_readiness(tmp_path, tracker, sig, code):
    """The engine is still loading (not listening yet): the stop still stops it."""
    bg = start_run(tmp_path, tracker, ["--ready-after", "60", "--child"])
    wait_output(bg, "waiting for")
    wait_engine_started(bg)
    bg.proc.send_signal(sig)
    res = bg.wait(60)
    stop = assert_clean_stop(res, bg.run_dir, code)
    assert stop["signals"] == ["SIGINT"]
    assert_nothing_left(tracker)


def test_second_ctrl_c_kills_a_stubborn_engine(tmp_path, tracker):
    """An engine that ignores SIGINT and SIGTERM: the first Ctrl-C starts the graceful stop
    (15 s per signal), the second kills the engine at once, and the stop is recorded."""
    bg = start_run(tmp_path, tracker, ["--ignore-signals", "--child"])
    wait_finished(bg, 4)
    signal_group(bg, signal.SIGINT)
    wait_output(bg, "stopping the engine")
    signal_group(bg, signal.SIGINT)
    res = bg.wait(40)
    assert res.seconds < 30, res.output[-3000:]  # not the 25 s of SIGINT + SIGTERM graces
    stop = assert_clean_stop(res, bg.run_dir, 130)
    assert "second interrupt: killing the engine now" in res.text
    assert stop["escalated"] is True
    assert stop["signals"][-1] == "SIGKILL"
    assert "SIGTERM" not in stop["signals"]
    assert manifest_json(bg.run_dir)["engine"]["stop"]["returncode"] == -9
    assert_nothing_left(tracker)
