"""start_refserver runs a real subprocess and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from urllib.parse import urlsplit

import pytest

from profiler.selftest.drain import drain
from profiler.selftest.process import RefServerError, schedule_args, start_refserver
from profiler.selftest.schedule import RefSchedule


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_serve_and_stop_leaves_no_process():
    with start_refserver(RefSchedule(ttft_ms=1, itl_ms=0), extra_args=["--model", "m1"]) as h:
        pid = h.pid
        assert h.url.startswith("http://127.0.0.1:")
        result = asyncio.run(drain(h.url, requests=3, concurrency=3, max_tokens=5))
        assert result.events == 3 * 6  # 5 content events + [DONE] each
        truth = h.truth()
        assert len(truth) == 3
        assert all(r["output_tokens"] == 5 for r in truth)
        assert h.reset() == 3
        assert h.truth() == []
    assert h.process.returncode == 0  # clean exit on SIGTERM
    assert not _alive(pid)


def test_stop_is_prompt_with_a_stalled_request_in_flight():
    with start_refserver(RefSchedule(ttft_ms=0, fault="stall")) as h:
        parts = urlsplit(h.url)
        sock = socket.create_connection((parts.hostname, parts.port))
        body = b'{"prompt": "x", "stream": true}'
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
            % (len(body), body)
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        code = h.stop()
        sock.close()
    assert time.monotonic() - t0 < 3.0
    assert code == 0
    assert not _alive(h.pid)


def test_bad_flags_raise_with_the_servers_stderr():
    with pytest.raises(RefServerError, match="itl_ms must be finite and >= 0"):
        start_refserver(extra_args=["--itl-ms", "-1"])


def test_no_truth_flag():
    with start_refserver(extra_args=["--no-truth"]) as h:
        with pytest.raises(Exception, match="404"):
            h.truth()
        assert h.reset() == 0


def test_schedule_args_round_trip():
    sched = RefSchedule(ttft_ms=3.5, tokens_per_event=2, fault="crlf,comments", eos_after=4)
    assert schedule_args(sched) == [
        "--ttft-ms", "3.5", "--tokens-per-event", "2", "--fault", "crlf,comments",
        "--eos-after", "4",
    ]  # fmt: skip
    assert schedule_args(RefSchedule()) == []
