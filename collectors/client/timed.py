"""Arrival times taken where the bytes enter the host, not where a coroutine wakes up.

With many concurrent streams, one event-loop iteration can deliver data to dozens of
connections; the coroutine reading stream *k* resumes only after the others have been
processed, so a timestamp taken after ``await readany()`` is late by that queue. Two stamps
fix this, one inside the other:

- **Kernel receive time** (``ev_clock == "kernel_rx"``). Plain-HTTP connections run on
  :class:`~collectors.client.kernel_transport.StampedTransport`, which reads with
  ``recvmsg`` and ``SO_TIMESTAMPNS``: every read carries the time the kernel received the
  last packet it returns, converted to the run's monotonic clock, and hands it to
  :class:`TimedResponseHandler` (aiohttp's connection protocol) before the data. That time
  does not move however late the event loop gets round to the socket. When the client
  falls more than a stream's event gap behind, the kernel merges that stream's queued
  packets and keeps the newest time: the earlier events get that upper bound, visible as
  a zero gap and a lag above the gap (:mod:`collectors.client.kernel_transport`).
- **Socket-read time** (``ev_clock == "socket_read"``): the monotonic time at which the
  process read the bytes; kept beside the kernel time as ``ev_lag_ns`` = socket read −
  kernel arrival, the client's own lag for that event.

:class:`ArrivalClock` splits whatever ``readany()`` returns at the byte offsets of those
reads, so every SSE event gets the times of the read that completed it. A TLS connection,
or a platform without ``SO_TIMESTAMPNS``, keeps socket-read times (the request's
``ev_clock`` says which).

This relies on aiohttp internals (``ResponseHandler._payload``, the connector's ``_factory``
and ``_wrap_create_connection``). :func:`install` checks for them and returns False when
the protocol hook is missing (then the client falls back to coroutine wake-up times).
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from collectors.client.kernel_transport import (
    StampedTransport,
    hook_connector,
    kernel_stamps_supported,
)
from collectors.client.wire_tap import open_tap, wire_stamps_asked
from servescope.clock import now_ns

__all__ = ["CLOCK_KERNEL", "CLOCK_PACKET", "CLOCK_SOCKET_READ", "CLOCK_WAKEUP", "ArrivalClock",
           "TimedResponseHandler", "available", "install", "kernel_stamps_supported",
           "send_trace", "timestamp_source"]

CLOCK_KERNEL = "kernel_rx"  # the kernel's receive time of the read's last packet
CLOCK_PACKET = "packet_rx"  # the kernel's receive time of each packet (a packet socket)
CLOCK_SOCKET_READ = "socket_read"  # the process's read of the bytes (user space)
CLOCK_WAKEUP = "coroutine_wakeup"  # the reading coroutine resumed (no protocol hook)

def timestamp_source(*, packets: bool = False) -> tuple[str, str]:
    """The clock events of this process's plain-HTTP connections will use, and why
    per-packet times, asked for (``packets``, as by ``--packet-timestamps``, or
    ``SERVESCOPE_WIRE_STAMPS=1``), cannot be had here ("" when not asked for, or granted)."""
    refused = ""
    if packets or wire_stamps_asked():
        tap, refused = open_tap(0)  # a trial opening: the privilege and the platform
        if tap is not None:
            tap.close()
    if not available():
        return CLOCK_WAKEUP, refused
    if not kernel_stamps_supported():
        return CLOCK_SOCKET_READ, refused
    granted = (packets or wire_stamps_asked()) and not refused
    return (CLOCK_PACKET if granted else CLOCK_KERNEL), refused


class TimedResponseHandler(ResponseHandler):
    """aiohttp's client protocol, plus ``(t_read_ns, t_kernel_ns, payload, cumulative payload
    bytes)`` after each read (``t_kernel_ns`` is -1 when the read carried no kernel time)."""

    def __init__(self, loop: Any) -> None:
        super().__init__(loop=loop)
        self.arrivals: deque[tuple[int, int, object, int]] = deque(maxlen=4096)
        self.kernel_stamps = False
        self._t_kernel = -1

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.kernel_stamps = isinstance(transport, StampedTransport)

    def packet_stamps(self) -> bool:
        """Whether this connection's reads are still split by packet (a packet socket)."""
        t = self.transport
        return isinstance(t, StampedTransport) and t.packet_stamps

    def set_kernel_time(self, t_ns: int) -> None:
        """The kernel's receive time of the read whose data comes next."""
        self._t_kernel = t_ns

    def data_received(self, data: bytes) -> None:
        t = now_ns()
        tk, self._t_kernel = self._t_kernel, -1
        before = getattr(self, "_payload", None)
        super().data_received(data)
        payload = getattr(self, "_payload", None) or before
        if payload is not None:
            self.arrivals.append((t, tk, payload, payload.total_bytes))


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


