"""W3C trace context for the client's requests: a ``traceparent`` per request, derived from
the run's id and the request's ``x-request-id`` alone.

The engine (vLLM, SGLang, TensorRT-LLM) takes the incoming ``traceparent`` as the parent of its
own request span, so that span carries our trace id; since the id is a pure function of
``(seed, x_request_id)``, the analysis recomputes it from the requests table and joins the
spans without any state kept at send time. The exporter (``servescope export otlp``) uses the
same ids for the client span, so in a tracing backend the engine's span hangs under ours.

Plain string work (``hashlib.blake2b``: ~1 µs a request): no OpenTelemetry import on the
client's hot path.
"""

from __future__ import annotations

import hashlib

__all__ = ["TRACEPARENT", "client_trace_ids", "traceparent"]

TRACEPARENT = "traceparent"  # the header's name (W3C Trace Context level 1)


def client_trace_ids(seed: str, x_request_id: str) -> tuple[str, str]:
    """(trace id: 32 hex digits, span id of the client's request: 16 hex digits), neither
    all zeros (W3C forbids it)."""
    d = hashlib.blake2b(f"{seed}\x00{x_request_id}".encode(), digest_size=24).hexdigest()
    trace_id, span_id = d[:32], d[32:]
    if trace_id == "0" * 32:  # pragma: no cover - one chance in 2**128
        trace_id = "0" * 31 + "1"
    if span_id == "0" * 16:  # pragma: no cover - one chance in 2**64
        span_id = "0" * 15 + "1"
    return trace_id, span_id


def traceparent(seed: str, x_request_id: str) -> str:
    """``00-<trace id>-<parent span id>-01`` (version 00, sampled)."""
    trace_id, span_id = client_trace_ids(seed, x_request_id)
    return f"00-{trace_id}-{span_id}-01"
