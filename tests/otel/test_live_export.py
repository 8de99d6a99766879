"""``--otlp-endpoint`` on run/attach (profiler.otlp_live): the finished run exported from a
child process, read back by an OTLP/HTTP endpoint on loopback and decoded independently
(spans with our receiver's decoder, metrics with opentelemetry-proto); bad endpoints are one
warning line each, in the run's warnings, and the run is not failed."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pandas as pd
import pytest

from collectors.otel.decode import parse_protobuf, spans_of
from profiler.engine_run import EngineOptions
from profiler.otlp_live import MANIFEST_KEY, check_endpoint, export_after_run
from servescope.clock import ClockAnchor
from servescope.rundir.manifest import read_manifest
from servescope.tracecontext import client_trace_ids

pytestmark = pytest.mark.timeout(180)

RUN = Path(__file__).resolve().parents[1] / "data" / "otel" / "vllm_cpu_run"
CURRENT_NAMES = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                 "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"}
OLD_NAMES = {"gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.system"}
Bodies = dict[str, list[bytes]]


class _Sink(BaseHTTPRequestHandler):
    bodies: ClassVar[Bodies] = {}
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.bodies.setdefault(self.path, []).append(body)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve(status: int) -> Iterator[tuple[str, Bodies]]:
    bodies: Bodies = {}
    handler = type("Sink", (_Sink,), {"bodies": bodies, "status": status})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", bodies
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def sink() -> Iterator[tuple[str, Bodies]]:
    yield from _serve(200)


@pytest.fixture
def not_otlp() -> Iterator[tuple[str, Bodies]]:
    yield from _serve(404)


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(RUN, dst)
    return dst


def _client_spans(bodies: Bodies) -> list[Any]:
    spans = [s for b in bodies.get("/v1/traces", [])
             for s in spans_of(parse_protobuf(b), ClockAnchor(0, 0))]
    return [s for s in spans if s.kind == "client"]


def _metrics(bodies: Bodies) -> dict[str, list[Any]]:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    out: dict[str, list[Any]] = {}
    for body in bodies.get("/v1/metrics", []):
        msg = ExportMetricsServiceRequest()
        msg.ParseFromString(body)
        for rm in msg.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.histogram.data_points)
    return out


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()  # nothing listens there now
    return port


def test_export_after_run_reads_back_one_span_per_request_and_the_metrics(
        run_copy: Path, sink: tuple[str, Bodies]) -> None:
    url, bodies = sink
    warnings: list[str] = []
    said: list[str] = []
    entry = export_after_run(run_copy, url, warnings, said.append)
    assert warnings == []
    requests = pd.read_parquet(run_copy / "requests.parquet")
    client = _client_spans(bodies)
    assert len(client) == len(requests) == 80
    seed = read_manifest(run_copy).run_id
    assert {s.trace_id for s in client} == {client_trace_ids(seed, str(x))[0]
                                           for x in requests["x_request_id"]}
    assert all(s.prompt_tokens == 64 and s.output_tokens == 32 for s in client)
    assert all("prompt_tokens:current" in s.names for s in client)
    raw_names = _attribute_names(bodies)
    assert raw_names >= CURRENT_NAMES
    assert not OLD_NAMES & raw_names
    metrics = _metrics(bodies)
    (dur,) = metrics["gen_ai.client.operation.duration"]
    assert dur.count == len(requests)
    usage = {next(a.value.string_value for a in dp.attributes
                  if a.key == "gen_ai.token.type"): dp.sum
             for dp in metrics["gen_ai.client.token.usage"]}
    assert usage == {"input": 80 * 64, "output": 80 * 32}
    assert "gen_ai.client.operation.time_per_output_chunk" in metrics
    recorded = read_manifest(run_copy).collectors[MANIFEST_KEY]
    assert recorded == entry
    assert recorded["spans_sent"]
    assert recorded["metrics_sent"]
    assert recorded["spans"] == 160  # 80 client spans and the 80 engine spans under them
    assert said == [f"exported 160 spans and {entry['metric_points']} metric series to {url}"]


def _attribute_names(bodies: Bodies) -> set[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    names: set[str] = set()
    for body in bodies["/v1/traces"]:
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(body)
        names.update(a.key for rs in msg.resource_spans for ss in rs.scope_spans
                     for sp in ss.spans for a in sp.attributes)
    return names


def _one_warning(run_dir: Path, warnings: list[str]) -> str:
    assert len(warnings) == 1, warnings
    (line,) = warnings
    assert "\n" not in line
    assert line in read_manifest(run_dir).warnings
    recorded = read_manifest(run_dir).collectors[MANIFEST_KEY]
    assert not recorded["spans_sent"]
    assert not recorded["metrics_sent"]
    return line


def test_unreachable_port_is_one_warning(run_copy: Path) -> None:
    port = _dead_port()
    warnings: list[str] = []
    t0 = time.monotonic()
    export_after_run(run_copy, f"http://127.0.0.1:{port}", warnings, timeout_s=1.0)
    assert time.monotonic() - t0 < 60
    line = _one_warning(run_copy, warnings)
    assert line == (f"OTLP export to http://127.0.0.1:{port}: nothing exported (connection "
                    f"refused: nothing listens on 127.0.0.1:{port})")
    assert read_manifest(run_copy).status == "complete"  # the run's status is untouched


def test_a_server_that_is_not_otlp_is_one_warning(run_copy: Path,
                                                  not_otlp: tuple[str, Bodies]) -> None:
    url, bodies = not_otlp
    warnings: list[str] = []
    export_after_run(run_copy, url, warnings, timeout_s=1.0)
    line = _one_warning(run_copy, warnings)
    port = url.rsplit(":", 1)[1]
    assert line == (f"OTLP export to {url}: nothing exported (127.0.0.1:{port} answered "
                    "HTTP 404 to an empty OTLP request on /v1/traces: not an OTLP/HTTP "
                    "traces receiver)")
    assert bodies["/v1/traces"]  # it was tried there


def test_a_silent_endpoint_is_bounded_and_one_warning(run_copy: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)  # connections queue, nobody answers
    port = s.getsockname()[1]
    try:
        warnings: list[str] = []
        t0 = time.monotonic()
        export_after_run(run_copy, f"http://127.0.0.1:{port}", warnings, timeout_s=5.0,
                         bound_s=4.0)
        took = time.monotonic() - t0
    finally:
        s.close()
    assert took < 4.0 + 3.0
    line = _one_warning(run_copy, warnings)
    assert line == f"OTLP export to http://127.0.0.1:{port}: stopped after 4 s, not finished"


def test_an_unreadable_run_is_one_warning(tmp_path: Path, sink: tuple[str, Bodies]) -> None:
    shutil.copytree(RUN, tmp_path / "run")
    (tmp_path / "run" / "requests.parquet").write_bytes(b"not parquet")
    url, bodies = sink
    warnings: list[str] = []
    export_after_run(tmp_path / "run", url, warnings)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"OTLP export to {url}: ")
    assert "/v1/traces" not in bodies


@pytest.mark.parametrize("url", ["localhost:4318", "ftp://host:21", "http://", "http://h:x"])
def test_a_bad_url_is_a_usage_error_before_anything_starts(url: str) -> None:
    with pytest.raises(ValueError, match="--otlp-endpoint"):
        check_endpoint(url)
    with pytest.raises(ValueError, match="--otlp-endpoint"):
        EngineOptions(engine="openai", otlp_endpoint=url)
    assert EngineOptions(otlp_endpoint="grpc://127.0.0.1:4317").otlp_endpoint


def test_attach_exports_its_requests_live_run(refserver: Any, tmp_path: Path,
                                              sink: tuple[str, Bodies]) -> None:
    """A whole attach against the reference server with --otlp-endpoint: one client span per
    request it recorded, each with the traceparent's trace id, and the duration count."""
    from profiler.cli_workload import WorkloadOptions
    from profiler.engine_run import attach_engine

    url, bodies = sink
    out = tmp_path / "attach"
    opts = EngineOptions(engine="openai", collect="metrics", scrape=False, otlp_endpoint=url)
    cfg = WorkloadOptions(requests=24, concurrency=3, input_len="fixed:8",
                          output_len="fixed:8").to_config(refserver.url, "ref", out, ["t"])
    res = attach_engine(refserver.url, opts, config=cfg)
    assert res.status == "complete"
    assert not [w for w in res.warnings if "OTLP" in w], res.warnings
    requests = pd.read_parquet(out / "requests.parquet")
    client = _client_spans(bodies)
    assert len(client) == len(requests) == 24
    seed = read_manifest(out).run_id
    assert {s.trace_id for s in client} == {client_trace_ids(seed, str(x))[0]
                                           for x in requests["x_request_id"]}
    (dur,) = _metrics(bodies)["gen_ai.client.operation.duration"]
    assert dur.count == 24
    assert read_manifest(out).collectors[MANIFEST_KEY]["spans_sent"]


