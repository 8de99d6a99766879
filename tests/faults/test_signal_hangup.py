"""The terminal goes away (SIGHUP): ``run`` and ``attach`` stop as on Ctrl-C (exit 129,
status ``interrupted``), also when the terminal is really gone and every write to it fails;
and a run started under ``nohup`` (SIGHUP inherited as ignored) — or with SIGINT ignored, as a
background job of a script — keeps going: the user asked for that."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.collectors._server import free_port
from tests.e2e._support import (
    REPO,
    Background,
    Tracker,
    manifest_json,
    servescope_argv,
    tagged_env,
    wait_for,
)
from tests.faults._signal_support import (
    LONG,
    assert_nothing_left,
    fake_engine,
    signal_group,
    tracked,
    wait_finished,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def tracker():
    yield from tracked()


def test_attach_hangup(tmp_path, tracker):
    port = free_port()
    server = subprocess.Popen(fake_engine(port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        run_dir = tmp_path / "run"
        bg = _start(tmp_path, tracker, ["attach", "--url", f"http://127.0.0.1:{port}",
                                        "--out", str(run_dir), *LONG, "--workers", "2"])
        wait_finished(bg)
        signal_group(bg, signal.SIGHUP)
        res = bg.wait(60)
        assert res.returncode == 129, res.output[-3000:]
        assert "Traceback" not in res.output
        assert manifest_json(run_dir)["status"] == "interrupted"
        assert_nothing_left(tracker)
        assert server.poll() is None
    finally:
        server.kill()
        server.wait()


IGNORING = ("import os, signal, sys; "
            "[signal.signal(getattr(signal, s), signal.SIG_IGN) for s in sys.argv[1].split(',')]; "
            "os.execv(sys.argv[2], sys.argv[2:])")


def test_ignored_signals_are_left_ignored(tmp_path, tracker):
    """``nohup servescope run …`` from a script run in the background: neither the hangup nor
    a Ctrl-C of the terminal stop the run, which completes."""
    port = free_port()
    run_dir = tmp_path / "run"
    args = ["run", "--out", str(run_dir), "--engine", "vllm", "--url",
            f"http://127.0.0.1:{port}", "--requests", "150", "--concurrency", "2",
            "--output-len", "fixed:10", "--", *fake_engine(port)]
    bg = _start(tmp_path, tracker, args, wrapper=[sys.executable, "-c", IGNORING,
                                                  "SIGHUP,SIGINT"])
    wait_finished(bg, 4)
    signal_group(bg, signal.SIGHUP)
    signal_group(bg, signal.SIGINT)
    res = bg.wait(60)
    assert res.returncode == 0, res.output[-3000:]
    assert "Traceback" not in res.output
    assert manifest_json(run_dir)["status"] == "complete"
    assert_nothing_left(tracker)


def test_terminal_really_gone(tmp_path, tracker):
    """servescope on a pseudo-terminal that is its controlling terminal; the terminal is
    closed: the kernel sends SIGHUP and every later write fails with EIO. The run still stops
    and records itself, exit 129, nothing left."""
    port = free_port()
    run_dir = tmp_path / "run"
    master, slave = os.openpty()
    take_tty = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                "os.execv(sys.argv[1], sys.argv[1:])")
    argv = [sys.executable, "-c", take_tty, *servescope_argv(
        "run", "--out", str(run_dir), "--engine", "vllm", "--url", f"http://127.0.0.1:{port}",
        *LONG, "--workers", "2", "--", *fake_engine(port))]
    proc = subprocess.Popen(argv, cwd=REPO, env=tagged_env(tracker.tag), stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = bytearray()

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    bg = Background(proc, tmp_path / "none.log", run_dir, 0.0)
    try:
        wait_for(lambda: (run_dir / "journal").is_dir() and wait_finished(bg), 60,
                 "the run to be under way", alive_check=lambda: _ended(proc))
        os.close(master)  # the terminal window is closed
        rc = proc.wait(60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 129, bytes(seen[-3000:]).decode(errors="replace")
    assert b"Traceback" not in seen
    assert manifest_json(run_dir)["status"] == "interrupted"
    assert manifest_json(run_dir)["engine"]["stop"]["leftover_pids"] == []
    assert_nothing_left(tracker)


def _ended(proc: subprocess.Popen[bytes]) -> str:
    rc = proc.poll()
    return "" if rc is None else f"servescope ended with {rc}"


def _start(tmp_path: Path, tracker: Tracker, args: list[str],
           wrapper: list[str] | tuple[str, ...] = ()) -> Background:
    log = tmp_path / "servescope.log"
    run_dir = tmp_path / "run"
    with log.open("wb") as fh:
        proc = subprocess.Popen([*wrapper, *servescope_argv(*args)], cwd=REPO,
                                env=tagged_env(tracker.tag), stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Background(proc, log, run_dir, time.monotonic())



def test_output_reader_goes_away(tmp_path, tracker):
    """``servescope run … | head -1``: once the reader is gone every write fails with EPIPE;
    the run still completes and records itself (an exception would exit 1, a failed final
    flush 120)."""
    port = free_port()
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        servescope_argv("run", "--out", str(run_dir), "--engine", "vllm", "--url",
                        f"http://127.0.0.1:{port}", "--requests", "20", "--output-len",
                        "fixed:8", "--", *fake_engine(port)),
        cwd=REPO, env=tagged_env(tracker.tag), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stderr is not None
    assert proc.stdout is not None
    proc.stderr.readline()  # "starting vllm: …"
    proc.stderr.close()
    proc.stdout.close()
    assert proc.wait(60) == 0
    assert manifest_json(run_dir)["status"] == "complete"
    assert_nothing_left(tracker)
