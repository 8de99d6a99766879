"""Valid JSON of the wrong shape inside a 200 answer: the request ends ``invalid_response``
with the reason, its event columns stay aligned, and a run that meets one keeps every other
request and stays readable by every command (issue 8, cases 1 and 2)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectors.client.stream import send_request
from collectors.client.target import Target
from profiler.loadrun import LoadConfig, run_load
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist
from servescope.records import Outcome, RequestRecord
from servescope.rundir.reader import load_run
from tests.faults.server import (
    FaultServer,
    Handler,
    RawRequest,
    good_stream,
    json_answer,
    sse_events,
    token_chunk,
)

_ids = itertools.count()


async def _send(url: str, chat: bool = False, **target_kw: Any) -> RequestRecord:
    target = Target(base_url=url, model="m", endpoint="chat" if chat else "completions",
                    **target_kw)
    rid = next(_ids)
    rec = RequestRecord(request_id=rid, x_request_id=f"shape-{rid}")
    async with aiohttp.ClientSession() as http:
        await send_request(http, target, target.body("hello", 4), rec, keep_text=True)
    return rec


def _aligned(rec: RequestRecord) -> bool:
    n = len(rec.ev_t_ns)
    return len(rec.ev_kind) == len(rec.ev_chars) == len(rec.ev_tokens_cum) == n


_GOOD_C = token_chunk(False, " a", 1)
_GOOD_CHAT = token_chunk(True, " a", 1)

# (chat, the bad event, what the error must say); the bad event comes third (seq 2)
SHAPES: list[tuple[bool, dict[str, Any], str]] = [
    (False, {"choices": [1]}, "choices[0] is not an object"),
    (False, {"choices": "x"}, "choices is not a list"),
    (False, {"choices": {"text": "a"}}, "choices is not a list"),
    (False, {"choices": [{"text": 5}]}, "choices[0].text is not a string"),
    (False, {"choices": [{"text": ["a"]}]}, "choices[0].text is not a string"),
    (False, {"choices": [{"text": "a", "finish_reason": 5}]},
     "choices[0].finish_reason is not a string"),
    (False, {"choices": [], "usage": {"completion_tokens": "7"}},
     "usage.completion_tokens is not an integer"),
    (False, {"choices": [{"text": "a"}], "usage": "x"}, "usage is not an object"),
    (False, {"choices": [], "usage": {"prompt_tokens": -3}}, "usage.prompt_tokens out of range"),
    (True, {"choices": [{"delta": "x"}]}, "choices[0].delta is not an object"),
    (True, {"choices": [1]}, "choices[0] is not an object"),
    (True, {"choices": "x"}, "choices is not a list"),
    (True, {"choices": [{"delta": {"content": 5}}]}, "choices[0].delta.content is not a string"),
    (True, {"choices": [{"delta": {"content": "a", "reasoning_content": {}}}]},
     "choices[0].delta.reasoning_content is not a string"),
    (True, {"choices": [{"delta": {"content": "a", "tool_calls": "x"}}]},
     "choices[0].delta.tool_calls is not a list"),
    (True, {"choices": [{"delta": {}, "finish_reason": [1]}]},
     "choices[0].finish_reason is not a string"),
    (True, {"choices": [{"delta": {"content": "a"}, "finish_reason": 0}]},
     "choices[0].finish_reason is not a string"),
    (True, {"choices": [{"delta": {"content": []}}]}, "choices[0].delta.content is not a string"),
    (False, {"choices": [{"text": ""}], "usage": []}, "usage is not an object"),
]


@pytest.mark.parametrize(("chat", "bad", "reason"), SHAPES,
                         ids=[f"{'chat' if c else 'cmpl'}-{r}" for c, _, r in SHAPES])
async def test_wrong_shape_event_is_invalid_response(chat: bool, bad: dict[str, Any],
                                                     reason: str) -> None:
    good = _GOOD_CHAT if chat else _GOOD_C
    path = "/v1/chat/completions" if chat else "/v1/completions"
    with FaultServer({path: sse_events([good, good, bad, good])}) as srv:
        rec = await _send(srv.url, chat=chat)
    assert rec.outcome == Outcome.INVALID_RESPONSE.value, (rec.outcome, rec.error)
    assert rec.error.startswith(f"event 2: {reason}"), rec.error
    assert _aligned(rec)
    assert len(rec.ev_t_ns) == 5  # every event is still on the timeline ([DONE] included)


@pytest.mark.parametrize("value", [2**31, -1, True, 7.0, 2**40])
async def test_out_of_range_usage_in_the_final_chunk(value: object) -> None:
    final = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": value}}
    events = [token_chunk(False, " a", 1), token_chunk(False, " b", 2, "length"), final]
    with FaultServer({"/v1/completions": sse_events(events)}) as srv:
        rec = await _send(srv.url)
    assert rec.outcome == Outcome.INVALID_RESPONSE.value, (rec.outcome, rec.error)
    assert rec.error.startswith("event 2: usage.completion_tokens"), rec.error
    expected = ("is not an integer" if isinstance(value, bool | float)
                else "out of range")
    assert expected in rec.error
    assert _aligned(rec)
    assert 0 <= max(rec.ev_tokens_cum) < 2**31  # nothing int32 cannot hold
    assert 0 <= rec.usage_completion_tokens < 2**31 or rec.usage_completion_tokens == -1


async def test_later_problems_do_not_replace_the_first() -> None:
    events = [{"choices": [1]}, {"choices": "x"}, {"error": {"message": "boom"}}]
    with FaultServer({"/v1/completions": sse_events(events)}) as srv:
        rec = await _send(srv.url)
    assert rec.outcome == Outcome.INVALID_RESPONSE.value
    assert rec.error.startswith("event 0: choices[0] is not an object")


@pytest.mark.parametrize(("body", "reason"), [
    ({"choices": "x"}, "choices is not a list"),
    ({"choices": [5]}, "choices[0] is not an object"),
    ({"choices": [{"message": "x"}]}, "choices[0].message is not an object"),
    ({"choices": [{"message": {"content": 5}}]}, "choices[0].message.content is not a string"),
    ({"choices": [{"message": {"content": "a"}}], "usage": {"completion_tokens": 2**31}},
     "usage.completion_tokens out of range"),
])
async def test_wrong_shape_non_streamed_answer(body: dict[str, Any], reason: str) -> None:
    with FaultServer({"/v1/chat/completions": json_answer(body)}) as srv:
        rec = await _send(srv.url, chat=True, stream=False)
    assert rec.outcome == Outcome.INVALID_RESPONSE.value, (rec.outcome, rec.error)
    assert reason in rec.error
    assert _aligned(rec)


def _one_bad_of_many(bad_at: int, chat: bool) -> Handler:
    """Good streams, except the ``bad_at``-th request (counting from 1)."""
    count = itertools.count(1)
    bad = sse_events([token_chunk(chat, " a", 1),
                      {"choices": [{"text": 5, "delta": "x"}],
                       "usage": {"completion_tokens": 2**31}}])

    async def h(req: RawRequest, w: asyncio.StreamWriter) -> None:
        if next(count) == bad_at:
            await bad(req, w)
        else:
            await good_stream(req, w)
    return h


@pytest.mark.parametrize("chat", [False, True], ids=["completions", "chat"])
def test_a_run_with_one_bad_answer_keeps_every_request(tmp_path: Path, chat: bool) -> None:
    from profiler.commands import analyze_command, summarize_command
    from profiler.commands_report import report_command

    path = "/v1/chat/completions" if chat else "/v1/completions"
    with FaultServer({path: _one_bad_of_many(41, chat)}) as srv:
        cfg = LoadConfig(
            target=Target(base_url=srv.url, model="m", endpoint="chat" if chat else
                          "completions"),
            dataset=DatasetSpec("synthetic", input_len=LengthDist.fixed(4),
                                output_len=LengthDist.fixed(4)),
            arrival=ArrivalSpec("closed", concurrency=2), out_dir=tmp_path / "run",
            num_requests=50)
        res = run_load(cfg)
    assert res.status == "complete"
    run = load_run(res.run_dir)
    assert run.source == "parquet"
    assert len(run.requests) == 50
    bad = run.requests[run.requests["outcome"] != "success"]
    assert list(bad["outcome"]) == ["invalid_response"]
    assert str(bad["error"].iloc[0]).startswith("event 1: ")
    assert run.events.groupby("request_id").size().sum() == run.requests["n_events"].sum()
    assert summarize_command(res.run_dir, "", None) == 0
    assert analyze_command(res.run_dir, None, None) == 0
    assert report_command(res.run_dir, None, tmp_path / "report.html") == 0