def test_attach_with_a_dead_endpoint_completes_with_one_warning(refserver: Any,
                                                               tmp_path: Path) -> None:
    from profiler.cli_workload import WorkloadOptions
    from profiler.engine_run import attach_engine

    port = _dead_port()
    out = tmp_path / "attach"
    opts = EngineOptions(engine="openai", collect="metrics", scrape=False,
                         otlp_endpoint=f"http://127.0.0.1:{port}")
    cfg = WorkloadOptions(requests=6, concurrency=2, input_len="fixed:8",
                          output_len="fixed:8").to_config(refserver.url, "ref", out, ["t"])
    res = attach_engine(refserver.url, opts, config=cfg)
    assert res.status == "complete"
    otlp = [w for w in read_manifest(out).warnings if "OTLP" in w]
    assert otlp == [f"OTLP export to http://127.0.0.1:{port}: nothing exported (connection "
                    f"refused: nothing listens on 127.0.0.1:{port})"]
    assert [w for w in res.warnings if "OTLP" in w] == otlp


def test_servescope_own_receivers_take_the_spans_and_name_the_metrics_they_refuse(
        run_copy: Path, tmp_path: Path) -> None:
    """collectors/otel's receivers take traces only: over OTLP/HTTP and OTLP/gRPC every
    client span arrives (one per request, the traceparent's trace ids) and the refused
    metrics are one warning that says why."""
    from collectors.otel.receiver import GrpcReceiver, HttpReceiver, SpanJournal, bind_loopback

    requests = pd.read_parquet(run_copy / "requests.parquet")
    seed = read_manifest(run_copy).run_id
    want = {client_trace_ids(seed, str(x))[0] for x in requests["x_request_id"]}
    anchor = read_manifest(run_copy).clock
    http_journal = SpanJournal(tmp_path / "http.jsonl", anchor)
    grpc_journal = SpanJournal(tmp_path / "grpc.jsonl", anchor)
    http = HttpReceiver(bind_loopback(), http_journal)
    grpc = GrpcReceiver(grpc_journal)
    http.start()
    grpc.start()
    try:
        http_port, grpc_port = http.port, grpc.port
        http_url = f"http://127.0.0.1:{http_port}"
        grpc_url = f"grpc://127.0.0.1:{grpc_port}"
        http_warnings: list[str] = []
        grpc_warnings: list[str] = []
        http_entry = export_after_run(run_copy, http_url, http_warnings, timeout_s=2.0)
        grpc_entry = export_after_run(run_copy, grpc_url, grpc_warnings, timeout_s=2.0)
    finally:
        http.stop()
        grpc.stop()
        http_journal.close()
        grpc_journal.close()
    for journal, entry in ((http_journal, http_entry), (grpc_journal, grpc_entry)):
        rows = [orjson.loads(line) for line in journal.path.read_bytes().splitlines()]
        client = [r for r in rows if r["kind"] == "client"]
        assert {r["trace_id"] for r in client} == want
        assert len(client) == 80
        assert entry["spans_sent"]
        assert not entry["metrics_sent"]
    assert http_warnings == [
        f"OTLP export to {http_url}: metrics not exported (127.0.0.1:{http_port} answered "
        "HTTP 404 to an empty OTLP request on /v1/metrics: not an OTLP/HTTP metrics "
        "receiver)"]
    assert grpc_warnings == [
        f"OTLP export to {grpc_url}: metrics not exported (127.0.0.1:{grpc_port} accepts "
        "connections but did not take the OTLP/gRPC metrics export)"]


