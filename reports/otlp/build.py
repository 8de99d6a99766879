"""A run directory → OpenTelemetry SDK spans and metrics (in memory; :mod:`reports.otlp.send`
ships them).

Spans (GenAI conventions, 0.66b2 registry): per request a CLIENT span named
``"{gen_ai.operation.name} {gen_ai.request.model}"`` from the send to the request's end (run
clock → wall clock with the run's anchor) with ``gen_ai.operation.name`` (``text_completion``
or ``chat``), ``gen_ai.provider.name`` (the engine), ``gen_ai.request.model``,
``gen_ai.request.max_tokens``, ``gen_ai.request.stream``, ``gen_ai.usage.input_tokens`` /
``output_tokens``, ``gen_ai.response.time_to_first_chunk`` (s),
``gen_ai.response.finish_reasons``, ``server.address``/``server.port`` and ``error.type`` on
failure. Its trace and span ids are the ones the client's ``traceparent`` carried
(:mod:`servescope.tracecontext`), so the engine's own span, when it was received and joined,
is exported under it (a SERVER span, its old and private names mapped to the current ones
where a current name exists, the per-stage latencies as ``servescope.engine.*_s``).

Metrics: ``gen_ai.client.operation.duration`` (s, per request), ``gen_ai.client.operation.
time_to_first_chunk`` (s), ``gen_ai.client.operation.time_per_output_chunk`` (s, every gap
between output chunks) and ``gen_ai.client.token.usage`` (``gen_ai.token.type`` input |
output), with explicit buckets fine enough for sub-10 ms inter-chunk times
(:data:`DURATION_BUCKETS_S`: 0.25 ms … 80 s).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from servescope.genai import CURRENT
from servescope.tracecontext import client_trace_ids

if TYPE_CHECKING:
    import pandas as pd
    from opentelemetry.sdk.metrics.export import MetricsData
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["DURATION_BUCKETS_S", "TOKEN_BUCKETS", "RunTelemetry", "SpanBuilder",
           "build_telemetry", "record_requests", "series_key"]

DURATION_BUCKETS_S: tuple[float, ...] = (
    0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.0125, 0.015,
    0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0,
    10.0, 20.0, 40.0, 80.0)
TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4 ** k) for k in range(14))  # 1 … 67108864
_OPERATION = {"completions": "text_completion", "chat": "chat"}
_OUTPUT_KIND = 0  # EventKind.OUTPUT


@dataclass(slots=True)
class RunTelemetry:
    spans: list[ReadableSpan]
    metrics: MetricsData | None
    requests: int
    engine_spans: int  # engine spans exported under their client span
    notes: list[str] = field(default_factory=list)


class _PlannedIds:
    """An SDK id generator that hands out the ids chosen beforehand, in order."""

    def __init__(self) -> None:
        self.trace_ids: list[int] = []
        self.span_ids: list[int] = []

    def generate_trace_id(self) -> int:
        return self.trace_ids.pop(0)

    def generate_span_id(self) -> int:
        return self.span_ids.pop(0)

    def is_trace_id_random(self) -> bool:
        return False  # derived from the run and request ids, not random


def _views() -> list[Any]:
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    return [View(instrument_name=n, aggregation=ExplicitBucketHistogramAggregation(
                 DURATION_BUCKETS_S)) for n in (
                "gen_ai.client.operation.duration",
                "gen_ai.client.operation.time_to_first_chunk",
                "gen_ai.client.operation.time_per_output_chunk")] + [
            View(instrument_name="gen_ai.client.token.usage",
                 aggregation=ExplicitBucketHistogramAggregation(TOKEN_BUCKETS))]


def _int(v: object) -> int | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(f) if np.isfinite(f) and f >= 0 else None


def _engine_spans(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The received request spans (those with an engine TTFT) by trace id."""
    from analyzers.otel import read_spans

    spans = read_spans(run_dir)
    if spans is None or spans.empty or "ttft_ns" not in spans:
        return {}
    rows = spans[spans["ttft_ns"].notna()].drop_duplicates("trace_id")
    return {str(r["trace_id"]): {str(k): v for k, v in r.items()}
            for r in rows.to_dict("records")}


