"""The OTLP receiver on loopback: real protobuf bodies from the capture, the real
opentelemetry-sdk exporters (HTTP and gRPC), bad bodies, and the collector in its own child
process with the socket bound before "launch"."""

from __future__ import annotations

import gzip
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from collectors.base import CollectContext, EngineFacts
from collectors.child import ChildRunner
from collectors.otel.collector import OtelCollector
from collectors.otel.receiver import GrpcReceiver, HttpReceiver, SpanJournal, bind_loopback
from servescope.clock import take_anchor
from servescope.rundir.layout import OTEL_RECEIVER_FILE, OTEL_SPANS_FILE, OTEL_SPANS_JOURNAL
from tests.otel._capture import protobuf_bodies, raw_spans


def _post(url: str, body: bytes, ctype: str, encoding: str = "") -> int:
    headers = {"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding else {})}
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _journal_names(path: Path) -> list[str]:
    return [orjson.loads(line)["name"] for line in path.read_bytes().splitlines()]


def test_http_receiver_takes_the_engines_protobuf_bodies(tmp_path: Path) -> None:
    journal = SpanJournal(tmp_path / "spans.jsonl", take_anchor())
    sock = bind_loopback()
    rx = HttpReceiver(sock, journal)
    rx.start()
    try:
        url = f"http://127.0.0.1:{rx.port}/v1/traces"
        bodies = protobuf_bodies()
        for i, body in enumerate(bodies):
            if i % 2:  # the exporter's gzip compression
                assert _post(url, gzip.compress(body), "application/x-protobuf", "gzip") == 200
            else:
                assert _post(url, body, "application/x-protobuf") == 200
        assert _post(url, b"\xff\x00garbage", "application/x-protobuf") == 400
        assert _post(url, b"{not json", "application/json") == 400
    finally:
        rx.stop()
        journal.close()
    assert journal.exports == len(bodies)
    assert journal.bad_bodies == 2
    names = _journal_names(tmp_path / "spans.jsonl")
    assert names == [s["name"] for s in raw_spans()]


def _sdk_spans(exporter: object, n: int) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "fake-engine"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    tracer = provider.get_tracer("test")
    for i in range(n):
        with tracer.start_as_current_span("llm_request") as span:
            span.set_attribute("gen_ai.latency.time_in_queue", 0.001 * (i + 1))
            span.set_attribute("gen_ai.usage.prompt_tokens", 10 + i)
    provider.shutdown()


def test_real_http_exporter_reaches_the_receiver(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    journal = SpanJournal(tmp_path / "spans.jsonl", take_anchor())
    rx = HttpReceiver(bind_loopback(), journal)
    rx.start()
    try:
        _sdk_spans(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{rx.port}/v1/traces"), 3)
    finally:
        rx.stop()
        journal.close()
    rows = [orjson.loads(x) for x in (tmp_path / "spans.jsonl").read_bytes().splitlines()]
    assert [r["queue_ns"] for r in rows] == [1_000_000, 2_000_000, 3_000_000]
    assert [r["prompt_tokens"] for r in rows] == [10, 11, 12]
    assert {r["service"] for r in rows} == {"fake-engine"}


def test_real_grpc_exporter_reaches_the_grpc_receiver(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    journal = SpanJournal(tmp_path / "spans.jsonl", take_anchor())
    rx = GrpcReceiver(journal)
    rx.start()
    try:
        _sdk_spans(OTLPSpanExporter(endpoint=f"127.0.0.1:{rx.port}", insecure=True), 4)
    finally:
        rx.stop()
        journal.close()
    assert journal.spans == 4
    assert _journal_names(tmp_path / "spans.jsonl") == ["llm_request"] * 4


def test_collector_amends_launch_and_receives_in_its_child(tmp_path: Path) -> None:
    c = OtelCollector()
    change = c.amend_launch("vllm", ["vllm", "serve", "m"], {"PATH": "/bin"}, tmp_path, {})
    i = change.argv.index("--otlp-traces-endpoint")
    endpoint = change.argv[i + 1]
    assert endpoint.startswith("http://127.0.0.1:")
    assert endpoint.endswith("/v1/traces")
    assert change.env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] == "http/protobuf"
    assert change.env["PATH"] == "/bin"
    # an export sent before the child serves waits in the backlog (the engine starts first)
    ctx = CollectContext(tmp_path, "http://127.0.0.1:1", EngineFacts("vllm"), take_anchor())
    assert c.skip_reason(ctx) == ""
    runner = ChildRunner(c, ctx)
    assert runner.start(), runner.error
    try:
        for body in protobuf_bodies():
            assert _post(endpoint, body, "application/x-protobuf") == 200
    finally:
        stats = runner.stop()
    assert runner.error == ""
    assert stats.counts["spans"] == 53
    assert stats.counts["request_spans"] == 14
    table = pq.read_table(tmp_path / OTEL_SPANS_FILE).to_pandas()
    assert len(table) == 53
    assert int((table["name"] == "llm_request").sum()) == 14
    assert (tmp_path / OTEL_SPANS_JOURNAL).exists()
    assert orjson.loads((tmp_path / OTEL_RECEIVER_FILE).read_bytes())["spans"] == 53


def test_user_endpoint_is_kept_and_collector_skips(tmp_path: Path) -> None:
    c = OtelCollector()
    argv = ["vllm", "serve", "m", "--otlp-traces-endpoint=http://jaeger:4318/v1/traces"]
    change = c.amend_launch("vllm", argv, {}, tmp_path, {})
    assert change.argv == argv
    ctx = CollectContext(tmp_path, "http://127.0.0.1:1", EngineFacts("vllm"), take_anchor())
    assert "already names --otlp-traces-endpoint" in c.skip_reason(ctx)


def test_sglang_gets_its_enable_flag_and_attach_is_refused(tmp_path: Path) -> None:
    c = OtelCollector()
    change = c.amend_launch("sglang", [sys.executable, "-m", "sglang.launch_server"], {},
                            tmp_path, {})
    assert "--enable-trace" in change.argv
    assert "--otlp-traces-endpoint" in change.argv
    attached = OtelCollector()
    ctx = CollectContext(tmp_path, "http://127.0.0.1:1", EngineFacts("vllm"), take_anchor())
    assert "servescope run" in attached.skip_reason(ctx)
    assert attached.stop().counts == {}


@pytest.mark.parametrize("engine", ["openai", "triton"])
def test_engines_without_tracing_change_nothing(tmp_path: Path, engine: str) -> None:
    change = OtelCollector().amend_launch(engine, ["srv"], {}, tmp_path, {})
    assert change.argv == ["srv"]
    assert change.notes
