"""Ship a run's telemetry (:func:`reports.otlp.build.build_telemetry`) to an OTLP endpoint:
OTLP/HTTP protobuf to ``URL/v1/traces`` and ``URL/v1/metrics`` (the URL is the collector's
base, e.g. ``http://localhost:4318``), or OTLP/gRPC (``grpc://host:4317``).

An exporter that fails (refused, unreachable, an error status) is **one warning line** in
:attr:`ExportResult.warnings`, never an exception: the SDK's own retry logging is silenced
while it runs, and a bounded timeout keeps a dead endpoint from holding the command.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reports.otlp.build import build_telemetry

__all__ = ["ExportResult", "export_otlp", "exporters", "quiet_sdk"]


@dataclass(slots=True)
class ExportResult:
    endpoint: str
    spans: int
    engine_spans: int
    requests: int
    metric_points: int
    spans_sent: bool
    metrics_sent: bool
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def quiet_sdk() -> Iterator[None]:
    """The exporters log every retry and failure; the caller reports one line instead."""
    log = logging.getLogger("opentelemetry")
    level, propagate = log.level, log.propagate
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    try:
        yield
    finally:
        log.setLevel(level)
        log.propagate = propagate


def exporters(endpoint: str, timeout_s: float) -> tuple[Any, Any]:
    parts = urlsplit(endpoint)
    if parts.scheme == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpans,
        )

        target = parts.netloc
        return (GrpcSpans(endpoint=target, insecure=True, timeout=timeout_s),
                GrpcMetrics(endpoint=target, insecure=True, timeout=timeout_s))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint.rstrip("/").removesuffix("/v1/traces")
    return (OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=timeout_s),
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=timeout_s))


def _points(data: Any) -> int:
    if data is None:
        return 0
    return sum(len(m.data.data_points) for rm in data.resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics)


def export_otlp(run_dir: Path, endpoint: str, timeout_s: float = 5.0, *,
                sent: frozenset[str] = frozenset(),
                series_starts: dict[str, int] | None = None) -> ExportResult:
    """Send the run. ``ValueError`` (one line) for an endpoint that is not a URL; a
    :class:`~servescope.rundir.layout.RunDirError` for an unreadable run; exporter failures
    are warnings in the result. ``sent`` and ``series_starts``: what the live export sent
    already (:func:`reports.otlp.build.build_telemetry`)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https", "grpc") or not parts.netloc:
        raise ValueError(f"--endpoint must look like http://HOST:4318 or grpc://HOST:4317, "
                         f"got {endpoint!r}")
    tel = build_telemetry(run_dir, sent, series_starts)
    res = ExportResult(endpoint, len(tel.spans), tel.engine_spans, tel.requests,
                       _points(tel.metrics), False, False, notes=list(tel.notes))
    with quiet_sdk():
        span_exp, metric_exp = exporters(endpoint, timeout_s)
        from opentelemetry.sdk.metrics.export import MetricExportResult
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            res.spans_sent = not tel.spans or \
                span_exp.export(tel.spans) is SpanExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - a warning, never a failed command
            res.warnings.append(f"spans not exported to {endpoint}: {type(exc).__name__}")
        if not res.spans_sent and not res.warnings:
            res.warnings.append(f"spans not exported to {endpoint}: the endpoint refused "
                                "them or did not answer")
        try:
            res.metrics_sent = tel.metrics is None or \
                metric_exp.export(tel.metrics) is MetricExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - a warning, never a failed command
            res.warnings.append(f"metrics not exported to {endpoint}: {type(exc).__name__}")
        if not res.metrics_sent and len(res.warnings) < 2:
            res.warnings.append(f"metrics not exported to {endpoint}: the endpoint refused "
                                "them or did not answer")
        with contextlib.suppress(Exception):
            span_exp.shutdown()
            metric_exp.shutdown()
    if len(res.warnings) == 2 and not res.spans_sent and not res.metrics_sent:
        res.warnings = [f"nothing exported to {endpoint}: the endpoint refused the export or "
                        "did not answer"]
    return res
