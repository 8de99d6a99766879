"""A hostile server can hold one request no longer than its timeouts and grow the client's
memory no further than its caps (issue 8, cases 5 and 6)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectors.client.stream import send_request
from collectors.client.target import Target
from servescope.records import Outcome, RequestRecord
from tests.faults.server import FaultServer, big_body, head, raw_answer, trickle

_HEAD_START = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Slow: "


async def _send(url: str, **target_kw: Any) -> tuple[RequestRecord, float]:
    target = Target(base_url=url, model="m", **target_kw)
    rec = RequestRecord(request_id=1, x_request_id="bounds-1")
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as http:
        # a bound of our own, so that the unfixed client fails here instead of hanging
        await asyncio.wait_for(send_request(http, target, target.body("hi", 4), rec), 30)
    return rec, time.monotonic() - t0


async def test_trickled_headers_time_out_at_the_stall_timeout() -> None:
    """One header byte every 0.2 s: a per-read timeout of 1 s never fires; the header phase
    of a streamed request is bounded by the stall timeout in all."""
    with FaultServer({"/v1/completions": trickle(_HEAD_START, 0.2)}) as srv:
        rec, took_s = await _send(srv.url, stall_timeout_s=1.0)
    assert rec.outcome == Outcome.TIMEOUT.value
    assert rec.error == "no response headers within 1 s"
    assert rec.t_headers_ns == -1
    assert took_s < 15


async def test_trickled_headers_of_a_non_streamed_request_hit_the_request_timeout() -> None:
    with FaultServer({"/v1/completions": trickle(_HEAD_START, 0.2)}) as srv:
        rec, took_s = await _send(srv.url, stream=False, stall_timeout_s=1.0,
                                  request_timeout_s=1.5)
    assert rec.outcome == Outcome.TIMEOUT.value
    assert rec.error == "request exceeded 1.5 s"
    assert took_s < 15


async def test_slow_but_steady_stream_is_not_cut_by_the_header_bound() -> None:
    """The header bound ends with the headers: a stream whose events come every 0.4 s with
    a stall timeout of 1 s runs past 1 s in all and succeeds."""
    from tests.faults.server import sse_events, token_chunk

    events = [token_chunk(False, f" t{i}", i + 1) for i in range(4)]
    with FaultServer({"/v1/completions": sse_events(events, gap_s=0.4)}) as srv:
        rec, took_s = await _send(srv.url, stall_timeout_s=1.0)
    assert rec.outcome == Outcome.SUCCESS.value, rec.error
    assert took_s > 1.0


async def test_declared_length_over_the_cap_is_refused_unread() -> None:
    answer = head(200, extra=[("Content-Length", str(10**9))]) + b"{"
    with FaultServer({"/v1/completions": raw_answer(answer)}) as srv:
        rec, _ = await _send(srv.url, stream=False)
    assert rec.outcome == Outcome.INVALID_RESPONSE.value
    assert rec.error == f"answer larger than {64 << 20:,} bytes"


async def test_answer_over_a_small_cap() -> None:
    with FaultServer({"/v1/completions": big_body(1 << 20)}) as srv:
        rec, _ = await _send(srv.url, stream=False, max_response_bytes=100_000)
    assert rec.outcome == Outcome.INVALID_RESPONSE.value
    assert rec.error == "answer larger than 100,000 bytes"


_PROBE = r"""
import asyncio, json, sys
import aiohttp
from collectors.client.stream import send_request
from collectors.client.target import Target
from servescope.records import RequestRecord
from tests.faults.server import FaultServer, big_body

async def main(stream):
    line = b"data: " + b"x" * 1017 + b"\n" if stream else b"x" * 1023 + b"\n"
    ctype = "text/event-stream" if stream else "application/json"
    with FaultServer({"/v1/completions": big_body(300 << 20, ctype, line)}) as srv:
        target = Target(base_url=srv.url, model="m", stream=stream)
        rec = RequestRecord(request_id=1)
        async with aiohttp.ClientSession(read_bufsize=1 << 20) as http:
            await send_request(http, target, target.body("hi", 4), rec)
    # VmHWM: this process's own peak RSS (ru_maxrss would include the forking parent's)
    status = open("/proc/self/status").read()
    peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"outcome": rec.outcome, "error": rec.error, "peak_mb": peak_mb}))

asyncio.run(main(sys.argv[1] == "stream"))
"""


@pytest.mark.parametrize("mode", ["json", "stream"])
def test_a_300_mb_answer_keeps_memory_small(mode: str) -> None:
    """300 MB of body (a JSON answer, or an SSE event that never ends): the client reads up
    to its cap (64 MiB for an answer, 16 MiB for one event), then drops the connection.
    Before the caps: the JSON answer was read whole (1.2 GB peak) and the endless event
    re-copied its growing buffer on every read."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc/self/status (Linux) to read the peak RSS")
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["outcome"] == "invalid_response"
    if mode == "json":
        assert got["error"] == f"answer larger than {64 << 20:,} bytes"
    else:
        assert got["error"].startswith("event 0: larger than 16,777,216 bytes")
    assert got["peak_mb"] < 400, got  # imports ~100 MB + at most twice the cap
