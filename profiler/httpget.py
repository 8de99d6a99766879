"""One bounded HTTP GET for servescope's own small requests (readiness, ``/v1/models``,
``/version``, ``/metrics`` sniffing): bounded in total time (a server that trickles its
header one byte at a time cannot hold it, which a per-read socket timeout would allow) and in
size (a 300 MB answer is cut at ``max_bytes``). It never raises: every failure is an answer
with ``error`` set, so callers decide what a failure means."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Answer", "get"]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # HTTP status, -1 when none arrived
    body: bytes
    error: str  # "" when a complete answer (of any status) arrived within the limits

    @property
    def ok(self) -> bool:
        return not self.error and self.status == 200


async def _get(url: str, headers: Mapping[str, str], timeout_s: float, max_bytes: int
               ) -> Answer:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (aiohttp.ClientSession(timeout=timeout, trust_env=False,
                                      auto_decompress=False) as http,
                http.get(url, headers=dict(headers), allow_redirects=False) as resp):
        parts: list[bytes] = []
        size = 0
        while size <= max_bytes:
            piece = await resp.content.read(max_bytes + 1 - size)
            if not piece:
                return Answer(resp.status, b"".join(parts), "")
            parts.append(piece)
            size += len(piece)
        return Answer(resp.status, b"".join(parts)[:max_bytes],
                      f"answer larger than {max_bytes:,} bytes (cut)")


def get(url: str, *, headers: Mapping[str, str] | None = None, timeout_s: float = 5.0,
        max_bytes: int = 1 << 20) -> Answer:
    """GET ``url`` within ``timeout_s`` in all (connect, header and body) and ``max_bytes``.
    Call it from synchronous code only (it runs its own event loop)."""
    try:
        return asyncio.run(_get(url, headers or {}, timeout_s, max_bytes))
    except TimeoutError:
        return Answer(-1, b"", f"no complete answer within {timeout_s:g} s")
    except Exception as exc:  # noqa: BLE001 - any failure is an answer, never a traceback
        return Answer(-1, b"", f"{type(exc).__name__}: {exc}"[:300])
