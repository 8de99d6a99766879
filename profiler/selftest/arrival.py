"""Request arrival times taken where the bytes enter the server process.

aiohttp runs a request's handler only after it has parsed the request and the event loop has
got round to the handler's task; under load that can be milliseconds after the bytes
arrived. The reference server's truth must not charge that to the client, so its connection
protocol records the time of each ``data_received`` and the handler reads it
(``request.protocol.t_data_ns``): with one request at a time per connection, that is when
the request's last bytes arrived.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["TimedRequestHandler", "timed_arrivals"]


class TimedRequestHandler(RequestHandler):
    __slots__ = ("t_data_ns",)

    def data_received(self, data: bytes) -> None:
        self.t_data_ns = time.monotonic_ns()
        super().data_received(data)


class _TimedServer(web.Server):
    def __call__(self) -> RequestHandler:
        return TimedRequestHandler(self, loop=self._loop, **self._kwargs)


def timed_arrivals(runner: web.AppRunner) -> None:
    """Make ``runner``'s server (after ``setup()``) create timed protocols."""
    server = runner.server
    if server is not None and type(server) is web.Server:
        server.__class__ = _TimedServer
