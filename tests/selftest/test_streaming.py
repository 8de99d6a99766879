"""plan_events: the ordered events and their deadlines, without any I/O."""

from __future__ import annotations

from profiler.selftest.request import parse_request
from profiler.selftest.schedule import RefSchedule
from profiler.selftest.streaming import plan_events
from profiler.selftest.wire import ChunkEncoder, Framing

MS = 1_000_000
T0 = 1_000 * MS


def _plan(endpoint: str, body: bytes, schedule: RefSchedule) -> list[tuple[str, int, int]]:
    req = parse_request(body, endpoint, schedule)
    enc = ChunkEncoder(
        endpoint=endpoint,
        response_id="x",
        created=0,
        model="m",
        prompt_tokens=req.prompt_tokens,
        continuous_usage=req.continuous_usage,
        framing=Framing(),
    )
    return [(e.kind, e.tokens, e.t_sched_ns - T0) for e in plan_events(req, enc, T0)]


CHAT = b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": true}'
COMPL = (
    b'{"prompt": "hi", "max_tokens": 5, "stream": true, "stream_options": {"include_usage": true}}'
)


def test_deadlines_are_absolute_from_arrival():
    plan = _plan("chat", CHAT, RefSchedule(ttft_ms=20, itl_ms=5))
    assert plan == [
        ("role", 0, 20 * MS),
        ("output", 1, 20 * MS),
        ("output", 1, 25 * MS),
        ("output", 1, 30 * MS),
        ("done", 0, 30 * MS),
    ]


def test_role_delay_sends_the_role_chunk_early():
    plan = _plan("chat", CHAT, RefSchedule(ttft_ms=20, role_delay_ms=0))
    assert plan[0] == ("role", 0, 0)
    assert plan[1] == ("output", 1, 20 * MS)


def test_fault_replaces_content_event_fault_after():
    plan = _plan(
        "completions", COMPL, RefSchedule(ttft_ms=10, itl_ms=1, fault="truncate", fault_after=2)
    )
    assert plan == [("output", 1, 10 * MS), ("output", 1, 11 * MS), ("fault", 0, 12 * MS)]
    late = _plan(
        "completions", COMPL, RefSchedule(ttft_ms=10, itl_ms=1, fault="reset", fault_after=9)
    )
    assert late[-1] == ("fault", 0, 14 * MS)  # after the last content event, before usage
    assert [k for k, _, _ in late].count("output") == 5


def test_usage_follows_the_last_event_at_once():
    plan = _plan("completions", COMPL, RefSchedule(ttft_ms=0, itl_ms=2, tokens_per_event=2))
    assert plan[-2:] == [("usage", 0, 4 * MS), ("done", 0, 4 * MS)]
    assert [n for k, n, _ in plan if k == "output"] == [2, 2, 1]