def test_servescope_run_with_otlp_endpoint_end_to_end(tmp_path: Path,
                                                      sink: tuple[str, Bodies]) -> None:
    """The real CLI: ``servescope run --otlp-endpoint SINK -- <fake engine>`` exits 0, says
    what it exported, and the sink holds one client span per recorded request."""
    from tests.collectors._server import free_port
    from tests.e2e._support import Tracker, run_servescope
    from tests.faults._signal_support import fake_engine

    url, bodies = sink
    port = free_port()
    out = tmp_path / "run"
    tracker = Tracker()
    try:
        res = run_servescope(["run", "--out", str(out), "--engine", "vllm", "--url",
                              f"http://127.0.0.1:{port}", "--requests", "8", "--output-len",
                              "fixed:4", "--otlp-endpoint", url, "--",
                              *fake_engine(port)], tracker.tag, timeout_s=90)
    finally:
        tracker.kill()
    assert res.returncode == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    requests = pd.read_parquet(out / "requests.parquet")
    assert len(requests) == 8
    client = _client_spans(bodies)
    seed = read_manifest(out).run_id
    assert {s.trace_id for s in client} == {client_trace_ids(seed, str(x))[0]
                                           for x in requests["x_request_id"]}
    assert len(client) == 8
    points = read_manifest(out).collectors[MANIFEST_KEY]["metric_points"]
    assert points == 5  # duration, first chunk, per chunk, token usage input and output
    said = re.search(r"exported 8 spans \((\d+) client spans live, the rest now\) and 5 "
                     rf"metric series to {re.escape(url)}", " ".join(res.text.split()))
    assert said is not None, res.text[-2000:]
    live = read_manifest(out).collectors[MANIFEST_KEY]["live"]
    assert int(said.group(1)) == live["spans"]
    assert "OTLP" not in " ".join(read_manifest(out).warnings)
