"""The live OTLP export while the load runs (profiler.otlp_tail): against a slow reference
server, an OTLP/HTTP sink on loopback stamps every body's arrival. Spans arrive while requests
are still in flight, every request's client span arrives exactly once over the live and the
end-of-run exports, the metrics arrive during the run and the last one counts the whole run
on the live series' start time; an endpoint that dies mid-run is one warning, the run
completes and nothing was sent twice. The journal tail takes whole lines only, each once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from collectors.otel.decode import parse_protobuf, spans_of
from profiler.engine_run import EngineOptions, attach_engine
from profiler.otlp_live import MANIFEST_KEY
from profiler.otlp_tail import EXPORTED_FILE, JournalTail
from profiler.selftest.process import RefServerHandle, start_refserver
from profiler.selftest.schedule import RefSchedule
from servescope.clock import ClockAnchor
from servescope.rundir.manifest import read_manifest
from servescope.tracecontext import client_trace_ids

pytestmark = pytest.mark.timeout(240)

Arrival = tuple[int, str, bytes]  # (wall ns, path, body)


class _Sink:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.arrivals.append((time.time_ns(), self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def client_spans(self) -> list[tuple[int, Any]]:
        return [(t, s) for t, path, body in self.arrivals if path == "/v1/traces"
                for s in spans_of(parse_protobuf(body), ClockAnchor(0, 0)) if s.kind == "client"]


@pytest.fixture(scope="module")
def slow_server() -> Iterator[RefServerHandle]:
    """About 1.3 s a request: TTFT 100 ms, then 30 tokens 40 ms apart."""
    sched = RefSchedule(ttft_ms=100, itl_ms=40, output_tokens=30)
    with start_refserver(sched, extra_args=["--spin-us", "0", "--model", "ref"]) as server:
        yield server


@pytest.fixture
def sink() -> Iterator[_Sink]:
    s = _Sink()
    yield s
    s.close()


def _attach(server: RefServerHandle, url: str, out: Path, n: int) -> Any:
    from profiler.cli_workload import WorkloadOptions

    opts = EngineOptions(engine="openai", collect="metrics", scrape=False, otlp_endpoint=url,
                         otlp_interval_s=1.0)
    cfg = WorkloadOptions(requests=n, concurrency=3, input_len="fixed:8",
                          output_len="fixed:30").to_config(server.url, "ref", out, ["t"])
    return attach_engine(server.url, opts, config=cfg)


def _duration_points(body: bytes) -> list[Any]:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    msg = ExportMetricsServiceRequest()
    msg.ParseFromString(body)
    return [dp for rm in msg.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            if m.name == "gen_ai.client.operation.duration" for dp in m.histogram.data_points]


def test_spans_and_metrics_arrive_during_the_run_each_request_once(
        slow_server: RefServerHandle, sink: _Sink, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _attach(slow_server, sink.url, out, 18)
    assert res.status == "complete"
    assert not [w for w in res.warnings if "OTLP" in w], res.warnings
    requests = pd.read_parquet(out / "requests.parquet")
    assert len(requests) == 18
    man = read_manifest(out)
    want = sorted(client_trace_ids(man.run_id, str(x))[0] for x in requests["x_request_id"])
    got = sink.client_spans()
    assert sorted(s.trace_id for _, s in got) == want  # every request, none twice

    wall_start = [man.clock.to_wall_ns(int(t)) for t in requests["t_start_ns"]]
    wall_end = [man.clock.to_wall_ns(int(t)) for t in requests["t_end_ns"]]
    span_times = sorted({t for t, _ in got})
    # a batch of spans arrived while some request was still in flight (sent before its end)
    assert any(s < t < e for t in span_times for s, e in zip(wall_start, wall_end,
                                                              strict=True))
    assert span_times[0] < max(wall_end) - 2_000_000_000  # seconds before the load ended
    metrics = [(t, _duration_points(b)) for t, p, b in sink.arrivals if p == "/v1/metrics"]
    assert metrics
    assert metrics[0][0] < max(wall_end)  # metrics during the run too
    live_counts = [sum(dp.count for dp in pts) for t, pts in metrics if t < max(wall_end)]
    assert 0 < live_counts[0] < 18  # a partial count while the run was going on
    final = metrics[-1][1]
    assert sum(dp.count for dp in final) == 18  # the whole run, cumulative
    first_start = min(dp.start_time_unix_nano for _, pts in metrics[:1] for dp in pts)
    assert {dp.start_time_unix_nano for dp in final} == {first_start}  # the same series

    entry = read_manifest(out).collectors[MANIFEST_KEY]
    live = entry["live"]
    assert live["batches"] >= 2
    assert live["span_failures"] == 0
    assert live["spans"] + entry["spans"] == 18  # the rest went out at the end
    assert len(orjson.loads((out / EXPORTED_FILE).read_bytes())["x_request_ids"]) == \
        live["spans"]


def test_an_endpoint_dying_mid_run_is_one_warning(slow_server: RefServerHandle,
                                                  sink: _Sink, tmp_path: Path) -> None:
    def kill_after_first_spans() -> None:
        while not any(p == "/v1/traces" for _, p, _ in sink.arrivals):
            time.sleep(0.05)
        sink.close()

    killer = threading.Thread(target=kill_after_first_spans, daemon=True)
    killer.start()
    out = tmp_path / "run"
    t0 = time.monotonic()
    res = _attach(slow_server, sink.url, out, 18)
    took = time.monotonic() - t0
    killer.join(5)
    assert res.status == "complete"
    otlp = [w for w in res.warnings if "OTLP" in w]
    assert len(otlp) == 1, res.warnings
    got = sink.client_spans()
    ids = [s.trace_id for _, s in got]
    assert len(ids) == len(set(ids)) > 0  # nothing twice
    port = sink.url.rsplit(":", 1)[1]
    assert otlp[0] == (f"OTLP export to {sink.url}: {18 - len(ids)} of 18 request spans and "
                       f"the final metrics not exported (connection refused: nothing "
                       f"listens on 127.0.0.1:{port}); {len(ids)} went out live")
    assert otlp == [w for w in read_manifest(out).warnings if "OTLP" in w]
    assert took < 6 * 1.3 + 30  # the load (6 rounds of 1.3 s) plus a bounded stop


def test_the_tail_takes_whole_lines_each_request_once(tmp_path: Path) -> None:
    jdir = tmp_path / "journal"
    jdir.mkdir()
    j = jdir / "worker-0.jsonl"
    j.write_bytes(b'{"request_id": 0}\n{"request_id": 1, "x":')  # line 2 still being written
    tail = JournalTail(tmp_path)
    assert [d["request_id"] for d in tail.poll()] == [0]
    assert tail.poll() == []
    with j.open("ab") as fh:
        fh.write(b' 2}\nnot json\n{"request_id": 0}\n{"request_id": 3}\n')
    (jdir / "worker-1.jsonl").write_bytes(b'{"request_id": 4}\n')
    assert [d["request_id"] for d in tail.poll()] == [1, 3, 4]
    assert tail.skipped == 1
    assert tail.poll() == []


def test_the_end_of_run_part_sends_engine_spans_under_client_spans_sent_live() -> None:
    """On a real vLLM-CPU run: with every client span marked sent, the end-of-run build
    holds no client span and every engine span, each under its client span's ids."""
    from reports.otlp import build_telemetry

    run = Path(__file__).resolve().parents[1] / "data" / "otel" / "vllm_cpu_run"
    requests = pd.read_parquet(run / "requests.parquet")
    seed = read_manifest(run).run_id
    x_ids = [str(x) for x in requests["x_request_id"]]
    tel = build_telemetry(run, sent=frozenset(x_ids[:50]))
    kinds = [s.kind.name for s in tel.spans]
    assert kinds.count("CLIENT") == 30
    assert kinds.count("SERVER") == tel.engine_spans == 80
    want = {(int(t, 16), int(s, 16)) for t, s in (client_trace_ids(seed, x) for x in x_ids)}
    parents = {(s.context.trace_id, s.parent.span_id) for s in tel.spans
               if s.kind.name == "SERVER" and s.parent is not None}
    assert parents == want
