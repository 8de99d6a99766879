"""Measure what scraping costs the engine: vLLM's API-server CPU per /metrics request.

    .venv/bin/python -m benchmarks.engine_scrape_cost [--seconds 20] [--hz 10]

Starts the tiny vLLM-CPU engine (as tests/engines/test_vllm_live.py does), idles it, then
compares the API server's own ``process_cpu_seconds_total`` (exposed on /metrics: the
process that renders the page) over a quiet window and over a window scraped at ``--hz``.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp

from collectors.engine_metrics import parse_prometheus
from servescope.engines._argv import base_url
from tests.collectors._server import free_port
from tests.engines.test_vllm_live import _command, _ready, start_engine, stop_engine


async def _cpu(s: aiohttp.ClientSession, url: str) -> float:
    async with s.get(url) as r:
        text = await r.text()
    return next(x.value for x in parse_prometheus(text) if x.sample == "process_cpu_seconds_total")


async def measure(seconds: float, hz: float) -> None:
    port = free_port()
    argv = _command(port)
    base = base_url("127.0.0.1", port)
    proc = start_engine(argv)
    try:
        await _ready(base, ["/health", "/v1/models"], proc)
        await asyncio.sleep(5)
        url = base + "/metrics"
        async with aiohttp.ClientSession() as s:
            c0 = await _cpu(s, url)
            await asyncio.sleep(seconds)
            c1 = await _cpu(s, url)
            n = int(seconds * hz)
            for _ in range(n):
                async with s.get(url) as r:
                    await r.read()
                await asyncio.sleep(1 / hz)
            c2 = await _cpu(s, url)
        quiet = (c1 - c0) / seconds
        busy_extra = (c2 - c1) - quiet * (n / hz)
        print(f"API-server CPU idle: {1e3 * quiet:.1f} ms/s; with {hz:g} Hz scraping: "
              f"{1e3 * busy_extra / n:.2f} ms per /metrics request ({n} requests; "
              f"process_cpu_seconds_total has 10 ms resolution)")
    finally:
        await asyncio.to_thread(stop_engine, proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--hz", type=float, default=10.0)
    args = ap.parse_args()
    asyncio.run(measure(args.seconds, args.hz))


if __name__ == "__main__":
    main()
