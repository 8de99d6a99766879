"""A run as OpenTelemetry: one client span per request (and the engine's joined span under
it) in the current GenAI conventions, and the GenAI client metrics, through opentelemetry-sdk
(``servescope export otlp``)."""

from reports.otlp.build import DURATION_BUCKETS_S, TOKEN_BUCKETS, RunTelemetry, build_telemetry
from reports.otlp.send import ExportResult, export_otlp

__all__ = ["DURATION_BUCKETS_S", "TOKEN_BUCKETS", "ExportResult", "RunTelemetry",
           "build_telemetry", "export_otlp"]
