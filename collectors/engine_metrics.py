"""Engine metrics scraper: reads the engine's metrics endpoints on a fixed schedule.

Each endpoint is read at absolute deadlines ``t0 + k * interval`` (no drift; a tick missed
because the previous read overran is skipped and counted). Every read is bounded
(:mod:`collectors.engine_scrape`): one total deadline shorter than the interval, and a size
cap (``max_body_bytes``, 4 MiB by default) beyond which the page is refused as ``too_large``.
Every attempt is recorded with its real ``t_start_ns``/``t_end_ns`` (monotonic) and outcome,
and appended at once as one JSON line (:class:`servescope.rundir.journal.JournalWriter`, like
:mod:`collectors.timeline`) to ``RUN/engine/metrics.jsonl``; :func:`finalize` turns the
journal into ``metrics.parquet`` and ``scrapes.parquet`` (schema in
:mod:`servescope.rundir.engine_tables`). So a journal line holds at most one capped page, and the
tables are written one scrape at a time.

A failed scrape (refused, timeout, HTTP error, unparseable or oversized body) is a recorded
outcome, never an exception: nothing here raises into the run. Error texts are redacted.

Cost (measured, docs/engines.md): on a 2-vCPU VM a scrape of the real 52 KB vLLM page costs
~15.7 ms of CPU, ~14.9 ms of it prometheus_client's parser plus the journal write (the parse
is recorded per scrape as ``cpu_ns``). Sharing an event loop with the load client would delay
its stream reads by that much once per interval: beside the client, run the scraper in its own
process (:mod:`collectors.engine_scrape_process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from collectors.engine_scrape import (
    DEFAULT_MAX_BODY_BYTES,
    ScrapeOutcome,
    ScrapeResult,
    safe_url,
    scrape,
    scrape_once,
)
from servescope.clock import now_ns
from servescope.engines.parse import (
    MetricSample,
    parse_body,
    parse_prometheus,
    parse_trtllm_json,
)
from servescope.engines.spec import MetricsEndpoint
from servescope.jsonio import write_json
from servescope.redact import redact_text
from servescope.rundir.engine_tables import (
    METRICS_JOURNAL,
    SCRAPER_FILE,
    engine_dir,
    finalize_engine_tables,
)
from servescope.rundir.journal import JournalWriter
from servescope.rundir.layout import RunDirError

__all__ = [
    "DEFAULT_JOURNAL_BYTES_PER_S",
    "DEFAULT_MAX_BODY_BYTES",
    "MetricSample",
    "MetricsScraper",
    "ScrapeOutcome",
    "ScrapeResult",
    "ScrapeStats",
    "finalize",
    "parse_body",
    "parse_prometheus",
    "parse_trtllm_json",
    "scrape_once",
]

_NS = 1_000_000_000
DEFAULT_JOURNAL_BYTES_PER_S = float(1 << 20)
_ERROR_CHARS = 300


@dataclass(slots=True)
class ScrapeStats:
    """Counts over a scraper's life, for the run's summary and warnings."""

    scrapes: int = 0
    ok: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    skipped_ticks: int = 0
    throttled_ticks: int = 0  # ticks rested after large pages (max_journal_bytes_per_s)
    body_bytes_max: int = 0  # the largest page journaled
    journal_errors: int = 0
    cpu_ns_total: int = 0  # journal writes (and parsing, when not deferred) of this thread
    cpu_ns_max: int = 0
    process_cpu_ns: int = -1  # the whole scraper process (child only; -1: not measured)
    examples: dict[str, str] = field(default_factory=dict)  # first error text per outcome

    @property
    def failed(self) -> int:
        return self.scrapes - self.ok

    def add(self, result: ScrapeResult) -> None:
        self.scrapes += 1
        self.ok += result.ok
        key = result.outcome.value
        self.by_outcome[key] = self.by_outcome.get(key, 0) + 1
        if result.body is not None:
            self.body_bytes_max = max(self.body_bytes_max, len(result.body))
        if not result.ok and result.error and key not in self.examples:
            self.examples[key] = result.error[:_ERROR_CHARS]
        self.cpu_ns_total += result.cpu_ns
        self.cpu_ns_max = max(self.cpu_ns_max, result.cpu_ns)

    def problem(self) -> str:
        """One sentence for the run's warnings when scrapes failed ("" when none did):
        counts by outcome and the first error of the most frequent one."""
        parts: list[str] = []
        failed = {k: n for k, n in self.by_outcome.items() if k not in ("ok", "absent")}
        if failed:
            counts = ", ".join(f"{k} {n}" for k, n in sorted(failed.items(),
                                                             key=lambda kv: -kv[1]))
            worst = max(failed, key=lambda k: failed[k])
            example = self.examples.get(worst, "")
            parts.append(f"{sum(failed.values())} of {self.scrapes} scrapes failed ({counts})"
                         + (f"; first {worst}: {example}" if example else ""))
        if self.throttled_ticks:
            parts.append(f"{self.throttled_ticks} ticks rested after pages of up to "
                         f"{self.body_bytes_max:,} bytes (journal rate limit)")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"scrapes": self.scrapes, "ok": self.ok, "failed": self.failed,
                "by_outcome": dict(self.by_outcome), "skipped_ticks": self.skipped_ticks,
                "throttled_ticks": self.throttled_ticks, "body_bytes_max": self.body_bytes_max,
                "journal_errors": self.journal_errors, "cpu_ns_total": self.cpu_ns_total,
                "cpu_ns_max": self.cpu_ns_max, "process_cpu_ns": self.process_cpu_ns,
                "examples": dict(self.examples)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScrapeStats:
        return cls(scrapes=int(data.get("scrapes", 0)), ok=int(data.get("ok", 0)),
                   by_outcome={str(k): int(v) for k, v in dict(data.get("by_outcome", {})).items()},
                   skipped_ticks=int(data.get("skipped_ticks", 0)),
                   throttled_ticks=int(data.get("throttled_ticks", 0)),
                   body_bytes_max=int(data.get("body_bytes_max", 0)),
                   journal_errors=int(data.get("journal_errors", 0)),
                   cpu_ns_total=int(data.get("cpu_ns_total", 0)),
                   cpu_ns_max=int(data.get("cpu_ns_max", 0)),
                   process_cpu_ns=int(data.get("process_cpu_ns", -1)),
                   examples={str(k): str(v) for k, v in dict(data.get("examples", {})).items()})


# ---------------------------------------------------------------------------- the scraper


class MetricsScraper:
    """Scrapes ``endpoints`` every ``interval_s`` into ``RUN/engine/metrics.jsonl``.

    Use as an async context manager; ``snapshot(tag)`` scrapes every endpoint once (before
    and after the workload), ``run()`` scrapes on schedule until ``stop()``. An endpoint's
    ``min_interval_s`` stretches its own interval to a multiple of ``interval_s``. Each read
    is bounded by ``timeout_s`` in all (default 0.8 × the interval) and ``max_body_bytes``
    (default 4 MiB; a larger page is refused as ``too_large``). After a page of B bytes an
    endpoint rests for the ticks that keep its journal under ``max_journal_bytes_per_s``
    (default 1 MiB/s; vLLM's 52 KB page is never held back at intervals of 0.1 s or more),
    counted as ``throttled_ticks``: what finalizing costs grows with the run's length, never
    with the page's size times the scrape rate.
    """

    def __init__(self, run_dir: Path, endpoints: Sequence[MetricsEndpoint], *,
                 interval_s: float = 1.0, timeout_s: float | None = None,
                 headers: Mapping[str, str] | None = None, keep_created: bool = False,
                 on_result: Callable[[ScrapeResult], None] | None = None,
                 defer_parse: bool = True,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_journal_bytes_per_s: float = DEFAULT_JOURNAL_BYTES_PER_S) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if max_body_bytes <= 0 or max_journal_bytes_per_s <= 0:
            raise ValueError("max_body_bytes and max_journal_bytes_per_s must be positive")
        timeout = 0.8 * interval_s if timeout_s is None else timeout_s
        if not 0 < timeout < interval_s:
            raise ValueError(f"timeout_s ({timeout}) must be positive and shorter than "
                             f"interval_s ({interval_s})")
        self.run_dir = Path(run_dir)
        self.endpoints = tuple(endpoints)
        self.interval_s = interval_s
        self.timeout_s = timeout
        self.keep_created = keep_created
        self.max_body_bytes = max_body_bytes
        self.max_journal_bytes_per_s = max_journal_bytes_per_s
        self.defer_parse = defer_parse  # journal raw pages; parse when writing the tables
        self.stats = ScrapeStats()
        self._headers = dict(headers) if headers else None
        self._on_result = on_result
        self._session: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()
        self._journal: JournalWriter | None = None

    # -- lifecycle
    async def __aenter__(self) -> MetricsScraper:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open(self) -> None:
        if self._journal is not None:
            return
        edir = engine_dir(self.run_dir)
        # a failed write is counted (journal_errors) and the next scrape tries again
        self._journal = JournalWriter(edir / METRICS_JOURNAL, stop_on_error=False)
        settings = {"interval_s": self.interval_s, "timeout_s": self.timeout_s,
                    "keep_created": self.keep_created, "max_body_bytes": self.max_body_bytes,
                    "max_journal_bytes_per_s": self.max_journal_bytes_per_s,
                    "endpoints": [{**ep.to_json(), "url": safe_url(ep.url)}
                                  for ep in self.endpoints]}
        with contextlib.suppress(RunDirError):
            write_json(edir / SCRAPER_FILE, settings, indent=False)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(TimeoutError):  # closing never holds the stop up
                async with asyncio.timeout(2.0):
                    await session.close()
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def stop(self) -> None:
        """Ask :meth:`run` to return after the scrapes in flight (none is cut short)."""
        self._stop.set()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit_per_host=2))
        return self._session

    def deadline_for(self, ep: MetricsEndpoint) -> float:
        """The total time one read of ``ep`` may take (below its own interval)."""
        every = self._every(ep) * self.interval_s
        return max(self.timeout_s, 0.8 * every) if every > self.interval_s else self.timeout_s

    def _every(self, ep: MetricsEndpoint) -> int:
        return max(1, -(-round(ep.min_interval_s * 1000) // round(self.interval_s * 1000)))

    # -- recording
    def _record(self, result: ScrapeResult) -> None:
        self.stats.add(result)
        if self._journal is not None:
            c0 = time.thread_time_ns()
            try:
                written = self._journal.write(result.journal_line())
            except (TypeError, ValueError):  # a result that does not serialize
                written = False
            self.stats.journal_errors += not written
            self.stats.cpu_ns_total += time.thread_time_ns() - c0
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:  # noqa: BLE001 - a display callback must not stop scraping
                self.stats.by_outcome["callback_error"] = (
                    self.stats.by_outcome.get("callback_error", 0) + 1)

    async def _one(self, ep: MetricsEndpoint, tag: str, t_sched_ns: int) -> ScrapeResult:
        try:
            result = await scrape(self._sess(), ep, timeout_s=self.deadline_for(ep),
                                  headers=self._headers, tag=tag, t_sched_ns=t_sched_ns,
                                  keep_created=self.keep_created, defer_parse=self.defer_parse,
                                  max_body_bytes=self.max_body_bytes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: record, go on
            t = now_ns()
            text = redact_text(f"{type(exc).__name__}: {exc}")[:_ERROR_CHARS]
            result = ScrapeResult(safe_url(ep.url), ep.format, tag, t_sched_ns, t, t, False, -1,
                                  ScrapeOutcome.ERROR, text, 0, 0, 0)
        self._record(result)
        return result

    # -- public scraping
    async def snapshot(self, tag: str) -> list[ScrapeResult]:
        """Scrape every endpoint once now and journal the results under ``tag``."""
        self.open()
        return list(await asyncio.gather(*(self._one(ep, tag, -1) for ep in self.endpoints)))

    async def run(self, max_ticks: int | None = None) -> ScrapeStats:
        """Scrape on schedule until :meth:`stop` (or ``max_ticks`` ticks per endpoint)."""
        self.open()
        t0 = now_ns()
        tasks = [asyncio.create_task(self._loop(ep, t0, max_ticks)) for ep in self.endpoints]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats

    async def _sleep_until(self, deadline_ns: int) -> bool:
        """Wait for the deadline; False if stopped meanwhile."""
        delay = (deadline_ns - now_ns()) / _NS
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        return not self._stop.is_set()

    async def _loop(self, ep: MetricsEndpoint, t0: int, max_ticks: int | None) -> None:
        step = self._every(ep) * round(self.interval_s * _NS)
        k = 0
        while max_ticks is None or k < max_ticks:
            deadline = t0 + k * step
            if not await self._sleep_until(deadline):
                return
            result = await self._one(ep, "", deadline)
            if result.outcome is ScrapeOutcome.ABSENT:
                return
            k += 1
            if result.body is not None:  # rest after a large page: bounded journal rate
                need_ns = len(result.body) / self.max_journal_bytes_per_s * _NS
                rest = max(0, -int(-need_ns // step) - 1)
                self.stats.throttled_ticks += rest
                k += rest
            late = now_ns() - (t0 + k * step)
            if late > 0:  # this scrape overran the next deadline: skip, never bunch up
                missed = late // step + 1
                self.stats.skipped_ticks += missed
                k += missed


def finalize(run_dir: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
    """``engine/metrics.jsonl`` → ``engine/metrics.parquet`` + ``engine/scrapes.parquet``."""
    return finalize_engine_tables(run_dir, keep_journal)
