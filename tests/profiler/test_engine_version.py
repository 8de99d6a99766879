"""``engine_version``: the running engine's ``GET /version``, or None (never an error)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from profiler.engine_run import engine_version


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        status = 200 if self.path == "/version" and self.body else 404
        self.send_response(status)
        self.end_headers()
        if status == 200:
            self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()


def _url(srv: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_version_from_json(server):
    _Handler.body = json.dumps({"version": "0.32.0+cpu"}).encode()
    assert engine_version(_url(server)) == "0.32.0+cpu"


@pytest.mark.parametrize("body", [b"", b"not json", b'["0.1"]', b'{"v": 1}'])
def test_no_or_odd_version_is_none(server, body):
    _Handler.body = body
    assert engine_version(_url(server)) is None


def test_nothing_listening():
    assert engine_version("http://127.0.0.1:9", timeout_s=0.5) is None
