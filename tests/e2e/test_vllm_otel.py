"""``--collect otel`` against a real vLLM-CPU server (engine tier): vLLM exports one
``llm_request`` span per request to servescope's receiver over OTLP/HTTP, each carries the
trace id of the client's ``traceparent``, and the span-based TTFT attribution is consistent
with the client's TTFT.

Stated bounds (measured on this 2-core machine, docs/engines.md "OpenTelemetry"): every
completed request joined (counts equal); for every request the way in and the way out are
not negative beyond 1 ms (the engine's arrival after our send, its first token before our
read: one host, one wall clock); the residual (client TTFT − transport − queue − prefill, the
engine's unnamed time) is ≥ −1 ms for every request, its median ≤ 60 ms and its p90 ≤ 150 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyzers.otel import read_spans, summarize
from analyzers.request_metrics import request_metrics
from servescope.rundir.reader import load_run
from tests.collectors._server import free_port
from tests.e2e._support import Tracker, engine_sessions, run_servescope, vllm_command, vllm_missing

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(bool(vllm_missing()), reason=vllm_missing() or "-"),
    pytest.mark.timeout(900),
]

MS = 1e6


def test_every_request_joins_its_vllm_span_and_ttft_is_explained(tmp_path: Path) -> None:
    tracker, out = Tracker(), tmp_path / "run"
    res = run_servescope(["run", "--out", str(out), "--collect", "metrics,otel",
                          "--concurrency", "6", "--requests", "120", "--input-len", "fixed:64",
                          "--output-len", "fixed:32", "--",
                          *vllm_command(free_port())], tracker.tag, timeout_s=500)
    tracker.sessions |= engine_sessions(out)
    assert res.returncode == 0, res.output[-3000:]
    command = json.loads((out / "manifest.json").read_text())["engine"]["command"]
    endpoint = command[command.index("--otlp-traces-endpoint") + 1]
    assert endpoint.startswith("http://127.0.0.1:")
    receiver = json.loads((out / "otel" / "receiver.json").read_text())
    assert receiver["bad_bodies"] == 0
    run = load_run(out)
    m = request_metrics(run)
    req = run.requests[["request_id", "x_request_id"]].merge(m, on="request_id")
    ok = req[req["outcome"] == "success"]
    assert len(ok) == 120
    spans = read_spans(out)
    assert spans is not None
    att = summarize(ok, spans, run.manifest.run_id, r"llm_request")
    # the count: every completed request has its engine span, and no span is left over
    assert receiver["request_spans"] == att.request_spans == att.joined == len(ok)
    assert att.unjoined_spans == 0
    per = att.per_request
    assert (per["engine_request_id"] == "cmpl-" + per["x_request_id"] + "-0").all()
    assert att.net_in_negative == att.net_out_negative == 0
    residual = per["client_ttft_ns"] - per["transport_ns"] - per["queue_ns"] - \
        per["prefill_ns"]
    assert np.allclose(residual, per["engine_other_ns"], atol=1)
    assert (residual >= -1 * MS).all(), residual.min()
    assert residual.median() <= 60 * MS, residual.describe()
    assert residual.quantile(0.9) <= 150 * MS, residual.describe()
    assert tracker.live() == {}
