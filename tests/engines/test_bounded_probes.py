"""servescope's own small requests to an engine are bounded in total time and size: a server
that trickles its answer a byte at a time (a per-read socket timeout never fires) or answers
without end cannot hold ``sniff_engine``, ``engine_version`` or the readiness probe."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from profiler.engine_run import engine_version, sniff_engine
from profiler.launch import EngineNotReady, EngineProcess
from tests.faults.server import METRICS_PAGE, FaultServer, big_body, json_answer, trickle

pytestmark = pytest.mark.timeout(60)

TRICKLE = trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", 0.2)


def test_sniff_and_version_against_a_trickle():
    with FaultServer({"/metrics": TRICKLE, "/version": TRICKLE}) as srv:
        t0 = time.monotonic()
        assert sniff_engine(srv.url, timeout_s=1.0) == "openai"
        assert engine_version(srv.url, timeout_s=1.0) is None
        assert time.monotonic() - t0 < 5


def test_sniff_and_version_against_endless_answers():
    with FaultServer({"/metrics": big_body(200 << 20, "text/plain"),
                      "/version": big_body(200 << 20)}) as srv:
        t0 = time.monotonic()
        assert sniff_engine(srv.url, timeout_s=10.0) == "openai"
        assert engine_version(srv.url, timeout_s=10.0) is None
        assert time.monotonic() - t0 < 20


def test_sniff_and_version_of_a_good_server():
    with FaultServer({"/version": json_answer({"version": "0.33.0"})}) as srv:
        assert sniff_engine(srv.url) == "vllm"  # the default /metrics page has vllm: names
        assert engine_version(srv.url) == "0.33.0"
        assert METRICS_PAGE.startswith(b"# HELP vllm:")


def test_readiness_probe_against_a_trickle(tmp_path: Path):
    engine = EngineProcess([sys.executable, "-c", "import time; time.sleep(60)"],
                           tmp_path / "engine")
    engine.start()
    try:
        with FaultServer({"/health": TRICKLE}) as srv:
            t0 = time.monotonic()
            with pytest.raises(EngineNotReady, match="never answered 200"):
                engine.wait_ready(srv.url, ["/health"], timeout_s=2.0, poll_s=0.2)
            assert time.monotonic() - t0 < 10
    finally:
        rep = engine.stop((2.0, 2.0, 2.0))
    assert rep.leftover_pids == []
