"""Run the metrics scraper in a process of its own.

Parsing a 52 KB vLLM page costs ~15 ms of CPU (prometheus_client's parser, 2-vCPU VM). On the load
client's event loop that would delay its stream reads by as much once per interval, so beside
the client the scraper runs in a child process (``spawn``: no inherited event loop or threads),
which journals to the same ``RUN/engine/metrics.jsonl``. The child ignores SIGINT: Ctrl-C is the
parent's to handle, and the parent stops the child through :meth:`ScraperProcess.stop`, which
waits for the scrapes in flight and the final snapshot, each bounded by the scrape deadline, so
the stop always ends in bounded time (:meth:`ScraperProcess.stop_bound_s`; past it the child
is terminated, then killed). Nothing here raises into the run: a child that cannot start or
dies, and scrapes that failed, are reported in ``error`` (a sentence for the run's warnings)
and the returned stats.

The child registers the parent's known secret values (:func:`servescope.redact.known_secrets`,
passed in its config) before its first scrape, so its error texts and journaled pages are
redacted as the parent's output is.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from collectors.engine_metrics import (
    DEFAULT_JOURNAL_BYTES_PER_S,
    DEFAULT_MAX_BODY_BYTES,
    MetricsScraper,
    ScrapeResult,
    ScrapeStats,
)
from collectors.live_gauges import LiveGauges
from servescope.engines.spec import MetricsEndpoint
from servescope.redact import known_secrets, redact_text, register_secrets

__all__ = ["ScraperProcess"]


@dataclass(frozen=True, slots=True)
class _Config:
    run_dir: Path
    endpoints: tuple[MetricsEndpoint, ...]
    interval_s: float
    timeout_s: float | None
    headers: dict[str, str] = field(default_factory=dict)
    keep_created: bool = False
    live: LiveGauges | None = None  # a few gauges shared with the parent's live view
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_journal_bytes_per_s: float = DEFAULT_JOURNAL_BYTES_PER_S
    secrets: tuple[str, ...] = ()  # the parent's registered secret values


def _child(cfg: _Config, stop: Connection, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    register_secrets(cfg.secrets)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        live = cfg.live

        def on_result(r: ScrapeResult) -> None:
            if live is not None and r.ok and r.body:
                live.update_from_page(r.body)

        async with MetricsScraper(cfg.run_dir, cfg.endpoints, interval_s=cfg.interval_s,
                                  timeout_s=cfg.timeout_s, headers=cfg.headers or None,
                                  keep_created=cfg.keep_created,
                                  max_body_bytes=cfg.max_body_bytes,
                                  max_journal_bytes_per_s=cfg.max_journal_bytes_per_s,
                                  on_result=on_result if live is not None else None
                                  ) as scraper:

            def watch() -> None:
                # a pipe, not an Event: a multiprocessing Event whose waiting thread died
                # with this process (e.g. every endpoint was absent and run() returned)
                # blocks the parent's set() forever
                with contextlib.suppress(EOFError, OSError):
                    stop.recv()
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(scraper.stop)

            threading.Thread(target=watch, name="scraper-stop", daemon=True).start()
            conn.send(("ready", None))
            await scraper.run()
            # one more scrape once the load is over, so counters and histograms cover the
            # requests that ended after the last scheduled tick (counted in scraper.stats)
            await scraper.snapshot("final")
        # cpu_ns_total counts the journal writes only; this is the whole scraper process
        # (start-up and imports included): what the engine's host really paid
        scraper.stats.process_cpu_ns = time.process_time_ns()
        return scraper.stats.to_json()

    try:
        conn.send(("stats", asyncio.run(main())))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", redact_text(f"{type(exc).__name__}: {exc}")[:500]))
    finally:
        conn.close()


class ScraperProcess:
    """A :class:`MetricsScraper` in a child process: ``start()``, then ``stop()``.

    ``max_body_bytes`` caps each page (default 4 MiB), ``max_journal_bytes_per_s`` the
    journal's rate (default 1 MiB/s, see :class:`MetricsScraper`); ``error`` is "" or a
    sentence for the run's warnings (the child failed, or scrapes failed: counts by outcome).
    """

    def __init__(self, run_dir: Path, endpoints: Sequence[MetricsEndpoint], *,
                 interval_s: float = 1.0, timeout_s: float | None = None,
                 headers: Mapping[str, str] | None = None, keep_created: bool = False,
                 live: LiveGauges | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_journal_bytes_per_s: float = DEFAULT_JOURNAL_BYTES_PER_S) -> None:
        # validate here, in the parent, with the scraper's own rules
        check = MetricsScraper(run_dir, endpoints, interval_s=interval_s, timeout_s=timeout_s,
                               max_body_bytes=max_body_bytes,
                               max_journal_bytes_per_s=max_journal_bytes_per_s)
        self._deadline_s = max((check.deadline_for(ep) for ep in check.endpoints),
                               default=check.timeout_s)
        self._cfg = _Config(Path(run_dir), tuple(endpoints), interval_s, timeout_s,
                            dict(headers or {}), keep_created, live, max_body_bytes,
                            max_journal_bytes_per_s, tuple(known_secrets()))
        self.live = live
        ctx = mp.get_context("spawn")
        stop_recv, self._stop = ctx.Pipe(duplex=False)
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(self._cfg, stop_recv, send),
                                 name="servescope-scraper", daemon=True)
        self._send = send
        self.error = ""

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def start(self, ready_timeout_s: float = 20.0) -> bool:
        """Start the child and wait until it is scraping; False (and ``error``) if not."""
        try:
            self._proc.start()
        except OSError as exc:
            self.error = f"cannot start the scraper process: {exc}"
            return False
        self._send.close()  # the child holds the only sending end now
        if not self._recv.poll(ready_timeout_s):
            self.error = f"the scraper process did not start within {ready_timeout_s} s"
            return False
        try:
            kind, payload = self._recv.recv()
        except EOFError:
            self.error = "the scraper process exited while starting"
            return False
        if kind != "ready":
            self.error = str(payload)
            return False
        return True

    def stop_bound_s(self) -> float:
        """How long :meth:`stop` waits for the child's counts: the scrapes in flight and the
        final snapshot, each bounded by the scrape deadline, plus slack for a busy machine.
        Terminating and killing a child that overran add at most 4 s."""
        return 2 * self._deadline_s + 5.0

    def stop(self, timeout_s: float | None = None) -> ScrapeStats:
        """Stop scraping (scrapes in flight finish), return the child's counts; bounded by
        ``timeout_s`` (default :meth:`stop_bound_s`) plus at most 4 s."""
        stats = ScrapeStats()
        if self._proc.pid is None:
            return stats
        wait_s = self.stop_bound_s() if timeout_s is None else timeout_s
        with contextlib.suppress(OSError):  # the child may have exited already
            self._stop.send(None)
        try:
            if self._recv.poll(wait_s):
                kind, payload = self._recv.recv()
                if kind == "stats":
                    stats = ScrapeStats.from_json(payload)
                else:
                    self.error = str(payload)
            else:
                self.error = f"the scraper process did not stop within {wait_s:g} s"
        except (EOFError, OSError):
            self.error = self.error or "the scraper process died"
        self._end_child()
        if not self.error:
            self.error = stats.problem()
        return stats

    def _end_child(self) -> None:
        self._proc.join(2.0)
        for end in (self._proc.terminate, self._proc.kill):
            if not self._proc.is_alive():
                break
            end()
            self._proc.join(2.0)
        with contextlib.suppress(OSError):
            self._recv.close()

    def __enter__(self) -> ScraperProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
