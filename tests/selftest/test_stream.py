"""Normal (fault-free) responses of the reference server, read as raw bytes."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import orjson
import pytest

from tests.selftest.helpers import (
    chat_body,
    completions_body,
    raw_post,
    sse_data,
    sse_json,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


async def test_chat_stream_framing_matches_vllm(ref):
    resp = await raw_post(
        ref.url, CHAT, chat_body(3, stream_options={"include_usage": True}), {"x-request-id": "c1"}
    )
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.headers["x-request-id"] == "c1"
    events = sse_json(resp.body)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [e["choices"][0]["delta"]["content"] for e in events[1:4]] == [" t0", " t1", " t2"]
    assert [e["choices"][0]["finish_reason"] for e in events[1:4]] == [None, None, "length"]
    assert events[4]["choices"] == []
    assert events[4]["usage"] == {"prompt_tokens": 3, "total_tokens": 6, "completion_tokens": 3}
    assert events[5] == "[DONE]"
    assert len(events) == 6
    assert resp.body.endswith(b"\n\ndata: [DONE]\n\n")
    assert len({e["id"] for e in events[:5]}) == 1


async def test_completions_stream_has_no_role_chunk_and_no_usage_unless_asked(ref):
    resp = await raw_post(ref.url, COMPLETIONS, completions_body(2))
    events = sse_json(resp.body)
    assert [e["choices"][0]["text"] for e in events[:2]] == [" t0", " t1"]
    assert events[1]["choices"][0]["finish_reason"] == "length"
    assert events[0]["object"] == "text_completion"
    assert events[2:] == ["[DONE]"]


async def test_continuous_usage_is_cumulative_on_every_chunk(ref):
    opts = {"include_usage": True, "continuous_usage_stats": True}
    body = chat_body(7, stream_options=opts, servescope_ref={"tokens_per_event": 3})
    events = sse_json((await raw_post(ref.url, CHAT, body)).body)
    assert events[-1] == "[DONE]"
    usage = [e["usage"]["completion_tokens"] for e in events[:-1]]
    assert usage == [0, 3, 6, 7, 7]  # role, 3 content events (3+3+1), final usage chunk
    assert all(e["usage"]["prompt_tokens"] == 3 for e in events[:-1])
    assert all(
        e["usage"]["total_tokens"] == 3 + e["usage"]["completion_tokens"] for e in events[:-1]
    )


@pytest.mark.parametrize(
    ("max_tokens", "ref_fields", "texts"),
    [
        (5, {}, [" t0", " t1", " t2", " t3", " t4"]),
        (5, {"tokens_per_event": 2}, [" t0 t1", " t2 t3", " t4"]),
        (5, {"first_event_tokens": 4, "tokens_per_event": 2}, [" t0 t1 t2 t3", " t4"]),
        (50, {"output_tokens": 2}, [" t0", " t1"]),
    ],
)
async def test_token_counts_honour_max_tokens_and_tokens_per_event(
    ref, max_tokens, ref_fields, texts
):
    body = completions_body(
        max_tokens, servescope_ref=ref_fields, stream_options={"include_usage": True}
    )
    events = sse_json((await raw_post(ref.url, COMPLETIONS, body)).body)
    assert [e["choices"][0]["text"] for e in events[:-2]] == texts
    assert events[-2]["usage"]["completion_tokens"] == sum(t.count(" t") for t in texts)


async def test_eos_after_stops_early_unless_ignore_eos(ref):
    body = completions_body(10, servescope_ref={"eos_after": 3})
    events = sse_json((await raw_post(ref.url, COMPLETIONS, body)).body)
    assert len(events) == 4
    assert events[2]["choices"][0]["finish_reason"] == "stop"
    body["ignore_eos"] = True
    events = sse_json((await raw_post(ref.url, COMPLETIONS, body)).body)
    assert len(events) == 11
    assert events[9]["choices"][0]["finish_reason"] == "length"


async def test_events_per_write_batches_events_into_one_chunk(ref):
    body = completions_body(8, servescope_ref={"events_per_write": 4, "itl_ms": 0})
    resp = await raw_post(ref.url, COMPLETIONS, body)
    sizes = [len(sse_data(c)) for c in resp.chunks]
    assert sizes == [4, 4, 1]  # 8 content events in two writes, then [DONE]
    truth = ref.state.truth.records()[-1]
    assert truth.t_event_ns[:4] == [truth.t_event_ns[0]] * 4
    assert truth.t_event_ns[4:8] == [truth.t_event_ns[4]] * 4


async def test_nonstream_returns_one_complete_body_with_usage(ref):
    for path, body in ((CHAT, chat_body(4)), (COMPLETIONS, completions_body(4))):
        body["stream"] = False
        resp = await raw_post(ref.url, path, body)
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("application/json")
        doc = orjson.loads(resp.body)
        choice = doc["choices"][0]
        text = choice["message"]["content"] if path == CHAT else choice["text"]
        assert text == " t0 t1 t2 t3"
        assert choice["finish_reason"] == "length"
        assert doc["usage"]["completion_tokens"] == 4


async def test_models_health_and_truth_endpoints(ref):
    async with aiohttp.ClientSession() as session:
        async with session.get(ref.url + "/health") as r:
            assert r.status == 200
        async with session.get(ref.url + "/v1/models") as r:
            models = await r.json()
        assert models["object"] == "list"
        assert models["data"][0]["id"] == "ref"
        body = chat_body(2)
        async with session.post(ref.url + CHAT, json=body, headers={"x-request-id": "q"}) as r:
            await r.read()
        async with session.get(ref.url + "/_truth", params={"request_id": "q"}) as r:
            (rec,) = await r.json()
        assert rec["kinds"] == ["role", "output", "output", "done"]
        assert rec["tokens"] == [0, 1, 1, 0]
        assert rec["chars"] == [0, 3, 3, 0]
        assert rec["ended"] == "complete"
        async with session.post(ref.url + "/_truth/reset") as r:
            assert (await r.json())["cleared"] == 1
        async with session.get(ref.url + "/_truth") as r:
            assert await r.json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "prompt": "x", "max_tokens": 0},
        {"model": "m", "prompt": "x", "servescope_ref": {"ttft_ms": -1}},
        {"model": "m", "prompt": ["a", "b"]},
        {"model": "m", "prompt": "x", "n": 2},
    ],
)
async def test_bad_requests_get_400_with_openai_error(ref, body):
    resp = await raw_post(ref.url, COMPLETIONS, body)
    assert resp.status == 400
    err = orjson.loads(resp.body)["error"]
    assert err["type"] == "BadRequestError"
    assert err["code"] == 400
    assert err["message"]


async def test_client_leaving_mid_stream_is_recorded_quietly(ref, caplog):
    body = completions_body(50, servescope_ref={"itl_ms": 2})
    async with (
        aiohttp.ClientSession() as session,
        session.post(ref.url + COMPLETIONS, json=body, headers={"x-request-id": "gone"}) as r,
    ):
        await r.content.readuntil(b"\n\n")
        r.close()  # drop the connection after the first event
    rec = ref.state.truth.records("gone")[0]
    for _ in range(100):
        if rec.ended:
            break
        await asyncio.sleep(0.01)
    assert rec.ended == "client_gone"
    assert 1 <= rec.kinds.count("output") < 50
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_slow_reader_gets_every_event_in_order(ref):
    """Backpressure: a server at itl 0 must wait for a slow client, not drop or reorder."""
    tokens = 20_000
    body = completions_body(tokens, servescope_ref={"itl_ms": 0, "output_tokens": tokens})
    async with (
        aiohttp.ClientSession() as session,
        session.post(ref.url + COMPLETIONS, json=body) as r,
    ):
        parts: list[bytes] = []
        while chunk := await r.content.read(65536):
            parts.append(chunk)
            if len(parts) < 40:  # dawdle at first so the server's buffers fill up
                await asyncio.sleep(0.002)
    data = b"".join(parts)
    texts = re.findall(rb'"text":"([^"]*)"', data)
    assert texts == [b" t%d" % i for i in range(tokens)]
    assert data.endswith(b"data: [DONE]\n\n")


async def test_http10_client_gets_an_unchunked_stream(ref):
    reader, writer = await asyncio.open_connection("127.0.0.1", int(ref.url.rsplit(":", 1)[1]))
    payload = orjson.dumps(completions_body(3))
    writer.write(
        b"POST /v1/completions HTTP/1.0\r\nContent-Length: %d\r\n\r\n%b" % (len(payload), payload)
    )
    raw = await reader.read(-1)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower()
    assert len(sse_json(body)) == 4
