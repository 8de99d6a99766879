"""Every fault produces exactly its documented bytes or behaviour."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from tests.selftest.helpers import (
    chat_body,
    completions_body,
    raw_post,
    sse_blocks,
    sse_json,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def _ref(fault: str, **kw: object) -> dict[str, object]:
    return {"fault": fault, **kw}


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        ("http_500", 500, "InternalServerError"),
        ("http_429", 429, "RateLimitError"),
        ("http_400", 400, "BadRequestError"),
    ],
)
async def test_http_faults_answer_at_once_with_openai_error(ref, fault, status, kind):
    resp = await raw_post(ref.url, CHAT, chat_body(servescope_ref=_ref(fault)))
    assert resp.status == status
    assert resp.headers["content-type"].startswith("application/json")
    err = orjson.loads(resp.body)["error"]
    assert err == {
        "message": f"refserver injected fault: {fault}",
        "type": kind,
        "param": None,
        "code": status,
    }
    rec = ref.state.truth.records()[-1]
    assert rec.status == status
    assert rec.ended == "fault"
    assert rec.t_event_ns == []


@pytest.mark.parametrize(("fault", "done"), [("error_event", False), ("error_event_done", True)])
async def test_error_event_mid_stream_then_clean_close(ref, fault, done):
    body = completions_body(8, servescope_ref=_ref(fault, fault_after=2))
    resp = await raw_post(ref.url, COMPLETIONS, body)
    assert resp.status == 200
    assert resp.complete  # the chunked body ends properly
    events = sse_json(resp.body)
    assert [e["choices"][0]["text"] for e in events[:2]] == [" t0", " t1"]
    assert events[2]["error"]["code"] == 500
    assert events[2]["error"]["type"] == "InternalServerError"
    assert events[3:] == (["[DONE]"] if done else [])
    rec = ref.state.truth.records()[-1]
    assert rec.kinds == ["output", "output", "error"] + (["done"] if done else [])


async def test_truncate_ends_cleanly_without_done(ref):
    body = chat_body(
        8, stream_options={"include_usage": True}, servescope_ref=_ref("truncate", fault_after=3)
    )
    resp = await raw_post(ref.url, CHAT, body)
    assert resp.complete
    assert resp.error == ""
    events = sse_json(resp.body)
    assert len(events) == 4  # role + 3 content events; no usage, no [DONE]
    assert b"[DONE]" not in resp.body


async def test_truncate_after_the_last_event_drops_only_usage_and_done(ref):
    body = completions_body(
        3, stream_options={"include_usage": True}, servescope_ref=_ref("truncate", fault_after=99)
    )
    events = sse_json((await raw_post(ref.url, COMPLETIONS, body)).body)
    assert [e["choices"][0]["finish_reason"] for e in events] == [None, None, "length"]


async def test_reset_aborts_the_connection(ref):
    body = completions_body(8, servescope_ref=_ref("reset", fault_after=2, itl_ms=5))
    resp = await raw_post(ref.url, COMPLETIONS, body)
    assert resp.error == "reset"
    assert not resp.complete
    assert [e["choices"][0]["text"] for e in sse_json(resp.body)] == [" t0", " t1"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(ref.url + COMPLETIONS, json=body) as r,
    ):
        assert r.status == 200
        with pytest.raises(aiohttp.ClientError):
            await r.read()
    rec = ref.state.truth.records()[-1]
    assert rec.ended == "fault"
    assert rec.kinds == ["output", "output"]


async def test_stall_hangs_until_the_client_gives_up(ref):
    body = completions_body(8, servescope_ref=_ref("stall", fault_after=1))
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(ref.url + COMPLETIONS, json=body) as r,
    ):
        first = await r.content.readuntil(b"\n\n")
        assert b'"text":" t0"' in first
        with pytest.raises(asyncio.TimeoutError):
            await r.read()
    rec = ref.state.truth.records()[-1]
    for _ in range(50):
        if rec.t_done_ns > 0:
            break
        await asyncio.sleep(0.01)
    assert rec.ended == "fault"
    assert rec.t_done_ns - rec.t_event_ns[-1] >= 200_000_000  # held until the client left


async def test_no_usage_ignores_stream_options(ref):
    opts = {"include_usage": True, "continuous_usage_stats": True}
    body = chat_body(3, stream_options=opts, servescope_ref=_ref("no_usage"))
    events = sse_json((await raw_post(ref.url, CHAT, body)).body)
    assert events[-1] == "[DONE]"
    assert len(events) == 5
    assert not any("usage" in e for e in events[:-1])
    body["stream"] = False
    doc = orjson.loads((await raw_post(ref.url, CHAT, body)).body)
    assert "usage" not in doc


async def test_crlf_uses_crlf_line_endings_only(ref):
    body = completions_body(3, servescope_ref=_ref("crlf"))
    raw = (await raw_post(ref.url, COMPLETIONS, body)).body
    assert raw.count(b"\r\n\r\n") == 4
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert len(sse_json(raw)) == 4


async def test_nospace_and_trailing_space(ref):
    raw = (
        await raw_post(ref.url, COMPLETIONS, completions_body(2, servescope_ref=_ref("nospace")))
    ).body
    assert raw.startswith(b'data:{"id"')
    assert raw.endswith(b"}\n\ndata:[DONE]\n\n")
    raw = (
        await raw_post(
            ref.url, COMPLETIONS, completions_body(2, servescope_ref=_ref("trailing_space"))
        )
    ).body
    assert raw.count(b"} \n\n") == 2  # TensorRT-LLM style
    assert raw.endswith(b"} \n\ndata: [DONE]\n\n")
    assert len(sse_json(raw)) == 3


async def test_comments_keepalive_and_pings(ref):
    resp = await raw_post(ref.url, CHAT, chat_body(2, servescope_ref=_ref("comments")))
    assert resp.chunks[0] == b": keep-alive\n\n"  # its own write, right after the headers
    assert resp.body.count(b": ping\n\n") == 4  # before role, 2 content events, [DONE]
    firsts = [block[0][:8] for block in sse_blocks(resp.body)]
    assert firsts[:4] == [b": keep-a", b": ping", b'data: {"', b": ping"]
    assert len(sse_json(resp.body)) == 4


async def test_split_writes_split_utf8_characters_across_writes(ref):
    body = completions_body(6, servescope_ref=_ref("split_writes"))
    resp = await raw_post(ref.url, COMPLETIONS, body)
    rec = ref.state.truth.records()[-1]
    assert [len(c) for c in resp.chunks] == [n for pieces in rec.pieces for n in pieces]
    assert all(len(p) >= 2 for p in rec.pieces)
    mid_char = [c for c in resp.chunks if c[0] & 0xC0 == 0x80]
    assert len(mid_char) >= 4  # "é", "中", "\ufffd", "🙂" ... each cut inside the character
    assert resp.reads > len(rec.pieces)  # the pauses make pieces arrive as separate reads
    texts = [e["choices"][0]["text"] for e in sse_json(resp.body)[:-1]]
    assert texts == [" é0", "中", "", "\ufffd3", "🙂", " ü5"]
    assert rec.chars == [len(t) for t in texts] + [0]


async def test_coalesce_puts_several_events_in_one_write(ref):
    body = completions_body(8, servescope_ref=_ref("coalesce"))
    resp = await raw_post(ref.url, COMPLETIONS, body)
    assert [c.count(b"data: ") for c in resp.chunks] == [4, 4, 1]


async def test_partial_utf8_text_and_truth_chars(ref):
    body = chat_body(12, servescope_ref=_ref("partial_utf8", tokens_per_event=2))
    resp = await raw_post(ref.url, CHAT, body)
    texts = [e["choices"][0]["delta"]["content"] for e in sse_json(resp.body)[1:-1]]
    assert texts == [" é0中", "\ufffd3", "🙂 ü5", " é6中", "\ufffd9", "🙂 ü11"]
    rec = ref.state.truth.records()[-1]
    assert rec.chars[1:-1] == [len(t) for t in texts]
    assert rec.tokens[1:-1] == [2] * 6


async def test_nonstream_truncate_sends_half_the_promised_body(ref):
    body = completions_body(4, stream=False, servescope_ref=_ref("truncate"))
    resp = await raw_post(ref.url, COMPLETIONS, body)
    assert resp.status == 200
    assert not resp.complete
    assert 0 < len(resp.body) < int(resp.headers["content-length"])


async def test_nonstream_reset_and_error_event(ref):
    body = completions_body(4, stream=False, servescope_ref=_ref("reset"))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(ref.url + COMPLETIONS, json=body) as r:
                await r.read()
        body["servescope_ref"] = _ref("error_event")
        async with session.post(ref.url + COMPLETIONS, json=body) as r:
            assert r.status == 500
            assert (await r.json())["error"]["code"] == 500
