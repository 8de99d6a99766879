"""Running the reference server in a subprocess, for tests and ``servescope selftest``.

A separate process keeps the server's event loop off the client's, so the client's
timing error can be measured against the server's truth on the shared CLOCK_MONOTONIC.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from profiler.selftest.refserver import URL_PREFIX
from profiler.selftest.schedule import RefSchedule

__all__ = ["RefServerError", "RefServerHandle", "schedule_args", "start_refserver"]

_POLL_S = 0.02
_REPO_ROOT = Path(__file__).resolve().parents[2]


class RefServerError(RuntimeError):
    """The reference server did not start (the message carries its stderr)."""


def schedule_args(schedule: RefSchedule) -> list[str]:
    """The command-line flags that reproduce ``schedule`` (fields left at default omitted)."""
    args: list[str] = []
    for f in dataclasses.fields(RefSchedule):
        value = getattr(schedule, f.name)
        if value != f.default:
            args += ["--" + f.name.replace("_", "-"), str(value)]
    return args


class RefServerHandle:
    """A running reference server process; a context manager that stops it on exit."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, stderr: IO[bytes]) -> None:
        self.process = process
        self.url = url
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def _request(self, method: str, path: str, timeout_s: float) -> bytes:
        req = urllib.request.Request(self.url + path, method=method)  # noqa: S310 - http URL we built
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            body: bytes = resp.read()
            return body

    def truth(self, request_id: str | None = None, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """``GET /_truth``: every truth record (or one request id's)."""
        query = (
            "" if request_id is None else "?" + urllib.parse.urlencode({"request_id": request_id})
        )
        records: list[dict[str, Any]] = orjson.loads(
            self._request("GET", "/_truth" + query, timeout_s)
        )
        return records

    def reset(self, timeout_s: float = 10.0) -> int:
        """``POST /_truth/reset``; returns how many records were dropped."""
        answer = orjson.loads(self._request("POST", "/_truth/reset", timeout_s))
        return int(answer["cleared"])

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far."""
        return _read_all(self._stderr)

    def stop(self, grace_s: float = 3.0) -> int:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
        return self.process.returncode

    def __enter__(self) -> RefServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read_all(stream: IO[bytes]) -> str:
    if stream.closed:
        return ""
    stream.seek(0)
    return stream.read().decode(errors="replace")


def _child_env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ if env is None else env)
    path = merged.get("PYTHONPATH", "")
    merged["PYTHONPATH"] = str(_REPO_ROOT) + (os.pathsep + path if path else "")
    return merged


def start_refserver(
    schedule: RefSchedule | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout_s: float = 20.0,
) -> RefServerHandle:
    """Start ``python -m profiler.selftest.serve`` and wait until ``/health`` answers.

    ``extra_args`` are further CLI flags (``--no-truth``, ``--spin-us``...); ``env``
    replaces the inherited environment. Raises :class:`RefServerError` with the server's
    stderr if it exits or does not become healthy within ``startup_timeout_s``.
    """
    argv = [sys.executable, "-m", "profiler.selftest.serve", "--host", host, "--port", str(port)]
    argv += schedule_args(schedule or RefSchedule()) + list(extra_args)
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the handle, closed in stop()
    try:
        with tempfile.TemporaryFile() as stdout:
            process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=_child_env(env))
            url = _wait_until_healthy(process, stdout, stderr, startup_timeout_s)
    except BaseException:
        stderr.close()
        raise
    return RefServerHandle(process, url, stderr)


def _wait_until_healthy(
    process: subprocess.Popen[bytes], stdout: IO[bytes], stderr: IO[bytes], timeout_s: float
) -> str:
    """The URL the server printed, once /health answers; kills it on failure."""
    deadline = time.monotonic() + timeout_s
    url = ""
    try:
        while True:
            if not url:
                for line in _read_all(stdout).splitlines():
                    if line.startswith(URL_PREFIX):
                        url = line[len(URL_PREFIX) :].strip()
            if url and _healthy(url):
                return url
            if process.poll() is not None:
                raise RefServerError(
                    f"reference server exited with status {process.returncode} before "
                    f"answering /health; stderr:\n{_read_all(stderr)}"
                )
            if time.monotonic() > deadline:
                raise RefServerError(
                    f"reference server not healthy after {timeout_s} s "
                    f"(url {url or 'not printed'}); stderr:\n{_read_all(stderr)}"
                )
            time.sleep(_POLL_S)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1.0) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False
