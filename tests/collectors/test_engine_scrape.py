"""Bounded scrapes against a hostile raw-socket server (tests/faults/server.py): a page over
the size cap is refused without reading the rest, a server that trickles its answer is cut at
the scrape's total deadline, large pages are rate-limited in the journal, the child process
stops in bounded time and redacts what its parent registered, and the tables are written one
scrape at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import orjson
import pyarrow.parquet as pq
import pytest

from collectors.engine_metrics import (
    DEFAULT_MAX_BODY_BYTES,
    MetricsScraper,
    ScrapeOutcome,
    finalize,
    scrape_once,
)
from collectors.engine_scrape_process import ScraperProcess
from servescope.engines.spec import MetricsEndpoint
from servescope.redact import register_secrets
from servescope.rundir import engine_tables
from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir, read_engine_tables
from tests.faults.server import (
    FaultServer,
    Handler,
    RawRequest,
    big_body,
    head,
    raw_answer,
    trickle,
    write,
)

PROM = "text/plain; version=0.0.4"
LINE = b'vllm:num_requests_running{model_name="fault-model",i="%d"} 1.0\n'


def prom_page(n_bytes: int) -> bytes:
    """A valid Prometheus page of about ``n_bytes`` (one gauge family, many label sets)."""
    lines = [b"# TYPE vllm:num_requests_running gauge\n"]
    size, i = len(lines[0]), 0
    while size < n_bytes:
        lines.append(LINE % i)
        size += len(lines[-1])
        i += 1
    return b"".join(lines)


def with_length(body: bytes) -> Handler:
    """200 with a Content-Length header, then the body."""
    return raw_answer(head(200, PROM, [("Content-Length", str(len(body)))]) + body)


def body_trickle(per_byte_s: float) -> Handler:
    """A complete 200 head at once, then the body one byte every ``per_byte_s``, forever."""
    async def h(req: RawRequest, w: asyncio.StreamWriter) -> None:
        await write(w, head(200, PROM))
        await trickle(b"# TYPE x gauge\nx 1\n", per_byte_s)(req, w)
    return h


def prom(url: str) -> MetricsEndpoint:
    return MetricsEndpoint(url, "prometheus")


@pytest.fixture
def hostile() -> Iterator[FaultServer]:
    ten_mb = prom_page(10 << 20)
    routes = {
        "/big": raw_answer(head(200, PROM) + ten_mb),  # no Content-Length: read to the cap
        "/big-declared": with_length(ten_mb),  # refused from its head
        "/endless": big_body(1 << 40, PROM),  # 1 TiB, streamed
        "/trickle-body": body_trickle(1.0),
        "/trickle-head": trickle(head(200, PROM) + b"x 1\n", 0.2),
        "/small": raw_answer(head(200, PROM) + prom_page(200_000)),
        "/secret-500": raw_answer(head(500, "text/plain")
                                  + b"upstream refused key zq-unit-9f8e7d6c5b"),
        "/secret-label": raw_answer(head(200, PROM)
                                    + b'x{owner="zq-unit-9f8e7d6c5b"} 1\n'),
    }
    with FaultServer(routes) as srv:
        yield srv


@pytest.mark.parametrize("path", ["/big", "/big-declared", "/endless"])
async def test_page_over_the_cap_is_refused_not_read(hostile, path):
    t0 = time.monotonic()
    r = await scrape_once(prom(hostile.url + path), timeout_s=5.0)
    assert time.monotonic() - t0 < 5.0  # refused, not cut by the deadline
    assert r.outcome is ScrapeOutcome.TOO_LARGE
    assert not r.ok
    assert r.status == 200
    assert r.body is None
    assert r.samples == ()
    assert "4,194,304-byte limit" in r.error
    # at most cap + 1 bytes read; with a Content-Length, none (the declared size recorded)
    expected = len(prom_page(10 << 20)) if path == "/big-declared" else DEFAULT_MAX_BODY_BYTES + 1
    assert r.body_bytes == expected
    assert len(r.journal_line()) < 1000


async def test_cap_is_configurable_and_a_page_under_it_parses(hostile):
    ok = await scrape_once(prom(hostile.url + "/small"), timeout_s=5.0)
    assert ok.outcome is ScrapeOutcome.OK
    assert len(ok.samples) > 3000
    small = await scrape_once(prom(hostile.url + "/small"), timeout_s=5.0,
                              max_body_bytes=100_000)
    assert small.outcome is ScrapeOutcome.TOO_LARGE
    assert "100,000-byte limit" in small.error


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-head"])
async def test_trickled_answer_is_cut_at_the_total_deadline(hostile, path):
    t0 = time.monotonic()
    r = await scrape_once(prom(hostile.url + path), timeout_s=0.5)
    took = time.monotonic() - t0
    assert r.outcome is ScrapeOutcome.TIMEOUT
    assert r.error == "no complete answer within 0.5 s"
    assert 0.4 < took < 3.0  # one deadline for the whole answer, not one per read


async def test_scheduled_scraper_never_stalls_on_hostile_pages(hostile, tmp_path):
    eps = [prom(hostile.url + "/trickle-body"), prom(hostile.url + "/big")]
    t0 = time.monotonic()
    async with MetricsScraper(tmp_path, eps, interval_s=0.5) as scraper:
        stats = await scraper.run(max_ticks=3)
        await scraper.snapshot("final")
    assert time.monotonic() - t0 < 8.0  # 3 ticks of 0.5 s and a final snapshot
    assert stats.by_outcome == {"timeout": 4, "too_large": 4}
    assert stats.ok == 0
    problem = stats.problem()
    assert problem.startswith("8 of 8 scrapes failed (")
    assert "too_large 4" in problem
    assert "timeout 4" in problem
    # the journal holds outcomes, not pages
    assert (engine_dir(tmp_path) / METRICS_JOURNAL).stat().st_size < 8 * 1000
    assert finalize(tmp_path) == (8, [])
    tables = read_engine_tables(tmp_path)
    assert tables is not None
    assert sorted(set(tables.scrapes["outcome"])) == ["timeout", "too_large"]
    assert len(tables.metrics) == 0


async def test_large_pages_are_rate_limited_in_the_journal(hostile, tmp_path):
    # a ~200 KB page every 0.1 s is 2 MB/s; at 500 kB/s the endpoint rests 4 ticks of 5
    async with MetricsScraper(tmp_path, [prom(hostile.url + "/small")], interval_s=0.1,
                              max_journal_bytes_per_s=500_000) as scraper:
        stats = await scraper.run(max_ticks=10)
    assert stats.scrapes == 2
    assert stats.throttled_ticks == 8
    assert stats.body_bytes_max >= 200_000
    assert "8 ticks rested after pages of up to" in stats.problem()
    lines = (engine_dir(tmp_path) / METRICS_JOURNAL).read_bytes().splitlines()
    sched = [orjson.loads(ln)["t_sched_ns"] for ln in lines]
    assert sched[1] - sched[0] == 5 * 100_000_000


def test_child_stops_in_bounded_time_on_a_trickling_page(hostile, tmp_path):
    proc = ScraperProcess(tmp_path, [prom(hostile.url + "/trickle-body")], interval_s=0.5)
    assert proc.stop_bound_s() == pytest.approx(2 * 0.4 + 5.0)
    assert proc.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    stats = proc.stop()
    assert time.monotonic() - t0 < proc.stop_bound_s()
    assert stats.scrapes >= 2  # scheduled ones and the final snapshot, all cut at 0.4 s
    assert stats.by_outcome == {"timeout": stats.scrapes}
    assert proc.error.startswith(f"{stats.scrapes} of {stats.scrapes} scrapes failed "
                                 "(timeout ")
    assert "no complete answer within 0.4 s" in proc.error
    assert not proc._proc.is_alive()


def test_child_redacts_the_secrets_its_parent_registered(hostile, tmp_path):
    secret = "zq-unit-9f8e7d6c5b"  # matches no pattern: only the registry knows it
    register_secrets([secret])
    eps = [prom(hostile.url + "/secret-500"), prom(hostile.url + "/secret-label")]
    proc = ScraperProcess(tmp_path, eps, interval_s=0.5)
    assert proc.start()
    time.sleep(0.7)
    stats = proc.stop()
    assert stats.by_outcome["http_error"] >= 1
    assert stats.by_outcome["ok"] >= 1
    journal = (engine_dir(tmp_path) / METRICS_JOURNAL).read_bytes()
    assert b"upstream refused key ***REDACTED***" in journal
    assert secret.encode() not in journal
    assert secret not in proc.error
    finalize(tmp_path)
    for f in engine_dir(tmp_path).iterdir():
        assert secret.encode() not in f.read_bytes(), f.name
    tables = read_engine_tables(tmp_path)
    assert tables is not None
    assert '{"owner":"***REDACTED***"}' in set(tables.metrics["labels"])


def test_tables_are_written_in_batches_in_time_order(tmp_path, monkeypatch):
    """Several row groups (a small batch size), scrapes journaled out of order."""
    monkeypatch.setattr(engine_tables, "BATCH_BYTES", 1)  # every scrape a batch of its own
    edir = engine_dir(tmp_path)
    edir.mkdir()
    page = prom_page(3000).decode()
    with (edir / METRICS_JOURNAL).open("wb") as fh:
        for t in (30, 10, 20):
            fh.write(orjson.dumps({"endpoint": "e", "format": "prometheus", "tag": "",
                                   "t_sched_ns": t, "t_start_ns": t, "t_end_ns": t + 1,
                                   "ok": True, "status": 200, "outcome": "ok", "error": "",
                                   "body_bytes": len(page), "cpu_ns": 0, "n_entries": 0,
                                   "samples": [], "body": page}) + b"\n")
        fh.write(b'{"endpoint": "e", "t_sta')  # a line cut by a crash
    n, warnings = finalize(tmp_path)
    assert n == 3
    assert warnings == ["metrics.jsonl:4: incomplete scrape line skipped"]
    metrics = pq.ParquetFile(edir / "metrics.parquet")
    per_page = len(prom_page(3000).splitlines()) - 1
    assert metrics.metadata.num_rows == 3 * per_page
    assert metrics.metadata.num_row_groups > 1
    table = metrics.read().to_pandas()
    assert list(table.groupby("scrape")["t_ns"].first()) == [11, 21, 31]
    scrapes = pq.read_table(edir / "scrapes.parquet").to_pandas()
    assert list(scrapes["t_start_ns"]) == [10, 20, 30]
    assert list(scrapes["n_samples"]) == [per_page] * 3
    assert not (edir / METRICS_JOURNAL).exists()


def test_bad_limits_are_refused(tmp_path):
    with pytest.raises(ValueError, match="must be positive"):
        MetricsScraper(tmp_path, [], max_body_bytes=0)
    with pytest.raises(ValueError, match="must be positive"):
        ScraperProcess(tmp_path, [], max_journal_bytes_per_s=0)



def test_a_failed_table_write_leaves_the_journal_and_no_temporary_file(tmp_path, monkeypatch):
    import errno

    from servescope.rundir.layout import RunDirError

    edir = engine_dir(tmp_path)
    edir.mkdir()
    (edir / METRICS_JOURNAL).write_bytes(orjson.dumps({"endpoint": "e", "t_start_ns": 1,
                                                       "outcome": "timeout"}) + b"\n")

    def full_disk(writer, _table, *_args, **_kwargs):  # the temporary file was opened
        raise OSError(errno.ENOSPC, "No space left on device", str(writer.where))

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full_disk)
    with pytest.raises(RunDirError, match="no space left on device"):
        finalize(tmp_path)
    assert sorted(f.name for f in edir.iterdir()) == [METRICS_JOURNAL]
