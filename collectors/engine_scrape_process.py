"""The ``metrics`` collector: the engine's metrics pages, scraped in a process of its own.

Parsing a 52 KB vLLM page costs ~15 ms of CPU (prometheus_client's parser, 2-vCPU VM). On the
load client's event loop that would delay its stream reads by as much once per interval, so
the :class:`MetricsScraper` runs in a child process (:class:`collectors.child.ChildRunner`:
``spawn``, ready handshake, stop pipe, bounded stop, secrets registered in the child), which
journals to ``RUN/engine/metrics.jsonl``. In the child the scraper's event loop runs in a
thread of its own; the runner's main thread waits on the stop pipe.

:meth:`MetricsCollector.stop` waits for the scrapes in flight and takes a final snapshot (so
counters and histograms cover the requests that ended after the last scheduled tick), each
bounded by the scrape deadline: the stop always ends within
:meth:`MetricsCollector.stop_bound_s` (past it the runner terminates, then kills the child).
Nothing here raises into the run: scrapes that failed are counted by outcome and summed up in
``CollectorStats.error``.

The live view's gauges (KV-cache usage, running, waiting) are read from each raw page in the
child and written to a small shared array the collector made in the parent
(:meth:`MetricsCollector.live_values`).

:class:`ScraperProcess` is the same collector for callers that hold endpoints rather than an
engine: ``ScraperProcess(run_dir, endpoints, interval_s=…)``, ``start()``, ``stop()`` →
:class:`ScrapeStats`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import multiprocessing as mp
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from collectors.base import (
    CollectContext,
    CollectorStats,
    CollectorUnavailable,
    EngineFacts,
)
from collectors.child import READY_TIMEOUT_S, ChildRunner
from collectors.engine_metrics import (
    DEFAULT_JOURNAL_BYTES_PER_S,
    DEFAULT_MAX_BODY_BYTES,
    MetricsScraper,
    ScrapeResult,
    ScrapeStats,
)
from collectors.live_gauges import LIVE_SIGNALS, LiveGauges
from servescope.clock import take_anchor
from servescope.engines.spec import MetricsEndpoint
from servescope.redact import known_secrets

__all__ = ["MetricsCollector", "ScraperProcess"]

_STOP_SLACK_S = 5.0  # a busy machine's scheduling, on top of two scrape deadlines
_OPTIONS = ("interval_s", "timeout_s", "keep_created", "max_body_bytes",
            "max_journal_bytes_per_s")


def _scraper(ctx: CollectContext, opts: Mapping[str, Any],
             on_result: Callable[[ScrapeResult], None] | None = None) -> MetricsScraper:
    """A scraper for ``ctx``'s endpoints under the collector's options (``ValueError`` for
    a bad one); the one place the options are read."""
    unknown = set(opts) - set(_OPTIONS)
    if unknown:
        raise ValueError(f"unknown metrics option(s): {', '.join(sorted(unknown))}")
    return MetricsScraper(ctx.run_dir, ctx.engine.metrics_endpoints,
                          interval_s=float(opts.get("interval_s", 1.0)),
                          timeout_s=opts.get("timeout_s"),
                          headers=dict(ctx.headers) or None,
                          keep_created=bool(opts.get("keep_created", False)),
                          max_body_bytes=int(opts.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
                          max_journal_bytes_per_s=float(opts.get(
                              "max_journal_bytes_per_s", DEFAULT_JOURNAL_BYTES_PER_S)),
                          on_result=on_result)


class MetricsCollector:
    """Scrapes the engine's metrics endpoints (``ctx.engine.metrics_endpoints``) every
    ``interval_s``. Options (``ctx.options["metrics"]``): ``interval_s`` (1.0), ``timeout_s``
    (0.8 × the interval), ``keep_created``, ``max_body_bytes`` (4 MiB: a larger page is
    refused as ``too_large``), ``max_journal_bytes_per_s`` (1 MiB/s; see
    :class:`MetricsScraper`)."""

    name = "metrics"
    label = "metrics scraper"

    def __init__(self) -> None:
        # the live gauges, then 1.0 once the child reads them: made here, in the parent,
        # so both processes hold the same memory once this instance reaches the child
        self._shared = mp.get_context("spawn").Array(
            "d", [math.nan] * len(LIVE_SIGNALS) + [0.0], lock=False)
        self._scraper: MetricsScraper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._failed = ""

    # -- in servescope's process
    def validate_environment(self) -> None:
        for module in ("aiohttp", "prometheus_client"):
            if importlib.util.find_spec(module) is None:
                raise CollectorUnavailable(
                    f"the metrics collector needs {module}: pip install servescope's "
                    "dependencies again, or leave metrics out (--no-metrics)")

    def skip_reason(self, ctx: CollectContext) -> str:
        if ctx.engine.metrics_endpoints:
            return ""
        return f"{ctx.engine.name}: no metrics endpoint; engine metrics not collected"

    def stop_bound_s(self, ctx: CollectContext) -> float:
        """The scrapes in flight and the final snapshot, each bounded by the scrape
        deadline, plus slack for a busy machine."""
        check = _scraper(ctx, ctx.options_for(self.name))
        deadline = max((check.deadline_for(ep) for ep in check.endpoints),
                       default=check.timeout_s)
        return 2 * deadline + _STOP_SLACK_S

    def live_values(self) -> dict[str, float]:
        """The latest live gauges by signal name ({} when the pages cannot give them)."""
        n = len(LIVE_SIGNALS)
        if self._shared[n] != 1.0:
            return {}
        return {sig.value: float(self._shared[i]) for i, sig in enumerate(LIVE_SIGNALS)}

    # -- where it runs
    def start(self, ctx: CollectContext) -> None:
        live, shared = self._live_gauges(ctx.engine), self._shared

        def on_result(r: ScrapeResult) -> None:
            if live is not None and r.ok and r.body:
                live.update_from_page(r.body)
                for i, value in enumerate(live.values().values()):
                    shared[i] = value

        scraper = _scraper(ctx, ctx.options_for(self.name),
                           on_result if live is not None else None)
        self._scraper = scraper
        opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(scraper, opened),
                                        name="metrics-scraper", daemon=True)
        self._thread.start()
        opened.wait()
        if self._failed:
            raise RuntimeError(self._failed)

    def _live_gauges(self, engine: EngineFacts) -> LiveGauges | None:
        if not engine.live_families or not all(
                ep.format == "prometheus" for ep in engine.metrics_endpoints):
            return None  # JSON pages: the view shows no engine gauges
        self._shared[len(LIVE_SIGNALS)] = 1.0
        return LiveGauges(engine.live_families)

    def _run(self, scraper: MetricsScraper, opened: threading.Event) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            try:
                async with scraper:
                    opened.set()
                    await scraper.run()
                    # one more scrape once the load is over, so counters and histograms
                    # cover the requests that ended after the last scheduled tick
                    await scraper.snapshot("final")
            finally:
                opened.set()

        try:
            asyncio.run(main())
        except Exception as exc:  # noqa: BLE001 - the stats carry it; start() raises it
            self._failed = f"{type(exc).__name__}: {exc}"
            opened.set()

    def stop(self) -> CollectorStats:
        scraper, loop, thread = self._scraper, self._loop, self._thread
        if scraper is None or thread is None:
            return CollectorStats(ScrapeStats().to_json())
        if loop is not None:
            try:
                loop.call_soon_threadsafe(scraper.stop)
            except RuntimeError:  # the loop ended already (every endpoint was absent)
                pass
        thread.join()  # bounded: the runner ends this process past stop_bound_s
        stats = scraper.stats
        error = stats.problem()
        if self._failed:
            error = "; ".join(e for e in (self._failed, error) if e)
        return CollectorStats(stats.to_json(), error)


class ScraperProcess:
    """The metrics collector in a child process for given ``endpoints``: ``start()``, then
    ``stop()`` → :class:`ScrapeStats`.

    ``max_body_bytes`` caps each page (default 4 MiB), ``max_journal_bytes_per_s`` the
    journal's rate (default 1 MiB/s, see :class:`MetricsScraper`); ``error`` is "" or a
    sentence for the run's warnings (the child failed, or scrapes failed: counts by outcome).
    A bad option raises ``ValueError`` here, before any process exists.
    """

    def __init__(self, run_dir: Path, endpoints: Sequence[MetricsEndpoint], *,
                 interval_s: float = 1.0, timeout_s: float | None = None,
                 headers: Mapping[str, str] | None = None, keep_created: bool = False,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_journal_bytes_per_s: float = DEFAULT_JOURNAL_BYTES_PER_S) -> None:
        options = {"interval_s": interval_s, "timeout_s": timeout_s,
                   "keep_created": keep_created, "max_body_bytes": max_body_bytes,
                   "max_journal_bytes_per_s": max_journal_bytes_per_s}
        ctx = CollectContext(Path(run_dir), "", EngineFacts("metrics",
                                                            metrics_endpoints=tuple(endpoints)),
                             take_anchor(), dict(headers or {}), tuple(known_secrets()),
                             {MetricsCollector.name: options})
        self.collector = MetricsCollector()
        self._runner = ChildRunner(self.collector, ctx)

    @property
    def pid(self) -> int | None:
        return self._runner.pid

    @property
    def error(self) -> str:
        return self._runner.error

    @property
    def _proc(self) -> mp.process.BaseProcess:  # tests look at the child itself
        return self._runner._proc

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Start the child and wait until it is scraping; False (and ``error``) if not."""
        return self._runner.start(ready_timeout_s)

    def stop_bound_s(self) -> float:
        """How long :meth:`stop` waits for the child's counts: the scrapes in flight and the
        final snapshot, each bounded by the scrape deadline, plus slack for a busy machine.
        Terminating and killing a child that overran add at most 6 s."""
        return self._runner.stop_bound_s()

    def stop(self, timeout_s: float | None = None) -> ScrapeStats:
        """Stop scraping (scrapes in flight finish), return the child's counts; bounded by
        ``timeout_s`` (default :meth:`stop_bound_s`) plus at most 6 s."""
        return ScrapeStats.from_json(self._runner.stop(timeout_s).to_json())

    def __enter__(self) -> ScraperProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
