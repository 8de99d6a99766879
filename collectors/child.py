"""Run any collector in a spawned child process of its own.

A collector's work (parsing pages, sampling, writing journals) must not share the load
client's event loop or CPU time slices, so each runs in a child (``spawn``: no inherited event
loop, threads or locks) that journals into the run directory itself. The parent and the child
speak over two pipes:

- start: the child registers the parent's secrets (so its error texts and records are
  redacted as the parent's output is), ignores the terminal's signals that reach the whole
  foreground group (SIGINT, SIGHUP, SIGQUIT: they are the parent's to handle, which then
  stops its collectors in order; a spawned child does not inherit a blocked signal mask, so
  ignoring them is what shields it; SIGTERM stays, the runner's own way to end it), calls
  :meth:`Collector.start` and answers ``ready`` (or the error);
- stop: one message on the stop pipe (a pipe, not an Event: a multiprocessing Event whose
  waiter died with its process blocks the setter forever; a parent that died closes the pipe,
  which stops the child too); the child calls :meth:`Collector.stop` and sends its
  :class:`CollectorStats` back, with the CPU time of its whole process.

Every wait is bounded: the start by ``ready_timeout_s``, the stop by the collector's
:meth:`Collector.stop_bound_s`, then the child is terminated and, 2 s later, killed. Nothing
here raises into the run: a child that cannot start, dies or overruns is reported in
:attr:`ChildRunner.error` (a sentence for the run's warnings) and the counts returned are the
collector's zero counts.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from collectors.base import CollectContext, Collector, CollectorStats
from servescope.redact import redact_text, register_secrets

__all__ = ["READY_TIMEOUT_S", "ChildRunner", "start_children", "stop_children"]

READY_TIMEOUT_S = 20.0
_END_WAIT_S = 2.0  # after the stop bound: join, terminate, join, kill, join
_ERROR_CHARS = 500


def _error_text(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")[:_ERROR_CHARS]


def _child(collector: Collector, ctx: CollectContext, stop: Connection, conn: Connection
           ) -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    register_secrets(ctx.secrets)
    try:
        try:
            collector.start(ctx)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
            conn.send(("error", _error_text(exc)))
            return
        conn.send(("ready", None))
        with contextlib.suppress(EOFError, OSError):  # EOF: the parent is gone; stop too
            stop.recv()
        stats = collector.stop()
        # the whole child (start-up and imports included): what the host really paid
        stats.process_cpu_ns = time.process_time_ns()
        conn.send(("stats", (stats.to_json(), stats.error)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", _error_text(exc)))
    finally:
        conn.close()


class ChildRunner:
    """``collector`` in a child process: :meth:`start`, then :meth:`stop`.

    Made in the parent: ``collector.stop_bound_s(ctx)`` is asked here, so a bad option
    raises ``ValueError`` before any process exists. ``error`` is "" or a sentence for the
    run's warnings (the child failed, or the collector reported a problem).
    """

    def __init__(self, collector: Collector, ctx: CollectContext) -> None:
        self.collector = collector
        self.name = collector.name
        self._bound_s = float(collector.stop_bound_s(ctx))
        mpc = mp.get_context("spawn")
        stop_recv, self._stop = mpc.Pipe(duplex=False)
        self._recv, self._send = mpc.Pipe(duplex=False)
        self._proc = mpc.Process(target=_child, args=(collector, ctx, stop_recv, self._send),
                                 name=f"servescope-{collector.name}", daemon=True)
        self._stop_recv = stop_recv
        self._asked = False
        self._result: CollectorStats | None = None
        self.error = ""

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def stop_bound_s(self) -> float:
        """How long :meth:`stop` waits for the child's counts (the collector's own bound);
        terminating and killing a child that overran add at most ``3 × 2`` s."""
        return self._bound_s

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> bool:
        """Start the child and wait until it is collecting; False (and ``error``) if not,
        with the child ended."""
        return self.launch() and self.wait_ready(ready_timeout_s)

    def launch(self) -> bool:
        """Start the child without waiting for it (:meth:`wait_ready` waits)."""
        try:
            self._proc.start()
        except OSError as exc:
            self.error = f"cannot start the {self.collector.label} process: {exc}"
            return False
        finally:  # the child holds its ends now
            self._send.close()
            self._stop_recv.close()
        return True

    def wait_ready(self, ready_timeout_s: float = READY_TIMEOUT_S) -> bool:
        label = self.collector.label
        if self._proc.pid is None:
            return False
        try:
            if not self._recv.poll(ready_timeout_s):
                self.error = f"the {label} process did not start within {ready_timeout_s:g} s"
            else:
                kind, payload = self._recv.recv()
                if kind != "ready":
                    self.error = str(payload)
        except (EOFError, OSError):
            self.error = f"the {label} process exited while starting"
        if self.error:
            self._end_child()
            return False
        return True

    def stop(self, timeout_s: float | None = None) -> CollectorStats:
        """Stop collecting, return the child's counts; bounded by ``timeout_s`` (default
        :meth:`stop_bound_s`) plus at most 6 s. ``error`` holds the child's failure, else
        the collector's own ``stats.error``; the stats returned carry the same."""
        if self._result is not None:  # stopped already
            return self._result
        if self._proc.pid is None or self.error:  # never started, or ended while starting
            return self._zero()
        label = self.collector.label
        wait_s = self._bound_s if timeout_s is None else timeout_s
        stats: CollectorStats | None = None
        self.ask_to_stop()
        try:
            if self._recv.poll(wait_s):
                kind, payload = self._recv.recv()
                if kind == "stats":
                    stats = CollectorStats.from_json(*payload)
                else:
                    self.error = str(payload)
            else:
                self.error = f"the {label} process did not stop within {wait_s:g} s"
        except (EOFError, OSError):
            self.error = f"the {label} process died"
        self._end_child()
        if stats is None:
            stats = self._zero()
        else:
            self.error = stats.error
        self._result = stats
        return stats

    def ask_to_stop(self) -> None:
        """Tell the child to stop, without waiting (:meth:`stop` waits for its counts)."""
        if not self._asked and self._proc.pid is not None:
            self._asked = True
            with contextlib.suppress(OSError, ValueError):  # it may have exited already
                self._stop.send(None)

    def _zero(self) -> CollectorStats:
        """The collector's zero counts (the parent's copy never started), with ``error``."""
        try:
            stats = self.collector.stop()
        except Exception:  # noqa: BLE001 - counts are a report; never raise for them
            stats = CollectorStats()
        stats.error = self.error
        return stats

    def _end_child(self) -> None:
        self._proc.join(_END_WAIT_S)
        for end in (self._proc.terminate, self._proc.kill):
            if not self._proc.is_alive():
                break
            end()
            self._proc.join(_END_WAIT_S)
        with contextlib.suppress(OSError):
            self._recv.close()
        with contextlib.suppress(OSError):
            self._stop.close()


