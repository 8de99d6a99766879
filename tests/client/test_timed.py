"""Socket-read timestamps: every event gets the time its bytes entered the process."""

from __future__ import annotations

import aiohttp

from collectors.client import timed
from collectors.client.stream import send_request
from collectors.client.target import Target
from profiler.selftest.process import RefServerHandle
from servescope.records import EventKind, RequestRecord


def test_this_aiohttp_supports_socket_read_timestamps() -> None:
    assert timed.available()


async def test_split_events_get_the_time_of_the_read_that_completed_them(
        refserver: RefServerHandle) -> None:
    target = Target(base_url=refserver.url, model="ref", extra_body={"servescope_ref": {
        "fault": "split_writes", "split_gap_ms": 3, "itl_ms": 10}})
    rec = RequestRecord(request_id=1, x_request_id="timed-split")
    connector = aiohttp.TCPConnector()
    assert timed.install(connector)
    async with aiohttp.ClientSession(connector=connector) as http:
        await send_request(http, target, target.body("hi", 8), rec)
    (truth,) = refserver.truth("timed-split")
    sent = [t for t, k in zip(truth["t_event_ns"], truth["kinds"], strict=True)
            if k == "output"]
    got = [t for t, k in zip(rec.ev_t_ns, rec.ev_kind, strict=True) if k == EventKind.OUTPUT]
    assert len(got) == len(sent) == 8
    for s, g in zip(sent, got, strict=True):
        # the server's time is taken before the FIRST piece; the last piece follows ≥ 3 ms
        # later, and the event is complete only then
        assert g - s >= 3_000_000
        assert g - s < 30_000_000


async def test_fallback_without_hook_still_times_events(refserver: RefServerHandle) -> None:
    target = Target(base_url=refserver.url, model="ref")
    rec = RequestRecord(request_id=2, x_request_id="timed-fallback")
    async with aiohttp.ClientSession() as http:  # plain connector: no protocol hook
        await send_request(http, target, target.body("hi", 8), rec)
    assert len(rec.ev_t_ns) == 10
    assert rec.ev_t_ns == sorted(rec.ev_t_ns)
