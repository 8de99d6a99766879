"""Client worker processes know the run's secrets: each registers, at its start, the exact
values the parent registered (the API key from the environment or the serving command), so an
error message in which the server echoes the key is written without it — also for a key that
no pattern would recognize."""

from __future__ import annotations

import pytest

from servescope.rundir.reader import load_run
from tests.e2e._support import run_servescope
from tests.faults._signal_support import assert_nothing_left, tracked
from tests.faults.server import FaultServer, json_answer

pytestmark = pytest.mark.timeout(60)

SECRET = "plainvalue4242xyz"  # no pattern knows it: only the registered value can hide it


@pytest.fixture
def tracker():
    yield from tracked()


def test_workers_remove_the_registered_key(tmp_path, tracker, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    echo = json_answer({"error": {"message": f"key {SECRET} is not allowed here"}}, 500)
    out = tmp_path / "run"
    with FaultServer({"/v1/completions": echo}) as srv:
        res = run_servescope(["attach", "--url", srv.url, "--out", str(out), "--requests", "6",
                              "--concurrency", "2", "--workers", "2", "--no-metrics"],
                             tracker.tag, timeout_s=45)
    assert res.returncode == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    req = load_run(out).requests
    assert len(req) == 6
    assert set(req["worker_id"]) == {0, 1}
    assert req["error"].str.contains("is not allowed here").all()
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in res.output
    assert_nothing_left(tracker)
