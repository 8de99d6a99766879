"""Peer tools' definitions on timelines where they disagree (times in ms after T0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzers.definitions import (
    DEFINITIONS,
    UnknownDefinitionError,
    definition_samples,
    definition_table,
    get_definition,
)
from servescope.rundir.reader import RunData
from tests.analyzers._rundir import MS, finish, out, request, role, usage, write_run


def _ms(samples: dict[str, np.ndarray]) -> dict[str, list[float]]:
    return {k: (np.asarray(v) / MS).tolist() for k, v in samples.items()}


@pytest.fixture
def two_token_chunks(tmp_path: Path) -> RunData:
    """A chat stream that delivers two tokens per chunk, with per-chunk usage.

    send 0; role chunk 5 (cum 0); text 20 (cum 2), 30 (cum 4), 40 (cum 6);
    finish-only chunk 45; usage chunk 46 (cum 6); [DONE] 47; stream closed 48.
    """
    rec = request(1, 0.0, [role(5, cum=0), out(20, cum=2), out(30, cum=4), out(40, cum=6),
                           finish(45, cum=6), usage(46, cum=6)],
                  done_ms=47, end_ms=48, completion_tokens=6)
    return write_run(tmp_path, [rec])


def test_servescope_on_two_token_chunks(two_token_chunks):
    got = _ms(definition_samples(two_token_chunks, "servescope"))
    assert got["ttft_ns"] == [20.0]
    assert got["e2e_ns"] == [40.0]  # last output event
    assert got["e2e_done_ns"] == [47.0]
    assert got["tpot_ns"] == [4.0]  # (40 - 20) / (6 - 1)
    assert got["itl_per_event_ns"] == [10.0, 10.0]
    # each 10 ms gap brought 2 tokens: 2 samples of 5 ms; the first chunk's 2nd token: none
    assert got["itl_per_token_ns"] == [5.0, 5.0, 5.0, 5.0]


def test_vllm_on_two_token_chunks(two_token_chunks):
    got = _ms(definition_samples(two_token_chunks, "vllm"))
    # output chunks are 20, 30, 40 and the finish chunk 45 (vLLM counts any chunk with
    # choices that is not the role chunk); one ITL entry per chunk
    assert got["ttft_ns"] == [20.0]
    assert got["e2el_ns"] == [45.0]
    assert got["itl_ns"] == [10.0, 10.0, 5.0]
    assert got["tpot_ns"] == [5.0]  # (45 - 20) / (6 - 1)


def test_aiperf_on_two_token_chunks(two_token_chunks):
    got = _ms(definition_samples(two_token_chunks, "aiperf"))
    assert got["time_to_first_token_ns"] == [20.0]
    assert got["request_latency_ns"] == [40.0]  # last content response
    # (40 - 20) / (OSL 6 - first_chunk_tokens 2)
    assert got["inter_token_latency_ns"] == [5.0]
    assert got["inter_chunk_latency_ns"] == [10.0, 10.0]


def test_guidellm_on_two_token_chunks(two_token_chunks):
    got = _ms(definition_samples(two_token_chunks, "guidellm"))
    assert got["time_to_first_token_ns"] == [20.0]
    assert got["inter_token_latency_ns"] == [4.0]  # (40 - 20) / (6 - 1)
    assert got["time_per_output_token_ns"] == [pytest.approx(40 / 6)]  # (40 - 0) / 6
    assert got["request_latency_ns"] == [47.0]  # GuideLLM stops reading at [DONE]


def test_guidellm_request_latency_without_done_runs_to_the_stream_end(tmp_path):
    rec = request(1, 0.0, [out(20), out(30)], end_ms=60, completion_tokens=2)
    got = _ms(definition_samples(write_run(tmp_path, [rec]), "guidellm"))
    assert got["request_latency_ns"] == [60.0]


def test_aiperf_without_chunk_usage_assumes_one_token_first(tmp_path):
    rec = request(1, 0.0, [role(5), out(20), out(30), out(40)], done_ms=47,
                  completion_tokens=6)
    got = _ms(definition_samples(write_run(tmp_path, [rec]), "aiperf"))
    assert got["inter_token_latency_ns"] == [4.0]  # (40 - 20) / (6 - 1)


def test_empty_delta_counts_for_vllm_only(tmp_path):
    # no per-chunk usage; an empty content delta at 10 before the first text at 20
    rec = request(1, 0.0, [role(5), out(10, chars=0), out(20), out(30)], done_ms=31,
                  completion_tokens=2)
    run = write_run(tmp_path, [rec])
    assert _ms(definition_samples(run, "vllm"))["ttft_ns"] == [10.0]
    assert _ms(definition_samples(run, "vllm"))["itl_ns"] == [10.0, 10.0]
    assert _ms(definition_samples(run, "servescope"))["ttft_ns"] == [20.0]
    assert _ms(definition_samples(run, "aiperf"))["time_to_first_token_ns"] == [20.0]
    assert _ms(definition_samples(run, "guidellm"))["time_to_first_token_ns"] == [20.0]


def test_definition_table_only_counts_successful_measured_requests(tmp_path):
    from servescope.records import Outcome

    recs = [
        request(1, 0.0, [out(10), out(20)], done_ms=21, completion_tokens=2),
        request(2, 0.0, [out(99), out(200)], end_ms=201, outcome=Outcome.TIMEOUT),
        request(3, 0.0, [out(77)], done_ms=78, completion_tokens=1, phase="warmup"),
        request(4, 0.0, [out(30)], done_ms=31, completion_tokens=1, step=1),
    ]
    run = write_run(tmp_path, recs)
    for name in DEFINITIONS:
        table = definition_table(run, name)
        assert set(table) == set(DEFINITIONS[name].metrics)
    vllm = definition_table(run, "vllm")
    assert vllm["ttft_ns"].count == 2
    assert vllm["ttft_ns"].max == 30 * MS
    assert vllm["tpot_ns"].count == 1  # one-token answers have no TPOT
    assert vllm["itl_ns"].count == 1
    assert definition_table(run, "vllm", step=1)["ttft_ns"].mean == 30 * MS


def test_empty_run_gives_empty_tables(tmp_path):
    run = write_run(tmp_path, [])
    for name in DEFINITIONS:
        assert all(s.count == 0 for s in definition_table(run, name).values())


def test_unknown_name_lists_the_valid_ones():
    assert get_definition(" VLLM ").tool == "vllm bench serve"
    with pytest.raises(UnknownDefinitionError,
                       match="'sglang'; choose one of: aiperf, guidellm, servescope, vllm"):
        get_definition("sglang")
