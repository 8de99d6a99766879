"""The real vLLM-CPU span capture (tests/data/otel/vllm_cpu_otel_spans.jsonl: 19 OTLP/HTTP
exports a vLLM 0.32 CPU server sent, each body decoded with protobuf's JSON mapping)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "otel" / "vllm_cpu_otel_spans.jsonl"


def exports() -> list[dict[str, Any]]:
    return [orjson.loads(line)["request"] for line in CAPTURE.read_bytes().splitlines()]


def protobuf_bodies() -> list[bytes]:
    """Each export as the protobuf body the engine sent."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    return [ParseDict(e, ExportTraceServiceRequest()).SerializeToString() for e in exports()]


def raw_spans(name: str | None = None) -> list[dict[str, Any]]:
    """The capture's spans as JSON (``name``: only those)."""
    out = []
    for e in exports():
        for rs in e["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                out += [s for s in ss["spans"] if name is None or s["name"] == name]
    return out
