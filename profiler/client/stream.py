"""One request, timed event by event, ending as a classified :class:`RequestRecord`.

Nothing here raises for a bad server: every failure becomes an :class:`Outcome` with its
error text (secrets redacted). Only cancellation propagates, after the record is marked
``cancelled``, so the caller can still write it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from profiler.client.sse import SSEParser
from profiler.client.target import Target
from profiler.client.timed import ArrivalClock
from profiler.clock import now_ns
from profiler.records import UNKNOWN, EventKind, Outcome, RequestRecord
from profiler.redact import redact_text

__all__ = ["MAX_ERROR_CHARS", "send_request"]

MAX_ERROR_CHARS = 500
_MAX_ERROR_BODY_BYTES = 64 * 1024
_OUTPUT, _ROLE, _USAGE, _ERROR, _DONE, _OTHER, _FINISH = (int(k) for k in EventKind)


def _error_text(body: bytes) -> str:
    """The message of an OpenAI-style error body, else the raw body, redacted and cut."""
    text = body.decode("utf-8", "replace")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err
            text = msg if isinstance(msg, str) else orjson.dumps(msg).decode()
        elif isinstance(err, str):
            text = err
    return redact_text(text)[:MAX_ERROR_CHARS]


class _EventSink:
    """Turns decoded event payloads into the record's parallel event columns."""

    __slots__ = ("chat", "done", "rec", "text")

    def __init__(self, rec: RequestRecord, chat: bool, keep_text: bool) -> None:
        self.rec = rec
        self.chat = chat
        self.done = False
        self.text: list[str] | None = [] if keep_text else None

    def add(self, payload: bytes, t_ns: int) -> None:
        rec = self.rec
        rec.ev_t_ns.append(t_ns)
        if payload == b"[DONE]":
            self.done = True
            rec.t_done_ns = t_ns
            self._push(_DONE, 0, UNKNOWN)
            return
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._push(_OTHER, 0, UNKNOWN)
            return
        if not isinstance(obj, dict):
            self._push(_OTHER, 0, UNKNOWN)
            return
        usage = obj.get("usage")
        tokens_cum = UNKNOWN
        if isinstance(usage, dict):
            tokens_cum = self._take_usage(usage)
        choices = obj.get("choices")
        if not choices:
            err = obj.get("error")
            if err is not None:
                rec.outcome = Outcome.STREAM_ERROR.value
                rec.error = _error_text(orjson.dumps(obj))
                self._push(_ERROR, 0, tokens_cum)
            else:
                self._push(_USAGE if usage else _OTHER, 0, tokens_cum)
            return
        choice = choices[0]
        finish = choice.get("finish_reason")
        if finish:
            rec.finish_reason = str(finish)
        if self.chat:
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            extra = delta.get("reasoning_content") or delta.get("reasoning") or ""
            tools = delta.get("tool_calls")
            n = len(text) + len(extra) + (len(orjson.dumps(tools)) if tools else 0)
            if not n and "role" in delta and not finish:
                self._push(_ROLE, 0, tokens_cum)
                return
        else:
            text = choice.get("text") or ""
            extra = ""
            n = len(text)
        if self.text is not None and (text or extra):
            self.text.append(text)
        rec.output_chars += n
        self._push(_FINISH if (finish and not n) else _OUTPUT, n, tokens_cum)

    def _take_usage(self, usage: dict[str, Any]) -> int:
        rec = self.rec
        ct = usage.get("completion_tokens")
        pt = usage.get("prompt_tokens")
        if isinstance(pt, int):
            rec.usage_prompt_tokens = pt
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            rec.usage_cached_tokens = details["cached_tokens"]
        if isinstance(ct, int):
            rec.usage_completion_tokens = ct
            return ct
        return UNKNOWN

    def _push(self, kind: int, chars: int, tokens_cum: int) -> None:
        rec = self.rec
        rec.ev_kind.append(kind)
        rec.ev_chars.append(chars)
        rec.ev_tokens_cum.append(tokens_cum)


