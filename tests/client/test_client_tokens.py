"""Per-token ITL without per-chunk usage: the client's tokenizer counts each event's tokens.

The tokenizer is one the test builds (a word-level vocabulary: one token per word), so the
truth is known without trusting the code under test: the paced server sends N words per
event, a final usage of N x events, and an event every ``itl`` ms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

from analyzers.bottlenecks.request_rules import client_behind
from analyzers.context import RunContext
from analyzers.itl import TOKENS_CLIENT, itl_samples
from collectors.client.target import Target
from collectors.client.tokens import count_event_tokens
from profiler.loadrun import LoadConfig, run_load
from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist
from servescope.records import UNKNOWN, EventKind, RequestRecord
from servescope.rundir.reader import load_run
from tests.client._paced import paced_server
from tests.client.test_kernel_stamps import _gil_hog

_MS = 1_000_000
_OUT, _USAGE = int(EventKind.OUTPUT), int(EventKind.USAGE)


def _word_tokenizer(tmp: Path) -> Path:
    tok = Tokenizer(models.WordLevel({"the": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = tmp / "tokenizer.json"
    tok.save(str(path))
    return path


def test_a_token_split_across_events_counts_where_it_ends(tmp_path: Path) -> None:
    rec = RequestRecord(request_id=1, ev_kind=[_OUT, _OUT, _USAGE],
                        ev_tokens_cum=[UNKNOWN, UNKNOWN, 3], usage_completion_tokens=3)
    # "the the th|e the": the third word is complete only with the second event
    count_event_tokens(rec, [(0, "the the th"), (1, "e the")], str(_word_tokenizer(tmp_path)))
    assert rec.ev_tokens_cum == [2, 4, 3]  # the usage event keeps the server's own count
    assert rec.client_completion_tokens == 4
    assert rec.tokens_cum_source == "client_tokenizer"


def test_server_counts_are_never_replaced(tmp_path: Path) -> None:
    rec = RequestRecord(request_id=1, ev_kind=[_OUT, _OUT], ev_tokens_cum=[2, 4])
    count_event_tokens(rec, [(0, "the the"), (1, "the the")], str(_word_tokenizer(tmp_path)))
    assert rec.ev_tokens_cum == [2, 4]
    assert rec.tokens_cum_source == ""
    assert rec.client_completion_tokens == UNKNOWN


def _run(tmp: Path, url: str, *, streams: int, requests: int, events: int,
         tokenizer: Path | None) -> Path:
    out = tmp / "run"
    run_load(LoadConfig(
        target=Target(base_url=url, model="paced", per_chunk_usage=False,
                      tokenizer=str(tokenizer) if tokenizer else None),
        dataset=DatasetSpec("synthetic", input_len=LengthDist.fixed(8),
                            output_len=LengthDist.fixed(events)),
        arrival=ArrivalSpec("closed", concurrency=streams), out_dir=out,
        num_requests=requests, duration_s=None, workers=1, warmup_requests=0))
    return out


def test_four_tokens_per_event_read_as_ten_ms_per_token(tmp_path: Path) -> None:
    tok = _word_tokenizer(tmp_path)
    with paced_server(tmp_path, "--ttft-ms", "20", "--itl-ms", "40", "--events", "8",
                      "--tokens-per-event", "4", "--spin") as srv:
        out = _run(tmp_path, srv.url, streams=4, requests=8, events=8, tokenizer=tok)
    run = load_run(out)
    req = run.requests
    assert (req["outcome"] == "success").all()
    assert set(req["ev_clock"]) == {"kernel_rx"}
    assert (req["client_completion_tokens"] == 32).all()
    assert (req["usage_completion_tokens"] == 32).all()
    itl = itl_samples(run)
    assert set(itl.per_request["itl_tokens_source"]) == {TOKENS_CLIENT}
    assert itl.per_token_ns.size == 8 * 7 * 4  # 7 gaps of 4 tokens per request
    assert abs(float(np.median(itl.per_token_ns)) / _MS - 10.0) <= 0.1
    # against the server's own sends, request by request: its gaps / 4
    for row, rid in enumerate(req["x_request_id"]):
        sent = np.diff(np.asarray(srv.truth[rid]["t_ev_ns"])) / 4
        mine = itl.per_token_ns[itl.per_token_row == row]
        assert abs(float(mine.mean() - sent.mean())) < 0.05 * _MS
    summary = RunContext.of(run).summary()
    assert any("client's tokenizer" in w and "match the server's usage" in w
               for w in summary.warnings)


def test_without_a_tokenizer_it_is_still_one_token_per_event(tmp_path: Path) -> None:
    with paced_server(tmp_path, "--ttft-ms", "5", "--itl-ms", "40", "--events", "4",
                      "--tokens-per-event", "4") as srv:
        out = _run(tmp_path, srv.url, streams=2, requests=2, events=4, tokenizer=None)
    itl = itl_samples(load_run(out))
    assert set(itl.per_request["itl_tokens_source"]) == {"one_per_event"}
    assert abs(float(np.median(itl.per_token_ns)) / _MS - 40.0) < 2.0


def test_a_starved_client_is_reported_with_its_measured_lag(tmp_path: Path) -> None:
    with paced_server(tmp_path, "--ttft-ms", "20", "--itl-ms", "30", "--events", "12") as srv, \
            _gil_hog(0.015):
        out = _run(tmp_path, srv.url, streams=4, requests=8, events=12, tokenizer=None)
    ctx = RunContext.of(load_run(out))
    lag = ctx.summary().latency.client_lag_ns
    assert lag is not None
    assert lag.p99 > 5 * _MS
    finding = client_behind(ctx.rules)
    assert finding is not None
    ev = {e.name: e.value for e in finding.evidence}
    assert ev["client_read_lag_p99_ms"] == lag.p99 / _MS or ev["client_read_lag_p99_ms"] > 5
    assert "kernel's receive times" in finding.summary
    # the first output time is always a real arrival of that stream: its first event's,
    # or (when the client was a whole event gap behind) a later event's merged with it
    req = ctx.run.requests
    exact = 0
    for rid, first in zip(req["x_request_id"], ctx.metrics["t_first_output_ns"], strict=True):
        wire = np.asarray(srv.truth[rid]["t_ev_wire_ns"])
        assert np.abs(wire - first).min() < 0.05 * _MS
        exact += abs(int(wire[0]) - int(first)) < 0.05 * _MS
    assert exact >= len(req) // 2
