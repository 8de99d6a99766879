"""AIPerf's profile_export.jsonl, imported: its per-record metrics and the aggregates of the
profile_export_aiperf.json beside it are the ground truth.

AIPerf 0.13's aggregates are numpy statistics (population std, linear percentiles) over the
records' values; ``definition_table(run, "aiperf")`` computes the same from the timeline.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from analyzers.definitions import definition_samples, definition_table
from analyzers.summary import summarize
from tests.importers._peers import (
    AIPERF_FAULTS,
    AIPERF_OK,
    AIPERF_TRACE,
    NS_TOL,
    imported,
    jsonl,
    load,
    ns,
)

_CAPTURES = [AIPERF_OK, AIPERF_FAULTS, AIPERF_TRACE]
_IDS = ["ok", "faults", "http-trace"]
_PER_REQUEST = ("time_to_first_token", "request_latency", "inter_token_latency")


def _value(rec: dict[str, Any], name: str) -> Any:
    return rec["metrics"][name]["value"]


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r.get("error")]


@pytest.mark.parametrize("source", _CAPTURES, ids=_IDS)
def test_counts_outcomes_and_tokens_match_the_files(source, tmp_path):
    records, agg = jsonl(source), load(source.with_name("profile_export_aiperf.json"))
    run = imported(source, tmp_path)
    s = summarize(run)
    assert len(run.requests) == len(records)
    assert s.successful_requests == agg["request_count"]["avg"]
    errors = len(records) - len(_ok(records))
    assert s.outcomes["connection_error"] == errors  # every error captured is a reset
    assert s.error_rate * 100 == pytest.approx(agg["request_error_rate"]["avg"])
    assert s.output_tokens == agg["total_usage_completion_tokens"]["avg"]
    assert s.input_tokens == agg["total_usage_prompt_tokens"]["avg"]


@pytest.mark.parametrize("source", _CAPTURES, ids=_IDS)
def test_per_request_metrics_equal_aiperfs_records(source, tmp_path):
    ok = _ok(jsonl(source))
    got = definition_samples(imported(source, tmp_path), "aiperf")
    for name in _PER_REQUEST:
        want = ns([_value(r, name) for r in ok])
        np.testing.assert_allclose(got[f"{name}_ns"], want, atol=NS_TOL, err_msg=name)
    icl = ns(np.concatenate([_value(r, "inter_chunk_latency") for r in ok]))
    np.testing.assert_allclose(got["inter_chunk_latency_ns"], icl, atol=NS_TOL)


@pytest.mark.parametrize("source", _CAPTURES, ids=_IDS)
def test_aggregates_equal_aiperfs_reported_ones(source, tmp_path):
    agg = load(source.with_name("profile_export_aiperf.json"))
    table = definition_table(imported(source, tmp_path), "aiperf")
    for name in (*_PER_REQUEST, "inter_chunk_latency"):
        st, theirs = table[f"{name}_ns"].scaled(1e-6), agg[name]
        assert st.count == theirs["count"], name
        for ours, key in ((st.mean, "avg"), (st.stdev, "std"), (st.min, "min"),
                          (st.max, "max"), (st.p50, "p50"), (st.p90, "p90"),
                          (st.p99, "p99")):
            assert ours == pytest.approx(theirs[key], rel=1e-7, abs=1e-6), (name, key)


def test_timeline_keeps_aiperfs_wall_clock_stamps(tmp_path):
    records = jsonl(AIPERF_OK)
    run = imported(AIPERF_OK, tmp_path)
    req = run.requests.set_index("request_id")
    for k in (0, 13):
        meta, row = records[k]["metadata"], req.loc[k]
        assert row["t_start_ns"] == row["t_send_ns"] == meta["request_start_ns"]
        assert row["t_headers_ns"] == meta["request_ack_ns"]
        assert row["t_end_ns"] == meta["request_end_ns"]
        assert row["t_done_ns"] == -1
        assert row["x_request_id"] == meta["x_request_id"]
        t = run.events[run.events["request_id"] == k]["t_ns"].to_numpy()
        assert len(t) == len(_value(records[k], "inter_chunk_latency")) + 1
        latency_ns = round(_value(records[k], "request_latency") * 1e6)
        assert t[-1] - meta["request_start_ns"] == latency_ns
    assert run.manifest.clock.mono_ns == run.manifest.clock.wall_ns  # identity anchor
    assert run.manifest.workers == len({r["metadata"]["worker_id"] for r in records})


def test_http_trace_gives_the_moment_the_body_was_sent(tmp_path):
    """With --export-http-trace, t_send_ns is trace_data.request_send_end_ns, so our TTFT
    (from the send) is AIPerf's (from the start) minus the time spent sending."""
    records = jsonl(AIPERF_TRACE)
    run = imported(AIPERF_TRACE, tmp_path)
    req = run.requests.set_index("request_id")
    for k, rec in enumerate(records):
        sent = rec["trace_data"]["request_send_end_ns"]
        assert req.loc[k, "t_send_ns"] == sent > req.loc[k, "t_start_ns"]
    ours = definition_samples(run, "servescope")["ttft_ns"]
    theirs = definition_samples(run, "aiperf")["time_to_first_token_ns"]
    lead = np.array([r["trace_data"]["request_send_end_ns"] - r["metadata"]["request_start_ns"]
                     for r in records])
    np.testing.assert_allclose(theirs - ours, lead, atol=NS_TOL)
    assert run.manifest.imported is not None
    assert any("request_send_end_ns" in r for r in run.manifest.imported.reconstructed)


