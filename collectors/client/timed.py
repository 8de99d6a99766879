"""Arrival times taken where the bytes enter the process, not where a coroutine wakes up.

With many concurrent streams, one event-loop iteration can deliver data to dozens of
connections; the coroutine reading stream *k* resumes only after the others have been
processed, so a timestamp taken after ``await readany()`` is late by that queue (up to a
millisecond or more at 64 synchronized streams). :class:`TimedResponseHandler` (aiohttp's
connection protocol with one added line) records, in ``data_received``, the monotonic time
and the payload's cumulative byte count after each socket read. :class:`ArrivalClock` then
splits whatever ``readany()`` returns at those byte offsets, so every SSE event gets the
time of the socket read that completed it.

This relies on two aiohttp internals (``ResponseHandler._payload`` and the connector's
``_factory``). :func:`install` checks for both and returns False when they are missing, and
the client then falls back to wake-up timestamps (``timestamp_source`` in the manifest).
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from servescope.clock import now_ns

__all__ = ["ArrivalClock", "TimedResponseHandler", "available", "install", "send_trace"]


class TimedResponseHandler(ResponseHandler):
    """aiohttp's client protocol, plus ``(t_ns, payload, cumulative payload bytes)``
    after each ``data_received``."""

    def __init__(self, loop: Any) -> None:
        super().__init__(loop=loop)
        self.arrivals: deque[tuple[int, object, int]] = deque(maxlen=4096)

    def data_received(self, data: bytes) -> None:
        t = now_ns()
        before = getattr(self, "_payload", None)
        super().data_received(data)
        payload = getattr(self, "_payload", None) or before
        if payload is not None:
            self.arrivals.append((t, payload, payload.total_bytes))


def available() -> bool:
    """Whether this aiohttp has the two internals :func:`install` needs."""
    import asyncio

    from aiohttp.connector import BaseConnector

    loop = asyncio.new_event_loop()
    try:
        has_payload = hasattr(ResponseHandler(loop=loop), "_payload")
    finally:
        loop.close()
    return has_payload and "_factory" in BaseConnector.__init__.__code__.co_names


def install(connector: aiohttp.TCPConnector) -> bool:
    """Make ``connector`` create timed protocols; False if this aiohttp lacks the hook."""
    factory = getattr(connector, "_factory", None)
    if not isinstance(factory, functools.partial) or factory.func is not ResponseHandler:
        return False
    if not hasattr(ResponseHandler(loop=factory.keywords["loop"]), "_payload"):
        return False
    connector._factory = functools.partial(  # type: ignore[assignment]
        TimedResponseHandler, **factory.keywords)
    return True


class ArrivalClock:
    """Splits the bytes one response's ``readany()`` returns into per-socket-read slices."""

    __slots__ = ("_arrivals", "_consumed", "_payload")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        conn = resp.connection
        proto = conn.protocol if conn is not None else None
        self._arrivals = proto.arrivals if isinstance(proto, TimedResponseHandler) else None
        self._payload = resp.content
        self._consumed = 0

    @property
    def exact(self) -> bool:
        return self._arrivals is not None

    def slices(self, chunk: bytes, t_wake_ns: int) -> list[tuple[int, bytes]]:
        """``chunk`` (the next bytes of the payload) as (arrival time, bytes) pieces."""
        arr = self._arrivals
        start = self._consumed
        end = start + len(chunk)
        self._consumed = end
        if arr is None:
            return [(t_wake_ns, chunk)]
        out: list[tuple[int, bytes]] = []
        pos = start
        while arr and pos < end:
            t, payload, cum = arr[0]
            if payload is not self._payload or cum <= pos:
                arr.popleft()  # another response on this connection, or already consumed
                continue
            stop = min(cum, end)
            out.append((t, chunk[pos - start : stop - start]))
            pos = stop
            if cum <= end:
                arr.popleft()
        if pos < end:  # not seen by the protocol hook (should not happen): wake-up time
            out.append((t_wake_ns, chunk[pos - start :]))
        return out


def send_trace() -> aiohttp.TraceConfig:
    """A trace that stamps ``t_send_ns`` on the request's record (passed as
    ``trace_request_ctx``) when its body has been written to the socket: the time the
    request left the client, not the time the client began preparing it."""

    async def on_sent(_session: aiohttp.ClientSession, ctx: Any,
                      _params: aiohttp.TraceRequestChunkSentParams) -> None:
        rec = ctx.trace_request_ctx
        if rec is not None:
            rec.t_send_ns = now_ns()

    tc = aiohttp.TraceConfig()
    tc.on_request_chunk_sent.append(on_sent)
    return tc
