"""Measure the scraper's own CPU cost per scrape on the real vLLM /metrics page (52 KB).

    .venv/bin/python -m benchmarks.scraper_cost [--scrapes 200]

The page is served from another process (so its CPU is not counted). Reported per scrape:
the scraping process's whole CPU time (HTTP client + parse + journal + event loop), the
parse-and-journal part alone, and the journal bytes; then the same with the scraper in its own
process (ScraperProcess), where the client's process pays nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from collectors.engine_metrics import MetricsScraper, finalize
from collectors.engine_scrape_process import ScraperProcess
from servescope.engines.spec import MetricsEndpoint
from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir

PAGE = Path(__file__).parents[1] / "data" / "vllm_cpu" / "metrics_during_load.prom"


def _serve(conn: Connection) -> None:
    from aiohttp import web

    body = PAGE.read_bytes()

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/metrics", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(int(runner.addresses[0][1]))
        await asyncio.Event().wait()

    asyncio.run(main())


# a 52 KB page every 0.05 s is ~1 MB/s: measure the scraper, not its journal rate limit
_UNTHROTTLED = float(1 << 30)


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _in_process(url: str, n: int, keep_created: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with MetricsScraper(Path(tmp), [MetricsEndpoint(url, "prometheus")],
                                  interval_s=0.05, keep_created=keep_created,
                                  max_journal_bytes_per_s=_UNTHROTTLED) as scraper:
            await scraper.snapshot("warmup")
            s0, p0 = scraper.stats.scrapes, scraper.stats.cpu_ns_total
            c0 = time.process_time()
            stats = await scraper.run(max_ticks=n)
            cpu = time.process_time() - c0
        size = (engine_dir(Path(tmp)) / METRICS_JOURNAL).stat().st_size
        finalize(Path(tmp))
        pq_size = sum(f.stat().st_size for f in engine_dir(Path(tmp)).glob("*.parquet"))
    scrapes = stats.scrapes - s0
    return {"scrapes": scrapes, "skipped": stats.skipped_ticks,
            "process_cpu_ms": 1e3 * cpu / scrapes,
            "parse_journal_cpu_ms": (stats.cpu_ns_total - p0) / 1e6 / scrapes,
            "journal_kb": size / 1024 / stats.scrapes,
            "parquet_kb": pq_size / 1024 / stats.scrapes}


def _child_process(url: str, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = ScraperProcess(Path(tmp), [MetricsEndpoint(url, "prometheus")], interval_s=0.05,
                              max_journal_bytes_per_s=_UNTHROTTLED)
        proc.start()
        assert proc.pid is not None
        child0, c0 = _proc_cpu_s(proc.pid), time.process_time()
        time.sleep(n * 0.05)
        child1, parent = _proc_cpu_s(proc.pid), time.process_time() - c0
        stats = proc.stop()
    return {"scrapes": stats.scrapes, "child_cpu_ms": 1e3 * (child1 - child0) / stats.scrapes,
            "parent_cpu_ms": 1e3 * parent / stats.scrapes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scrapes", type=int, default=200)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    server = ctx.Process(target=_serve, args=(send,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{recv.recv()}/metrics"
    try:
        for keep in (False, True):
            r = asyncio.run(_in_process(url, args.scrapes, keep))
            print(f"in-process, keep_created={keep}: " +
                  ", ".join(f"{k}={v:.2f}" for k, v in r.items()))
        r = _child_process(url, args.scrapes)
        print("ScraperProcess: " + ", ".join(f"{k}={v:.2f}" for k, v in r.items()))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
