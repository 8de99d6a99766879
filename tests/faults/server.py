"""A hostile HTTP server of our own, on loopback, written on raw sockets so that it can break
the protocol in ways a framework would not let it (headers trickled a byte at a time, bodies
of hundreds of MB, valid JSON of the wrong shape, connections that stall forever).

Each path maps to a handler ``async def h(req, w)`` that writes whatever bytes it likes to the
connection; the server closes the connection when the handler returns. Defaults answer like a
well-behaved OpenAI-compatible engine (``/health``, ``/v1/models``, ``/metrics``,
``/v1/completions``, ``/v1/chat/completions``); a test replaces the paths it wants to break::

    with FaultServer({"/v1/models": trickle(b"HTTP/1.1 200 OK\\r\\n", 0.5)}) as srv:
        ... srv.url ...

It runs its own event loop in a thread (or, with ``python -m tests.faults.server``, in a
process of its own). It is independent of servescope's reference server on purpose: the two
share no code or assumptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[["RawRequest", asyncio.StreamWriter], Awaitable[None]]

MODEL = "fault-model"
METRICS_PAGE = (b"# HELP vllm:num_requests_running Number of requests running.\n"
                b"# TYPE vllm:num_requests_running gauge\n"
                b'vllm:num_requests_running{model_name="fault-model"} 1.0\n')


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            obj = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return obj if isinstance(obj, dict) else {}


def head(status: int = 200, content_type: str = "application/json",
         extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """A response head for a body delimited by closing the connection."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", "Connection: close",
             *(f"{k}: {v}" for k, v in extra)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def write(w: asyncio.StreamWriter, data: bytes) -> None:
    w.write(data)
    await w.drain()


def json_answer(obj: Any, status: int = 200) -> Handler:
    """Answer ``obj`` as JSON (any value, also one of the wrong shape)."""
    async def h(_req: RawRequest, w: asyncio.StreamWriter) -> None:
        await write(w, head(status) + json.dumps(obj).encode())
    return h


def raw_answer(data: bytes) -> Handler:
    """Write ``data`` as it is (head included), then close."""
    async def h(_req: RawRequest, w: asyncio.StreamWriter) -> None:
        await write(w, data)
    return h


def trickle(data: bytes, per_byte_s: float, forever: bool = True) -> Handler:
    """Write ``data`` one byte every ``per_byte_s`` (then repeat its last byte forever)."""
    async def h(_req: RawRequest, w: asyncio.StreamWriter) -> None:
        for i in range(len(data)):
            await write(w, data[i:i + 1])
            await asyncio.sleep(per_byte_s)
        while forever:
            await write(w, data[-1:] or b" ")
            await asyncio.sleep(per_byte_s)
    return h


def big_body(n_bytes: int, content_type: str = "application/json",
             line: bytes = b"x" * 1023 + b"\n", status: int = 200) -> Handler:
    """A 200 answer whose body is ``n_bytes`` of ``line`` repeated."""
    async def h(_req: RawRequest, w: asyncio.StreamWriter) -> None:
        await write(w, head(status, content_type))
        block = line * max(1, (1 << 20) // len(line))
        sent = 0
        while sent < n_bytes:
            piece = block[: n_bytes - sent]
            await write(w, piece)
            sent += len(piece)
    return h


def sse_events(events: Iterable[Any], gap_s: float = 0.0, done: bool = True) -> Handler:
    """An SSE stream of the given events (dicts become JSON, bytes go as they are)."""
    evs = list(events)

    async def h(_req: RawRequest, w: asyncio.StreamWriter) -> None:
        await write(w, head(200, "text/event-stream"))
        for ev in evs:
            payload = ev if isinstance(ev, bytes) else json.dumps(ev).encode()
            await write(w, b"data: " + payload + b"\n\n")
            if gap_s:
                await asyncio.sleep(gap_s)
        if done:
            await write(w, b"data: [DONE]\n\n")
    return h


def token_chunk(chat: bool, text: str, n_tokens: int | None = None,
                finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text}
    else:
        choice["text"] = text
    chunk: dict[str, Any] = {"id": "x", "model": MODEL, "choices": [choice]}
    if n_tokens is not None:
        chunk["usage"] = {"prompt_tokens": 4, "completion_tokens": n_tokens,
                          "total_tokens": 4 + n_tokens}
    return chunk


async def good_stream(req: RawRequest, w: asyncio.StreamWriter) -> None:
    """A well-formed stream of ``max_tokens`` (default 8) one-token events."""
    chat = req.path.endswith("/chat/completions")
    n = int(req.json().get("max_tokens") or 8)
    await write(w, head(200, "text/event-stream"))
    for i in range(n):
        chunk = token_chunk(chat, f" t{i}", i + 1, "length" if i == n - 1 else None)
        await write(w, b"data: " + json.dumps(chunk).encode() + b"\n\n")
    await write(w, b"data: [DONE]\n\n")


def default_routes() -> dict[str, Handler]:
    return {
        "/health": raw_answer(head(200, "text/plain") + b"ok"),
        "/version": json_answer({"version": "fault-0"}),
        "/v1/models": json_answer({"object": "list", "data": [{"id": MODEL}]}),
        "/metrics": raw_answer(head(200, "text/plain; version=0.0.4") + METRICS_PAGE),
        "/v1/completions": good_stream,
        "/v1/chat/completions": good_stream,
    }


@dataclass
class FaultServer:
    """The server; ``routes`` override :func:`default_routes` path by path."""

    routes: dict[str, Handler] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    hits: dict[str, int] = field(default_factory=dict)
    requests: list[RawRequest] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None

    def __post_init__(self) -> None:
        self.routes = {**default_routes(), **self.routes}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _serve_one(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            raw = await r.readuntil(b"\r\n\r\n")
            first, *lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = first.split(" ", 2)
            headers = {}
            for line in lines:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = b""
            if (n := int(headers.get("content-length", "0") or 0)) > 0:
                body = await r.readexactly(n)
            path = path.split("?", 1)[0]
            req = RawRequest(method, path, headers, body)
            self.requests.append(req)
            self.hits[path] = self.hits.get(path, 0) + 1
            handler = self.routes.get(path)
            if handler is None:
                await write(w, head(404, "text/plain") + b"not found")
            else:
                await handler(req, w)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.CancelledError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                w.close()

    async def _start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve_one, sock=sock, limit=1 << 20)

    def start(self) -> FaultServer:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._start())
            ready.set()
            loop.run_forever()
            # cancel whatever handler is still writing (a trickle that never ends)
            for task in asyncio.all_tasks(loop):
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*asyncio.all_tasks(loop),
                                                       return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=main, daemon=True, name="fault-server")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._server is not None:
            loop.call_soon_threadsafe(self._server.close)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