def start_children(collectors: Sequence[Collector], ctx: CollectContext,
                   warnings: list[str], *,
                   run: Callable[[Callable[[], list[ChildRunner]]], list[ChildRunner]]
                   = lambda fn: fn(),
                   ready_timeout_s: float = READY_TIMEOUT_S) -> list[ChildRunner]:
    """Start each collector in its child, all at once, and return the running ones; what
    was skipped or did not start is appended to ``warnings``. ``run`` calls its argument
    (e.g. :func:`profiler.signals.run_in_shielded_thread`, so the children are born with the
    terminal's signals blocked); a ``KeyboardInterrupt`` from it stops what started first."""
    runners: list[ChildRunner] = []
    for c in collectors:
        if reason := c.skip_reason(ctx):
            warnings.append(reason)
            continue
        try:
            runners.append(ChildRunner(c, ctx))
        except (ValueError, OSError) as exc:
            warnings.append(f"{c.label} did not start: {exc}")

    def launch_all() -> list[ChildRunner]:
        launched = [r for r in runners if r.launch()]
        return [r for r in launched if r.wait_ready(ready_timeout_s)]

    try:
        running = run(launch_all)
    except KeyboardInterrupt:
        for r in runners:
            r.stop()
        raise
    warnings.extend(f"{r.collector.label} did not start: {r.error}"
                    for r in runners if r not in running)
    return running


def stop_children(runners: Sequence[ChildRunner], warnings: list[str]
                  ) -> dict[str, CollectorStats]:
    """Stop every running collector (each bounded by its own stop bound; all stop messages
    go out first, so the bounds overlap) and return each one's counts by name; problems go to
    ``warnings`` as ``"<label>: <error>"``."""
    for r in runners:  # every child starts stopping now
        r.ask_to_stop()
    out: dict[str, CollectorStats] = {}
    for r in runners:
        out[r.name] = r.stop()
        if r.error:
            warnings.append(f"{r.collector.label}: {r.error}")
    return out
