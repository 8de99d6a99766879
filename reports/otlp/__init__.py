"""A run as OpenTelemetry: one client span per request (and the engine's joined span under
it) in the current GenAI conventions, and the GenAI client metrics, through opentelemetry-sdk
(``servescope export otlp``)."""

from reports.otlp.build import (
    DURATION_BUCKETS_S,
    TOKEN_BUCKETS,
    RunTelemetry,
    SpanBuilder,
    build_telemetry,
    record_requests,
    series_key,
)
from reports.otlp.send import ExportResult, export_otlp, exporters, quiet_sdk

__all__ = ["DURATION_BUCKETS_S", "TOKEN_BUCKETS", "ExportResult", "RunTelemetry",
           "SpanBuilder", "build_telemetry", "export_otlp", "exporters", "quiet_sdk",
           "record_requests", "series_key"]