def install(connector: aiohttp.TCPConnector, *, packets: bool = False) -> bool:
    """Make ``connector`` create timed protocols, on kernel-stamped transports for plain HTTP
    where the platform allows (:mod:`collectors.client.kernel_transport`); False if this
    aiohttp lacks the protocol hook."""
    factory = getattr(connector, "_factory", None)
    if not isinstance(factory, functools.partial) or factory.func is not ResponseHandler:
        return False
    if not hasattr(ResponseHandler(loop=factory.keywords["loop"]), "_payload"):
        return False
    connector._factory = functools.partial(  # type: ignore[assignment]
        TimedResponseHandler, **factory.keywords)
    hook_connector(connector, packets=packets)
    return True


class ArrivalClock:
    """Splits the bytes one response's ``readany()`` returns into per-read slices."""

    __slots__ = ("_arrivals", "_consumed", "_payload", "clock")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        conn = resp.connection
        # an answer read whole by one socket read has already released its connection:
        # the protocol that read it is still the response's own
        proto = conn.protocol if conn is not None else getattr(resp, "_protocol", None)
        timed = isinstance(proto, TimedResponseHandler)
        self._arrivals = proto.arrivals if timed else None  # type: ignore[union-attr]
        self.clock = (CLOCK_WAKEUP if not timed else CLOCK_SOCKET_READ
                      if not proto.kernel_stamps  # type: ignore[union-attr]
                      else CLOCK_PACKET if proto.packet_stamps()  # type: ignore[union-attr]
                      else CLOCK_KERNEL)
        self._payload = resp.content
        self._consumed = 0

    @property
    def exact(self) -> bool:
        return self._arrivals is not None

    def slices(self, chunk: bytes, t_wake_ns: int) -> list[tuple[int, int, bytes]]:
        """``chunk`` (the next bytes of the payload) as (arrival time, client lag, bytes)
        pieces: the kernel's time and read − kernel where the read had one, else the read's
        time (or ``t_wake_ns``) and -1."""
        arr = self._arrivals
        start = self._consumed
        end = start + len(chunk)
        self._consumed = end
        if arr is None:
            return [(t_wake_ns, -1, chunk)]
        out: list[tuple[int, int, bytes]] = []
        pos = start
        while arr and pos < end:
            t, tk, payload, cum = arr[0]
            if payload is not self._payload or cum <= pos:
                arr.popleft()  # another response on this connection, or already consumed
                continue
            stop = min(cum, end)
            piece = chunk[pos - start : stop - start]
            out.append((tk, t - tk, piece) if tk >= 0 else (t, -1, piece))
            pos = stop
            if cum <= end:
                arr.popleft()
        if pos < end:  # not seen by the protocol hook (should not happen): wake-up time
            out.append((t_wake_ns, -1, chunk[pos - start :]))
        return out


def send_trace() -> aiohttp.TraceConfig:
    """A trace that stamps ``t_send_ns`` on the request's record (passed as
    ``trace_request_ctx``) when its body has been written to the socket: the time the
    request left the client (user space: no transmit timestamp is read), not the time the
    client began preparing it."""

    async def on_sent(_session: aiohttp.ClientSession, ctx: Any,
                      _params: aiohttp.TraceRequestChunkSentParams) -> None:
        rec = ctx.trace_request_ctx
        if rec is not None:
            rec.t_send_ns = now_ns()

    tc = aiohttp.TraceConfig()
    tc.on_request_chunk_sent.append(on_sent)
    return tc
