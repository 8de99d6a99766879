"""The client's priming GET before the clock starts (profiler/driver.py ``_prime``): its
connection is never one of the run's. transformers serve answers ``GET /v1/models`` with 500
and then resets the connection; the run's first request used to meet that reset
(``connection_error`` on request 0 of every run, seen on the H200)."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

from collectors.client.target import Target
from profiler.loadrun import LoadConfig, run_load
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist
from servescope.rundir.reader import load_run
from tests.faults.server import FaultServer, Handler, RawRequest, good_stream


async def _error_then_reset(_req: RawRequest, w: asyncio.StreamWriter) -> None:
    """A keep-alive 500, then a reset of the connection a little later."""
    w.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 21\r\n\r\nInternal Server Error")
    await w.drain()
    await asyncio.sleep(0.3)
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()


def test_the_first_request_does_not_meet_a_connection_the_prime_left_broken(
        tmp_path: Path) -> None:
    routes: dict[str, Handler] = {"/v1/models": _error_then_reset,
                                  "/v1/completions": good_stream}
    with FaultServer(routes) as srv:
        cfg = LoadConfig(
            target=Target(base_url=srv.url, model="m"),
            dataset=DatasetSpec("synthetic", input_len=LengthDist.fixed(4),
                                output_len=LengthDist.fixed(4)),
            arrival=ArrivalSpec("closed", concurrency=1), out_dir=tmp_path / "run",
            num_requests=3)
        res = run_load(cfg)
        assert srv.hits["/v1/models"] == 1
    requests = load_run(res.run_dir).requests
    assert list(requests["outcome"]) == ["success"] * 3, list(requests["error"])
