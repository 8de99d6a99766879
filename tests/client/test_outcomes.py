"""Every well-formed, malformed and failing stream ends as a recorded, classified outcome.

Each case runs against the real reference server (a subprocess on loopback) with the fault
or format variant named in ``servescope_ref``; the server's own truth says what was sent.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from collectors.client.stream import send_request
from collectors.client.target import Target
from profiler.selftest.process import RefServerHandle
from servescope.records import EventKind, Outcome, RequestRecord

_counter = iter(range(10**6))


async def _send(url: str, ref: dict[str, Any] | None = None, *, chat: bool = False,
                max_tokens: int = 8, keep_text: bool = False, **target_kw: Any
                ) -> RequestRecord:
    extra = {"servescope_ref": ref} if ref else {}
    target = Target(base_url=url, model="ref", endpoint="chat" if chat else "completions",
                    extra_body=extra, **target_kw)
    rid = next(_counter)
    rec = RequestRecord(request_id=rid, x_request_id=f"oc-{rid}-{id(ref)}")
    async with aiohttp.ClientSession() as http:
        await send_request(http, target, target.body("hello there", max_tokens), rec,
                           keep_text=keep_text)
    return rec


def _truth(server: RefServerHandle, rec: RequestRecord) -> dict[str, Any]:
    (t,) = server.truth(rec.x_request_id)
    return t


def _kinds(rec: RequestRecord) -> list[EventKind]:
    return [EventKind(k) for k in rec.ev_kind]


def _output_chars(rec: RequestRecord) -> list[int]:
    return [c for c, k in zip(rec.ev_chars, rec.ev_kind, strict=True) if k == EventKind.OUTPUT]


async def test_completions_success_matches_truth(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url)
    t = _truth(refserver, rec)
    assert rec.outcome == Outcome.SUCCESS.value
    assert rec.status == 200
    assert rec.t_send_ns < rec.t_headers_ns <= rec.ev_t_ns[0] <= rec.t_done_ns <= rec.t_end_ns
    assert _kinds(rec)[-2:] == [EventKind.USAGE, EventKind.DONE]
    assert _output_chars(rec) == [c for c, k in zip(t["chars"], t["kinds"], strict=True)
                                  if k == "output"]
    assert rec.usage_completion_tokens == 8
    assert rec.finish_reason == "length"
    # continuous usage: cumulative tokens on every output event, 1..8
    toks = [n for n, k in zip(rec.ev_tokens_cum, rec.ev_kind, strict=True)
            if k == EventKind.OUTPUT]
    assert toks == list(range(1, 9))


async def test_chat_role_chunk_first_and_text_kept(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, chat=True, keep_text=True)
    assert rec.outcome == Outcome.SUCCESS.value
    assert _kinds(rec)[0] == EventKind.ROLE
    assert rec.ev_chars[0] == 0
    assert rec.output_text is not None
    assert len(rec.output_text) == rec.output_chars > 0


@pytest.mark.parametrize("fmt", ["crlf", "nospace", "trailing_space", "comments", "coalesce",
                                 "split_writes", "partial_utf8"])
async def test_format_variants_parse_like_plain_vllm(refserver: RefServerHandle, fmt: str
                                                     ) -> None:
    rec = await _send(refserver.url, {"fault": fmt}, chat=True)
    t = _truth(refserver, rec)
    assert rec.outcome == Outcome.SUCCESS.value, rec.error
    assert rec.t_done_ns > 0
    truth_out = [c for c, k in zip(t["chars"], t["kinds"], strict=True) if k == "output"]
    assert _output_chars(rec) == truth_out
    assert rec.output_chars == sum(truth_out)
    assert rec.usage_completion_tokens == sum(t["tokens"])


async def test_events_of_one_read_share_their_arrival_time(refserver: RefServerHandle
                                                           ) -> None:
    rec = await _send(refserver.url, {"fault": "coalesce", "itl_ms": 3})
    assert rec.outcome == Outcome.SUCCESS.value
    out_t = [t for t, k in zip(rec.ev_t_ns, rec.ev_kind, strict=True) if k == EventKind.OUTPUT]
    assert len(set(out_t)) < len(out_t)  # several events per write: shared timestamps


async def test_usage_only_chunk_is_not_output(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url)
    usage = [i for i, k in enumerate(rec.ev_kind) if k == EventKind.USAGE]
    assert len(usage) == 1
    assert rec.ev_chars[usage[0]] == 0


async def test_no_usage_anywhere(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"fault": "no_usage"})
    assert rec.outcome == Outcome.SUCCESS.value
    assert rec.usage_completion_tokens == -1
    assert set(rec.ev_tokens_cum) == {-1}


async def test_error_event_mid_stream(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"fault": "error_event", "fault_after": 3})
    assert rec.outcome == Outcome.STREAM_ERROR.value
    assert rec.error
    assert _kinds(rec).count(EventKind.OUTPUT) == 3
    assert EventKind.ERROR in _kinds(rec)


async def test_error_event_then_done_is_still_an_error(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"fault": "error_event_done", "fault_after": 2})
    assert rec.outcome == Outcome.STREAM_ERROR.value
    assert rec.t_done_ns > 0


@pytest.mark.parametrize(("fault", "outcome", "status"), [
    ("http_500", Outcome.HTTP_ERROR, 500), ("http_400", Outcome.HTTP_ERROR, 400),
    ("http_429", Outcome.RATE_LIMITED, 429)])
async def test_non_200_keeps_status_and_message(refserver: RefServerHandle, fault: str,
                                                outcome: Outcome, status: int) -> None:
    rec = await _send(refserver.url, {"fault": fault})
    assert rec.outcome == outcome.value
    assert rec.status == status
    assert rec.error.startswith(f"HTTP {status}: ")
    assert len(rec.error) > len("HTTP 500: ")
    assert rec.ev_t_ns == []


async def test_connection_reset_mid_stream_keeps_events(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"fault": "reset", "fault_after": 4})
    assert rec.outcome == Outcome.CONNECTION_ERROR.value
    assert _kinds(rec).count(EventKind.OUTPUT) == 4
    assert rec.error


async def test_stream_without_done_is_truncated(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"fault": "truncate", "fault_after": 5})
    assert rec.outcome == Outcome.TRUNCATED.value
    assert rec.t_done_ns == -1
    assert _kinds(rec).count(EventKind.OUTPUT) == 5


async def test_stalled_stream_times_out(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"fault": "stall", "fault_after": 2}, stall_timeout_s=0.3)
    assert rec.outcome == Outcome.TIMEOUT.value
    assert "stalled" in rec.error
    assert _kinds(rec).count(EventKind.OUTPUT) == 2
    assert 0.25e9 < rec.t_end_ns - rec.ev_t_ns[-1] < 2e9


async def test_request_timeout(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, {"itl_ms": 100, "output_tokens": 50},
                      request_timeout_s=0.4, max_tokens=50)
    assert rec.outcome == Outcome.TIMEOUT.value
    assert "exceeded" in rec.error
    assert 0 < _kinds(rec).count(EventKind.OUTPUT) < 50


async def test_non_streaming_answer(refserver: RefServerHandle) -> None:
    rec = await _send(refserver.url, stream=False, chat=True)
    assert rec.outcome == Outcome.SUCCESS.value
    assert _kinds(rec) == [EventKind.OUTPUT]
    assert rec.usage_completion_tokens == 8


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    rec = await _send(f"http://127.0.0.1:{port}")
    assert rec.outcome == Outcome.CONNECTION_ERROR.value
    assert rec.status == -1


async def _odd_server(body: bytes, content_type: str) -> tuple[web.AppRunner, str]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_200_neither_sse_nor_json_is_invalid() -> None:
    runner, url = await _odd_server(b"<html>oops</html>", "text/html")
    try:
        rec = await _send(url)
    finally:
        await runner.cleanup()
    assert rec.outcome == Outcome.INVALID_RESPONSE.value
    assert "neither SSE nor JSON" in rec.error


async def test_unparseable_event_is_recorded_not_fatal() -> None:
    body = b'data: {"choices":[{"text":"a"}]}\n\ndata: {broken\n\ndata: [DONE]\n\n'
    runner, url = await _odd_server(body, "text/event-stream")
    try:
        rec = await _send(url)
    finally:
        await runner.cleanup()
    assert rec.outcome == Outcome.SUCCESS.value
    assert _kinds(rec) == [EventKind.OUTPUT, EventKind.OTHER, EventKind.DONE]


async def test_secrets_never_reach_the_record() -> None:
    body = b'{"error": {"message": "bad key sk-abcdefghijklmnopqrstuv for Bearer abcdef123456"}}'

    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=401, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        rec = await _send(f"http://127.0.0.1:{runner.addresses[0][1]}", api_key="sk-secret-key")
    finally:
        await runner.cleanup()
    assert rec.outcome == Outcome.HTTP_ERROR.value
    assert "abcdefghijklmnop" not in rec.error
    assert "abcdef123456" not in rec.error


async def test_cancellation_marks_record_and_propagates(refserver: RefServerHandle) -> None:
    rec = RequestRecord(request_id=1, x_request_id="cancel-me")
    target = Target(base_url=refserver.url, model="ref",
                    extra_body={"servescope_ref": {"itl_ms": 50, "output_tokens": 40}})
    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(send_request(http, target, target.body("x", 40), rec))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert rec.outcome == Outcome.CANCELLED.value
    assert rec.t_end_ns > 0
    assert 0 < _kinds(rec).count(EventKind.OUTPUT) < 40
