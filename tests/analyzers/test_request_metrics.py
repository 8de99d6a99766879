"""Per-request metrics against hand-chosen timelines (times in ms after T0)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analyzers.request_metrics import REQUEST_METRIC_COLUMNS, request_metrics
from analyzers.summary import summarize
from servescope.records import Outcome
from servescope.rundir.layout import RunDirError
from tests.analyzers._rundir import MS, T0, finish, out, request, role, usage, write_run


def _row(df: pd.DataFrame, request_id: int) -> pd.Series:
    return df.loc[df["request_id"] == request_id].iloc[0]


def test_ttft_skips_role_chunk_and_empty_deltas(tmp_path):
    # chat stream, no per-chunk usage: role chunk at 5, empty delta at 8 (content ""),
    # first text at 12, more text at 20 and 30, finish-only chunk 33, usage 34, [DONE] 35.
    rec = request(1, 0.0, [role(5), out(8, chars=0), out(12), out(20), out(30),
                           finish(33), usage(34, cum=3)],
                  done_ms=35, end_ms=36, completion_tokens=3, prompt_tokens=11)
    df = request_metrics(write_run(tmp_path, [rec]))
    r = _row(df, 1)
    assert list(df.columns) == list(REQUEST_METRIC_COLUMNS)
    assert r.ttft_ns == 12 * MS
    assert r.e2e_ns == 30 * MS  # last output event; finish, usage and [DONE] do not move it
    assert r.e2e_done_ns == 35 * MS
    assert r.n_output_events == 3
    assert (r.output_tokens, r.output_tokens_source) == (3, "usage")
    assert (r.input_tokens, r.input_tokens_source) == (11, "usage")
    assert r.tpot_ns == (30 - 12) * MS / (3 - 1)
    assert r.t_first_output_ns == T0 + 12 * MS  # raw integer ns kept exactly above 2**53
    assert r.t_last_ns == T0 + 36 * MS
    assert math.isnan(r.schedule_lag_ns)  # closed loop


def test_empty_delta_with_new_tokens_is_output(tmp_path):
    # per-chunk usage: the empty delta at 8 carries no new token (cum 0) and does not count;
    # the empty delta at 25 carries one (a held-back multi-byte character) and does.
    rec = request(1, 0.0, [role(5, cum=0), out(8, chars=0, cum=0), out(12, cum=1),
                           out(25, chars=0, cum=2), usage(26, cum=2)], done_ms=27)
    r = _row(request_metrics(write_run(tmp_path, [rec])), 1)
    assert r.ttft_ns == 12 * MS
    assert r.e2e_ns == 25 * MS
    assert (r.output_tokens, r.output_tokens_source) == (2, "chunk_usage")
    assert r.tpot_ns == 13 * MS


def test_output_token_sources_and_one_token_tpot(tmp_path):
    recs = [
        request(1, 0.0, [out(10), out(20)], done_ms=21, completion_tokens=5),
        request(2, 0.0, [out(10, cum=1), out(20, cum=4)], done_ms=21),
        request(3, 0.0, [out(10), out(15), out(20)], done_ms=21, prompt_tokens_planned=7),
        request(4, 0.0, [out(10)], done_ms=11, completion_tokens=1),
    ]
    df = request_metrics(write_run(tmp_path, recs))
    r1, r2, r3, r4 = (_row(df, i) for i in (1, 2, 3, 4))
    assert (r1.output_tokens, r1.output_tokens_source) == (5, "usage")
    assert r1.tpot_ns == 10 * MS / 4
    assert (r2.output_tokens, r2.output_tokens_source) == (4, "chunk_usage")
    assert r2.tpot_ns == 10 * MS / 3
    assert (r3.output_tokens, r3.output_tokens_source) == (3, "events")  # flagged guess
    assert r3.tpot_ns == 10 * MS / 2
    assert (r3.input_tokens, r3.input_tokens_source) == (7, "planned")
    assert (r1.input_tokens, r1.input_tokens_source) == (-1, "unknown")
    assert math.isnan(r4.tpot_ns)  # TPOT needs two tokens


def test_open_loop_lag_and_latency_from_intended(tmp_path):
    # intended at 100 but sent at 130 (the client was 30 ms late); first output 150, last 170
    rec = request(1, 130.0, [out(150), out(160), out(170)], done_ms=171, intended_ms=100.0)
    r = _row(request_metrics(write_run(tmp_path, [rec])), 1)
    assert r.schedule_lag_ns == 30 * MS
    assert r.ttft_ns == 20 * MS
    assert r.ttft_from_intended_ns == 50 * MS
    assert r.e2e_ns == 40 * MS
    assert r.e2e_from_intended_ns == 70 * MS


def test_failed_request_without_events(tmp_path):
    rec = request(1, 0.0, [], end_ms=3, outcome=Outcome.CONNECTION_ERROR)
    r = _row(request_metrics(write_run(tmp_path, [rec])), 1)
    assert r.outcome == "connection_error"
    assert all(math.isnan(r[c]) for c in ("ttft_ns", "e2e_ns", "e2e_done_ns", "tpot_ns"))
    assert (r.output_tokens, r.output_tokens_source, r.n_output_events) == (0, "events", 0)
    assert r.t_last_ns == T0 + 3 * MS


def test_journal_path_gives_the_same_metrics(tmp_path):
    recs = [
        request(2, 1.0, [role(4), out(9, cum=2), out(19, cum=5), usage(20, cum=5)],
                done_ms=21, completion_tokens=5, intended_ms=0.5),
        request(1, 0.0, [out(10), out(12)], done_ms=13, outcome=Outcome.SUCCESS),
        request(3, 2.0, [out(30)], end_ms=40, outcome=Outcome.TIMEOUT, phase="warmup"),
    ]
    finalized = write_run(tmp_path, recs, name="final")
    journal = write_run(tmp_path, recs, finalize=False, name="journal")
    assert (finalized.source, journal.source) == ("parquet", "journal")
    pd.testing.assert_frame_equal(request_metrics(finalized), request_metrics(journal),
                                  check_dtype=False)
    a, b = summarize(finalized), summarize(journal)
    assert a.latency == b.latency
    assert (a.window_ns, a.outcomes, a.successful_requests) == (
        b.window_ns, b.outcomes, b.successful_requests)
    assert any("did not finish" in w for w in b.warnings)


def test_requests_out_of_id_order_and_events_per_request(tmp_path):
    recs = [request(i, float(i), [out(i + 10.0), out(i + 10.0 + i)], done_ms=i + 50.0)
            for i in (5, 3, 9)]
    df = request_metrics(write_run(tmp_path, recs))
    assert np.array_equal(df["request_id"].to_numpy(), [3, 5, 9])
    assert np.array_equal(df["ttft_ns"].to_numpy(), [10 * MS] * 3)
    assert np.array_equal(df["e2e_ns"].to_numpy(), [13 * MS, 15 * MS, 19 * MS])


def test_duplicate_request_ids_are_refused(tmp_path):
    recs = [request(7, 0.0, [out(1)], done_ms=2), request(7, 0.0, [out(1)], done_ms=2)]
    with pytest.raises(RunDirError, match="request_id 7 appears more than once"):
        request_metrics(write_run(tmp_path, recs))
