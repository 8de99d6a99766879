"""ITL per event and per token (times in ms after T0, ``cum`` = per-chunk usage count)."""

from __future__ import annotations

import numpy as np

from analyzers.itl import itl_samples
from tests.analyzers._rundir import MS, out, request, role, usage, write_run


def test_three_tokens_in_one_event_give_three_samples_of_a_third(tmp_path):
    # first token at 10; the event at 19 brings tokens 2..4 (cum 1 -> 4) after a 9 ms gap
    rec = request(1, 0.0, [role(2, cum=0), out(10, cum=1), out(19, cum=4), usage(20, cum=4)],
                  done_ms=21, completion_tokens=4)
    s = itl_samples(write_run(tmp_path, [rec]))
    assert np.array_equal(s.per_token_ns, [3 * MS, 3 * MS, 3 * MS])  # not 0, 0, 9 and not 9
    assert np.array_equal(s.per_token_row, [0, 0, 0])
    assert np.array_equal(s.per_event_ns, [9 * MS])
    r = s.per_request.iloc[0]
    assert r.itl_tokens_source == "chunk_usage"
    assert (r.itl_token_count, r.itl_token_mean_ns, r.itl_token_max_ns) == (3, 3 * MS, 3 * MS)
    assert (r.itl_event_count, r.itl_event_mean_ns, r.itl_event_max_ns) == (1, 9 * MS, 9 * MS)


def test_extra_tokens_of_the_first_event_have_no_gap(tmp_path):
    # the first output event brings 4 tokens at once (e.g. a stream interval of 4): tokens
    # 2..4 arrived with token 1 and yield no sample; then 1 token at 14 and 2 at 22.
    rec = request(1, 0.0, [out(10, cum=4), out(14, cum=5), out(22, cum=7)], done_ms=23,
                  completion_tokens=7)
    s = itl_samples(write_run(tmp_path, [rec]))
    assert np.array_equal(s.per_token_ns, [4 * MS, 4 * MS, 4 * MS])  # 4, then 8/2, 8/2
    r = s.per_request.iloc[0]
    assert r.first_event_tokens == 4
    assert r.itl_token_count == 3  # 7 tokens - 4 in the first event
    assert r.itl_token_mean_ns == (22 - 10) * MS / 3


def test_without_chunk_usage_one_token_per_event_is_assumed(tmp_path):
    rec = request(1, 0.0, [role(3), out(10), out(12, chars=0), out(15), out(25)],
                  done_ms=26, completion_tokens=9)
    s = itl_samples(write_run(tmp_path, [rec]))
    # the empty delta at 12 carries nothing and is skipped: gaps 5 and 10
    assert np.array_equal(s.per_event_ns, [5 * MS, 10 * MS])
    assert np.array_equal(s.per_token_ns, s.per_event_ns)
    r = s.per_request.iloc[0]
    assert (r.itl_tokens_source, r.first_event_tokens) == ("one_per_event", 1)
    assert (r.itl_token_mean_ns, r.itl_token_max_ns) == (7.5 * MS, 10 * MS)


def test_one_output_event_without_a_count_turns_the_request_to_one_per_event(tmp_path):
    rec = request(1, 0.0, [out(10, cum=1), out(14), out(22, cum=5)], done_ms=23)
    s = itl_samples(write_run(tmp_path, [rec]))
    assert s.per_request.iloc[0].itl_tokens_source == "one_per_event"
    assert np.array_equal(s.per_token_ns, [4 * MS, 8 * MS])


def test_text_without_new_tokens_is_no_token_event(tmp_path):
    # text at 14 brings no new token (cum stays 1): the token at 20 is 10 ms after token 1
    rec = request(1, 0.0, [out(10, cum=1), out(14, cum=1), out(20, cum=2)], done_ms=21)
    s = itl_samples(write_run(tmp_path, [rec]))
    assert np.array_equal(s.per_event_ns, [4 * MS, 6 * MS])
    assert np.array_equal(s.per_token_ns, [10 * MS])


def test_samples_are_kept_per_request_and_empty_requests_have_none(tmp_path):
    recs = [
        request(1, 0.0, [out(10), out(11)], done_ms=12),
        request(2, 0.0, [out(10)], done_ms=12),
        request(3, 0.0, [], end_ms=5),
        request(4, 0.0, [out(10, cum=2), out(16, cum=4)], done_ms=17),
    ]
    s = itl_samples(write_run(tmp_path, recs))
    ids = s.per_request["request_id"].to_numpy()
    assert np.array_equal(ids[s.per_event_row], [1, 4])
    assert np.array_equal(s.per_token_ns, [1 * MS, 3 * MS, 3 * MS])
    assert np.array_equal(ids[s.per_token_row], [1, 4, 4])
    rows = np.array([False, False, False, True])  # request 4 only
    assert np.array_equal(s.per_token_of(rows), [3 * MS, 3 * MS])
    assert np.array_equal(s.per_event_of(rows), [6 * MS])
    pr = s.per_request.set_index("request_id")
    assert pr.loc[3, "itl_tokens_source"] == "none"
    assert pr.loc[3, "first_event_tokens"] == -1
    assert pr.loc[2, "itl_token_count"] == 0
    assert bool(pr["itl_token_max_ns"].isna()[2])
