"""``servescope attach`` against a server whose ``/metrics`` is hostile (fast tier, the real
CLI in a subprocess): a valid 10 MB Prometheus page, and a 200 whose body then trickles one
byte a second. Before the scrapes were bounded, an 8 s attach against the first did not end
in 100 s (every page journaled, then parsed at the end: ~98 s, 1.2 GB), and against the second
it relied on aiohttp's timeout alone. Now each ends within seconds of its duration, exit 0,
with the outcomes counted in the manifest, a warning, and a small journal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.e2e._support import Tracker, manifest_json, run_servescope
from tests.faults.server import FaultServer, RawRequest, head, raw_answer, trickle, write

pytestmark = pytest.mark.timeout(120)

PROM = "text/plain; version=0.0.4"
DURATION_S = 3.0
# a normal attach of 3 s takes ~8-10 s on a loaded 2-core machine (start-up, report); before
# the fix the 10 MB page alone added ~10 s per scrape to the end of the run
SLACK_S = 25.0


def _ten_mb_page() -> bytes:
    line = b'vllm:num_requests_running{model_name="fault-model",replica="%d"} 1.0\n'
    parts = [b"# HELP vllm:num_requests_running Requests running.\n",
             b"# TYPE vllm:num_requests_running gauge\n"]
    size, i = 0, 0
    while size < 10 << 20:
        parts.append(line % i)
        size += len(parts[-1])
        i += 1
    return b"".join(parts)


async def _body_trickle(req: RawRequest, w: asyncio.StreamWriter) -> None:
    await write(w, head(200, PROM))
    await trickle(b"# TYPE vllm:num_requests_running gauge\n", 1.0)(req, w)


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    t = Tracker()
    yield t
    t.kill()


def _attach(url: str, out: Path, tracker: Tracker):
    return run_servescope(["attach", "--url", url, "--engine", "vllm", "--out", str(out),
                           "--duration", str(DURATION_S), "--concurrency", "1",
                           "--input-len", "fixed:8", "--output-len", "fixed:8",
                           "--metrics-interval", "0.5"],
                          tracker.tag, timeout_s=90)


def _check(res, out: Path, outcome: str, warning: str) -> dict[str, Any]:
    assert res.returncode == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    assert res.seconds < DURATION_S + SLACK_S, res.seconds
    m = manifest_json(out)
    assert m["status"] == "complete"
    scrapes = m["engine"]["scrapes"]
    assert scrapes["ok"] == 0
    assert scrapes["by_outcome"] == {outcome: scrapes["scrapes"]}
    assert scrapes["scrapes"] >= 3  # scheduled every 0.5 s for 3 s, and the final snapshot
    assert any(w.startswith("metrics scraper: ") and warning in w for w in m["warnings"]), \
        m["warnings"]
    assert warning in res.text  # also on the terminal
    edir = out / "engine"
    assert not (edir / "metrics.jsonl").exists()  # finalized
    assert sum(f.stat().st_size for f in edir.iterdir()) < 200_000  # outcomes, not pages
    table = pd.read_parquet(edir / "scrapes.parquet")
    assert set(table["outcome"]) == {outcome}
    assert len(pd.read_parquet(edir / "metrics.parquet")) == 0
    return dict(scrapes)


def test_attach_with_a_10_mb_metrics_page(tmp_path, tracker):
    page = _ten_mb_page()
    with FaultServer({"/metrics": raw_answer(head(200, PROM) + page)}) as srv:
        out = tmp_path / "run"
        res = _attach(srv.url, out, tracker)
    _check(res, out, "too_large", "scrapes failed (too_large")
    scrapes = manifest_json(out)["engine"]["scrapes"]
    assert "4,194,304-byte limit" in json.dumps(scrapes["examples"])
    assert tracker.live() == {}  # the scraper child is gone


def test_attach_with_a_trickling_metrics_page(tmp_path, tracker):
    with FaultServer({"/metrics": _body_trickle}) as srv:
        out = tmp_path / "run"
        res = _attach(srv.url, out, tracker)
    _check(res, out, "timeout", "scrapes failed (timeout")
    assert "no complete answer within 0.4 s" in res.text
    assert tracker.live() == {}