def test_error_records_become_failed_requests_without_events(tmp_path):
    records = jsonl(AIPERF_FAULTS)
    run = imported(AIPERF_FAULTS, tmp_path)
    failed = [k for k, r in enumerate(records) if r.get("error")]
    assert len(failed) == 2
    req = run.requests.set_index("request_id")
    for k in failed:
        assert req.loc[k, "outcome"] == "connection_error"
        assert str(req.loc[k, "error"]).startswith("ClientPayloadError: ")
        assert req.loc[k, "n_events"] == 0


def test_manifest_records_version_settings_and_aggregates(tmp_path):
    agg = load(AIPERF_OK.with_name("profile_export_aiperf.json"))
    run = imported(AIPERF_OK, tmp_path)
    imp = run.manifest.imported
    assert imp is not None
    assert (imp.tool, imp.version) == ("AIPerf", "0.13.0")
    assert imp.aggregates["time_to_first_token"] == agg["time_to_first_token"]
    assert run.manifest.target["url"] == "http://127.0.0.1:18731"
    assert run.manifest.seed == 0
    assert run.manifest.command_line[:2] == ["aiperf", "profile"]
    assert run.manifest.workload["phases"][0]["concurrency"] == 4


def test_without_the_summary_file_the_import_goes_on_and_says_so(tmp_path):
    alone = tmp_path / "src" / "profile_export.jsonl"
    alone.parent.mkdir()
    alone.write_bytes(AIPERF_OK.read_bytes())
    run = imported(alone, tmp_path)
    assert len(run.requests) == 30
    assert run.manifest.imported is not None
    assert run.manifest.imported.version == "unknown"
    assert any("profile_export_aiperf.json" in w for w in run.manifest.warnings)


def test_conversations_are_numbered_only_in_multi_turn_runs(tmp_path):
    run = imported(AIPERF_OK, tmp_path)
    assert (run.requests["conversation_id"] == -1).all()  # one session per request
    lines = jsonl(AIPERF_OK)
    lines[1]["metadata"]["conversation_id"] = lines[0]["metadata"]["conversation_id"]
    lines[1]["metadata"]["turn_index"] = 1
    src = tmp_path / "multi" / "profile_export.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    req = imported(src, tmp_path, name="multi-run").requests.set_index("request_id")
    assert list(req["conversation_id"][:3]) == [0, 0, 1]
    assert list(req["turn"][:3]) == [0, 1, 0]
