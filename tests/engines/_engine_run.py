"""Run directories whose engine journal holds given metrics pages at given times.

Pages go through the collector's own parser and journal format (``ScrapeResult``), so the
analyzers read exactly what a scraper would have written; only the clock is chosen by the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collectors.engine_metrics import ScrapeOutcome, ScrapeResult, parse_body
from servescope.clock import take_anchor
from servescope.engines.base import MetricsFormat
from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir, finalize_engine_tables
from servescope.rundir.manifest import EngineInfo, Manifest, host_fingerprint, write_manifest
from servescope.rundir.reader import RunData, load_run
from servescope.rundir.tables import finalize_tables

S = 1_000_000_000
T0 = 9_000_000_000_000_000  # a large monotonic origin, as on a long-running host
DATA = Path(__file__).parents[1] / "data"


@dataclass(frozen=True)
class Page:
    t_s: float  # scrape end, seconds after T0
    body: bytes | None  # None: a failed scrape (connection refused)
    fmt: MetricsFormat = "prometheus"
    endpoint: str = "http://127.0.0.1:8000/metrics"


def scrape_result(page: Page) -> ScrapeResult:
    t_end = T0 + round(page.t_s * S)
    t_start = t_end - 5_000_000
    if page.body is None:
        return ScrapeResult(page.endpoint, page.fmt, "", t_start, t_start, t_end, False, -1,
                            ScrapeOutcome.CONNECTION_ERROR, "ConnectionRefusedError", 0, 0, 0)
    samples, entries = parse_body(page.fmt, page.body)
    return ScrapeResult(page.endpoint, page.fmt, "", t_start, t_start, t_end, True, 200,
                        ScrapeOutcome.OK, "", len(page.body), 0, entries, tuple(samples))


def write_engine_run(root: Path, engine: str | None, pages: list[Page], *,
                     finalize: bool = True, name: str = "run") -> RunData:
    run_dir = root / name
    run_dir.mkdir()
    anchor = take_anchor()
    manifest = Manifest(
        run_id=name, started_wall_ns=anchor.wall_ns, clock=anchor,
        host=host_fingerprint(), command_line=["pytest"], workload={},
        seed=0, target={}, status="complete",
        engine=EngineInfo(name=engine) if engine else None,
    )
    write_manifest(run_dir, manifest)
    finalize_tables(run_dir)  # no requests: empty client tables
    edir = engine_dir(run_dir)
    edir.mkdir()
    with (edir / METRICS_JOURNAL).open("wb") as fh:
        for page in pages:
            fh.write(scrape_result(page).journal_line())
    if finalize:
        finalize_engine_tables(run_dir)
    return load_run(run_dir)


def vllm(name: str) -> bytes:
    return (DATA / "vllm_cpu" / f"metrics_{name}_load.prom").read_bytes()


def example(name: str) -> bytes:
    return (DATA / "engines" / name).read_bytes()
