"""The loopback reference server: OpenAI-compatible streaming on an exact schedule.

Endpoints: ``POST /v1/completions``, ``POST /v1/chat/completions`` (``stream`` true or
false), ``GET /v1/models``, ``GET /health``, ``GET /_truth`` (JSON list of
:class:`~profiler.selftest.truth.TruthRecord`; ``?request_id=`` filters),
``POST /_truth/reset``. A request body may carry ``"servescope_ref": {...}`` with any
:class:`~profiler.selftest.schedule.RefSchedule` field to override the server default for
that request. Responses follow vLLM's bytes (see :mod:`profiler.selftest.wire`); the
schedule and the faults are described in :mod:`profiler.selftest.schedule`.

Accuracy, measured on the 2-core dev VM while it was otherwise idle (server in its own
process, client in another, 160 requests at 16 streams, ttft 10 ms, itl 2 ms; re-measured
by ``tests/selftest/test_timing.py``), as truth minus schedule:

====================  ================  =================  ===========================
loop, spin            TTFT p50 / p99    TTFT max           every event p50 / p99
====================  ================  =================  ===========================
uvloop, 1.5 ms        4 µs / 6-25 µs    30 µs              4 µs / 180-360 µs
asyncio, 1.5 ms       9 µs / 40 µs      57 µs              10 µs / 200-260 µs
uvloop, no spin       200 µs / 1.0 ms   1.5 ms             200 µs / 1.1 ms
====================  ================  =================  ===========================

The event p99 comes from ``[DONE]``/usage, which share the last content event's deadline
and so go out one write (~20-150 µs) after it. When other processes oversubscribe the CPUs
the OS deschedules the server for milliseconds and the errors grow accordingly; the truth
records what was done, so lateness always shows in ``t_event_ns - t_sched_ns``. The spin
costs CPU: with many streams the spinner keeps one core busy (``spin_ns=0`` to avoid it).

Cost: per event one bytes build from pre-encoded pieces (~1.5 µs) and one socket write of
one HTTP chunk, ~10 µs of CPU in all. With ``itl_ms=0`` one process (one core, measured with
:func:`~profiler.selftest.drain.drain` from another process, 2000-token streams) emits
about 105 k events/s at ``events_per_write=1`` and 310 k events/s at 16 without truth, and
about 90 k and 270 k events/s with truth; ``record_truth=False`` (the CLI's ``--no-truth``)
is for ceiling runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import orjson
from aiohttp import HttpVersion11, web

from profiler.selftest.request import RequestError, parse_request
from profiler.selftest.schedule import RefSchedule
from profiler.selftest.streaming import Call, Streamer, abort_with_rst
from profiler.selftest.timing import DEFAULT_SPIN_NS, DeadlineSleeper
from profiler.selftest.truth import DEFAULT_TRUTH_CAPACITY, TruthRecord, TruthStore
from profiler.selftest.wire import (
    ChunkEncoder,
    error_body,
    event_text,
    framing_for,
    nonstream_body,
)

__all__ = ["DEFAULT_MODEL", "URL_PREFIX", "RefServer", "make_app", "refserver_key"]

DEFAULT_MODEL = "ref"
URL_PREFIX = "REFSERVER_URL="  # serve.py prints it before the URL; process.py looks for it
_now_ns = time.monotonic_ns
_HTTP_FAULTS = {"http_500": 500, "http_429": 429, "http_400": 400}
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8"}


class RefServer:
    """State shared by the handlers: default schedule, truth, sleeper, counters."""

    def __init__(
        self,
        default: RefSchedule,
        *,
        model: str = DEFAULT_MODEL,
        record_truth: bool = True,
        truth_capacity: int = DEFAULT_TRUTH_CAPACITY,
        spin_ns: int = DEFAULT_SPIN_NS,
    ) -> None:
        self.default = default
        self.model = model
        self.truth: TruthStore | None = TruthStore(truth_capacity) if record_truth else None
        self.sleeper = DeadlineSleeper(spin_ns)
        self._ids = itertools.count(1)
        self.created = int(time.time())
        self.closing = asyncio.Event()  # set on shutdown: stalled requests let go
        self.streamer = Streamer(self.sleeper, self.closing)

    async def on_shutdown(self, _app: web.Application) -> None:
        self.closing.set()

    # ---- plumbing endpoints -------------------------------------------------------------

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def models(self, _request: web.Request) -> web.Response:
        card = {"id": self.model, "object": "model", "created": self.created}
        card |= {"owned_by": "servescope", "root": self.model, "parent": None}
        card |= {"max_model_len": 1 << 20, "permission": []}
        body = orjson.dumps({"object": "list", "data": [card]})
        return web.Response(body=body, content_type="application/json")

    async def get_truth(self, request: web.Request) -> web.Response:
        if self.truth is None:
            msg = "truth recording is disabled on this server (--no-truth)"
            return _json_error(404, msg)
        body = self.truth.to_json(request.query.get("request_id"))
        headers = {"x-truth-dropped": str(self.truth.dropped)}
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def reset_truth(self, _request: web.Request) -> web.Response:
        cleared = 0
        if self.truth is not None:
            cleared = len(self.truth)
            self.truth.clear()
        return web.Response(
            body=orjson.dumps({"cleared": cleared}), content_type="application/json"
        )

    # ---- completions --------------------------------------------------------------------

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "completions")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "chat")

    async def _handle(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        # when the request's bytes reached the server (see arrival.py), so the server's own
        # queueing before this handler runs is not counted against the client
        t_recv = getattr(request.protocol, "t_data_ns", 0) or _now_ns()
        serial = next(self._ids)
        header_id = request.headers.get("x-request-id")
        request_id = header_id or f"ref-{serial}"
        try:
            req = parse_request(await request.read(), endpoint, self.default)
        except RequestError as exc:
            if self.truth is not None:
                record = TruthRecord(request_id, endpoint, False, t_recv, {}, status=400)
                record.t_headers_ns = record.t_done_ns = _now_ns()
                record.ended = "rejected"
                self.truth.add(record)
            return _json_error(400, str(exc))
        sched = req.schedule
        rec: TruthRecord | None = None
        if self.truth is not None:
            rec = TruthRecord(request_id, endpoint, req.stream, t_recv, sched.as_dict())
            rec.fault = sched.fault
            rec.max_tokens = -1 if req.max_tokens is None else req.max_tokens
            rec.prompt_tokens = req.prompt_tokens
            rec.output_tokens = req.output_tokens
            rec.finish_reason = req.finish_reason
            rec.include_usage = req.include_usage
            rec.continuous_usage = req.continuous_usage
            self.truth.add(rec)
        prefix = "chatcmpl-" if endpoint == "chat" else "cmpl-"
        call = Call(
            request, req, rec, f"{prefix}{serial:016x}", req.model or self.model, t_recv, header_id
        )
        try:
            status = _HTTP_FAULTS.get(sched.terminal_fault or "")
            if status is not None:
                return await self._http_fault(request, rec, status)
            if not req.stream:
                return await self._nonstream(call)
            return await self._stream(call)
        finally:
            if rec is not None:
                if rec.t_done_ns < 0:
                    rec.t_done_ns = _now_ns()
                if not rec.ended:
                    rec.ended = "client_gone"

    async def _http_fault(
        self, request: web.Request, rec: TruthRecord | None, status: int
    ) -> web.StreamResponse:
        msg = f"refserver injected fault: http_{status}"
        resp = web.Response(status=status, body=error_body(msg, status))
        resp.content_type = "application/json"
        if rec is not None:
            rec.status = status
            rec.t_headers_ns = _now_ns()
            rec.ended = "fault"
        with contextlib.suppress(ConnectionError):  # a client that left needs no answer
            await resp.prepare(request)
            await resp.write_eof()
        return resp

    # ---- non-streamed -------------------------------------------------------------------

    async def _nonstream(self, call: Call) -> web.StreamResponse:
        request, req, rec, t_recv = call.request, call.req, call.rec, call.t_recv_ns
        sched = req.schedule
        n_events = len(sched.event_tokens(req.output_tokens))
        first_ns = t_recv + round(sched.ttft_ms * 1e6)
        itl_ns = round(sched.itl_ms * 1e6)
        fault = sched.terminal_fault
        if fault is not None:
            if rec is not None:
                rec.ended = "fault"
            await self.sleeper.sleep_until(first_ns + min(sched.fault_after, n_events - 1) * itl_ns)
            if fault == "stall":
                await self.streamer.wait_for_disconnect(request)
                return web.Response(status=204)  # seen only if the server shuts down
            if fault == "reset":
                abort_with_rst(request)
                return web.Response(status=204)  # never sent: the connection is gone
            if fault.startswith("error_event"):
                return await self._http_fault(request, rec, 500)
        t_done_sched = first_ns + (n_events - 1) * itl_ns
        await self.sleeper.sleep_until(t_done_sched)
        utf8 = bool(sched.faults & {"partial_utf8", "split_writes"})
        text = event_text(0, req.output_tokens, utf8)
        usage_tokens = None if "no_usage" in sched.faults else req.output_tokens
        body = nonstream_body(
            endpoint=req.endpoint,
            response_id=call.response_id,
            created=int(time.time()),
            model=call.model,
            text=text,
            finish_reason=req.finish_reason,
            prompt_tokens=req.prompt_tokens,
            completion_tokens=usage_tokens,
        )
        resp = web.Response(body=body, content_type="application/json")
        t = _now_ns()
        if rec is not None:
            rec.status = 200
            rec.t_headers_ns = t
            rec.add_event("output", t, t_done_sched, tokens=req.output_tokens, chars=len(text))
        if fault == "truncate":  # promise the whole body, send half, close
            partial = web.StreamResponse(headers={"Content-Type": "application/json"})
            partial.content_length = len(body)
            await partial.prepare(request)
            await partial.write(body[: len(body) // 2])
            if request.transport is not None:
                request.transport.close()
            return partial
        try:
            await resp.prepare(request)
            await resp.write_eof()
        except ConnectionError:
            return resp  # the client went away; the truth says "client_gone"
        if rec is not None:
            rec.ended = "complete"
        return resp

    # ---- streamed -----------------------------------------------------------------------

    async def _stream(self, call: Call) -> web.StreamResponse:
        request, req, rec = call.request, call.req, call.rec
        sched = req.schedule
        faults = sched.faults
        framing = framing_for(faults)
        enc = ChunkEncoder(
            endpoint=req.endpoint,
            response_id=call.response_id,
            created=int(time.time()),
            model=call.model,
            prompt_tokens=req.prompt_tokens,
            continuous_usage=req.continuous_usage and "no_usage" not in faults,
            framing=framing,
        )
        resp = web.StreamResponse(status=200, headers=_SSE_HEADERS)
        if call.header_id:
            resp.headers["x-request-id"] = call.header_id
        if request.version >= HttpVersion11:
            resp.enable_chunked_encoding()  # as aiohttp would; lets the streamer write chunks
        try:
            await resp.prepare(request)
            if rec is not None:
                rec.status = 200
                rec.t_headers_ns = _now_ns()
            await self.streamer.write_stream(call, resp, enc)
        except ConnectionError:  # the client went away; nothing to tell it
            if rec is not None:
                rec.ended = "client_gone"
        return resp


def _json_error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=error_body(message, status), content_type="application/json"
    )


refserver_key = web.AppKey("refserver", RefServer)


def make_app(
    default: RefSchedule | None = None,
    *,
    model: str = DEFAULT_MODEL,
    record_truth: bool = True,
    truth_capacity: int = DEFAULT_TRUTH_CAPACITY,
    spin_ns: int = DEFAULT_SPIN_NS,
) -> web.Application:
    """The reference server as an aiohttp application (``app[refserver_key]`` is its state)."""
    server = RefServer(
        default or RefSchedule(),
        model=model,
        record_truth=record_truth,
        truth_capacity=truth_capacity,
        spin_ns=spin_ns,
    )
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[refserver_key] = server
    app.on_shutdown.append(server.on_shutdown)
    app.router.add_post("/v1/completions", server.completions)
    app.router.add_post("/v1/chat/completions", server.chat)
    app.router.add_get("/v1/models", server.models)
    app.router.add_get("/health", server.health)
    app.router.add_get("/_truth", server.get_truth)
    app.router.add_post("/_truth/reset", server.reset_truth)
    return app
