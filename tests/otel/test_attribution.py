"""Per-request TTFT/E2E attribution against a schedule the test chose: every part of every
request is known, the join is by the trace id the client's traceparent carried."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzers.decompose import Decomposition, Part
from analyzers.otel import compare_with_histograms, summarize
from servescope.tracecontext import client_trace_ids

MS = 1_000_000
SEED = "run-42"


def _case(n: int = 20) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    rows, spans, truth = [], [], []
    for i in range(n):
        send = 1_000 * MS + i * 50 * MS
        net_in, queue, prefill = (int(x) for x in rng.integers(1, 5, 3) * MS)
        other, net_out, decode = (int(x) for x in rng.integers(1, 9, 3) * MS)
        e_ttft = queue + prefill + other
        e2e_other, tail = 2 * MS, 3 * MS
        e_e2e = queue + prefill + decode + e2e_other
        rows.append({"request_id": i, "x_request_id": f"ss-{i}", "t_send_ns": send,
                     "ttft_ns": net_in + e_ttft + net_out,
                     "e2e_ns": net_in + e_e2e + tail})
        spans.append({"trace_id": client_trace_ids(SEED, f"ss-{i}")[0], "name": "llm_request",
                      "t_start_ns": send + net_in, "ttft_ns": e_ttft, "e2e_ns": e_e2e,
                      "queue_ns": queue, "prefill_ns": prefill, "decode_ns": decode,
                      "prompt_tokens": 64, "output_tokens": 32,
                      "engine_request_id": f"cmpl-ss-{i}-0"})
        truth.append({"request_id": i, "net_in": net_in, "net_out": net_out,
                      "other": other, "transport_e2e": net_in + tail, "e2e_other": e2e_other})
    # spans that join nothing: another run's request, a start-up span
    spans.append({**spans[0], "trace_id": client_trace_ids("other-run", "ss-0")[0]})
    spans.append({**spans[1], "name": "Worker init", "trace_id": "ab" * 16})
    return pd.DataFrame(rows), pd.DataFrame(spans), pd.DataFrame(truth)


def test_every_part_of_every_request_is_recovered() -> None:
    req, spans, truth = _case()
    att = summarize(req, spans, SEED, r"llm_request")
    assert (att.requests, att.request_spans, att.joined, att.unjoined_spans) == (20, 21, 20, 1)
    per = att.per_request.merge(truth, on="request_id")
    assert (per["net_in_ns"] == per["net_in"]).all()
    assert (per["net_out_ns"] == per["net_out"]).all()
    assert (per["engine_other_ns"] == per["other"]).all()
    assert (per["transport_ns"] == per["net_in"] + per["net_out"]).all()
    assert (per["transport_e2e_ns"] == per["transport_e2e"]).all()
    assert (per["engine_other_e2e_ns"] == per["e2e_other"]).all()
    # the parts add up to the client's TTFT, request by request
    parts = per[["transport_ns", "queue_ns", "prefill_ns", "engine_other_ns"]].sum(axis=1)
    assert (parts == per["client_ttft_ns"]).all()
    assert att.per_request["client_ttft_ns"].is_monotonic_decreasing
    assert att.net_in_negative == att.net_out_negative == 0
    shares = {p.name: p.share for p in att.ttft}
    assert sum(shares.values()) == pytest.approx(1.0)
    q = next(p for p in att.ttft if p.name == "queue")
    assert q.p50_ns == pytest.approx(float(np.percentile(per["queue_ns"], 50)))


def test_a_wrong_seed_joins_nothing_and_bad_clocks_are_counted() -> None:
    req, spans, _ = _case()
    assert summarize(req, spans, "not-this-run", "llm_request").joined == 0
    late = spans.copy()
    # the first span's arrival stamped 10 ms before its send
    late["t_start_ns"] = late["t_start_ns"] - np.where(late.index == 0, 10 * MS, 0)
    att = summarize(req, late, SEED, "llm_request")
    assert att.net_in_negative == 1


def test_span_means_meet_the_histogram_decomposition() -> None:
    req, spans, _ = _case()
    att = summarize(req, spans, SEED, "llm_request")
    hist = (Decomposition("ttft", 1.0, 20, 1.0, 20.0, (Part("queue", 2.5 * MS, 0.1),
                                                      Part("prefill", 3.0 * MS, 0.2)), ()),)
    rows = compare_with_histograms(att, hist)
    mean_queue = float(att.per_request["queue_ns"].mean())
    assert rows[0][:2] == ("ttft", "queue")
    assert rows[0][2] == pytest.approx(mean_queue)
    assert rows[0][3] == 2.5 * MS
    assert [r[1] for r in rows] == ["queue", "prefill"]
