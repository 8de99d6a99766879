"""The client's traceparent: W3C format, a pure function of (run id, x-request-id)."""

from __future__ import annotations

import hashlib
import re

from collectors.client.target import Target
from servescope.tracecontext import client_trace_ids, traceparent

_W3C = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")


def test_traceparent_is_w3c_and_derived_from_seed_and_request() -> None:
    tp = traceparent("run-a", "ss-7")
    m = _W3C.fullmatch(tp)
    assert m is not None
    # independent derivation: blake2b-192 of "seed NUL x-request-id", split 16 + 8 bytes
    d = hashlib.blake2b(b"run-a\x00ss-7", digest_size=24).hexdigest()
    assert (m.group(1), m.group(2)) == (d[:32], d[32:])
    assert client_trace_ids("run-a", "ss-7") == (d[:32], d[32:])
    assert traceparent("run-b", "ss-7") != tp  # another run, another trace
    assert traceparent("run-a", "ss-8") != tp


def test_target_sends_traceparent_and_keeps_x_request_id() -> None:
    t = Target(base_url="http://127.0.0.1:1", model="m", trace_seed="run-x",
               extra_headers={"X-Extra": "1"})
    h = t.headers("ss-3")
    assert h["x-request-id"] == "ss-3"
    assert h["traceparent"] == traceparent("run-x", "ss-3")
    assert h["X-Extra"] == "1"
