"""The engine's OpenTelemetry spans, as the ``otel`` collector's receiver wrote them.

One row per received span in ``otel/spans.parquet`` (journalled to ``otel/spans.jsonl`` while
the run goes on). Times are moved from the engine's wall clock to the run's monotonic clock
with the run's anchor. The engine's timings and counts are mapped from old, private and current
attribute names onto one column each (:mod:`servescope.genai`); every attribute also stays in
``attributes`` as received. A span is joined to the client's request by its ``trace_id``,
which the client's ``traceparent`` chose (:mod:`servescope.tracecontext`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SPAN_COLUMNS", "SpanRecord"]


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One received span, its times moved to the run's monotonic clock."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # "server", "internal", ... (OTLP SpanKind, lower case)
    service: str  # resource service.name
    scope: str  # instrumentation scope (vLLM: the tracer's module)
    t_start_ns: int  # run monotonic
    t_end_ns: int
    t_start_wall_ns: int  # as the engine stamped it
    status: str  # "unset" | "ok" | "error"
    # engine timings mapped from old, private and current attribute names (None: not sent)
    ttft_ns: int | None = None
    e2e_ns: int | None = None
    queue_ns: int | None = None
    prefill_ns: int | None = None
    decode_ns: int | None = None
    inference_ns: int | None = None
    kv_transfer_ns: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    engine_request_id: str = ""
    # "column:generation,..." of the spellings the mapped columns came from
    names: str = ""
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)


SPAN_COLUMNS: tuple[str, ...] = tuple(SpanRecord.__dataclass_fields__)
