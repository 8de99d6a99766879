"""py-spy as child processes: one ``py-spy record`` per engine process (:class:`Recorder`),
and ``py-spy dump`` of several processes at once (:func:`dump_all`).

``record`` runs until it gets SIGINT, then writes its speedscope file (or until its process
exits, then too). On Linux it also gets SIGINT when the thread that started it ends
(``PR_SET_PDEATHSIG``): a collector killed past its stop bound leaves no py-spy running on
an engine that goes on (``attach``), and each still writes its file. Each runs in a session
of its own (a Ctrl-C at the terminal is
servescope's to handle, not py-spy's), with SIGINT unblocked and at its default: the
collector's process is born with the terminal's signals blocked and SIGINT ignored, and
both would otherwise pass to py-spy through ``exec`` and make it deaf to the stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from servescope.redact import redact_text

__all__ = ["DUMP_TIMEOUT_S", "DumpResult", "Recorder", "dump_all", "error_text",
           "prepare_signals"]

DUMP_TIMEOUT_S = 10.0  # one py-spy dump (all processes at once); again without --native
_ERROR_CHARS = 300
_ENV = {**os.environ, "RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}
# exec py-spy with PR_SET_PDEATHSIG = SIGINT set (kept across exec): a shim in Python, not a
# preexec_fn, which is unsafe in a process with threads. A parent that died before the prctl
# (the shim's interpreter takes a while to start on a loaded machine) sends no signal: the
# shim then sees another parent and never starts py-spy
_PDEATHSIG_SHIM = ("import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 2); "
                   "os.getppid() == int(sys.argv[1]) or os._exit(0); "
                   "os.execv(sys.argv[2], sys.argv[2:])")


def _launcher() -> list[str]:
    """What goes before py-spy's argv (nothing off Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid())]


def prepare_signals() -> None:
    """In the collector's process, before any py-spy starts: SIGINT unblocked and caught by
    a handler that does nothing (this process still ignores the terminal's Ctrl-C; a caught
    signal is reset to its default by ``exec``, an ignored one is not). Other signals stay
    as the runner left them."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    with contextlib.suppress(ValueError):  # not the main thread (a test's own call)
        signal.signal(signal.SIGINT, _ignore)


def _ignore(_signum: int, _frame: object) -> None:
    """Ctrl-C belongs to servescope's own process."""


def error_text(text: str) -> str:
    """py-spy's error in its output, in one line: its error lines without the progress lines
    (``py-spy> …``) and backtraces; "" when there is none."""
    keep: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("py-spy>") or line[:1].isspace():
            continue
        if s.startswith("Stack backtrace"):
            break
        keep.append(s)
    return redact_text(" ".join(keep))[:_ERROR_CHARS]


