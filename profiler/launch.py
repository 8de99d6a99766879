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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from profiler import httpget, procs
from profiler.guardian import notify_engine
from profiler.signals import deferred
from servescope.redact import redact_text

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
    escalated: bool = False  # a second interrupt cut the grace periods short: SIGKILL at once
    # processes of the engine that left its process group (a daemon in a session of its own)
    outside_group: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"signals": self.signals_sent, "returncode": self.returncode,
                "seconds": round(self.seconds, 3), "leftover_pids": self.leftover_pids,
                "escalated": self.escalated,
                "outside_group": {str(k): v for k, v in self.outside_group.items()}}


@dataclass(slots=True)
class _Seen:
    start: int
    pgid: int
    title: str


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
        self._seen: dict[int, _Seen] = {}

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("engine not started")
        return self.proc.pid

    def start(self) -> None:
        with deferred():  # a Ctrl-C now acts once the engine is started and known
            try:
                self.proc = subprocess.Popen(  # no shell: argv is executed as given
                    self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL, env=self._env, cwd=self._cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EngineExited(f"cannot start {self.argv[0]!r}: {exc}", None, "") from exc
            notify_engine(self.proc.pid)
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

    def join_logs(self, timeout_s: float = 3.0) -> None:
        """Wait for the log copies to end, ``timeout_s`` in all (a daemon that kept the
        engine's stdout open would hold them forever)."""
        deadline = time.monotonic() + timeout_s
        for t in self._pumps:
            t.join(max(0.0, deadline - time.monotonic()))

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait_exit(self, timeout_s: float) -> int | None:
        """The return code once the engine has exited, waiting up to ``timeout_s``."""
        if self.proc is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout_s)
        return self.proc.returncode

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
        """The engine's live processes (pid → title), remembered for the stop: its process
        tree, every member of its session, and daemons it started in sessions of their own
        (re-parented to servescope, a child subreaper)."""
        if self.proc is None:
            return {}
        now = procs.snapshot()
        found = _engine_pids(self.proc.pid, now)
        for pid in found:
            st = now[pid]
            seen = self._seen.get(pid)
            if seen is None or seen.start != st.start:
                self._seen[pid] = _Seen(st.start, st.pgid, procs.proc_title(pid))
            else:  # titles change (setproctitle), so may the group (setpgid, setsid)
                seen.title = procs.proc_title(pid) or seen.title
                seen.pgid = st.pgid
        return {p: self._seen[p].title for p in found}

    def _live(self) -> list[int]:
        return [p for p, s in self._seen.items() if procs.same_process(p, s.start)]

    def wait_ready(self, base_url: str, paths: Sequence[str], timeout_s: float,
                   poll_s: float = 0.5, headers: Mapping[str, str] | None = None) -> float:
        """Poll every path until all answer 200; returns seconds waited."""
        t0 = time.monotonic()
        pending = list(paths)
        refused: dict[int, int] = {}  # 401/403 → times answered
        while pending:
            self.check_alive()
            self.processes()
            answer = httpget.get(base_url.rstrip("/") + pending[0], headers=headers,
                                 timeout_s=2.0, max_bytes=64 << 10)
            if answer.ok:
                pending.pop(0)
                continue
            if answer.status in (401, 403):
                refused[answer.status] = refused.get(answer.status, 0) + 1
            if time.monotonic() - t0 > timeout_s:
                raise EngineNotReady(_not_ready_message(timeout_s, pending[0], base_url,
                                                        refused, bool(headers)), self.tail())
            time.sleep(poll_s)
        return time.monotonic() - t0

    def stop(self, grace_s: Sequence[float] = (10.0, 10.0, 5.0),
             hurry: Callable[[], bool] | None = None,
             on_hurry: Callable[[str], None] | None = None) -> StopReport:
        """SIGINT, then SIGTERM, then SIGKILL to the process group (and any process of the
        engine that left it), each followed by its grace period; then check that nothing is
        left. ``hurry()`` turning true (a second Ctrl-C) skips straight to SIGKILL."""
        rep = StopReport()
        if self.proc is None:
            return rep
        t0 = time.monotonic()
        self.processes()
        stages = list(zip((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), grace_s,
                          strict=True))
        i = 0
        while i < len(stages) and self._live():
            sig, wait = stages[i]
            if sig != signal.SIGKILL and hurry is not None and hurry():
                rep.escalated = True
                if on_hurry is not None:
                    on_hurry("second interrupt: killing the engine now")
                i = len(stages) - 1
                continue
            rep.signals_sent.append(sig.name)
            self._signal_tree(sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.proc.poll()
                self.processes()
                if not self._live() or (sig != signal.SIGKILL and hurry is not None
                                        and hurry()):
                    break
                time.sleep(0.1)
            i += 1
        rep.returncode = self.wait_exit(1.0)
        self._reap_adopted()
        self.join_logs()
        rep.leftover_pids = self._live()
        rep.processes_seen = {p: s.title for p, s in self._seen.items()}
        rep.outside_group = {p: s.title for p, s in self._seen.items() if s.pgid != self.pid}
        rep.seconds = time.monotonic() - t0
        return rep

    def _signal_tree(self, sig: signal.Signals) -> None:
        live = [(p, s) for p, s in self._seen.items() if procs.same_process(p, s.start)]
        if any(s.pgid == self.pid for _, s in live):  # the group is still ours (never reused)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)  # the session leader's group = the engine
        for pid, seen in live:  # processes that moved to another group
            if seen.pgid != self.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def _reap_adopted(self) -> None:
        """Daemons re-parented to us (child subreaper) are our children once stopped: reap
        exactly those (never a wait on any child: that would steal other children's codes)."""
        me = os.getpid()
        for pid in self._seen:
            st = procs.stat_of(pid)
            if pid != self.pid and st is not None and st.ppid == me and not st.live:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)


def _engine_pids(leader: int, now: dict[int, procs.ProcStat]) -> set[int]:
    found = {p for p, st in now.items() if st.live and st.sid == leader}  # its session
    if leader in now and now[leader].live:
        found.add(leader)
    found.update(procs.descendants(leader, now))
    me = os.getpid()
    my_sid = now[me].sid if me in now else os.getsid(0)
    helpers = procs.helper_pids()
    for child in procs.children_of(now).get(me, []):
        st = now[child]  # an orphan adopted by us, outside our own session: the engine's
        if st.live and child != leader and child not in helpers and st.sid != my_sid:
            found.add(child)
            found.update(procs.descendants(child, now))
    return found


def _not_ready_message(timeout_s: float, path: str, base_url: str, refused: dict[int, int],
                       sent_key: bool) -> str:
    msg = f"not ready after {timeout_s:g} s ({path} never answered 200 at {base_url})"
    for status, n in sorted(refused.items()):
        hint = ("is it the key the server expects?" if sent_key else
                "does it need an API key? Give it with --api-key in the serving command or "
                "in the variable named by --api-key-env")
        msg += f"; it answered HTTP {status} {n} times: {hint}"
    return msg
