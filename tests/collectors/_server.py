"""A real aiohttp server on loopback that plays a script of metrics answers.

Each GET of a path takes the next step of that path's script (the last step repeats):
``ok`` serves the body, ``500`` an error page, ``404`` not found, ``slow`` answers after
``slow_s`` (longer than any scraper timeout used in the tests), ``garbage`` a body that is not
metrics, ``drop`` closes the connection without an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from servescope.clock import now_ns

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GARBAGE = b"<html><body>\x00\xff{{{ this is not a metrics page }}}</body></html>\n"
ERROR_BODY = b"Internal Server Error: upstream said Authorization: Bearer sk-abcdef1234567890XYZ"


@dataclass
class Route:
    body: bytes
    steps: list[str] = field(default_factory=lambda: ["ok"])
    bodies: list[bytes] = field(default_factory=list)  # "ok" answers, in turn (then `body`)
    hits_ns: list[int] = field(default_factory=list)
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class ScriptedServer:
    port: int
    routes: dict[str, Route]
    slow_s: float = 2.0

    def url(self, path: str = "/metrics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server: ScriptedServer, route: Route) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        route.hits_ns.append(now_ns())
        n = len(route.hits_ns) - 1
        step = route.steps[min(n, len(route.steps) - 1)]
        if step == "500":
            return web.Response(status=500, body=ERROR_BODY)
        if step == "404":
            return web.Response(status=404, text="Not Found")
        if step == "garbage":
            return web.Response(status=200, body=GARBAGE, content_type="text/plain")
        if step == "slow":
            await asyncio.sleep(server.slow_s)
        if step == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        body = route.bodies.pop(0) if route.bodies else route.body
        return web.Response(status=200, body=body,
                            headers={"Content-Type": route.content_type})

    return handle


@asynccontextmanager
async def scripted_server(routes: dict[str, Route],
                          slow_s: float = 2.0) -> AsyncIterator[ScriptedServer]:
    app = web.Application()
    server = ScriptedServer(port=0, routes=routes, slow_s=slow_s)
    for path, route in routes.items():
        app.router.add_get(path, _handler(server, route))
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = int(runner.addresses[0][1])
    try:
        yield server
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
