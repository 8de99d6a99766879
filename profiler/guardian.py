"""A guardian process that stops what servescope started when servescope dies, however it dies
(SIGKILL included).

servescope starts it first, in a session of its own (the terminal's signals do not reach it),
holding the read end of a pipe whose write end only servescope holds. Every second it records
every descendant of servescope (pid and start time, so a reused pid is never taken for one of
ours) except itself. servescope also tells it, through the pipe, each engine it starts (the
engine is a session leader: its session is the engine), and puts a token in its own
environment that every process it starts inherits. When the pipe reaches end-of-file without
servescope having said ``done`` (servescope is gone), it sends SIGTERM to every recorded
process that is still the same process, to every member of each engine's session and to every
process carrying the token (a daemon started since the last scan), waits a short grace, then
SIGKILLs what is left. After ``done`` it exits at once: servescope
stopped everything itself and recorded it.

Its CPU cost is one scan of ``/proc/*/stat`` per period (measured: see
``tests/faults/test_proc_guardian.py``); it never signals anything while servescope lives.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from profiler import procs

__all__ = ["Guardian", "guarded", "main", "notify_engine"]

SCAN_S = 1.0
GRACE_S = 3.0
MARK_VAR = "SERVESCOPE_GUARDIAN"


class Guardian:
    """servescope's side: start it, tell it about engines, say goodbye."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._w: int | None = None
        self.token = f"{os.getpid()}-{secrets.token_hex(8)}"

    def start(self) -> bool:
        r, w = os.pipe()  # both non-inheritable; only r is passed on
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "profiler.guardian", str(os.getpid()), str(r),
                 self.token],
                pass_fds=(r,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True, cwd=str(Path(__file__).resolve().parents[1]))
        except OSError:
            os.close(w)
            return False
        finally:
            os.close(r)
        self._w = w
        procs.register_helper(self.proc.pid)
        return True

    def _send(self, line: str) -> None:
        if self._w is not None:
            with contextlib.suppress(OSError):
                os.write(self._w, line.encode() + b"\n")

    def engine(self, pid: int) -> None:
        self._send(f"engine {pid}")

    def close(self, *, clean: bool, wait_s: float = 2.0) -> None:
        """``clean``: everything was stopped; the guardian leaves without signalling."""
        if self._w is None:
            return
        if clean:
            self._send("done")
        os.close(self._w)
        self._w = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait_s if clean else GRACE_S + 2.0)


_ACTIVE: list[Guardian] = []


def notify_engine(pid: int) -> None:
    """Tell the running guardian (if any) about an engine just started."""
    for g in _ACTIVE:
        g.engine(pid)


@contextlib.contextmanager
def guarded() -> Iterator[Guardian]:
    """A guardian for the block; left uncleanly (an exception), it stops what is left."""
    g = Guardian()
    before = os.environ.get(MARK_VAR)
    if g.start():
        _ACTIVE.append(g)
        os.environ[MARK_VAR] = g.token  # inherited by everything started from now on
    clean = False
    try:
        yield g
        clean = True
    finally:
        if g in _ACTIVE:
            _ACTIVE.remove(g)
        if before is None:
            os.environ.pop(MARK_VAR, None)
        else:
            os.environ[MARK_VAR] = before
        g.close(clean=clean)


# --- the guardian process ---------------------------------------------------------------


def _scan(parent: int, me: int, seen: dict[int, int]) -> None:
    """Record servescope's live descendants; forget recorded ones that are gone (an orphan
    re-parented away from servescope is kept: it is still ours to stop)."""
    now = procs.snapshot()
    for pid in procs.descendants(parent, now):
        if pid != me:
            seen[pid] = now[pid].start
    for pid, start in list(seen.items()):
        st = now.get(pid)
        if st is None or not st.live or st.start != start:
            del seen[pid]


def _carries(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _targets(seen: dict[int, int], engines: dict[int, int], me: int,
             token: str) -> dict[int, int]:
    """Recorded processes that are still themselves, every member of an engine's session
    that started after the engine did (the session is the engine's for good), and every
    process that inherited servescope's token (started since the last scan)."""
    out = {p: s for p, s in seen.items() if procs.same_process(p, s)}
    needle = f"{MARK_VAR}={token}".encode()
    for st in procs.snapshot().values():
        if not st.live or st.pid == me or st.pid in out:
            continue
        leader_start = engines.get(st.sid)
        if (leader_start is not None and st.start >= leader_start) or (
                token and _carries(st.pid, needle)):
            out[st.pid] = st.start
    return out


def _stop_all(seen: dict[int, int], engines: dict[int, int], me: int, token: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        targets = _targets(seen, engines, me, token)
        if not targets:
            return
        seen.update(targets)  # from here on, checked by start time only
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(
                procs.same_process(p, s) for p, s in seen.items()):
            time.sleep(0.1)


def _watch(parent: int, fd: int, token: str) -> bool:
    """Record until the pipe ends; True when servescope said ``done``."""
    me = os.getpid()
    seen: dict[int, int] = {}
    engines: dict[int, int] = {}
    buf = b""
    next_scan = 0.0
    while True:
        now = time.monotonic()
        if now >= next_scan:
            _scan(parent, me, seen)
            next_scan = now + SCAN_S
        ready, _, _ = select.select([fd], [], [], max(0.0, next_scan - time.monotonic()))
        if not ready:
            continue
        data = os.read(fd, 4096)
        if not data:
            break
        buf += data
        *lines, buf = buf.split(b"\n")
        for line in lines:
            word, _, arg = line.decode(errors="replace").partition(" ")
            if word == "done":
                return True
            if word == "engine" and arg.isdigit() and (
                    start := procs.start_time(int(arg))) is not None:
                engines[int(arg)] = start
                seen[int(arg)] = start
    _stop_all(seen, engines, me, token)
    return False


def main(argv: list[str] | None = None) -> int:
    """``python -m profiler.guardian PARENT_PID FD [TOKEN]``."""
    args = sys.argv[1:] if argv is None else argv
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    _watch(int(args[0]), int(args[1]), args[2] if len(args) > 2 else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