class SpanBuilder:
    """The SDK providers and what every request is recorded with: one CLIENT span per
    :meth:`request` (and the engine's span under it) and the client metrics.

    By default the spans go to an in-memory exporter (``memory``) and the metrics to an
    in-memory reader (``reader``); the live export (:mod:`profiler.otlp_tail`) passes its own
    ``span_processor`` (a ``BatchSpanProcessor`` on an OTLP exporter) and ``metric_reader``
    (a ``PeriodicExportingMetricReader``) instead. :meth:`shutdown` flushes both."""

    def __init__(self, seed: str, engine: str, target: dict[str, Any], *,
                 span_processor: Any = None, metric_reader: Any = None) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        self.seed = seed
        self.model = str(target.get("model", ""))
        self.stream = bool(target.get("stream", True))
        url = urlsplit(str(target.get("url", "")))
        self.common_base: dict[str, Any] = {CURRENT["provider"]: engine,
                                            CURRENT["request_model"]: self.model}
        if url.hostname:
            self.common_base[CURRENT["server_address"]] = url.hostname
            self.common_base[CURRENT["server_port"]] = url.port or (
                443 if url.scheme == "https" else 80)
        resource = Resource.create({"service.name": "servescope", "servescope.run_id": seed})
        self.ids, self.memory = _PlannedIds(), InMemorySpanExporter()
        self.tp = TracerProvider(resource=resource, id_generator=self.ids)  # type: ignore[arg-type]
        self.tp.add_span_processor(span_processor or SimpleSpanProcessor(self.memory))
        self.tracer = self.tp.get_tracer("servescope")
        self.reader = metric_reader or InMemoryMetricReader()
        self.mp = MeterProvider(resource=resource, metric_readers=[self.reader], views=_views())
        meter = self.mp.get_meter("servescope")
        self.h_dur = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        self.h_ttfc = meter.create_histogram("gen_ai.client.operation.time_to_first_chunk",
                                             unit="s")
        self.h_tpoc = meter.create_histogram("gen_ai.client.operation.time_per_output_chunk",
                                             unit="s")
        self.h_tok = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")

    def shutdown(self) -> None:
        """Flush and stop both providers (the span processor exports what it holds)."""
        self.tp.shutdown()
        self.mp.shutdown()

    def span_attributes(self, r: dict[str, Any], common: dict[str, Any],
                        ttft_s: float | None) -> dict[str, Any]:
        attrs = dict(common)
        attrs["servescope.phase"] = str(r["phase"])
        attrs["servescope.x_request_id"] = str(r["x_request_id"])
        for key, value in ((CURRENT["max_tokens"], _int(r["max_tokens"])),
                           (CURRENT["input_tokens"], _int(r["usage_prompt_tokens"])),
                           (CURRENT["output_tokens"], _int(r["usage_completion_tokens"]))):
            if value is not None:
                attrs[key] = value
        attrs[CURRENT["stream"]] = self.stream
        if r["finish_reason"]:
            attrs[CURRENT["finish_reasons"]] = [str(r["finish_reason"])]
        if ttft_s is not None:
            attrs[CURRENT["time_to_first_chunk"]] = ttft_s
        return attrs

    def request(self, r: dict[str, Any], ttft_s: float | None, gaps: np.ndarray,
                anchor: Any, eng: dict[str, Any] | None, *, client_span: bool = True) -> None:
        """Record one request (a journal line or a ``requests.parquet`` row): its CLIENT
        span (unless ``client_span`` is False: it was sent before; the engine's span then
        still goes out under the client span's ids) and its metrics."""
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
        )

        op = _OPERATION.get(str(r["endpoint"]), "text_completion")
        common = {CURRENT["operation"]: op, **self.common_base}
        ok = r["outcome"] == "success"
        if not ok:
            common[CURRENT["error_type"]] = str(r["outcome"])
        trace_hex, span_hex = client_trace_ids(self.seed, str(r["x_request_id"]))
        t0 = int(r["t_send_ns"]) if int(r["t_send_ns"]) >= 0 else int(r["t_start_ns"])
        t1 = max(int(r["t_end_ns"]), t0)
        if client_span:
            self.ids.trace_ids.append(int(trace_hex, 16))
            self.ids.span_ids.append(int(span_hex, 16))
            span: Any = self.tracer.start_span(
                f"{op} {self.model}".strip(), kind=SpanKind.CLIENT,
                attributes=self.span_attributes(r, common, ttft_s),
                start_time=anchor.to_wall_ns(t0))
            if not ok:
                span.set_status(Status(StatusCode.ERROR, str(r["error"])[:200]))
        else:
            span = NonRecordingSpan(SpanContext(int(trace_hex, 16), int(span_hex, 16), False,
                                                TraceFlags(TraceFlags.SAMPLED)))
        if eng is not None:  # under its client span: the trace id is the parent's
            _engine_child(self.tracer, span, eng, common, self.ids)
        if client_span:
            span.end(end_time=anchor.to_wall_ns(t1))
        self.h_dur.record((t1 - t0) / 1e9, common)
        if not ok:
            return
        if ttft_s is not None:
            self.h_ttfc.record(ttft_s, common)
        for g in gaps:
            self.h_tpoc.record(float(g), common)
        for kind, col in (("input", "usage_prompt_tokens"),
                          ("output", "usage_completion_tokens")):
            n = _int(r[col])
            if n is not None:
                self.h_tok.record(n, {**common, CURRENT["token_type"]: kind})


def _chunk_gaps(events: pd.DataFrame) -> dict[int, np.ndarray]:
    """Seconds between consecutive output chunks (with text), per request."""
    if events.empty:
        return {}
    out = events[(events["kind"] == _OUTPUT_KIND) & (events["chars"] > 0)]
    return {int(str(k)): np.diff(np.sort(g["t_ns"].to_numpy())) / 1e9
            for k, g in out.groupby("request_id")}