async def send_request(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    rec: RequestRecord,
    keep_text: bool = False,
) -> RequestRecord:
    """Send one request and record its timeline into ``rec`` (also returned).

    ``rec.t_start_ns``: before the request is handed to aiohttp. ``rec.t_send_ns``: when its
    body was written to the socket (with :func:`profiler.client.timed.send_trace` on the
    session; else equal to ``t_start_ns``). Each event's time is that of the socket read
    that completed it (:mod:`profiler.client.timed`).
    """
    sink = _EventSink(rec, target.is_chat, keep_text)
    timeout = aiohttp.ClientTimeout(total=target.request_timeout_s,
                                    sock_read=target.stall_timeout_s)
    try:
        # t_send_ns is stamped again by profiler.client.timed.send_trace when the body is on
        # the socket (sessions made by the driver have it); this is the fallback
        rec.t_start_ns = rec.t_send_ns = now_ns()
        async with session.post(target.url, data=body, headers=target.headers(rec.x_request_id),
                                timeout=timeout, trace_request_ctx=rec) as resp:
            rec.t_headers_ns = now_ns()
            rec.status = resp.status
            if resp.status != 200:
                raw = await resp.content.read(_MAX_ERROR_BODY_BYTES)
                rec.outcome = (Outcome.RATE_LIMITED if resp.status == 429
                               else Outcome.HTTP_ERROR).value
                rec.error = f"HTTP {resp.status}: {_error_text(raw)}"
            elif "text/event-stream" in resp.headers.get("Content-Type", ""):
                await _read_stream(resp, sink)
            else:
                raw = await resp.read()
                _read_json_body(raw, now_ns(), sink)
    except asyncio.CancelledError:
        rec.outcome = Outcome.CANCELLED.value
        rec.error = rec.error or "cancelled while in flight (run stopped)"
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        rec.outcome = Outcome.TIMEOUT.value
        stalled = isinstance(exc, aiohttp.SocketTimeoutError)
        rec.error = (f"no data for {target.stall_timeout_s:g} s (stalled stream)" if stalled
                     else f"request exceeded {target.request_timeout_s:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        rec.outcome = Outcome.CONNECTION_ERROR.value
        rec.error = redact_text(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]
    finally:
        rec.t_end_ns = now_ns()
        if sink.text is not None:
            rec.output_text = "".join(sink.text)
    return rec


async def _read_stream(resp: aiohttp.ClientResponse, sink: _EventSink) -> None:
    parser = SSEParser()
    content = resp.content
    clock = ArrivalClock(resp)
    while True:
        chunk = await content.readany()
        t = now_ns()
        if not chunk:
            break
        if not clock.exact:
            for payload in parser.feed(chunk):
                sink.add(payload, t)
            continue
        for t_arrival, piece in clock.slices(chunk, t):
            for payload in parser.feed(piece):
                sink.add(payload, t_arrival)
    for payload in parser.flush():
        sink.add(payload, now_ns())
    rec = sink.rec
    if rec.outcome == Outcome.SUCCESS.value and not sink.done:
        rec.outcome = Outcome.TRUNCATED.value
        rec.error = "stream ended without [DONE]"


def _read_json_body(raw: bytes, t_ns: int, sink: _EventSink) -> None:
    """A complete (non-streamed) JSON answer: one event at the time the body arrived."""
    rec = sink.rec
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        rec.outcome = Outcome.INVALID_RESPONSE.value
        rec.error = f"200 answer is neither SSE nor JSON: {_error_text(raw[:200])}"
        return
    if not isinstance(obj, dict) or not obj.get("choices"):
        rec.outcome = (Outcome.STREAM_ERROR if isinstance(obj, dict) and "error" in obj
                       else Outcome.INVALID_RESPONSE).value
        rec.error = _error_text(raw)
        return
    choice = obj["choices"][0]
    if sink.chat:
        msg = choice.get("message") or {}
        obj["choices"] = [{"delta": {"content": msg.get("content") or ""},
                           "finish_reason": choice.get("finish_reason")}]
    sink.add(orjson.dumps(obj), t_ns)
    sink.done = True
    rec.t_done_ns = t_ns
