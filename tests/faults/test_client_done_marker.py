"""A server that ends its streams with the body, never with ``data: [DONE]`` (transformers
serve 5.17.0; the events below are its own, captured on the H200): with the engine's
``stream_done_marker=False`` a stream is complete after a ``finish_reason``, still truncated
without one; with the default, the missing ``[DONE]`` stays a truncation."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import pytest

from collectors.client.stream import send_request
from collectors.client.target import Target
from servescope.records import UNKNOWN, Outcome, RequestRecord
from tests.faults.server import FaultServer, sse_events

_ids = itertools.count()
# transformers serve's own completion events (one token each, usage in the last)
_ID, _MODEL = "e16bd47d-bd2e-4eb1-b830-ce42f2b84105", "/tmp/tinyllama@main"


def _event(text: str, finish: str | None = None, **more: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "text": text}
    if finish:
        choice["finish_reason"] = finish
    return {"id": _ID, "choices": [choice], "created": 1796341543, "model": _MODEL,
            "object": "text_completion", **more}


TOKENS = [_event(" kiyex"), _event(" kiyex"), _event(" y")]
FINAL = _event("", "length", usage={"completion_tokens": 3, "prompt_tokens": 5,
                                    "total_tokens": 8})


async def _send(url: str, done_marker: bool) -> RequestRecord:
    target = Target(base_url=url, model="m", ignore_eos=False, done_marker=done_marker)
    rid = next(_ids)
    rec = RequestRecord(request_id=rid, x_request_id=f"done-{rid}")
    async with aiohttp.ClientSession() as http:
        await send_request(http, target, target.body("the quick", 3), rec, keep_text=True)
    return rec


async def test_a_stream_ending_after_its_finish_reason_is_complete() -> None:
    with FaultServer({"/v1/completions": sse_events([*TOKENS, FINAL], done=False)}) as srv:
        rec = await _send(srv.url, done_marker=False)
    assert rec.outcome == Outcome.SUCCESS.value, rec.error
    assert rec.finish_reason == "length"
    assert rec.usage_completion_tokens == 3
    assert rec.t_done_ns == UNKNOWN  # there was no [DONE] to time
    assert rec.t_end_ns >= rec.ev_t_ns[-1] > 0


async def test_a_stream_cut_before_its_finish_reason_is_still_truncated() -> None:
    with FaultServer({"/v1/completions": sse_events(TOKENS, done=False)}) as srv:
        rec = await _send(srv.url, done_marker=False)
    assert rec.outcome == Outcome.TRUNCATED.value
    assert rec.error == "stream ended before a finish_reason"


@pytest.mark.parametrize("events", [[*TOKENS, FINAL], TOKENS])
async def test_servers_that_send_done_are_held_to_it(events: list[dict[str, Any]]) -> None:
    with FaultServer({"/v1/completions": sse_events(events, done=False)}) as srv:
        rec = await _send(srv.url, done_marker=True)
    assert rec.outcome == Outcome.TRUNCATED.value
    assert rec.error == "stream ended without [DONE]"
