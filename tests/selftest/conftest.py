from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from profiler.selftest.refserver import RefServer, make_app, refserver_key
from profiler.selftest.schedule import RefSchedule


@dataclass
class InProcessServer:
    url: str
    state: RefServer


@pytest.fixture
async def ref() -> AsyncIterator[InProcessServer]:
    """A reference server in the test's event loop (fast schedule: 2 ms TTFT, 1 ms ITL)."""
    app = make_app(RefSchedule(ttft_ms=2, itl_ms=1))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield InProcessServer(f"http://127.0.0.1:{port}", app[refserver_key])
    await runner.cleanup()