def record_requests(b: SpanBuilder, requests: pd.DataFrame, events: pd.DataFrame,
                    ttft_ns: pd.Series, anchor: Any, *,
                    engine_by_trace: dict[str, dict[str, Any]] | None = None,
                    sent: frozenset[str] = frozenset()) -> tuple[int, int]:
    """Record every row of ``requests`` (``ttft_ns`` by request_id, ``events`` for the
    inter-chunk gaps) with ``b``; a request whose ``x_request_id`` is in ``sent`` gets no
    client span (its metrics and engine span still). Returns (client spans, engine spans)."""
    gaps = _chunk_gaps(events)
    n_client = n_engine = 0
    for r in requests.to_dict("records"):
        rid = int(r["request_id"])
        t = float(ttft_ns.get(rid, np.nan))
        x_id = str(r["x_request_id"])
        eng = (engine_by_trace or {}).get(client_trace_ids(b.seed, x_id)[0])
        n_engine += eng is not None
        n_client += x_id not in sent
        b.request({str(k): v for k, v in r.items()}, t / 1e9 if np.isfinite(t) else None,
                  gaps.get(rid, np.empty(0)), anchor, eng, client_span=x_id not in sent)
    return n_client, n_engine


def series_key(name: str, attributes: Any) -> str:
    """One metric series (instrument name and attribute set) as a string."""
    return name + "|" + "|".join(f"{k}={attributes[k]}" for k in sorted(attributes or {}))


def _restart(data: MetricsData | None, starts: dict[str, int]) -> MetricsData | None:
    """The same cumulative points with the start times of series exported before (by the
    live export): the end-of-run points then continue those series instead of starting new
    ones."""
    import dataclasses

    if data is None or not starts:
        return data
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points = [dataclasses.replace(p, start_time_unix_nano=starts[k])
                          if (k := series_key(m.name, p.attributes)) in starts else p
                          for p in m.data.data_points]
                object.__setattr__(m.data, "data_points", points)
    return data


def build_telemetry(run_dir: Path, sent: frozenset[str] = frozenset(),
                    series_starts: dict[str, int] | None = None) -> RunTelemetry:
    """Every request of the run (warm-up included, ``servescope.phase`` says which) as spans
    and the client metrics, in memory. ``sent``: x-request-ids whose client span went out
    already (the live export); their engine spans and metrics are still built, and the
    metric series start at ``series_starts`` (series key → ns) where the live export's
    did."""
    from analyzers.request_metrics import request_metrics
    from servescope.rundir.reader import load_run

    run = load_run(run_dir)
    man = run.manifest
    engine = man.engine.name if man.engine is not None else "openai"
    b = SpanBuilder(man.run_id, engine, dict(man.target))
    ttft = request_metrics(run).set_index("request_id")["ttft_ns"]
    engine_by_trace = _engine_spans(run_dir)
    n_client, n_engine = record_requests(b, run.requests, run.events, ttft, man.clock,
                                         engine_by_trace=engine_by_trace, sent=sent)
    data = _restart(b.reader.get_metrics_data(), series_starts or {})
    b.shutdown()
    notes = [] if engine_by_trace else ["no engine spans in the run (--collect otel): client "
                                        "spans only"]
    if sent:
        notes.append(f"{len(run.requests) - n_client} client spans sent live before")
    return RunTelemetry(list(b.memory.get_finished_spans()), data, len(run.requests),
                        n_engine, notes)


_ENGINE_NAMES = (("prompt_tokens", "input_tokens"), ("output_tokens", "output_tokens"),
                 ("cached_tokens", "cached_tokens"))
_ENGINE_LATENCIES = ("ttft_ns", "e2e_ns", "queue_ns", "prefill_ns", "decode_ns",
                     "inference_ns", "kv_transfer_ns")


def _engine_child(tracer: Any, parent: Any, eng: dict[str, Any], common: dict[str, Any],
                  ids: _PlannedIds) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    attrs = dict(common)
    for col, name in _ENGINE_NAMES:
        v = _int(eng.get(col))
        if v is not None:
            attrs[CURRENT[name]] = v
    if eng.get("engine_request_id"):
        attrs[CURRENT["response_id"]] = str(eng["engine_request_id"])
    for col in _ENGINE_LATENCIES:
        v = _int(eng.get(col))
        if v is not None:
            attrs[f"servescope.engine.{col.removesuffix('_ns')}_s"] = v / 1e9
    if _int(eng.get("ttft_ns")) is not None:
        attrs[CURRENT["time_to_first_chunk"]] = int(eng["ttft_ns"]) / 1e9
    ids.span_ids.append(int(str(eng["span_id"]), 16) or next(_fallback))
    ctx = trace.set_span_in_context(parent)
    child = tracer.start_span(f"{eng.get('name', 'engine')}", context=ctx,
                              kind=SpanKind.SERVER, attributes=attrs,
                              start_time=int(eng["t_start_wall_ns"]))
    child.end(end_time=int(eng["t_start_wall_ns"]) + int(eng["t_end_ns"]) -
              int(eng["t_start_ns"]))


_fallback = itertools.count(1)
