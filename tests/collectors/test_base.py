"""The collector protocol's plain parts: counts for the manifest, the context, the engine's
processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collectors.base import (
    CollectContext,
    Collector,
    CollectorStats,
    EngineFacts,
    session_pids,
)
from servescope.clock import take_anchor
from tests.collectors._probe import Probe


def test_stats_are_json_for_the_manifest_and_back():
    stats = CollectorStats({"scrapes": 3, "by_outcome": {"ok": 3}}, "2 of 3 failed", 12_000_000)
    data = json.loads(json.dumps(stats.to_json()))
    # the collector's counts as they are (the manifest's section shape), and its CPU
    assert data == {"scrapes": 3, "by_outcome": {"ok": 3}, "process_cpu_ns": 12_000_000}
    assert CollectorStats.from_json(data, stats.error) == stats
    assert CollectorStats.from_json({}) == CollectorStats()


def test_context_options_are_per_collector(tmp_path):
    ctx = CollectContext(tmp_path, "http://h:1", EngineFacts("vllm"), take_anchor(),
                         options={"metrics": {"interval_s": 0.5}})
    assert ctx.options_for("metrics") == {"interval_s": 0.5}
    assert ctx.options_for("gpu") == {}
    assert ctx.engine_pids() == ()  # no pid known (attach without --pid)


def test_the_test_collector_meets_the_protocol():
    assert isinstance(Probe(), Collector)
    assert not isinstance(object(), Collector)


_TREE = """
import os, subprocess, sys, time
# the engine: a session leader (as run starts it) with a worker, and a daemon that left
# the session (setsid) below the worker
worker = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'], "
    "start_new_session=True); time.sleep(30)"])
time.sleep(30)
"""


@pytest.mark.timeout(30)
def test_engine_pids_are_its_session_and_what_is_below_it(tmp_path: Path):
    leader = subprocess.Popen([sys.executable, "-c", _TREE], start_new_session=True)
    try:
        ctx = CollectContext(tmp_path, "", EngineFacts("vllm", pid=leader.pid), take_anchor())
        deadline = time.monotonic() + 10
        pids: tuple[int, ...] = ()
        while time.monotonic() < deadline and len(pids) < 3:
            time.sleep(0.1)
            pids = ctx.engine_pids()
        assert len(pids) == 3, pids
        assert leader.pid in pids
        unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
        try:
            assert unrelated.pid not in session_pids(leader.pid)
        finally:
            unrelated.kill()
            unrelated.wait()
    finally:
        for pid in session_pids(leader.pid)[::-1]:
            subprocess.run(["kill", "-9", str(pid)], check=False)
        leader.wait()
