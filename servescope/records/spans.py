"""The engine's OpenTelemetry spans, joined to the client's requests.

The schema the OTel receiver writes (issue 14); no writer in this version yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SpanRecord"]


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One received span, its times moved to the run's monotonic clock."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    t_start_ns: int
    t_end_ns: int
    x_request_id: str  # the client request it belongs to ("" when it joins none)
    # engine timings mapped from old, private and current attribute names (None: not sent)
    queue_ns: int | None = None
    prefill_ns: int | None = None
    decode_ns: int | None = None
    ttft_ns: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    attributes: dict[str, str | int | float | bool] = field(default_factory=dict)
