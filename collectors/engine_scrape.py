"""One bounded scrape of one metrics endpoint, recorded as a :class:`ScrapeResult`.

Bounded in time and size, whatever the server does: the whole read (connect, head and body)
has one total deadline (``timeout_s``, shorter than the scrape interval), so a server that
answers 200 and then trickles one byte a second cannot hold a scrape past it; and a body of
more than ``max_body_bytes`` (default :data:`DEFAULT_MAX_BODY_BYTES`, 4 MiB: ~80 times
vLLM's 52 KB page) is refused as a ``too_large`` outcome after reading at most that many
bytes (at once when ``Content-Length`` says so), the connection dropped, the rest never read.

A failed scrape (refused, timeout, HTTP error, unparseable or oversized body) is a recorded
outcome, never an exception: nothing here raises into the run. Error texts are redacted, and
the raw page has the secret values registered in this process
(:func:`servescope.redact.register_secrets`) removed before it is journaled.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import orjson

from servescope.clock import now_ns
from servescope.engines.base import MetricsFormat
from servescope.engines.parse import MetricSample, parse_body
from servescope.engines.spec import MetricsEndpoint
from servescope.redact import redact_known_bytes, redact_text

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ScrapeOutcome", "ScrapeResult", "safe_url", "scrape",
           "scrape_once"]

DEFAULT_MAX_BODY_BYTES = 4 << 20
_ERROR_CHARS = 300
_ERROR_BODY_BYTES = 4096  # of a non-200 answer, only the start is read (for its message)


class ScrapeOutcome(StrEnum):
    OK = "ok"
    CONNECTION_ERROR = "connection_error"  # refused, reset, DNS
    TIMEOUT = "timeout"  # no complete answer within the scrape's total deadline
    HTTP_ERROR = "http_error"  # any status but 200
    PARSE_ERROR = "parse_error"  # 200 with a body that is not the expected format
    ABSENT = "absent"  # an optional endpoint answered 404: not enabled, asked no more
    ERROR = "error"  # anything else (recorded, never raised)
    TOO_LARGE = "too_large"  # a body over max_body_bytes: refused, the rest not read


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    endpoint: str  # URL, user info and secrets redacted
    format: MetricsFormat
    tag: str  # "" for scheduled scrapes, e.g. "before"/"after" for snapshots
    t_sched_ns: int  # the deadline it was scheduled for (-1 for snapshots)
    t_start_ns: int
    t_end_ns: int
    ok: bool
    status: int  # HTTP status, -1 without an answer
    outcome: ScrapeOutcome
    error: str
    body_bytes: int  # bytes read (a refused page: what was read, or its Content-Length)
    cpu_ns: int  # CPU time spent parsing this scrape's body (this thread)
    n_entries: int  # TensorRT-LLM JSON: iteration-stat entries drained
    samples: tuple[MetricSample, ...] = ()
    # the raw page, kept unparsed while the run goes on (parsed when the tables are written:
    # prometheus_client's parser costs ~15 ms of CPU per vLLM page, the engine's CPU too)
    body: bytes | None = None
    keep_created: bool = False

    def journal_line(self) -> bytes:
        d: dict[str, Any] = {
            "endpoint": self.endpoint, "format": self.format, "tag": self.tag,
            "t_sched_ns": self.t_sched_ns, "t_start_ns": self.t_start_ns,
            "t_end_ns": self.t_end_ns, "ok": self.ok, "status": self.status,
            "outcome": self.outcome.value, "error": self.error, "body_bytes": self.body_bytes,
            "cpu_ns": self.cpu_ns, "n_entries": self.n_entries,
            "samples": [s.row() for s in self.samples],
        }
        if self.body is not None:
            d["body"] = self.body.decode("utf-8", errors="replace")
            d["keep_created"] = self.keep_created
        return orjson.dumps(d) + b"\n"


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def safe_url(url: str) -> str:
    return redact_text(_USERINFO.sub("", url))


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact_text(text)[:_ERROR_CHARS]


def _classify(exc: BaseException) -> ScrapeOutcome:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ScrapeOutcome.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError | OSError):
        return ScrapeOutcome.CONNECTION_ERROR
    return ScrapeOutcome.ERROR


@dataclass(frozen=True, slots=True)
class _Page:
    status: int
    body: bytes
    too_large: int = 0  # > 0: refused; the bytes known to be there (read or declared)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body; True when there was more (not read)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        piece = await resp.content.read(limit + 1 - size)
        if not piece:
            return b"".join(parts), False
        parts.append(piece)
        size += len(piece)
    return b"".join(parts)[:limit], True


async def _fetch(session: aiohttp.ClientSession, url: str, timeout_s: float,
                 headers: Mapping[str, str] | None, max_bytes: int) -> _Page:
    # one deadline for everything (asyncio's, on top of aiohttp's own total timeout)
    async with asyncio.timeout(timeout_s):
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with session.get(url, timeout=timeout, headers=headers) as resp:
            if resp.status != 200:
                body, more = await _read_capped(resp, min(max_bytes, _ERROR_BODY_BYTES))
                if more:
                    resp.close()  # drop the connection: the rest is never read
                return _Page(resp.status, body)
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                resp.close()
                return _Page(resp.status, b"", declared)
            body, more = await _read_capped(resp, max_bytes)
            if more:
                resp.close()
                return _Page(resp.status, b"", len(body) + 1)
            return _Page(resp.status, body)


def _result(ep: MetricsEndpoint, tag: str, t_sched: int, t0: int, **kw: Any) -> ScrapeResult:
    base: dict[str, Any] = {"status": -1, "error": "", "body_bytes": 0, "cpu_ns": 0,
                            "n_entries": 0, "samples": ()}
    base.update(kw)
    return ScrapeResult(endpoint=safe_url(ep.url), format=ep.format, tag=tag,
                        t_sched_ns=t_sched, t_start_ns=t0, **base)


def _too_large(max_bytes: int) -> str:
    return f"page larger than the {max_bytes:,}-byte limit: refused, the rest not read"


async def scrape(session: aiohttp.ClientSession, ep: MetricsEndpoint, *, timeout_s: float,
                 headers: Mapping[str, str] | None, tag: str, t_sched_ns: int,
                 keep_created: bool, defer_parse: bool = False,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ScrapeResult:
    """One scrape within ``timeout_s`` in all and ``max_body_bytes``; never raises but for
    cancellation."""
    t0 = now_ns()
    try:
        page = await _fetch(session, ep.url, timeout_s, headers, max_body_bytes)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome, never raised
        outcome = _classify(exc)
        error = (f"no complete answer within {timeout_s:g} s" if outcome is ScrapeOutcome.TIMEOUT
                 else _error_text(exc))
        return _result(ep, tag, t_sched_ns, t0, t_end_ns=now_ns(), ok=False, outcome=outcome,
                       error=error)
    t1 = now_ns()
    status, body = page.status, page.body
    if page.too_large:
        return _result(ep, tag, t_sched_ns, t0, t_end_ns=t1, ok=False, status=status,
                       outcome=ScrapeOutcome.TOO_LARGE, body_bytes=page.too_large,
                       error=_too_large(max_body_bytes))
    if status != 200:
        outcome = (ScrapeOutcome.ABSENT if status == 404 and ep.optional
                   else ScrapeOutcome.HTTP_ERROR)
        text = redact_text(body[:_ERROR_CHARS].decode("utf-8", errors="replace"))
        return _result(ep, tag, t_sched_ns, t0, t_end_ns=t1, ok=False, status=status,
                       outcome=outcome, error=f"HTTP {status}: {text}".strip()[:_ERROR_CHARS],
                       body_bytes=len(body))
    body = redact_known_bytes(body)
    if defer_parse:
        return _result(ep, tag, t_sched_ns, t0, t_end_ns=t1, ok=True, status=status,
                       outcome=ScrapeOutcome.OK, body_bytes=len(body), body=body,
                       keep_created=keep_created)
    c0 = time.thread_time_ns()
    try:
        samples, entries = parse_body(ep.format, body, keep_created)
    except ValueError as exc:
        return _result(ep, tag, t_sched_ns, t0, t_end_ns=t1, ok=False, status=status,
                       outcome=ScrapeOutcome.PARSE_ERROR, error=_error_text(exc),
                       body_bytes=len(body), cpu_ns=time.thread_time_ns() - c0)
    return _result(ep, tag, t_sched_ns, t0, t_end_ns=t1, ok=True, status=status,
                   outcome=ScrapeOutcome.OK, body_bytes=len(body), n_entries=entries,
                   samples=tuple(samples), cpu_ns=time.thread_time_ns() - c0)


async def scrape_once(endpoint: MetricsEndpoint, *, timeout_s: float = 5.0,
                      session: aiohttp.ClientSession | None = None,
                      headers: Mapping[str, str] | None = None, tag: str = "snapshot",
                      keep_created: bool = False,
                      max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ScrapeResult:
    """One scrape, recorded as a result (never raises for a failed scrape). Nothing is
    journaled: use :meth:`collectors.engine_metrics.MetricsScraper.snapshot` for that."""
    if session is not None:
        return await scrape(session, endpoint, timeout_s=timeout_s, headers=headers, tag=tag,
                            t_sched_ns=-1, keep_created=keep_created,
                            max_body_bytes=max_body_bytes)
    async with aiohttp.ClientSession() as own:
        return await scrape(own, endpoint, timeout_s=timeout_s, headers=headers, tag=tag,
                            t_sched_ns=-1, keep_created=keep_created,
                            max_body_bytes=max_body_bytes)
