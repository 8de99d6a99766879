"""The live OTLP export's child process: ``python -m profiler.otlp_tail RUN URL TIMEOUT_S
INTERVAL_S``, started by :class:`profiler.otlp_live.LiveExport` while the load runs.

It lowers its own priority (``os.nice``), then every ``INTERVAL_S`` reads the lines the client
appended to ``RUN/journal/worker-*.jsonl`` since its last look (whole lines only: a line still
being written is left for the next look; one that does not decode is skipped, as the journal
reader does), and records each new finished request once: its CLIENT span goes to a
``BatchSpanProcessor`` on the OTLP exporter, its measurements to the client metrics, which a
``PeriodicExportingMetricReader`` exports every ``INTERVAL_S``. The client never loads
OpenTelemetry and never waits on this process.

It stops when its stdin closes (the run's load ended, or the run died): one last look, the
processors flushed, and ``RUN/otel/exported.json`` written (which requests' client spans the
endpoint took, and the start times of the metric series it took), which the end-of-run
export reads to send only the rest. After the first failed export it sends nothing for
``_BACKOFF_S`` (a dead endpoint then costs one timeout per back-off, and the stop stays
short); what it did not send goes out with the end-of-run export. Last line on stdout: one
JSON object (counts and the first failure's reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from servescope.rundir.atomic import atomic_write
from servescope.rundir.layout import OTEL_DIR, OTEL_EXPORTED_FILE, RunDirError
from servescope.rundir.manifest import read_manifest
from servescope.rundir.tables import journal_files

__all__ = ["EXPORTED_FILE", "JournalTail", "main"]

EXPORTED_FILE = OTEL_EXPORTED_FILE
_NICE = 10
_BACKOFF_S = 10.0
_XID = "servescope.x_request_id"


class JournalTail:
    """New whole lines of the run's client journals, each request once."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.offsets: dict[Path, int] = {}
        self.seen: set[int] = set()
        self.skipped = 0  # lines that did not decode or were not requests

    def poll(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for path in journal_files(self.run_dir):
            start = self.offsets.get(path, 0)
            try:
                with path.open("rb") as fh:
                    fh.seek(start)
                    chunk = fh.read()
            except OSError:  # removed by the finalizer meanwhile: the end-of-run export
                continue
            whole = chunk[:chunk.rfind(b"\n") + 1]
            self.offsets[path] = start + len(whole)
            for raw in whole.splitlines():
                if raw.strip():
                    self._take(raw, lines)
        return lines

    def _take(self, raw: bytes, lines: list[dict[str, Any]]) -> None:
        try:
            d = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.skipped += 1
            return
        rid = d.get("request_id") if type(d) is dict else None
        if type(rid) is not int or rid in self.seen:
            self.skipped += rid is None
            return
        self.seen.add(rid)
        lines.append(d)


class _Guarded:
    """Wraps an OTLP exporter: counts what it took, remembers the first failure, and backs
    off after one (a dead endpoint holds the worker one timeout per back-off)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.until = 0.0
        self.failures = 0
        self.reason: str | None = None

    def call(self, fn: Any, arg: Any, signal_name: str) -> bool:
        if time.monotonic() < self.until:
            return False
        try:
            ok = bool(fn(arg))
        except Exception:  # noqa: BLE001 - counted, never raised into the SDK's worker
            ok = False
        if not ok:
            with self.lock:
                self.failures += 1
                self.until = time.monotonic() + _BACKOFF_S
                if self.reason is None:
                    from profiler.otlp_live import failure_reason

                    self.reason = failure_reason(self.url, signal_name)
        return ok


def _span_exporter(inner: Any, guard: _Guarded, sent: set[str]) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Tracked(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            ok = guard.call(lambda s: inner.export(s) is SpanExportResult.SUCCESS, spans,
                            "traces")
            if ok:
                with guard.lock:
                    sent.update(str(s.attributes[_XID]) for s in spans
                                if s.attributes and _XID in s.attributes)
            return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

        def shutdown(self) -> None:
            with contextlib.suppress(Exception):
                inner.shutdown()

    return Tracked()


def _metric_exporter(inner: Any, guard: _Guarded, starts: dict[str, int],
                     counts: dict[str, int]) -> Any:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    from reports.otlp import series_key

    class Tracked(MetricExporter):
        def __init__(self) -> None:
            super().__init__(preferred_temporality=inner._preferred_temporality,
                             preferred_aggregation=inner._preferred_aggregation)

        def export(self, metrics_data: Any, timeout_millis: float = 10_000,  # noqa: ARG002
                   **kwargs: Any) -> MetricExportResult:  # noqa: ARG002 - the SDK's signature
            ok = guard.call(lambda d: inner.export(d) is MetricExportResult.SUCCESS,
                            metrics_data, "metrics")
            if ok:
                counts["metric_exports"] += 1
                for rm in metrics_data.resource_metrics:
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            for p in m.data.data_points:
                                starts.setdefault(series_key(m.name, p.attributes),
                                                  int(p.start_time_unix_nano))
            return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

        def force_flush(self, timeout_millis: float = 10_000) -> bool:  # noqa: ARG002
            return True

        def shutdown(self, timeout_millis: float = 30_000,  # noqa: ARG002
                     **kwargs: Any) -> None:  # noqa: ARG002 - the SDK's signature
            with contextlib.suppress(Exception):
                inner.shutdown()

    return Tracked()


class _Live:
    """The SDK pipeline (built once the run's manifest names its model) and what it sent."""

    def __init__(self, run_dir: Path, url: str, timeout_s: float, interval_s: float) -> None:
        self.run_dir, self.url, self.timeout_s = run_dir, url, timeout_s
        self.interval_s = interval_s
        self.sent: set[str] = set()
        self.starts: dict[str, int] = {}
        self.counts = {"requests": 0, "batches": 0, "metric_exports": 0}
        self.spans_guard = _Guarded(url)
        self.metrics_guard = _Guarded(url)
        self.builder: Any = None
        self.manifest: Any = None
        self.first_batch_wall_ns = -1

    def start(self) -> None:
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from reports.otlp import SpanBuilder, exporters

        man = self.manifest
        spans, metrics = exporters(self.url, self.timeout_s)
        engine = man.engine.name if man.engine is not None else "openai"
        processor = BatchSpanProcessor(_span_exporter(spans, self.spans_guard, self.sent),
                                       schedule_delay_millis=self.interval_s * 1000)
        reader = PeriodicExportingMetricReader(
            _metric_exporter(metrics, self.metrics_guard, self.starts, self.counts),
            export_interval_millis=self.interval_s * 1000,
            export_timeout_millis=self.timeout_s * 1000)
        self.builder = SpanBuilder(man.run_id, engine, dict(man.target),
                                   span_processor=processor, metric_reader=reader)

    def record(self, lines: list[dict[str, Any]]) -> None:
        from analyzers.request_metrics import request_metrics
        from reports.otlp import record_requests
        from servescope.rundir.reader import RunData
        from servescope.rundir.tables import arrow_tables

        if not lines:
            return
        if self.builder is None:
            self.manifest = read_manifest(self.run_dir)  # the load wrote its target by now
            self.start()
        req_t, ev_t, _ = arrow_tables(lines)
        run = RunData(self.run_dir, self.manifest, req_t.to_pandas(), ev_t.to_pandas(),
                      "journal")
        ttft = request_metrics(run).set_index("request_id")["ttft_ns"]
        record_requests(self.builder, run.requests, run.events, ttft, self.manifest.clock)
        self.counts["requests"] += len(lines)
        self.counts["batches"] += 1
        if self.first_batch_wall_ns < 0:
            self.first_batch_wall_ns = time.time_ns()

    def finish(self) -> dict[str, Any]:
        if self.builder is not None:
            self.builder.shutdown()  # flushes the span queue and exports the metrics once more
        return self.save()

    def save(self) -> dict[str, Any]:
        """Write ``RUN/otel/exported.json`` (after every look, and at the end: a child killed
        on its way still leaves what the endpoint took by then)."""
        with self.spans_guard.lock:
            sent = sorted(self.sent)
            starts = dict(self.starts)
        record = {"x_request_ids": sent, "series_start_ns": starts,
                  **self.counts, "spans": len(sent),
                  "span_failures": self.spans_guard.failures,
                  "metric_failures": self.metrics_guard.failures,
                  "reason": self.spans_guard.reason or self.metrics_guard.reason,
                  "metrics_reason": self.metrics_guard.reason,
                  "first_batch_wall_ns": self.first_batch_wall_ns}
        with contextlib.suppress(OSError, RunDirError):
            (self.run_dir / OTEL_DIR).mkdir(exist_ok=True)
            atomic_write(self.run_dir / EXPORTED_FILE, orjson.dumps(record))
        return record


def _stopped(wait_s: float) -> bool:
    """True once stdin is at its end (the parent closed it or died)."""
    ready, _, _ = select.select([sys.stdin.buffer], [], [], wait_s)
    return bool(ready) and not os.read(sys.stdin.buffer.fileno(), 4096)


def main(argv: list[str]) -> int:
    run_dir, url = Path(argv[0]), argv[1]
    timeout_s, interval_s = float(argv[2]), float(argv[3])
    with contextlib.suppress(OSError):
        os.nice(_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
    from reports.otlp import quiet_sdk

    live, tail = _Live(run_dir, url, timeout_s, interval_s), JournalTail(run_dir)
    with quiet_sdk():
        try:
            while not _stopped(interval_s):
                live.record(tail.poll())
                if live.spans_guard.failures or live.sent:
                    live.save()
            live.record(tail.poll())
        except (RunDirError, OSError, ValueError, KeyError) as exc:
            live.spans_guard.reason = f"the journal could not be read ({type(exc).__name__})"
        record = live.finish()
    record["skipped_lines"] = tail.skipped
    record.pop("x_request_ids")
    sys.stdout.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
