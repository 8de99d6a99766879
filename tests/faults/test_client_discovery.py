"""``attach`` without ``--model`` asks ``/v1/models``: whatever that page holds, or however
slowly it comes, the answer is a model or one error line within the time bound (issue 8,
case 7)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from profiler.discovery import DiscoveryError, discover_model
from tests.e2e._support import new_tag, run_servescope
from tests.faults.server import (
    FaultServer,
    Handler,
    big_body,
    head,
    json_answer,
    raw_answer,
    trickle,
)

BAD_PAGES: list[tuple[str, Handler, str]] = [
    ("data-of-numbers", json_answer({"data": [5]}), 'lists a model without a string "id"'),
    ("data-a-string", json_answer({"data": "x"}), "lists no model"),
    ("id-a-number", json_answer({"data": [{"id": 5}]}), 'lists a model without a string "id"'),
    ("id-empty", json_answer({"data": [{"id": " "}]}), 'lists a model without a string "id"'),
    ("empty-list", json_answer({"data": []}), "lists no model"),
    ("top-level-list", json_answer([{"id": "m"}]), "lists no model"),
    ("not-json", raw_answer(head(200, "text/html") + b"<html>hi</html>"), "did not answer JSON"),
    ("deeply-nested", raw_answer(head(200) + b"[" * 100_000), "did not answer JSON"),
    ("ten-mb", big_body(10 << 20), "answered more than 1,048,576 bytes"),
    ("http-500", json_answer({"error": "boom"}, status=500), "answered HTTP 500"),
]


@pytest.mark.parametrize(("page", "reason"), [(h, r) for _, h, r in BAD_PAGES],
                         ids=[name for name, _, _ in BAD_PAGES])
def test_a_bad_model_list_is_one_error_line(page: Handler, reason: str) -> None:
    with FaultServer({"/v1/models": page}) as srv, pytest.raises(DiscoveryError) as err:
        discover_model(srv.url, timeout_s=5)
    msg = str(err.value)
    assert reason in msg
    assert msg.endswith("pass --model")
    assert "\n" not in msg


def test_trickled_headers_end_within_the_bound() -> None:
    """One header byte every 0.2 s forever: urllib's per-read timeout never fired."""
    slow = trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", 0.2)
    t0 = time.monotonic()
    with FaultServer({"/v1/models": slow}) as srv, pytest.raises(DiscoveryError) as err:
        discover_model(srv.url, timeout_s=1.0)
    assert time.monotonic() - t0 < 10
    assert "no complete answer within 1 s" in str(err.value)


def test_nothing_listening() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DiscoveryError, match="is the server up"):
        discover_model(f"http://127.0.0.1:{port}", timeout_s=2)


def test_good_list_and_api_key_sent() -> None:
    with FaultServer() as srv:
        assert discover_model(srv.url + "/v1", api_key="k-123") == "fault-model"
        assert srv.requests[-1].headers["authorization"] == "Bearer k-123"


def test_attach_without_model_on_a_bad_list_exits_2_without_traceback(tmp_path: Path
                                                                      ) -> None:
    with FaultServer({"/v1/models": json_answer({"data": [5]})}) as srv:
        r = run_servescope(["attach", "--url", srv.url, "--out", str(tmp_path / "run"),
                            "--requests", "1", "--no-metrics"], new_tag(), timeout_s=60)
    assert r.returncode == 2, r.output
    assert "Traceback" not in r.output
    assert 'error: ' in r.output
    assert 'lists a model without a string "id"' in r.text
