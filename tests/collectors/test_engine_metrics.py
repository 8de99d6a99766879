"""The metrics scraper against a real aiohttp server on loopback serving real vLLM bytes."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from collectors.engine_metrics import (
    MetricsScraper,
    ScrapeOutcome,
    finalize,
    parse_prometheus,
    parse_trtllm_json,
    scrape_once,
)
from servescope.engines.spec import MetricsEndpoint
from servescope.rundir.engine_tables import (
    METRIC_COLUMNS,
    METRICS_JOURNAL,
    SCRAPE_COLUMNS,
    engine_dir,
    read_engine_tables,
    read_journal,
)
from tests.collectors._server import Route, free_port, scripted_server

DATA = Path(__file__).parents[1] / "data"
VLLM_DURING = (DATA / "vllm_cpu" / "metrics_during_load.prom").read_bytes()
TRT_JSON = (DATA / "engines" / "trtllm_iteration_stats.json").read_bytes()
MS = 1_000_000


def prom(url: str, **kw: object) -> MetricsEndpoint:
    return MetricsEndpoint(url, "prometheus", **kw)  # type: ignore[arg-type]


def journal_lines(run_dir: Path) -> list[dict[str, Any]]:
    """The journal as the table writer reads it (raw pages parsed then)."""
    return read_journal(run_dir)[0]


def test_parse_real_vllm_page():
    samples = parse_prometheus(VLLM_DURING.decode())
    by_name = {s.sample: s for s in samples if not s.labels.count('"le"')}
    assert by_name["vllm:num_requests_running"].value == 20.0
    assert by_name["vllm:num_requests_running"].type == "gauge"
    assert by_name["vllm:num_requests_running"].labels == '{"engine":"0","model_name":"tiny"}'
    assert by_name["vllm:kv_cache_usage_perc"].value == pytest.approx(0.0036623329060612164)
    pre = by_name["vllm:num_preemptions_total"]
    assert (pre.family, pre.type, pre.value) == ("vllm:num_preemptions", "counter", 0.0)
    assert not any(s.sample.endswith("_created") for s in samples)  # dropped by default
    assert len(samples) == 398
    assert len(parse_prometheus(VLLM_DURING.decode(), keep_created=True)) == 455


def test_parse_trtllm_json_keeps_iter_and_timestamp():
    samples, entries = parse_trtllm_json(TRT_JSON)
    assert entries == 3
    used = [s for s in samples if s.sample == "trtllm_iter:kvCacheStats.usedNumBlocks"]
    assert [s.value for s in used] == [1024.0, 1434.0, 1536.0]
    assert [orjson.loads(s.labels)["iter"] for s in used] == ["101", "102", "103"]
    assert orjson.loads(used[0].labels)["timestamp"] == "11-22-2026 12:04:41.000000"
    paused = [s for s in samples if s.sample.endswith("inflightBatchingStats.numPausedRequests")]
    assert [s.value for s in paused] == [0.0, 1.0, 0.0]
    assert not any("timestamp" in s.sample for s in samples)  # a string: a label, not a value
    assert parse_trtllm_json(b"[]") == ([], 0)
    with pytest.raises(ValueError, match="not JSON"):
        parse_trtllm_json(b"# HELP x y\n")
    with pytest.raises(ValueError, match="list"):
        parse_trtllm_json(b"42")


@pytest.mark.parametrize("defer", [True, False])
async def test_outcomes_recorded_and_run_goes_on(tmp_path, defer):
    # aiohttp retries a GET once when a reused connection is closed: drop twice
    route = Route(VLLM_DURING, steps=["ok", "500", "slow", "garbage", "drop", "drop", "ok"])
    async with (
        scripted_server({"/metrics": route}, slow_s=1.0) as srv,
        MetricsScraper(tmp_path, [prom(srv.url())], interval_s=0.3, timeout_s=0.15,
                       defer_parse=defer) as scraper,
    ):
        stats = await scraper.run(max_ticks=6)
    outcomes = [d["outcome"] for d in journal_lines(tmp_path)]
    assert outcomes == ["ok", "http_error", "timeout", "parse_error", "connection_error", "ok"]
    assert stats.scrapes == 6
    # with parsing deferred out of the run, a page that does not parse is found only when
    # the tables are written: the live counts still call it ok
    assert stats.ok == (3 if defer else 2)
    assert stats.failed == (3 if defer else 4)
    assert stats.by_outcome == ({"ok": 3, "http_error": 1, "timeout": 1, "connection_error": 1}
                                if defer else
                                {"ok": 2, "http_error": 1, "timeout": 1, "parse_error": 1,
                                 "connection_error": 1})
    lines = journal_lines(tmp_path)
    assert lines[1]["status"] == 500
    assert "sk-abcdef" not in lines[1]["error"]  # secrets in error bodies are redacted
    assert "REDACTED" in lines[1]["error"]
    timeout = lines[2]
    assert 140 * MS <= timeout["t_end_ns"] - timeout["t_start_ns"] < 290 * MS
    assert lines[3]["status"] == 200
    assert lines[3]["body_bytes"] > 0
    assert "not Prometheus text" in lines[3]["error"]
    assert len(lines[0]["samples"]) == 398
    assert lines[0]["cpu_ns"] + lines[0].get("parse_cpu_ns", 0) > 0  # parse cost, then or now

    assert finalize(tmp_path) == (6, [])
    assert not (engine_dir(tmp_path) / METRICS_JOURNAL).exists()
    scrapes = pq.read_table(engine_dir(tmp_path) / "scrapes.parquet").to_pandas()
    metrics = pq.read_table(engine_dir(tmp_path) / "metrics.parquet").to_pandas()
    assert tuple(scrapes.columns) == SCRAPE_COLUMNS
    assert tuple(metrics.columns) == METRIC_COLUMNS
    assert list(scrapes["outcome"]) == outcomes
    assert list(scrapes["ok"]) == [True, False, False, False, False, True]
    assert list(scrapes["n_samples"]) == [398, 0, 0, 0, 0, 398]
    assert len(metrics) == 2 * 398
    # every sample carries its scrape's t_end_ns
    ends = dict(zip(scrapes["scrape"], scrapes["t_end_ns"], strict=True))
    assert (metrics["t_ns"] == metrics["scrape"].map(ends)).all()
    running = metrics[metrics["sample"] == "vllm:num_requests_running"]
    assert list(running["value"]) == [20.0, 20.0]
    assert set(running["labels"]) == {'{"engine":"0","model_name":"tiny"}'}


async def test_interval_respected_without_drift(tmp_path):
    route = Route(VLLM_DURING)
    interval_ns = 100 * MS
    async with (
        scripted_server({"/metrics": route}) as srv,
        MetricsScraper(tmp_path, [prom(srv.url())], interval_s=0.1) as scraper,
    ):
        stats = await scraper.run(max_ticks=12)
    lines = journal_lines(tmp_path)
    assert stats.ok == 12
    sched = [d["t_sched_ns"] for d in lines]
    # absolute deadlines: exactly one interval apart, whatever each scrape took
    assert [b - a for a, b in itertools.pairwise(sched)] == [interval_ns] * 11
    lateness = [d["t_start_ns"] - d["t_sched_ns"] for d in lines]
    assert all(0 <= x < 40 * MS for x in lateness), lateness
    # the server saw one request per tick, about one interval apart
    gaps = [b - a for a, b in zip(route.hits_ns, route.hits_ns[1:], strict=False)]
    assert all(60 * MS < g < 140 * MS for g in gaps), gaps


async def test_overrun_skips_ticks_instead_of_bunching(tmp_path):
    route = Route(VLLM_DURING)

    def slow_callback(_result: object) -> None:
        import time
        time.sleep(0.25)  # as if the loop were blocked for 2.5 intervals

    async with (
        scripted_server({"/metrics": route}) as srv,
        MetricsScraper(tmp_path, [prom(srv.url())], interval_s=0.1,
                       on_result=slow_callback) as scraper,
    ):
        stats = await scraper.run(max_ticks=8)
    sched = [d["t_sched_ns"] for d in journal_lines(tmp_path)]
    assert stats.skipped_ticks >= 4
    assert all((b - a) >= 200 * MS for a, b in itertools.pairwise(sched))
    assert stats.scrapes + stats.skipped_ticks >= 8


async def test_refused_connection_is_recorded_not_raised(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/metrics"
    async with MetricsScraper(tmp_path, [prom(url)], interval_s=0.05) as scraper:
        stats = await scraper.run(max_ticks=3)
    assert stats.by_outcome == {"connection_error": 3}
    line = journal_lines(tmp_path)[0]
    assert line["status"] == -1
    assert line["error"]


async def test_optional_endpoint_absent_is_asked_once(tmp_path):
    main = Route(VLLM_DURING)
    optional = Route(b"", steps=["404"])
    async with scripted_server({"/metrics": main, "/prometheus/metrics": optional}) as srv:
        eps = [prom(srv.url()), prom(srv.url("/prometheus/metrics"), optional=True)]
        async with MetricsScraper(tmp_path, eps, interval_s=0.1) as scraper:
            stats = await scraper.run(max_ticks=5)
    assert len(optional.hits_ns) == 1
    assert len(main.hits_ns) == 5
    assert stats.by_outcome == {"ok": 5, "absent": 1}


async def test_destructive_json_endpoint_keeps_every_entry(tmp_path):
    route = Route(b"[]", bodies=[TRT_JSON], content_type="application/json")
    async with scripted_server({"/metrics": route}) as srv:
        # long intervals: this test is about keeping every entry, not about timing
        ep = MetricsEndpoint(srv.url(), "trtllm_json", destructive=True, min_interval_s=0.4)
        async with MetricsScraper(tmp_path, [ep], interval_s=0.2) as scraper:
            await scraper.run(max_ticks=3)
    lines = journal_lines(tmp_path)
    assert [d["n_entries"] for d in lines] == [3, 0, 0]
    sched = [d["t_sched_ns"] for d in lines]
    # min_interval_s stretches this endpoint's interval to 2 ticks
    assert [b - a for a, b in itertools.pairwise(sched)] == [400 * MS] * 2
    finalize(tmp_path)
    tables = read_engine_tables(tmp_path)
    assert tables is not None
    used = tables.metrics[tables.metrics["sample"] == "trtllm_iter:kvCacheStats.usedNumBlocks"]
    assert list(used["value"]) == [1024.0, 1434.0, 1536.0]


async def test_snapshots_are_tagged_and_secrets_kept_out(tmp_path):
    route = Route(VLLM_DURING)
    async with scripted_server({"/metrics": route}) as srv:
        url = srv.url().replace("http://", "http://user:hunter2@") + "?api_key=abc123"
        async with MetricsScraper(tmp_path, [prom(url)], interval_s=1.0) as scraper:
            before = await scraper.snapshot("before")
            after = await scraper.snapshot("after")
        assert before[0].ok
        assert after[0].ok
        once = await scrape_once(prom(srv.url()), timeout_s=1.0)
    assert once.ok
    assert once.tag == "snapshot"
    assert once.t_sched_ns == -1
    lines = journal_lines(tmp_path)
    assert [d["tag"] for d in lines] == ["before", "after"]
    text = (engine_dir(tmp_path) / METRICS_JOURNAL).read_text()
    settings = (engine_dir(tmp_path) / "scraper.json").read_text()
    for secret in ("hunter2", "abc123"):
        assert secret not in text
        assert secret not in settings


async def test_stop_returns_promptly(tmp_path):
    route = Route(VLLM_DURING)
    async with (
        scripted_server({"/metrics": route}) as srv,
        MetricsScraper(tmp_path, [prom(srv.url())], interval_s=10.0) as scraper,
    ):
        task = asyncio.create_task(scraper.run())
        await asyncio.sleep(0.2)  # first scrape at t0, next one 10 s later
        scraper.stop()
        stats = await asyncio.wait_for(task, 2.0)
    assert stats.scrapes == 1


async def test_killed_run_is_read_from_its_journal(tmp_path):
    route = Route(VLLM_DURING)
    async with (
        scripted_server({"/metrics": route}) as srv,
        MetricsScraper(tmp_path, [prom(srv.url())], interval_s=0.2) as scraper,
    ):
        await scraper.run(max_ticks=3)
    # a crash mid-write leaves half a line at the end
    with (engine_dir(tmp_path) / METRICS_JOURNAL).open("ab") as fh:
        fh.write(b'{"endpoint": "http://127.0.0.1/metr')
    tables = read_engine_tables(tmp_path)
    assert tables is not None
    assert tables.source == "journal"
    assert len(tables.scrapes) == 3
    assert tables.warnings == ["metrics.jsonl:4: incomplete scrape line skipped"]
    assert tables.settings["interval_s"] == 0.2


def test_no_engine_dir_means_no_tables(tmp_path):
    assert read_engine_tables(tmp_path) is None
    assert finalize(tmp_path) == (0, [])


def test_timeout_must_be_shorter_than_interval(tmp_path):
    with pytest.raises(ValueError, match="shorter than interval"):
        MetricsScraper(tmp_path, [], interval_s=1.0, timeout_s=1.0)
    with pytest.raises(ValueError, match="positive"):
        MetricsScraper(tmp_path, [], interval_s=0)


def test_outcome_values_are_stable():
    # these strings are in every scrapes.parquet: changing one breaks old runs (new ones
    # are appended)
    assert [o.value for o in ScrapeOutcome] == [
        "ok", "connection_error", "timeout", "http_error", "parse_error", "absent", "error",
        "too_large"]
