"""The cheapest possible consumer of SSE streams, to measure the reference server's ceiling.

A ceiling measured with a real client is the client's ceiling only if the server could go
faster. :func:`drain` reads raw bytes from plain sockets and counts event terminators
(``\\n\\n``); it parses nothing, so on the same host it outruns the server and what it
measures is what the server can emit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["DrainResult", "drain"]

_READ_SIZE = 1 << 18


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What :func:`drain` received."""

    requests: int
    events: int  # SSE events (``\\n\\n`` terminators), [DONE] and usage included
    bytes_received: int
    wall_ns: int

    @property
    def events_per_s(self) -> float:
        return self.events / (self.wall_ns / 1e9) if self.wall_ns else 0.0


def _request_bytes(netloc: str, path: str, body: dict[str, Any]) -> bytes:
    payload = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + payload


async def _one(host: str, port: int, request: bytes) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        events = received = 0
        last = b""
        while chunk := await reader.read(_READ_SIZE):
            received += len(chunk)
            events += (last + chunk).count(b"\n\n")
            last = chunk[-1:]
        return events, received
    finally:
        writer.close()


async def drain(
    url: str,
    *,
    requests: int,
    concurrency: int,
    max_tokens: int,
    servescope_ref: dict[str, Any] | None = None,
    path: str = "/v1/completions",
) -> DrainResult:
    """Run ``requests`` streamed requests, ``concurrency`` at a time, reading everything."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"url needs a host and a port, got {url!r}")
    body: dict[str, Any] = {"model": "ref", "max_tokens": max_tokens, "stream": True}
    if path.endswith("chat/completions"):
        body["messages"] = [{"role": "user", "content": "drain"}]
    else:
        body["prompt"] = "drain"
    if servescope_ref:
        body["servescope_ref"] = servescope_ref
    request = _request_bytes(parts.netloc, path, body)
    host, port = parts.hostname, parts.port
    todo = iter(range(requests))
    totals = [0, 0]

    async def worker() -> None:
        for _ in todo:
            events, received = await _one(host, port, request)
            totals[0] += events
            totals[1] += received

    t0 = time.monotonic_ns()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return DrainResult(requests, totals[0], totals[1], time.monotonic_ns() - t0)