class Recorder:
    """``py-spy record`` of one process into ``out`` (speedscope), its own output to
    ``log``."""

    def __init__(self, py_spy: str, pid: int, out: Path, log: Path, *, rate_hz: int,
                 blocking: bool) -> None:
        self.pid, self.out, self.log = pid, out, log
        self.argv = [py_spy, "record", "--rate", str(rate_hz), "--format", "speedscope",
                     "--threads", "-o", str(out), "--pid", str(pid)]
        if not blocking:
            self.argv.insert(2, "--nonblocking")
        self._proc: subprocess.Popen[bytes] | None = None
        self.t_start_ns = self.t_end_ns = -1
        self.error = ""

    def start(self) -> bool:
        """Start sampling; False (and ``error``) if py-spy could not be started."""
        try:
            with self.log.open("ab") as log:
                self._proc = subprocess.Popen([*_launcher(), *self.argv],
                                              stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                              env=_ENV, start_new_session=True)
        except OSError as exc:
            self.error = f"py-spy did not start: {exc.strerror or exc}"
            return False
        self.t_start_ns = time.monotonic_ns()
        return True

    def poll(self) -> bool:
        """Whether py-spy is still running (the first time it is found ended, its end and
        any error are taken)."""
        if self._proc is None:
            return False
        if self._proc.poll() is None:
            return True
        self._ended()
        return False

    def interrupt(self) -> None:
        """Ask py-spy to stop and write its file (SIGINT)."""
        if self._proc is not None and self._proc.poll() is None:
            self.t_end_ns = time.monotonic_ns()
            with contextlib.suppress(OSError):
                self._proc.send_signal(signal.SIGINT)

    def finish(self, deadline_ns: int) -> None:
        """Wait for py-spy until ``deadline_ns`` (monotonic), then kill it."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.error = self.error or "py-spy did not write its file in time; killed"
        self._ended()

    def rename(self, out: Path, log: Path) -> None:
        """Move the files py-spy wrote (after it ended) to new names."""
        for old, new in ((self.out, out), (self.log, log)):
            if old != new:
                with contextlib.suppress(OSError):  # absent: nothing written
                    os.replace(old, new)
        self.out, self.log = out, log

    def _ended(self) -> None:
        if self.t_end_ns < 0:
            self.t_end_ns = time.monotonic_ns()
        proc = self._proc
        if proc is not None and proc.returncode not in (0, None) and not self.error:
            try:
                text = self.log.read_text(errors="replace")
            except OSError:
                text = ""
            self.error = error_text(text) or f"py-spy exited with status {proc.returncode}"


@dataclass(frozen=True, slots=True)
class DumpResult:
    pid: int
    file: Path | None  # written (None: no dump)
    native: bool  # the dump has native frames
    error: str  # "" or why there is no dump (or why it lacks native frames)


def dump_all(py_spy: str, targets: Sequence[tuple[int, Path]],
             timeout_s: float = DUMP_TIMEOUT_S) -> list[DumpResult]:
    """``py-spy dump --native`` of every ``(pid, file)`` at once, each process's stacks
    written to its file; those that fail are dumped again without ``--native`` (as SGLang's
    ``pyspy_dump_schedulers`` does). Bounded by twice ``timeout_s``."""
    first = _dump_round(py_spy, targets, True, timeout_s)
    again = [(pid, f) for pid, f in targets if first[pid]]
    second = _dump_round(py_spy, again, False, timeout_s) if again else {}
    out: list[DumpResult] = []
    for pid, path in targets:
        if not (err := first[pid]):
            out.append(DumpResult(pid, path, True, ""))
        elif not (err2 := second[pid]):
            out.append(DumpResult(pid, path, False, f"without native frames ({err})"))
        else:
            out.append(DumpResult(pid, None, False, err2))
    return out


def _dump_round(py_spy: str, targets: Sequence[tuple[int, Path]], native: bool,
                timeout_s: float) -> dict[int, str]:
    """Each pid's error ("" for a dump written)."""
    procs: dict[int, tuple[subprocess.Popen[bytes], IO[bytes], Path]] = {}
    result: dict[int, str] = {}
    for pid, path in targets:
        argv = [py_spy, "dump", *(["--native"] if native else []), "--pid", str(pid)]
        fh: IO[bytes] | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = path.open("wb")
            procs[pid] = (subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh,
                                           stderr=subprocess.PIPE, env=_ENV,
                                           start_new_session=True), fh, path)
        except OSError as exc:
            result[pid] = f"py-spy dump did not start: {exc.strerror or exc}"
            if fh is not None:
                fh.close()
    deadline = time.monotonic() + timeout_s
    for pid, (proc, out, path) in procs.items():
        try:
            _, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            text = err.decode(errors="replace")
            result[pid] = ("" if proc.returncode == 0 else
                           error_text(text) or f"py-spy dump exited with {proc.returncode}")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            result[pid] = f"py-spy dump took over {timeout_s:g} s; killed"
        finally:
            out.close()
        if result[pid]:
            with contextlib.suppress(OSError):
                path.unlink()
    return result
