"""``servescope export otlp`` on a real vLLM-CPU run with joined engine spans
(tests/data/otel/vllm_cpu_run: 80 requests, --collect otel): the SDK's in-memory output, and
the export read back by an OTLP/HTTP endpoint on loopback, decoded with our own receiver's
decoder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from collectors.otel.decode import parse_protobuf, spans_of
from profiler.commands_export import otlp_command
from reports.otlp import DURATION_BUCKETS_S, build_telemetry, export_otlp
from servescope.clock import ClockAnchor
from servescope.rundir.reader import load_run
from servescope.tracecontext import client_trace_ids

RUN = Path(__file__).resolve().parents[1] / "data" / "otel" / "vllm_cpu_run"
OLD_NAMES = ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.system",
             "gen_ai.latency.time_to_first_token")


def _output_gaps() -> int:
    """Independent count: output chunks with text, minus one, over successful requests."""
    run = load_run(RUN)
    ok = set(run.requests.loc[run.requests["outcome"] == "success", "request_id"])
    ev = run.events[(run.events["kind"] == 0) & (run.events["chars"] > 0)]
    per = ev[ev["request_id"].isin(ok)].groupby("request_id").size()
    return int((per - 1).clip(lower=0).sum())


def test_one_client_span_per_request_with_the_engine_span_under_it() -> None:
    tel = build_telemetry(RUN)
    run = load_run(RUN)
    client = [s for s in tel.spans if s.kind.name == "CLIENT"]
    server = [s for s in tel.spans if s.kind.name == "SERVER"]
    assert len(client) == len(run.requests) == 80
    assert len(server) == tel.engine_spans == 80
    by_span = {s.context.span_id: s for s in client}
    for s in server:
        assert s.parent is not None
        parent = by_span[s.parent.span_id]
        assert parent.context.trace_id == s.context.trace_id
        assert (s.start_time or 0) >= (parent.start_time or 0)  # arrival after our send
    seed = run.manifest.run_id
    for s in client:
        attrs = dict(s.attributes or {})
        x = str(attrs["servescope.x_request_id"])
        assert f"{s.context.trace_id:032x}" == client_trace_ids(seed, x)[0]
        assert s.name == "text_completion tiny"
        assert attrs["gen_ai.operation.name"] == "text_completion"
        assert attrs["gen_ai.provider.name"] == "vllm"
        assert attrs["gen_ai.usage.input_tokens"] == 64
        assert attrs["gen_ai.usage.output_tokens"] == 32
    for s in tel.spans:
        assert not set(OLD_NAMES) & set(s.attributes or {})


def test_client_metrics_and_sub_10ms_buckets() -> None:
    tel = build_telemetry(RUN)
    assert tel.metrics is not None
    metrics: dict[str, Any] = {m.name: m for rm in tel.metrics.resource_metrics
                               for sm in rm.scope_metrics for m in sm.metrics}
    assert set(metrics) == {"gen_ai.client.operation.duration",
                            "gen_ai.client.operation.time_to_first_chunk",
                            "gen_ai.client.operation.time_per_output_chunk",
                            "gen_ai.client.token.usage"}
    (dur,) = metrics["gen_ai.client.operation.duration"].data.data_points
    assert dur.count == 80
    (tpoc,) = metrics["gen_ai.client.operation.time_per_output_chunk"].data.data_points
    assert tpoc.count == _output_gaps()
    assert sum(b < 0.010 for b in tpoc.explicit_bounds) >= 8
    assert tuple(tpoc.explicit_bounds) == DURATION_BUCKETS_S
    usage = {dp.attributes["gen_ai.token.type"]: dp
             for dp in metrics["gen_ai.client.token.usage"].data.data_points}
    assert usage["input"].sum == 80 * 64
    assert usage["output"].sum == 80 * 32


class _Sink(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, list[bytes]]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.bodies.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    _Sink.bodies = {}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Sink.bodies
    srv.shutdown()
    srv.server_close()


def test_export_read_back_over_otlp_http(sink: tuple[str, dict[str, list[bytes]]]) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    url, bodies = sink
    res = export_otlp(RUN, url)
    assert res.warnings == []
    assert res.spans_sent
    assert res.metrics_sent
    spans = [s for b in bodies["/v1/traces"]
             for s in spans_of(parse_protobuf(b), ClockAnchor(0, 0))]
    client = [s for s in spans if s.kind == "client"]
    assert len(client) == 80
    assert len({s.trace_id for s in client}) == 80
    assert all(s.prompt_tokens == 64 and s.output_tokens == 32 for s in spans)
    assert all("prompt_tokens:current" in s.names for s in spans)
    (mbody,) = bodies["/v1/metrics"]
    msg = ExportMetricsServiceRequest()
    msg.ParseFromString(mbody)
    names = {m.name for rm in msg.resource_metrics for sm in rm.scope_metrics
             for m in sm.metrics}
    assert "gen_ai.client.operation.time_per_output_chunk" in names


def test_bad_endpoint_is_one_warning_line_and_exit_0(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    assert otlp_command(RUN, f"http://127.0.0.1:{port}", 1.0) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert "warning: nothing exported" in err
    assert otlp_command(RUN, "localhost:4318", 1.0) == 2
    assert otlp_command(RUN.parent / "missing", "http://127.0.0.1:1", 1.0) == 2
