"""OTLP trace bodies → :class:`~servescope.records.spans.SpanRecord`.

Accepts what an OTLP exporter sends: ``ExportTraceServiceRequest`` as protobuf (OTLP/HTTP
``application/x-protobuf``, and the message gRPC carries) or as OTLP/JSON
(``application/json``, ids in hex as the OTLP spec says; base64 ids, protobuf's own JSON
mapping, are accepted too). Times move from the engine's wall clock to the run's monotonic
clock with the run's anchor; attributes are mapped onto columns by :mod:`servescope.genai`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from servescope.clock import ClockAnchor
from servescope.genai import map_attributes
from servescope.records.spans import SpanRecord

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["BadBody", "parse_json", "parse_protobuf", "spans_of"]

_HEX = re.compile(r"[0-9a-fA-F]*")
_ID_KEYS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer",
          5: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}


class BadBody(ValueError):
    """A body that is not an OTLP trace export (one line)."""


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    msg = ExportTraceServiceRequest()
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        raise BadBody(f"not an OTLP protobuf trace export: {exc}") from None
    return msg


def _hex_ids_to_b64(node: Any) -> Any:
    """OTLP/JSON writes ids in hex; protobuf's JSON parser expects base64."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            width = _ID_KEYS.get(k)
            if width is not None and isinstance(v, str) and len(v) == width \
                    and _HEX.fullmatch(v):
                out[k] = base64.b64encode(binascii.unhexlify(v)).decode()
            else:
                out[k] = _hex_ids_to_b64(v)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_b64(v) for v in node]
    return node


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    import orjson
    from google.protobuf.json_format import ParseDict, ParseError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadBody(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadBody("not an OTLP JSON trace export (not an object)")
    msg = ExportTraceServiceRequest()
    try:
        ParseDict(_hex_ids_to_b64(data), msg, ignore_unknown_fields=True)
    except ParseError as exc:
        raise BadBody(f"not an OTLP JSON trace export: {str(exc)[:200]}") from None
    return msg


def _any_value(v: Any) -> str | int | float | bool:
    which = v.WhichOneof("value")
    if which == "string_value":
        return str(v.string_value)
    if which == "int_value":
        return int(v.int_value)
    if which == "double_value":
        return float(v.double_value)
    if which == "bool_value":
        return bool(v.bool_value)
    if which == "bytes_value":
        return bytes(v.bytes_value).hex()
    if which in ("array_value", "kvlist_value"):
        from google.protobuf.json_format import MessageToJson

        text: str = MessageToJson(getattr(v, which), indent=None)
        return text
    return ""


def spans_of(msg: ExportTraceServiceRequest, anchor: ClockAnchor) -> list[SpanRecord]:
    """Every span of ``msg``, in order."""
    out: list[SpanRecord] = []
    shift = anchor.mono_ns - anchor.wall_ns  # wall → run monotonic
    for rs in msg.resource_spans:
        service = ""
        for kv in rs.resource.attributes:
            if kv.key == "service.name":
                service = str(_any_value(kv.value))
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for s in ss.spans:
                attrs = {kv.key: _any_value(kv.value) for kv in s.attributes}
                cols, gens = map_attributes(attrs)
                start, end = int(s.start_time_unix_nano), int(s.end_time_unix_nano)
                rid = cols.pop("engine_request_id", "")
                ints: dict[str, Any] = cols
                out.append(SpanRecord(
                    trace_id=bytes(s.trace_id).hex(), span_id=bytes(s.span_id).hex(),
                    parent_span_id=bytes(s.parent_span_id).hex(), name=s.name,
                    kind=_KINDS.get(int(s.kind), str(s.kind)), service=service, scope=scope,
                    t_start_ns=start + shift, t_end_ns=end + shift, t_start_wall_ns=start,
                    status=_STATUS.get(int(s.status.code), str(s.status.code)),
                    engine_request_id=str(rid),
                    names=",".join(f"{c}:{g}" for c, g in gens.items()),
                    attributes=attrs, **ints))
    return out
