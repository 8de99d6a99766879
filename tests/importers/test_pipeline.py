"""An imported run is a run directory like any other: load, summarize, analyze, compare."""

from __future__ import annotations

import pytest

from analyzers.compare import compare_runs
from analyzers.definitions import DEFINITIONS, definition_table
from analyzers.run_analysis import analyze_run
from analyzers.summary import summarize
from servescope.rundir.reader import load_run
from tests.importers._peers import (
    AIPERF_FAULTS,
    GUIDELLM_FAULTS,
    GUIDELLM_OK,
    VLLM_FAULTS,
    VLLM_OK,
    imported,
)


@pytest.mark.parametrize("source", [VLLM_FAULTS, AIPERF_FAULTS, GUIDELLM_FAULTS],
                         ids=["vllm-bench", "aiperf", "guidellm"])
def test_every_definition_and_the_run_analysis_work_on_an_import(source, tmp_path):
    run = imported(source, tmp_path)
    assert run.source == "parquet"
    assert run.manifest.status == "complete"
    for name in DEFINITIONS:
        table = definition_table(run, name)
        empty = {k for k, st in table.items() if st.count == 0}
        # no tool records the arrival of [DONE] as such: that one is unknown, not guessed
        assert empty == ({"e2e_done_ns"} if name == "servescope" else set()), name
    analysis = analyze_run(run, n_resamples=50)
    assert analysis.summary.successful_requests == summarize(run).successful_requests


def test_two_tools_runs_against_one_server_can_be_compared(tmp_path):
    """vLLM's and GuideLLM's captures of the same reference schedule: compare runs on them."""
    imported(VLLM_FAULTS, tmp_path, name="vllm")
    imported(GUIDELLM_FAULTS, tmp_path, name="guidellm")
    cmp = compare_runs(tmp_path / "vllm", tmp_path / "guidellm")
    assert cmp.baseline.measured_requests == 12
    assert cmp.candidate.measured_requests == 12
    names = {m.spec.name for m in cmp.metrics}
    assert "ttft_p50" in names
    imported_from = load_run(tmp_path / "vllm").manifest.imported
    assert imported_from is not None
    assert imported_from.tool == "vllm bench serve"


def test_an_imported_run_can_be_gated_against_another(tmp_path):
    """The gate reads imports like recorded runs: vLLM's and GuideLLM's captures of one
    schedule pass a loose TTFT budget; GuideLLM's faulty capture (7 of 12 reset) breaks an
    error-rate limit."""
    from analyzers.budgets import parse_budgets
    from analyzers.gate import run_gate

    imported(VLLM_OK, tmp_path, name="base")
    imported(GUIDELLM_OK, tmp_path, name="cand")
    imported(GUIDELLM_FAULTS, tmp_path, name="faulty")
    loose = parse_budgets('[budgets]\nttft_p50 = "+50%"\n\n[validity]\nmin_requests = 5\n')
    result = run_gate(tmp_path / "cand", loose, baseline=tmp_path / "base")
    assert result.issues == ()
    assert result.exit_code == 0
    strict = parse_budgets('[budgets]\nerror_rate = "<= 10%"\n\n'
                           '[validity]\nmin_requests = 5\nmax_error_rate = "90%"\n')
    result = run_gate(tmp_path / "faulty", strict, baseline=tmp_path / "base")
    assert result.issues == ()
    assert result.exit_code == 1
