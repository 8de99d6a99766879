"""GuideLLM's benchmarks.json, imported: its per-request fields and its own distributions
are the ground truth.

GuideLLM 0.8.1 weighs its ITL distribution by N − 1 and its TPOT distribution by N per
request (``count`` is the token total), and takes population std; percentiles follow its
own method, so means, extremes, std and counts are compared.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analyzers.definitions import definition_samples, definition_table
from analyzers.summary import summarize
from tests.importers._peers import GUIDELLM_FAULTS, GUIDELLM_OK, NS_TOL, imported, load

_CAPTURES = [GUIDELLM_OK, GUIDELLM_FAULTS]
_IDS = ["ok", "faults"]
_PER_REQUEST = {  # ours → (GuideLLM's per-request field, ns per unit)
    "time_to_first_token_ns": ("time_to_first_token_ms", 1e6),
    "inter_token_latency_ns": ("inter_token_latency_ms", 1e6),
    "time_per_output_token_ns": ("time_per_output_token_ms", 1e6),
    "request_latency_ns": ("request_latency", 1e9),
}


def _bench(source: Path) -> dict[str, Any]:
    bench: dict[str, Any] = load(source)["benchmarks"][0]
    return bench


@pytest.mark.parametrize("source", _CAPTURES, ids=_IDS)
def test_counts_outcomes_and_tokens_match_the_file(source, tmp_path):
    bench = _bench(source)
    totals = bench["metrics"]["request_totals"]
    s = summarize(imported(source, tmp_path))
    assert s.measured_requests == totals["total"]
    assert s.successful_requests == totals["successful"]
    assert s.outcomes["connection_error"] == totals["errored"]  # ReadError: the resets
    tokens = bench["metrics"]  # GuideLLM sums in floats
    assert s.output_tokens == pytest.approx(tokens["output_token_count"]["successful"]["total_sum"])
    assert s.input_tokens == pytest.approx(tokens["prompt_token_count"]["successful"]["total_sum"])


@pytest.mark.parametrize("source", _CAPTURES, ids=_IDS)
def test_per_request_metrics_equal_guidellms(source, tmp_path):
    ok = _bench(source)["requests"]["successful"]
    got = definition_samples(imported(source, tmp_path), "guidellm")
    for ours, (theirs, scale) in _PER_REQUEST.items():
        want = np.array([r[theirs] for r in ok]) * scale
        np.testing.assert_allclose(got[ours], want, atol=NS_TOL, err_msg=ours)


@pytest.mark.parametrize("source", _CAPTURES, ids=_IDS)
def test_aggregates_equal_guidellms_reported_ones(source, tmp_path):
    bench = _bench(source)
    run = imported(source, tmp_path)
    table = definition_table(run, "guidellm")
    m = bench["metrics"]
    for ours, theirs, scale in (("time_to_first_token_ns", "time_to_first_token_ms", 1e-6),
                                ("request_latency_ns", "request_latency", 1e-9)):
        st, want = table[ours].scaled(scale), m[theirs]["successful"]
        assert st.count == want["count"]
        for got, key in ((st.mean, "mean"), (st.stdev, "std_dev"), (st.min, "min"),
                         (st.max, "max")):
            assert got == pytest.approx(want[key], rel=1e-7, abs=1e-9), (ours, key)
    # ITL and TPOT: GuideLLM weighs each request by its N - 1 and N tokens
    samples = definition_samples(run, "guidellm")
    n = np.array([r["output_tokens"] for r in bench["requests"]["successful"]], dtype=float)
    for ours, theirs, w in (("inter_token_latency_ns", "inter_token_latency_ms", n - 1),
                            ("time_per_output_token_ns", "time_per_output_token_ms", n)):
        want = m[theirs]["successful"]
        assert w.sum() == want["count"]
        mean = np.average(samples[ours], weights=w) / 1e6
        assert mean == pytest.approx(want["mean"], rel=1e-7), ours
        assert samples[ours].min() / 1e6 == pytest.approx(want["min"], rel=1e-7)
        assert samples[ours].max() / 1e6 == pytest.approx(want["max"], rel=1e-7)


def test_two_token_events_reproduce_guidellms_itl_as_our_per_token_itl(tmp_path):
    """Only first and last token times exist: our per-token ITL is GuideLLM's per-request
    mean, each token charged (last − first) / (N − 1)."""
    bench = _bench(GUIDELLM_OK)
    run = imported(GUIDELLM_OK, tmp_path)
    ev = run.events
    assert (ev.groupby("request_id").size() == 2).all()
    s = summarize(run)
    want = bench["metrics"]["inter_token_latency_ms"]["successful"]
    assert s.latency.itl_per_token_ns.count == want["count"]
    assert s.latency.itl_per_token_ns.mean / 1e6 == pytest.approx(want["mean"], rel=1e-7)
    assert s.latency.itl_per_event_ns.count == len(bench["requests"]["successful"])


def test_errored_requests_keep_their_partial_stream_and_error(tmp_path):
    bench = _bench(GUIDELLM_FAULTS)
    run = imported(GUIDELLM_FAULTS, tmp_path)
    req = run.requests.set_index("request_id")
    n_ok = len(bench["requests"]["successful"])
    for k, r in enumerate(bench["requests"]["errored"]):
        row = req.loc[n_ok + k]
        assert row["outcome"] == "connection_error"
        assert row["error"] == "ReadError('')"
        assert row["x_request_id"] == r["request_id"]
        # resolve_end, converted exactly (x * 1e9 in floats would be ~100 ns off)
        assert row["t_end_ns"] == round(Fraction(r["request_end_time"]) * 10**9)
        assert row["n_events"] == (2 if r["info"]["timings"]["token_iterations"] > 1 else 1)


def test_manifest_records_version_target_and_aggregates(tmp_path):
    bench = _bench(GUIDELLM_OK)
    run = imported(GUIDELLM_OK, tmp_path)
    imp = run.manifest.imported
    assert imp is not None
    assert (imp.tool, imp.version) == ("GuideLLM", "0.8.1")
    step0 = imp.aggregates["benchmarks"][0]
    assert step0["time_to_first_token_ms"]["successful"]["mean"] == \
        bench["metrics"]["time_to_first_token_ms"]["successful"]["mean"]
    assert "pdf" not in step0["time_to_first_token_ms"]["successful"]
    assert run.manifest.target["url"] == "http://127.0.0.1:18731"
    assert run.manifest.workers == bench["config"]["strategy"]["worker_count"]
    assert run.manifest.host.python == "3.11.7"
    assert run.manifest.seed == 42  # config.spec.seed = {"kind": "static", "value": 42}


def test_each_benchmark_of_a_sweep_is_a_step(tmp_path):
    """A sweep writes one benchmark per strategy; the two captures, joined, are two steps."""
    doc = load(GUIDELLM_OK)
    doc["benchmarks"].append(_bench(GUIDELLM_FAULTS))
    src = tmp_path / "sweep.json"
    src.write_text(json.dumps(doc))
    s = summarize(imported(src, tmp_path))
    assert [st.step for st in s.steps] == [0, 1]
    assert [st.successful_requests for st in s.steps] == [20, 5]
    assert s.measured_requests == 32


def test_requests_outside_the_measure_window_are_warmup(tmp_path):
    doc = load(GUIDELLM_OK)
    first = min(r["request_end_time"] for r in doc["benchmarks"][0]["requests"]["successful"])
    doc["benchmarks"][0]["scheduler_metrics"]["measure_start_time"] = first + 1e-6
    src = tmp_path / "warm.json"
    src.write_text(json.dumps(doc))
    run = imported(src, tmp_path)
    assert (run.requests["phase"] == "warmup").sum() == 1
    assert summarize(run).warmup_excluded == 1
