"""Real vLLM SSE bytes (tests/data/vllm_cpu) through the client's event classifier.

The capture's events get hand-chosen arrival times (10 ms apart), so every metric is known:
the classification is the real collector's, the numbers are ours to check.
"""

from __future__ import annotations

from pathlib import Path

from analyzers.definitions import definition_samples
from analyzers.request_metrics import request_metrics
from collectors.client.sse import SSEParser
from collectors.client.stream import _EventSink  # the collector's own classifier
from servescope.records import EventKind, RequestRecord
from tests.analyzers._rundir import MS, ns, write_run

DATA = Path(__file__).resolve().parents[1] / "data" / "vllm_cpu"


def _replay(name: str, chat: bool) -> RequestRecord:
    rec = RequestRecord(request_id=1, endpoint="chat" if chat else "completions",
                        t_send_ns=ns(0), status=200)
    sink = _EventSink(rec, chat, keep_text=False)
    payloads = SSEParser().feed((DATA / name).read_bytes())
    for i, payload in enumerate(payloads, start=1):
        sink.add(payload, ns(10 * i))
    rec.t_end_ns = ns(10 * len(payloads) + 5)
    return rec


def test_chat_with_continuous_usage(tmp_path):
    # role chunk 10 (cum 0) | " 106" 20 (cum 1) | "" 30 (cum 2: a held-back byte) |
    # "\ufffd 806" + finish 40 (cum 3) | usage 50 | [DONE] 60
    rec = _replay("chat_stream_continuous_usage.sse", chat=True)
    assert rec.ev_kind == [EventKind.ROLE, EventKind.OUTPUT, EventKind.OUTPUT,
                           EventKind.OUTPUT, EventKind.USAGE, EventKind.DONE]
    run = write_run(tmp_path, [rec])
    r = request_metrics(run).iloc[0]
    assert (r.ttft_ns, r.e2e_ns, r.e2e_done_ns) == (20 * MS, 40 * MS, 60 * MS)
    assert (r.output_tokens, r.output_tokens_source, r.itl_tokens_source) == (
        3, "usage", "chunk_usage")
    assert r.tpot_ns == 10 * MS
    ours = definition_samples(run, "servescope")
    assert list(ours["itl_per_token_ns"]) == [10 * MS, 10 * MS]  # the empty delta is a token
    aiperf = definition_samples(run, "aiperf")
    assert list(aiperf["inter_chunk_latency_ns"]) == [20 * MS]  # it skips the empty delta
    assert list(aiperf["inter_token_latency_ns"]) == [10 * MS]  # (40 - 20) / (3 - 1)
    guidellm = definition_samples(run, "guidellm")
    assert list(guidellm["request_latency_ns"]) == [60 * MS]


def test_completions_without_chunk_usage(tmp_path):
    rec = _replay("completions_stream.sse", chat=False)
    n_text = sum(1 for k in rec.ev_kind if k == EventKind.OUTPUT)
    run = write_run(tmp_path, [rec])
    r = request_metrics(run).iloc[0]
    assert r.ttft_ns == 10 * MS  # completions have no role chunk
    assert r.e2e_ns == 10 * n_text * MS
    assert (r.output_tokens, r.output_tokens_source) == (16, "usage")
    assert r.itl_tokens_source == "one_per_event"
    assert r.tpot_ns == (10 * n_text - 10) * MS / 15
