"""An OTLP trace receiver on 127.0.0.1: OTLP/HTTP (protobuf or JSON, ``POST /v1/traces``)
with aiohttp on a socket bound before the engine starts, and OTLP/gRPC (``TraceService/
Export``) with grpcio. Every span received goes to :class:`SpanJournal` (one JSON line each,
flushed per export), so what arrived before a crash is kept.

Both serve from their own thread, never the load client's loop; an unreadable body is
answered 400 (HTTP) or INVALID_ARGUMENT (gRPC) and counted, never raised.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from collectors.otel.decode import BadBody, parse_json, parse_protobuf, spans_of
from servescope.clock import ClockAnchor

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["GrpcReceiver", "HttpReceiver", "SpanJournal", "bind_loopback"]

TRACES_PATH = "/v1/traces"
_MAX_BODY = 64 << 20


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (``port`` 0: an ephemeral one). Connections queue
    in its backlog until a receiver serves it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(256)
    s.set_inheritable(False)
    return s


class SpanJournal:
    """Spans appended to a JSONL file as they arrive (thread-safe), with counts."""

    def __init__(self, path: Path, anchor: ClockAnchor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._anchor = anchor
        self._fh = path.open("ab")
        self._lock = threading.Lock()
        self.exports = 0
        self.spans = 0
        self.bad_bodies = 0
        self.last_error = ""

    def accept(self, msg: ExportTraceServiceRequest) -> int:
        spans = spans_of(msg, self._anchor)
        data = b"".join(orjson.dumps(asdict(s)) + b"\n" for s in spans)
        with self._lock:
            self._fh.write(data)
            self._fh.flush()
            self.exports += 1
            self.spans += len(spans)
        return len(spans)

    def bad(self, why: str) -> None:
        with self._lock:
            self.bad_bodies += 1
            self.last_error = why[:300]

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class HttpReceiver:
    """OTLP/HTTP on ``sock`` (already bound and listening), served from a thread."""

    def __init__(self, sock: socket.socket, journal: SpanJournal) -> None:
        self._sock = sock
        self._journal = journal
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner: Any = None
        self.error = ""

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        is_json = request.content_type == "application/json"
        try:
            body = await request.read()  # aiohttp undoes a gzip/deflate Content-Encoding
            msg = parse_json(body) if is_json else parse_protobuf(body)
            self._journal.accept(msg)
        except (BadBody, ValueError, OSError) as exc:
            self._journal.bad(f"{type(exc).__name__}: {exc}")
            return web.Response(status=400, text=str(exc)[:200])
        if is_json:
            return web.Response(body=b"{}", content_type="application/json")
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def _serve(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post(TRACES_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:  # noqa: BLE001 - reported by start()
            self.error = f"{type(exc).__name__}: {exc}"
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        if self._runner is not None:
            loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def start(self, timeout_s: float = 10.0) -> None:
        """Serve; ``RuntimeError`` if it could not."""
        self._thread = threading.Thread(target=self._main, daemon=True, name="otlp-http")
        self._thread.start()
        if not self._ready.wait(timeout_s) or self.error:
            raise RuntimeError(f"the OTLP/HTTP receiver did not start: {self.error or 'timeout'}")

    def stop(self, timeout_s: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)


class GrpcReceiver:
    """OTLP/gRPC ``TraceService/Export`` on 127.0.0.1:``port`` (0: any; :attr:`port` says)."""

    def __init__(self, journal: SpanJournal, port: int = 0) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import grpc
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2,
            trace_service_pb2_grpc,
        )

        sink = journal

        class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                try:
                    sink.accept(request)
                except Exception as exc:  # noqa: BLE001 - answered, counted
                    sink.bad(f"{type(exc).__name__}: {exc}")
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:200])
                return trace_service_pb2.ExportTraceServiceResponse()

        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Servicer(), self._server)
        self.port = int(self._server.add_insecure_port(f"127.0.0.1:{port}"))
        if self.port == 0:
            raise RuntimeError(f"the OTLP/gRPC receiver could not bind 127.0.0.1:{port}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace_s: float = 2.0) -> None:
        self._server.stop(grace_s).wait(grace_s + 1.0)
