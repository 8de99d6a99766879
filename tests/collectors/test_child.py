"""Any collector in a child process of its own: handshake, stop, counts back, bounded stop,
secrets registered in the child, Ctrl-C left to the parent — with a test-only collector."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from collectors.base import CollectContext, EngineFacts
from collectors.child import ChildRunner, start_children, stop_children
from servescope.clock import take_anchor
from servescope.redact import register_secrets
from tests.collectors._probe import Probe

pytestmark = pytest.mark.timeout(60)


def ctx_for(run_dir: Path, tick_s: float = 0.05, **kw) -> CollectContext:
    return CollectContext(run_dir, "http://127.0.0.1:1", EngineFacts("openai"), take_anchor(),
                          options={"probe": {"tick_s": tick_s}}, **kw)


def test_a_collector_runs_in_its_own_process_and_its_counts_come_back(tmp_path):
    runner = ChildRunner(Probe(), ctx_for(tmp_path))
    assert runner.start()
    assert runner.pid is not None
    assert runner.pid != os.getpid()
    time.sleep(0.5)
    stats = runner.stop()
    assert runner.error == ""
    assert stats.error == ""
    assert stats.counts["ticks"] >= 3
    # the whole child: interpreter start-up and imports, more than the ticks alone
    assert stats.process_cpu_ns > 10_000_000
    lines = (tmp_path / "probe.txt").read_text().splitlines()
    assert len(lines) == stats.counts["ticks"]
    assert lines[0].startswith(f"pid {runner.pid} ")
    assert not runner._proc.is_alive()
    assert runner.stop() is stats  # a second stop answers the same


def test_the_child_registers_the_secrets_it_is_given(tmp_path):
    secret = "zq-child-5e4d3c2b1a"  # matches no pattern: only the registry knows it
    ctx = ctx_for(tmp_path, headers={"X-Key": secret}, secrets=(secret,))
    runner = ChildRunner(Probe(), ctx)
    assert runner.start()
    time.sleep(0.3)
    runner.stop()
    text = (tmp_path / "probe.txt").read_text()
    assert "key ***REDACTED***" in text
    assert secret not in text


def test_a_collector_that_cannot_start_is_an_error_not_an_exception(tmp_path):
    secret = "zq-start-0a9b8c7d6e"
    register_secrets([secret])
    runner = ChildRunner(Probe(fail_start=True), ctx_for(tmp_path, secrets=(secret,)))
    assert not runner.start()
    assert runner.error == "RuntimeError: no device for key ***REDACTED***"
    assert not runner._proc.is_alive()  # ended by start, not left behind
    stats = runner.stop()
    assert stats.counts == {"ticks": 0}  # the zero counts, from the parent's copy
    assert stats.error == runner.error


def test_stop_is_bounded_then_terminates_then_kills(tmp_path):
    runner = ChildRunner(Probe(hang_stop_s=60, ignore_term=True, bound_s=0.5),
                         ctx_for(tmp_path))
    assert runner.stop_bound_s() == 0.5
    assert runner.start()
    t0 = time.monotonic()
    stats = runner.stop()
    took = time.monotonic() - t0
    assert took < 0.5 + 3 * 2.0 + 1.0, took
    assert runner.error == "the probe collector process did not stop within 0.5 s"
    assert stats.error == runner.error
    assert stats.counts == {"ticks": 0}
    assert not runner._proc.is_alive()
    assert runner._proc.exitcode == -signal.SIGKILL  # SIGTERM was ignored


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_ctrl_c_is_the_parents_to_handle(tmp_path, sig):
    """The terminal's signals (Ctrl-C, a hang-up, Ctrl-\\) reach the whole foreground
    group; the parent handles them and stops its collectors in order."""
    runner = ChildRunner(Probe(), ctx_for(tmp_path))
    assert runner.start()
    assert runner.pid is not None
    os.kill(runner.pid, sig)
    time.sleep(0.3)
    assert runner._proc.is_alive()
    stats = runner.stop()
    assert runner.error == ""
    assert stats.counts["ticks"] >= 2


def test_a_bad_option_is_refused_before_any_process_exists(tmp_path):
    with pytest.raises(ValueError, match="tick_s must be positive"):
        ChildRunner(Probe(), ctx_for(tmp_path, tick_s=0))


def test_stop_without_start_is_harmless(tmp_path):
    runner = ChildRunner(Probe(), ctx_for(tmp_path))
    stats = runner.stop()
    assert stats.counts == {"ticks": 0}
    assert stats.error == ""


def test_start_children_skips_warns_and_stops_them_all(tmp_path):
    ctx = ctx_for(tmp_path)
    warnings: list[str] = []
    chosen = [Probe(), Probe(name="skipped", skip="openai: nothing to probe"),
              Probe(name="broken", label="broken probe", fail_start=True)]
    calls = []

    def run(fn):
        calls.append(fn)
        return fn()

    running = start_children(chosen, ctx, warnings, run=run)
    assert len(calls) == 1  # every child starts inside the one call (e.g. the shield)
    assert [r.name for r in running] == ["probe"]
    assert warnings == ["openai: nothing to probe",
                        "broken probe did not start: RuntimeError: no device for key "]
    time.sleep(0.3)
    stats = stop_children(running, warnings)
    assert list(stats) == ["probe"]
    assert stats["probe"].counts["ticks"] >= 2
    assert stats["probe"].to_json()["ticks"] == stats["probe"].counts["ticks"]
    assert len(warnings) == 2


def test_a_collectors_problem_is_a_warning_with_its_label(tmp_path):
    warnings: list[str] = []
    running = start_children([Probe()], ctx_for(tmp_path, tick_s=5.0), warnings)
    stats = stop_children(running, warnings)
    assert stats["probe"].error == "ticks were slow"
    assert warnings == ["probe collector: ticks were slow"]


def test_an_interrupted_start_stops_what_started(tmp_path):
    started: list[ChildRunner] = []

    def run(fn):
        started.extend(fn())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        start_children([Probe()], ctx_for(tmp_path), [], run=run)
    assert len(started) == 1
    assert not started[0]._proc.is_alive()
