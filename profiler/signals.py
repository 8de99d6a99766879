"""How servescope's main process treats the signals that end a run.

SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closed) all stop a run the same way: the
first one raises :class:`KeyboardInterrupt` in the main thread, the run stops, the engine is
stopped and the run directory is finalized with status ``interrupted``; the exit code is
128 + the signal's number (130, 143, 129). A disposition of ``SIG_IGN`` inherited from the
parent (``nohup``, a background job of a non-interactive shell) means the user asked for that
signal to be ignored, and it is.

Once a stop has begun, later signals never raise (a second Ctrl-C must not break the writing
of the run directory); they are counted, and :func:`escalate` tells the engine's stop to
SIGKILL at once. Code that must not be cut in half (starting a child process: a half-written
pickle makes the child print a traceback) runs under :func:`deferred`, and children that the
parent stops itself are started with the terminal's signals blocked (:func:`shielded_spawn`),
so a Ctrl-C reaches only the parent, which then stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar

__all__ = ["STOP_SIGNALS", "TERMINAL_SIGNALS", "accept", "begin_stop", "blocked", "deferred",
           "escalate", "exit_code", "finished", "handled", "interrupt_main", "loop_signals",
           "run_in_shielded_thread", "shielded_spawn", "user_signal"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGHUP)  # what a terminal sends to a whole group
T = TypeVar("T")


@dataclass(slots=True)
class _State:
    active: bool = False
    honoured: frozenset[int] = frozenset()
    previous: dict[int, Any] = field(default_factory=dict)
    phase: str = "run"  # run → stopping (a stop began) → done (the run is recorded)
    first: int | None = None  # the first stop signal from outside
    user_signals: int = 0
    stop_by_user: bool = False
    internal: bool = False  # an interrupt_main() is on its way
    defer_depth: int = 0
    pending: bool = False


_S = _State()


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Install the stop handlers in the main thread for the block; restore them after."""
    global _S  # noqa: PLW0603 - one state per process, fresh for each command
    prev: dict[int, Any] = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    _S = _State(honoured=frozenset(s for s in STOP_SIGNALS if prev[s] is not signal.SIG_IGN),
                previous=prev)
    for sig in STOP_SIGNALS:
        # SIGINT always: the engine watchdog interrupts the main thread with it
        if sig in _S.honoured or sig == signal.SIGINT:
            signal.signal(sig, _on_signal)
    _S.active = True
    try:
        yield
    finally:
        _S.active = False
        for signo, handler in prev.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(signo, handler)


def accept(signo: int) -> bool:
    """Record a stop signal; True when it should stop what runs now (the first of a run, or
    any once the run is recorded). Without :func:`handled`, every signal stops."""
    if not _S.active:
        return True
    if signo == signal.SIGINT and _S.internal:
        _S.internal = False
        return _begin(by_user=False)
    if signo not in _S.honoured:
        return False
    _S.user_signals += 1
    if _S.first is None:
        _S.first = signo
    return _begin(by_user=True)


def _begin(*, by_user: bool) -> bool:
    if _S.phase == "done":
        return True
    if _S.phase == "stopping":
        return False
    _S.phase = "stopping"
    _S.stop_by_user = by_user
    return True


def _on_signal(signo: int, _frame: FrameType | None) -> None:
    if accept(signo):
        if _S.defer_depth:
            _S.pending = True
        else:
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop signal during the block raises at its end, not inside it."""
    _S.defer_depth += 1
    try:
        yield
    finally:
        _S.defer_depth -= 1
    if _S.defer_depth == 0 and _S.pending:
        _S.pending = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def blocked(sigs: tuple[int, ...] = TERMINAL_SIGNALS) -> Iterator[None]:
    """Block ``sigs`` in this thread for the block; children started in it inherit the block
    (across exec), so the terminal's signals never reach them."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def shielded_spawn() -> Iterator[None]:
    """Start child processes here: not cut in half by a stop signal (it is acted on after the
    block), and born deaf to the terminal's SIGINT and SIGHUP (their parent stops them)."""
    with deferred(), blocked():
        yield


def run_in_shielded_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread whose terminal signals are blocked (what it spawns inherits that);
    the main thread waits, interruptibly. On a stop signal the thread is still waited for
    (``fn`` must be bounded), so the caller can clean up what it started, then the
    :class:`KeyboardInterrupt` goes on."""
    box: dict[str, Any] = {}

    def body() -> None:
        with blocked():
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
                box["error"] = exc

    t = threading.Thread(target=body, name="shielded-start", daemon=True)
    t.start()
    try:
        while t.is_alive():
            t.join(0.1)
    except KeyboardInterrupt:
        t.join()
        raise
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def interrupt_main() -> None:
    """Stop the run from another thread (the engine died): handled like a user's Ctrl-C, but
    neither counted as one nor setting the exit code."""
    if _S.active:
        _S.internal = True
    os.kill(os.getpid(), signal.SIGINT)


def begin_stop() -> None:
    """The run is stopping (its end, or an error): from now on stop signals are counted and
    escalate the stop instead of raising."""
    if _S.phase == "run":
        _S.phase = "stopping"


def escalate() -> bool:
    """True once a stop signal arrived after the stop began (a second Ctrl-C): kill now."""
    return _S.active and _S.user_signals >= (2 if _S.stop_by_user else 1)


def finished() -> None:
    """The run is recorded: a stop signal now simply ends the command."""
    _S.phase = "done"
    if _S.pending and not _S.defer_depth:
        _S.pending = False


def user_signal() -> int | None:
    """The first stop signal that came from outside (None: none did)."""
    return _S.first


def exit_code(default: int) -> int:
    """128 + the first stop signal's number, else ``default``."""
    return 128 + _S.first if _S.first is not None else default


def loop_signals() -> tuple[int, ...]:
    """The signals an event loop in the main thread should stop on."""
    if not _S.active:
        return (signal.SIGINT, signal.SIGTERM)
    return tuple(s for s in STOP_SIGNALS if s in _S.honoured or s == signal.SIGINT)
