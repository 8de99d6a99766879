"""Writing one streamed response on its schedule, and the terminal faults of a stream.

:func:`plan_events` turns a parsed request into the ordered events with their deadlines
(pure, no I/O); :class:`Streamer` writes them, ``events_per_write`` at a time, each write
at the deadline of its last event, recording the truth just before every write.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from aiohttp import web

from profiler.selftest.request import StreamRequest
from profiler.selftest.timing import DeadlineSleeper
from profiler.selftest.truth import TruthRecord
from profiler.selftest.wire import ChunkEncoder, event_text, split_points

__all__ = ["Call", "Event", "Streamer", "abort_with_rst", "plan_events"]

_now_ns = time.monotonic_ns
_STALL_POLL_S = 0.02
_HIGH_WATER = 1 << 16


class Event(NamedTuple):
    """One planned event: ``kind`` "role", "output", "usage", "done" or "fault"."""

    kind: str
    data: bytes
    tokens: int
    chars: int
    t_sched_ns: int


@dataclass(slots=True)
class Call:
    """One request in flight."""

    request: web.Request
    req: StreamRequest
    rec: TruthRecord | None
    response_id: str
    model: str
    t_recv_ns: int
    header_id: str | None


def plan_events(req: StreamRequest, enc: ChunkEncoder, t_recv: int) -> Iterator[Event]:
    """The planned events in order, ending early with a "fault" pseudo-event."""
    sched = req.schedule
    first_ns = t_recv + round(sched.ttft_ms * 1e6)
    itl_ns = round(sched.itl_ms * 1e6)
    fault = sched.terminal_fault
    fault_at = sched.fault_after if fault is not None else -1
    utf8 = bool(sched.faults & {"partial_utf8", "split_writes"})
    sizes = sched.event_tokens(req.output_tokens)
    last = len(sizes) - 1
    if enc.chat:
        role_ns = first_ns
        if sched.role_delay_ms is not None:
            role_ns = t_recv + round(sched.role_delay_ms * 1e6)
        yield Event("role", enc.role(), 0, 0, role_ns)
    t = first_ns
    tok = 0
    for k, size in enumerate(sizes):
        t = first_ns + k * itl_ns
        if k == fault_at:
            yield Event("fault", b"", 0, 0, t)
            return
        text = event_text(tok, size, utf8)
        tok += size
        finish = req.finish_reason if k == last else None
        yield Event("output", enc.content(text, tok, finish), size, len(text), t)
    if fault is not None:
        yield Event("fault", b"", 0, 0, t)
        return
    if req.include_usage and "no_usage" not in sched.faults:
        yield Event("usage", enc.usage(tok), 0, 0, t)
    yield Event("done", enc.done(), 0, 0, t)


class Streamer:
    """Writes streamed responses with one shared deadline sleeper."""

    def __init__(self, sleeper: DeadlineSleeper, closing: asyncio.Event) -> None:
        self.sleeper = sleeper
        self.closing = closing  # set on server shutdown: stalled requests let go

    async def wait_for_disconnect(self, request: web.Request) -> None:
        """Hold the request until its client closes the connection or the server stops."""
        while not self.closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(_STALL_POLL_S)

    async def write_stream(self, call: Call, resp: web.StreamResponse, enc: ChunkEncoder) -> None:
        """Write every planned event of ``call`` on schedule, or up to its terminal fault."""
        rec, sched = call.rec, call.req.schedule
        faults = sched.faults
        if enc.framing.after_headers:
            await resp.write(enc.framing.after_headers)
        split_gap_ns = round(sched.split_gap_ms * 1e6) if "split_writes" in faults else -1
        per_write = sched.effective_events_per_write
        batch: list[Event] = []
        for ev in plan_events(call.req, enc, call.t_recv_ns):
            if ev.kind == "fault":
                if batch:
                    await self._flush(call, resp, batch, split_gap_ns)
                await self.sleeper.sleep_until(ev.t_sched_ns)
                await self._fire(call, resp, enc, ev.t_sched_ns)
                return
            batch.append(ev)
            if len(batch) >= per_write:
                await self._flush(call, resp, batch, split_gap_ns)
                batch = []
        if batch:
            await self._flush(call, resp, batch, split_gap_ns)
        await resp.write_eof()
        if rec is not None:
            rec.t_done_ns = _now_ns()
            rec.ended = "complete"

    async def _flush(
        self, call: Call, resp: web.StreamResponse, batch: list[Event], split_gap_ns: int
    ) -> None:
        """Write ``batch`` in one write at the deadline of its last event."""
        await self.sleeper.sleep_until(batch[-1].t_sched_ns)
        t = _now_ns()
        data = batch[0].data if len(batch) == 1 else b"".join(ev.data for ev in batch)
        rec = call.rec
        if rec is not None:
            for ev in batch:
                rec.add_event(ev.kind, t, ev.t_sched_ns, tokens=ev.tokens, chars=ev.chars)
        if split_gap_ns < 0:
            if resp.chunked:
                await _write_chunk(call.request, data)
            else:
                await resp.write(data)
            return
        start = 0
        pieces: list[int] = []
        for cut in [*split_points(data), len(data)]:
            if pieces:
                await self.sleeper.sleep_until(_now_ns() + split_gap_ns)
            await resp.write(data[start:cut])
            pieces.append(cut - start)
            start = cut
        if rec is not None:
            rec.pieces.append(pieces)

    async def _fire(
        self, call: Call, resp: web.StreamResponse, enc: ChunkEncoder, t_sched: int
    ) -> None:
        """The terminal fault of a stream, at its deadline."""
        request, rec = call.request, call.rec
        fault = call.req.schedule.terminal_fault
        if rec is not None:
            rec.ended = "fault"
        if fault in ("error_event", "error_event_done"):
            t = _now_ns()
            data = enc.error("refserver injected fault: error_event", 500)
            if rec is not None:
                rec.add_event("error", t, t_sched)
            if fault == "error_event_done":
                if rec is not None:
                    rec.add_event("done", t, t_sched)
                data += enc.done()
            await resp.write(data)
            await resp.write_eof()
        elif fault == "truncate":
            await resp.write_eof()
        elif fault == "reset":
            abort_with_rst(request)
        elif fault == "stall":
            await self.wait_for_disconnect(request)
        if rec is not None:
            rec.t_done_ns = _now_ns()


async def _write_chunk(request: web.Request, data: bytes) -> None:
    """One HTTP/1.1 chunk straight to the transport, with aiohttp's own backpressure.

    Equivalent on the wire to ``StreamResponse.write`` on a chunked response (headers are
    already out, nothing is compressed) at about three quarters of its CPU cost per event.
    """
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client closed the connection")
    transport.write(b"%x\r\n%b\r\n" % (len(data), data))
    if transport.get_write_buffer_size() > _HIGH_WATER:
        await request.writer.drain()


def abort_with_rst(request: web.Request) -> None:
    """Abort the connection so the peer gets a TCP RST, not an orderly FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # the abort below still closes the connection, with a FIN
    transport.abort()
