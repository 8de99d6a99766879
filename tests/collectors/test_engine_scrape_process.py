"""The scraper in its own process, journaling into the run directory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from collectors.engine_metrics import finalize
from collectors.engine_scrape_process import ScraperProcess
from servescope.engines.spec import MetricsEndpoint
from servescope.rundir.engine_tables import read_engine_tables
from tests.collectors._server import Route, free_port, scripted_server

VLLM = (Path(__file__).parents[1] / "data" / "vllm_cpu" / "metrics_during_load.prom").read_bytes()


async def test_child_process_scrapes_and_stops(tmp_path):
    route = Route(VLLM)
    async with scripted_server({"/metrics": route}) as srv:
        proc = ScraperProcess(tmp_path, [MetricsEndpoint(srv.url(), "prometheus")],
                              interval_s=0.1)
        assert await asyncio.to_thread(proc.start)
        assert proc.pid is not None
        assert proc.pid != os.getpid()
        await asyncio.sleep(0.6)
        stats = await asyncio.to_thread(proc.stop)
    assert proc.error == ""
    assert stats.ok >= 4
    assert stats.ok == stats.scrapes
    assert stats.cpu_ns_total > 0
    # the whole child (interpreter start-up, imports, every scrape) costs more than the
    # journal writes alone
    assert stats.process_cpu_ns > stats.cpu_ns_total
    assert len(route.hits_ns) == stats.scrapes
    finalize(tmp_path)
    tables = read_engine_tables(tmp_path)
    assert tables is not None
    assert len(tables.scrapes) == stats.scrapes
    assert tables.scrapes["ok"].all()


async def test_child_survives_a_dead_server(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/metrics"
    proc = ScraperProcess(tmp_path, [MetricsEndpoint(url, "prometheus")], interval_s=0.1)
    assert await asyncio.to_thread(proc.start)
    await asyncio.sleep(0.35)
    stats = await asyncio.to_thread(proc.stop)
    assert stats.scrapes >= 2
    assert stats.by_outcome == {"connection_error": stats.scrapes}
    # the child is fine; the failed scrapes are a warning for the run
    n = stats.scrapes
    assert proc.error.startswith(f"{n} of {n} scrapes failed (connection_error {n}); "
                                 "first connection_error: ClientConnectorError"), proc.error


def test_stop_without_start_is_harmless(tmp_path):
    proc = ScraperProcess(tmp_path, [MetricsEndpoint("http://127.0.0.1:1/m", "prometheus")])
    assert proc.stop().scrapes == 0


async def test_the_live_gauges_reach_the_parent_from_the_child(tmp_path):
    """What the live view shows while the run goes on: the child reads KV-cache usage,
    running and waiting from each raw page into memory the parent made."""
    from collectors.base import CollectContext, EngineFacts
    from collectors.child import ChildRunner
    from collectors.engine_scrape_process import MetricsCollector
    from collectors.live_gauges import live_families
    from servescope.clock import take_anchor
    from servescope.engines.registry import get_spec

    async with scripted_server({"/metrics": Route(VLLM)}) as srv:
        facts = EngineFacts("vllm", metrics_endpoints=(MetricsEndpoint(srv.url(), "prometheus"),),
                            live_families=live_families(get_spec("vllm")))
        ctx = CollectContext(tmp_path, srv.url(""), facts, take_anchor(),
                             options={"metrics": {"interval_s": 0.1}})
        collector = MetricsCollector()
        assert collector.live_values() == {}  # nothing read yet
        runner = ChildRunner(collector, ctx)
        assert await asyncio.to_thread(runner.start)
        await asyncio.sleep(0.5)
        live = collector.live_values()  # the parent's own instance
        stats = await asyncio.to_thread(runner.stop)
    assert runner.error == ""
    assert stats.counts["ok"] >= 3
    assert live == {"kv_cache_usage_frac": 0.0036623329060612164,
                    "requests_running": 20.0, "requests_waiting": 0.0}


def test_json_pages_give_no_live_gauges_and_no_endpoint_is_a_skip(tmp_path):
    from collectors.base import CollectContext, EngineFacts
    from collectors.engine_scrape_process import MetricsCollector
    from servescope.clock import take_anchor

    collector = MetricsCollector()
    none = CollectContext(tmp_path, "", EngineFacts("openai"), take_anchor())
    assert collector.skip_reason(none) == (
        "openai: no metrics endpoint; engine metrics not collected")
    assert collector.stop().counts["scrapes"] == 0  # never started: zero counts
    json_ep = EngineFacts("trtllm", metrics_endpoints=(
        MetricsEndpoint("http://127.0.0.1:1/metrics", "trtllm_json"),),
        live_families={"requests_running": (("numActiveRequests",), 1.0, "sum")})
    assert collector._live_gauges(json_ep) is None
    assert collector.live_values() == {}
