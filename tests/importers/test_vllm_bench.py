"""vllm bench serve's detailed result JSON, imported: its own numbers are the ground truth.

vLLM 0.32 computes its aggregates with numpy over the successful requests' ``ttfts``,
``itls`` (pooled), ``tpot = (latency - ttft) / (output_len - 1)`` and ``latencies``; our
``definition_table(run, "vllm")`` computes the same from the imported timeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from analyzers.definitions import definition_samples, definition_table
from analyzers.summary import summarize
from servescope.records import EventKind
from tests.importers._peers import NS_TOL, VLLM_FAULTS, VLLM_OK, imported, load

_METRICS = {"ttft_ns": "ttft", "tpot_ns": "tpot", "itl_ns": "itl", "e2el_ns": "e2el"}


def _ok_rows(data: dict[str, Any]) -> list[int]:
    return [i for i, e in enumerate(data["errors"]) if e == ""]


@pytest.mark.parametrize("source", [VLLM_OK, VLLM_FAULTS], ids=["ok", "faults"])
def test_counts_and_tokens_match_the_file(source, tmp_path):
    data = load(source)
    run = imported(source, tmp_path)
    s = summarize(run)
    assert len(run.requests) == data["num_prompts"]
    assert s.successful_requests == data["completed"]
    assert s.measured_requests - s.successful_requests == data["failed"]
    assert s.output_tokens == data["total_output_tokens"]
    assert s.input_tokens == data["total_input_tokens"]


@pytest.mark.parametrize("source", [VLLM_OK, VLLM_FAULTS], ids=["ok", "faults"])
def test_per_request_samples_equal_vllms_own(source, tmp_path):
    data = load(source)
    run = imported(source, tmp_path)
    ok = _ok_rows(data)
    got = definition_samples(run, "vllm")
    np.testing.assert_allclose(got["ttft_ns"], np.array(data["ttfts"])[ok] * 1e9, atol=NS_TOL)
    np.testing.assert_allclose(got["e2el_ns"], np.array(data["latencies"])[ok] * 1e9,
                               atol=NS_TOL * 8)
    itls = np.concatenate([data["itls"][i] for i in ok]) * 1e9
    np.testing.assert_allclose(got["itl_ns"], itls, atol=NS_TOL)


@pytest.mark.parametrize("source", [VLLM_OK, VLLM_FAULTS], ids=["ok", "faults"])
def test_aggregates_equal_vllms_reported_ones(source, tmp_path):
    """mean / median / std / p50 / p90 / p99 of TTFT, TPOT, ITL and E2EL, as vLLM printed."""
    data = load(source)
    table = definition_table(imported(source, tmp_path), "vllm")
    for ours, theirs in _METRICS.items():
        st = table[ours].scaled(1e-6)
        for stat, value in (("mean", st.mean), ("median", st.p50), ("std", st.stdev),
                            ("p50", st.p50), ("p90", st.p90), ("p99", st.p99)):
            assert value == pytest.approx(data[f"{stat}_{theirs}_ms"], rel=1e-7, abs=1e-5), (
                ours, stat)


def test_manifest_records_source_aggregates_and_what_was_reconstructed(tmp_path):
    data = load(VLLM_OK)
    run = imported(VLLM_OK, tmp_path)
    imp = run.manifest.imported
    assert imp is not None
    assert imp.tool == "vllm bench serve"
    assert imp.version == "unknown"  # vLLM's result JSON carries no version
    assert imp.source_file == str(VLLM_OK)
    assert imp.aggregates["mean_ttft_ms"] == data["mean_ttft_ms"]
    assert imp.aggregates["duration"] == data["duration"]
    assert "ttfts" not in imp.aggregates
    assert any("t_send_ns = t_start_ns" in r for r in imp.reconstructed)
    assert run.manifest.warnings
    assert run.manifest.target["model"] == data["model_id"]
    assert run.manifest.workload["max_concurrency"] == 4


def test_timeline_is_rebuilt_from_start_ttft_and_itls(tmp_path):
    """Chunk k of request i arrives at start + ttft + itl[0..k); send is vLLM's start."""
    data = load(VLLM_OK)
    run = imported(VLLM_OK, tmp_path)
    req = run.requests.set_index("request_id")
    ev = run.events
    for i in (0, 17):
        t0 = int(req["t_start_ns"].to_numpy()[i])
        assert t0 == round(data["start_times"][i] * 1e9)
        assert req.loc[i, "t_send_ns"] == t0
        t = ev[ev["request_id"] == i]["t_ns"].to_numpy()
        want = t0 + np.cumsum([data["ttfts"][i], *data["itls"][i]]) * 1e9
        np.testing.assert_allclose(t - t0, want - t0, atol=NS_TOL * 8)
        assert set(ev[ev["request_id"] == i]["kind"]) == {int(EventKind.OUTPUT)}
        assert ev[ev["request_id"] == i]["chars"].sum() == len(data["generated_texts"][i])
        assert req.loc[i, "usage_completion_tokens"] == data["output_lens"][i]


def test_a_request_that_failed_midstream_keeps_its_chunks_and_its_error(tmp_path):
    data = load(VLLM_FAULTS)
    run = imported(VLLM_FAULTS, tmp_path)
    failed = [i for i, e in enumerate(data["errors"]) if e]
    assert len(failed) == data["failed"] == 1
    row = run.requests.set_index("request_id").loc[failed[0]]
    assert row["outcome"] == "connection_error"
    assert str(row["error"]).startswith("aiohttp.client_exceptions.ClientPayloadError")
    assert "Traceback" not in row["error"]
    assert row["usage_completion_tokens"] == -1  # vLLM writes 0 for a failed request
    n_events = (run.events["request_id"] == failed[0]).sum()
    assert n_events == len(data["itls"][failed[0]]) + 1
    assert summarize(run).error_rate == pytest.approx(1 / 12)


def test_servescope_latencies_on_the_import_match_vllms_where_definitions_agree(tmp_path):
    """Send = vLLM's start and every chunk is an output event, so our TTFT and E2E equal
    vLLM's; TPOT too (usage tokens)."""
    data = load(VLLM_OK)
    s = summarize(imported(VLLM_OK, tmp_path))
    assert s.latency.ttft_ns.mean / 1e6 == pytest.approx(data["mean_ttft_ms"], rel=1e-9)
    assert s.latency.e2e_ns.mean / 1e6 == pytest.approx(data["mean_e2el_ms"], rel=1e-9)
    assert s.latency.tpot_ns.mean / 1e6 == pytest.approx(data["mean_tpot_ms"], rel=1e-9)
    assert s.latency.itl_per_event_ns.count == len(np.concatenate(data["itls"]))
    assert any("per-token ITL assumes one token per output event" in w for w in s.warnings)
