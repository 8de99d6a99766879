"""Start a serving command without a shell, wait until it is ready, and stop its whole
process tree: SIGINT, then SIGTERM, then SIGKILL, each after a grace period, and verify
that no process of it is left."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from profiler.procs import alive, descendants, proc_title
from profiler.redact import redact_text

__all__ = ["EngineExited", "EngineNotReady", "EngineProcess", "StopReport", "log_tail"]


class EngineExited(RuntimeError):
    """The engine process ended on its own (before ready, or during the run)."""

    def __init__(self, msg: str, returncode: int | None, tail: str) -> None:
        super().__init__(msg)
        self.returncode = returncode
        self.tail = tail


class EngineNotReady(RuntimeError):
    """The engine did not become ready within the timeout."""

    def __init__(self, msg: str, tail: str) -> None:
        super().__init__(msg)
        self.tail = tail


@dataclass(slots=True)
class StopReport:
    signals_sent: list[str] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0
    leftover_pids: list[int] = field(default_factory=list)
    processes_seen: dict[int, str] = field(default_factory=dict)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return redact_text("\n".join(text.splitlines()[-lines:]))


_EXC_LINE = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Exit))\b: (\S.*)$")
_ADVICE = re.compile(r"\b(WARNING|WARN|INFO|DEBUG)\b")  # a log line that only mentions one
_GENERIC = ("EngineDeadError", "SystemExit", "KeyboardInterrupt", "CancelledError")


def error_causes(texts: Sequence[str], limit: int = 3) -> list[str]:
    """The exception messages (``ValueError: ...``) found in the log texts, most specific
    first: an engine's launcher usually re-raises a worker's real error as a generic one
    ("Engine core initialization failed"), so messages that occur earliest in the logs come
    first and generic wrappers last. Each at most once, logging prefixes removed."""
    found: list[str] = []
    for text in texts:
        for line in text.splitlines():
            m = _EXC_LINE.search(line)
            if m and not _ADVICE.search(line[:m.start()]):
                msg = f"{m.group(1)}: {m.group(2).strip()}"[:400]
                if msg not in found:
                    found.append(msg)
    found.sort(key=lambda m: (m.split(":", 1)[0] in _GENERIC or "failed" in m.lower()))
    return found[:limit]


class EngineProcess:
    """One serving command, in its own session and process group, logs to files."""

    def __init__(self, argv: Sequence[str], log_dir: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 redactor: Callable[[str], str] | None = None) -> None:
        if not argv:
            raise ValueError("no serving command given (put it after --)")
        self.argv = list(argv)
        self._redact = redactor or redact_text
        self._pumps: list[threading.Thread] = []
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / "stdout.log"
        self.stderr_path = log_dir / "stderr.log"
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_ns = 0
        self._seen: dict[int, str] = {}

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("engine not started")
        return self.proc.pid

    def start(self) -> None:
        try:
            self.proc = subprocess.Popen(  # no shell: argv is executed as given
                self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, env=self._env, cwd=self._cwd, start_new_session=True,
            )
        except OSError as exc:
            raise EngineExited(f"cannot start {self.argv[0]!r}: {exc}", None, "") from exc
        self.started_ns = time.monotonic_ns()
        for stream, path in ((self.proc.stdout, self.stdout_path),
                             (self.proc.stderr, self.stderr_path)):
            if stream is not None:
                t = threading.Thread(target=self._pump, args=(stream, path), daemon=True,
                                     name=f"engine-log-{path.stem}")
                t.start()
                self._pumps.append(t)

    def _pump(self, stream: IO[bytes], path: Path) -> None:
        """Copy the engine's output to ``path`` line by line, secrets removed."""
        with path.open("ab") as out:
            for line in iter(stream.readline, b""):
                out.write(self._redact(line.decode("utf-8", "replace")).encode())
                out.flush()
        stream.close()

    def join_logs(self, timeout_s: float = 5.0) -> None:
        for t in self._pumps:
            t.join(timeout_s)

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 40) -> str:
        """The likely cause (exception messages from either log: engines log theirs to
        stdout or stderr) above the last lines of both logs."""
        err, out = log_tail(self.stderr_path, 400), log_tail(self.stdout_path, 400)
        causes = error_causes([out, err])
        head = [f"cause: {c}" for c in causes]
        parts = ["\n".join(out.splitlines()[-(lines // 2):]),
                 "\n".join(err.splitlines()[-lines:])]
        return "\n".join([*head, *(p for p in parts if p)])

    def check_alive(self) -> None:
        rc = self.returncode()
        if rc is not None:
            raise EngineExited(f"the engine exited with code {rc}", rc, self.tail())

    def processes(self) -> dict[int, str]:
        """The engine's live processes (pid → title), remembered for the stop check."""
        if self.proc is None:
            return {}
        pids = ([self.proc.pid] if alive(self.proc.pid) else []) + descendants(self.proc.pid)
        now = {p: proc_title(p) for p in pids}
        self._seen.update(now)
        return now

    def wait_ready(self, base_url: str, paths: Sequence[str], timeout_s: float,
                   poll_s: float = 0.5) -> float:
        """Poll every path until all answer 200; returns seconds waited."""
        t0 = time.monotonic()
        pending = list(paths)
        while pending:
            self.check_alive()
            self.processes()
            if _get_ok(base_url.rstrip("/") + pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() - t0 > timeout_s:
                raise EngineNotReady(
                    f"not ready after {timeout_s:g} s ({pending[0]} never answered 200 at "
                    f"{base_url})", self.tail())
            time.sleep(poll_s)
        return time.monotonic() - t0

    def stop(self, grace_s: Sequence[float] = (10.0, 10.0, 5.0)) -> StopReport:
        """SIGINT, then SIGTERM, then SIGKILL to the process group (and any descendant that
        left it), each followed by its grace period; then check that nothing is left."""
        rep = StopReport()
        if self.proc is None:
            return rep
        t0 = time.monotonic()
        self.processes()
        for sig, wait in zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), grace_s,
                             strict=True):
            targets = [p for p in self._seen if alive(p)]
            if not targets:
                break
            rep.signals_sent.append(sig.name)
            self._signal_tree(sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.proc.poll()
                self.processes()
                if not any(alive(p) for p in self._seen):
                    break
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1)
        rep.returncode = self.proc.returncode
        self.join_logs()
        rep.leftover_pids = [p for p in self._seen if alive(p)]
        rep.processes_seen = dict(self._seen)
        rep.seconds = time.monotonic() - t0
        return rep

    def _signal_tree(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)  # the session leader's group = the engine
        for pid in list(self._seen):  # descendants that moved to another group
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:  # noqa: S310 - our URL
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
