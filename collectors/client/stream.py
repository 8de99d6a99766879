"""One request, timed event by event, ending as a classified :class:`RequestRecord`.

Nothing here raises for a bad server: every failure becomes an :class:`Outcome` with its
error text (secrets redacted). Only cancellation propagates, after the record is marked
``cancelled``, so the caller can still write it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import orjson

from collectors.client.sse import SSEParser
from collectors.client.target import Target
from collectors.client.timed import CLOCK_WAKEUP, ArrivalClock
from collectors.client.tokens import count_event_tokens
from servescope.clock import now_ns
from servescope.records import UNKNOWN, EventKind, Outcome, RequestRecord
from servescope.redact import redact_text

__all__ = ["MAX_ERROR_CHARS", "MAX_EVENT_BYTES", "send_request"]

MAX_ERROR_CHARS = 500
_MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_EVENT_BYTES = 16 << 20  # one SSE event (a line that never ends is cut here)
_OUTPUT, _ROLE, _USAGE, _ERROR, _DONE, _OTHER, _FINISH = (int(k) for k in EventKind)
_SUCCESS = Outcome.SUCCESS.value
_I32_MAX, _I64_MAX = 2**31 - 1, 2**63 - 1


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


class _BadShape(Exception):
    """Why one event (or answer) is valid JSON of the wrong shape."""


def _show(value: object) -> str:
    return orjson.dumps(value).decode()[:40]


def _count(v: object, where: str, hi: int) -> int:
    """A token count that failed the inline check: null is UNKNOWN, else why it is bad."""
    if v is None:
        return UNKNOWN
    if type(v) is not int:
        raise _BadShape(f"{where} is not an integer ({_show(v)})")
    if not 0 <= v <= hi:
        raise _BadShape(f"{where} out of range ({v}; expected 0 to {hi})")
    return v


def _text(v: object, where: str) -> str:
    """A text field that is not a str: null is "", anything else is why it is bad."""
    if v is None:
        return ""
    raise _BadShape(f"{where} is not a string ({_show(v)})")


def _object(v: object, where: str) -> dict[str, Any]:
    """An object field that is not a dict: null is {}, anything else is why it is bad."""
    if v is None:
        return {}
    raise _BadShape(f"{where} is not an object ({_show(v)})")


class _EventSink:
    """Turns decoded event payloads into the record's parallel event columns.

    The four columns of an event are appended together, after the event has been read, so
    they stay aligned whatever the payload holds. An event that is valid JSON of the wrong
    shape (``"choices": [1]``, ``"text": 5``, a token count out of int32 range…) is kept on
    the timeline as ``OTHER`` and makes the request ``invalid_response``; the first such
    problem is the one in ``error``.
    """

    __slots__ = ("chat", "done", "ev_text", "rec", "text")

    def __init__(self, rec: RequestRecord, chat: bool, keep_text: bool,
                 count_tokens: bool = False) -> None:
        self.rec = rec
        self.chat = chat
        self.done = False
        self.text: list[str] | None = [] if keep_text else None
        # (event index, its generated text) for the client's own token count
        self.ev_text: list[tuple[int, str]] | None = [] if count_tokens else None

    def add(self, payload: bytes, t_ns: int, lag_ns: int = -1) -> None:
        if payload == b"[DONE]":
            self.done = True
            self.rec.t_done_ns = t_ns
            self._push(t_ns, _DONE, 0, UNKNOWN, lag_ns)
            return
        try:
            obj = orjson.loads(payload)
            if type(obj) is dict:
                self._decode(obj, t_ns, lag_ns)
                return
        except orjson.JSONDecodeError:
            pass
        except _BadShape as exc:
            self.invalid(f"event {len(self.rec.ev_kind)}: {exc}")
        self._push(t_ns, _OTHER, 0, UNKNOWN, lag_ns)  # not an object, not JSON, or a bad shape

    def invalid(self, reason: str) -> None:
        """Mark the request ``invalid_response`` unless it already failed otherwise."""
        rec = self.rec
        if rec.outcome == _SUCCESS:
            rec.outcome = Outcome.INVALID_RESPONSE.value
            rec.error = redact_text(reason)[:MAX_ERROR_CHARS]

    def _decode(self, obj: dict[str, Any], t_ns: int, lag_ns: int) -> None:
        """Record one event object. Every field it reads is checked before the record
        changes (:class:`_BadShape` leaves it as it was). The checks are inline
        ``type() is`` tests on the hot path; the helpers only run for null or bad values."""
        rec = self.rec
        ct = pt = cached = UNKNOWN
        usage = obj.get("usage")
        if usage is not None:
            if type(usage) is not dict:
                _object(usage, "usage")
            ct = usage.get("completion_tokens")
            if type(ct) is not int or not 0 <= ct <= _I32_MAX:  # tokens_cum is int32
                ct = _count(ct, "usage.completion_tokens", _I32_MAX)
            pt = usage.get("prompt_tokens")
            if type(pt) is not int or not 0 <= pt <= _I64_MAX:
                pt = _count(pt, "usage.prompt_tokens", _I64_MAX)
            details = usage.get("prompt_tokens_details")
            if type(details) is dict:
                cached = _count(details.get("cached_tokens"),
                                "usage.prompt_tokens_details.cached_tokens", _I64_MAX)
        choices = obj.get("choices")
        if type(choices) is not list and choices is not None:
            raise _BadShape(f"choices is not a list ({_show(choices)})")
        kind, n, text, finish = (_USAGE if usage else _OTHER), 0, "", ""
        if choices:
            kind, n, text, finish, reasoning = self._choice(choices[0])
            if reasoning and self.ev_text is not None:
                self.ev_text.append((len(rec.ev_kind), reasoning))
        elif obj.get("error") is not None:
            kind = _ERROR
            if rec.outcome == _SUCCESS:
                rec.outcome = Outcome.STREAM_ERROR.value
                rec.error = _error_text(orjson.dumps(obj))
        if ct != UNKNOWN:
            rec.usage_completion_tokens = ct
        if pt != UNKNOWN:
            rec.usage_prompt_tokens = pt
        if cached != UNKNOWN:
            rec.usage_cached_tokens = cached
        if finish:
            rec.finish_reason = finish
        if text:
            if self.text is not None:
                self.text.append(text)
            if self.ev_text is not None:
                self.ev_text.append((len(rec.ev_kind), text))
        rec.output_chars += n
        rec.ev_t_ns.append(t_ns)
        rec.ev_kind.append(kind)
        rec.ev_chars.append(n)
        rec.ev_tokens_cum.append(ct)
        rec.ev_lag_ns.append(lag_ns)

    def _choice(self, choice: object) -> tuple[int, int, str, str, str]:
        """(kind, chars, text to keep, finish_reason, reasoning text) of ``choices[0]``."""
        if type(choice) is not dict:
            raise _BadShape(f"choices[0] is not an object ({_show(choice)})")
        finish = choice.get("finish_reason")
        if finish is None:
            finish = ""
        elif type(finish) is not str:
            _text(finish, "choices[0].finish_reason")
        if not self.chat:
            text = choice.get("text")
            if type(text) is not str:
                text = _text(text, "choices[0].text")
            return (_FINISH if (finish and not text) else _OUTPUT), len(text), text, finish, ""
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = _object(delta, "choices[0].delta")
        text = delta.get("content")
        if type(text) is not str:
            text = _text(text, "choices[0].delta.content")
        extra = delta.get("reasoning_content")
        if extra is not None and type(extra) is not str:
            _text(extra, "choices[0].delta.reasoning_content")
        other = delta.get("reasoning")
        if other is not None and type(other) is not str:
            _text(other, "choices[0].delta.reasoning")
        tools = delta.get("tool_calls")
        if tools is not None and type(tools) is not list:
            raise _BadShape(f"choices[0].delta.tool_calls is not a list ({_show(tools)})")
        n = len(text) + len(extra or other or "") + (len(orjson.dumps(tools)) if tools else 0)
        if not n and "role" in delta and not finish:
            return _ROLE, 0, "", "", ""
        return (_FINISH if (finish and not n) else _OUTPUT), n, text, finish, extra or other or ""

    def _push(self, t_ns: int, kind: int, chars: int, tokens_cum: int, lag_ns: int) -> None:
        rec = self.rec
        rec.ev_t_ns.append(t_ns)
        rec.ev_kind.append(kind)
        rec.ev_chars.append(chars)
        rec.ev_tokens_cum.append(tokens_cum)
        rec.ev_lag_ns.append(lag_ns)


async def send_request(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    rec: RequestRecord,
    keep_text: bool = False,
) -> RequestRecord:
    """Send one request and record its timeline into ``rec`` (also returned).

    ``rec.t_start_ns``: before the request is handed to aiohttp. ``rec.t_send_ns``: when its
    body was written to the socket (with :func:`collectors.client.timed.send_trace` on the
    session; else equal to ``t_start_ns``). Each event's time is that of the socket read
    that completed it (:mod:`collectors.client.timed`).

    Bounds (a hostile server can hold no request longer, nor grow its memory further):
    ``request_timeout_s`` in all; for a streamed request, ``stall_timeout_s`` between two
    reads and also for the whole header phase (aiohttp's read timeout restarts at every byte,
    so a server trickling its headers would otherwise hold the request for
    ``request_timeout_s``); ``target.max_response_bytes`` for a non-streamed answer and
    :data:`MAX_EVENT_BYTES` (or the smaller ``max_response_bytes``) for one SSE event.
    """
    sink = _EventSink(rec, target.is_chat, keep_text, target.tokenizer is not None)
    timeout = aiohttp.ClientTimeout(total=target.request_timeout_s,
                                    sock_read=target.stall_timeout_s)
    # non-streamed answers send their headers with the whole answer: the total bounds them
    headers_by = asyncio.timeout(target.stall_timeout_s if target.stream else None)
    try:
        # t_send_ns is stamped again by collectors.client.timed.send_trace when the body is on
        # the socket (sessions made by the driver have it); this is the fallback
        rec.t_start_ns = rec.t_send_ns = now_ns()
        async with contextlib.AsyncExitStack() as stack:
            async with headers_by:
                resp = await stack.enter_async_context(session.post(
                    target.url, data=body, headers=target.headers(rec.x_request_id),
                    timeout=timeout, trace_request_ctx=rec))
            await _read_answer(resp, target, sink)
    except asyncio.CancelledError:
        rec.outcome = Outcome.CANCELLED.value
        rec.error = rec.error or "cancelled while in flight (run stopped)"
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        rec.outcome = Outcome.TIMEOUT.value
        if headers_by.expired():
            rec.error = f"no response headers within {target.stall_timeout_s:g} s"
        elif isinstance(exc, aiohttp.SocketTimeoutError):
            rec.error = f"no data for {target.stall_timeout_s:g} s (stalled stream)"
        else:
            rec.error = f"request exceeded {target.request_timeout_s:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        rec.outcome = Outcome.CONNECTION_ERROR.value
        rec.error = redact_text(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_CHARS]
    finally:
        rec.t_end_ns = now_ns()
        if sink.text is not None:
            rec.output_text = "".join(sink.text)
    if sink.ev_text is not None and target.tokenizer is not None:
        count_event_tokens(rec, sink.ev_text, target.tokenizer)
    return rec


async def _read_answer(resp: aiohttp.ClientResponse, target: Target, sink: _EventSink
                       ) -> None:
    rec = sink.rec
    rec.t_headers_ns = now_ns()
    rec.status = resp.status
    if resp.status != 200:
        raw = await resp.content.read(_MAX_ERROR_BODY_BYTES)
        rec.outcome = (Outcome.RATE_LIMITED if resp.status == 429
                       else Outcome.HTTP_ERROR).value
        rec.error = f"HTTP {resp.status}: {_error_text(raw)}"
    elif "text/event-stream" in resp.headers.get("Content-Type", ""):
        await _read_stream(resp, sink, min(MAX_EVENT_BYTES, target.max_response_bytes),
                           target.done_marker)
    else:
        whole = await _read_capped(resp, target.max_response_bytes)
        if whole is None:
            sink.invalid(f"answer larger than {target.max_response_bytes:,} bytes")
            resp.close()  # drop the connection: the rest of the answer is never read
        else:
            sink.rec.ev_clock = CLOCK_WAKEUP
            _read_json_body(whole, now_ns(), sink)


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed ``max_bytes`` (from its
    Content-Length, else after reading ``max_bytes + 1``): peak memory about twice the cap."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        return None
    parts: list[bytes] = []
    size = 0
    while True:
        piece = await resp.content.read(max_bytes + 1 - size)
        if not piece:
            return b"".join(parts)
        size += len(piece)
        if size > max_bytes:
            return None
        parts.append(piece)


async def _read_stream(resp: aiohttp.ClientResponse, sink: _EventSink, max_event_bytes: int,
                       done_marker: bool = True) -> None:
    """Read SSE events until the body ends. A stream is complete with ``[DONE]``; for a
    server that never sends it (``done_marker=False``: transformers serve), with a
    ``finish_reason`` and then the end of the body."""
    parser = SSEParser()
    content = resp.content
    clock = ArrivalClock(resp)
    sink.rec.ev_clock = clock.clock
    while True:
        chunk = await content.readany()
        t = now_ns()
        if not chunk:
            break
        if not clock.exact:
            for payload in parser.feed(chunk):
                sink.add(payload, t)
        else:
            for t_arrival, lag, piece in clock.slices(chunk, t):
                for payload in parser.feed(piece):
                    sink.add(payload, t_arrival, lag)
        if parser.pending_bytes > max_event_bytes:
            sink.invalid(f"event {len(sink.rec.ev_kind)}: larger than {max_event_bytes:,} "
                         "bytes (no blank line ends it)")
            resp.close()  # drop the connection: the rest of the stream is never read
            return
    for payload in parser.flush():
        sink.add(payload, now_ns())
    rec = sink.rec
    if rec.outcome == _SUCCESS and not sink.done:
        if not done_marker and rec.finish_reason:
            return
        rec.outcome = Outcome.TRUNCATED.value
        rec.error = ("stream ended without [DONE]" if done_marker
                     else "stream ended before a finish_reason")


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
    if sink.chat:
        try:
            obj["choices"] = [_chat_as_delta(obj["choices"])]
        except _BadShape as exc:
            sink.invalid(f"answer: {exc}")
            return
    sink.add(orjson.dumps(obj), t_ns)
    sink.done = True
    rec.t_done_ns = t_ns


def _chat_as_delta(choices: object) -> dict[str, Any]:
    """A chat answer's ``choices[0].message`` as a streamed event's ``delta``."""
    if type(choices) is not list:
        raise _BadShape(f"choices is not a list ({_show(choices)})")
    choice = choices[0]
    if type(choice) is not dict:
        raise _BadShape(f"choices[0] is not an object ({_show(choice)})")
    msg = choice.get("message")
    if type(msg) is not dict:
        msg = _object(msg, "choices[0].message")
    content = msg.get("content")
    if type(content) is not str:
        content = _text(content, "choices[0].message.content")
    return {"delta": {"content": content}, "finish_reason": choice.get("finish_reason")}
