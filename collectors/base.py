"""What every collector is: a small Protocol, the context it starts with, the counts it
returns.

A collector's life, and where each step runs:

1. ``validate_environment()``, in servescope's process before the engine starts: a missing
   optional dependency or permission raises :class:`CollectorUnavailable` with one line that
   names the fix, and the command ends as a usage error (exit 2) before anything started.
2. ``skip_reason(ctx)`` and ``stop_bound_s(ctx)``, in servescope's process once the engine is
   known: a reason to start nothing for this engine (a warning of the run), and how long
   ``stop()`` may take (the runner's bound; a bad option raises ``ValueError`` here).
3. ``start(ctx)`` and ``stop()``, where the collector runs: its own child process
   (:class:`collectors.child.ChildRunner`). The instance is made in servescope's process and
   travels to the child pickled, so it may carry shared memory the parent reads
   (:class:`LiveSource`). ``stop()`` returns :class:`CollectorStats`; it is also called, in
   servescope's process, on an instance that never started, and then returns zero counts.

Collectors never raise into the run: whatever fails once it started is counted and reported
in :attr:`CollectorStats.error`, and the run goes on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from servescope.clock import ClockAnchor

if TYPE_CHECKING:  # kept out of `servescope --help`, which lists the collectors
    from servescope.engines.observability import ProcessRole
    from servescope.engines.spec import MetricsEndpoint

__all__ = ["Activity", "ActivityBoard", "CollectContext", "Collector", "CollectorStats",
           "CollectorUnavailable", "EngineFacts", "LaunchAmender", "LiveSource",
           "session_pids"]

# signal → (families, scale, aggregate): the live gauges of an engine, as plain data
LiveFamilies = Mapping[str, tuple[tuple[str, ...], float, str]]


class CollectorUnavailable(Exception):
    """A chosen collector cannot run on this machine; the message is one line that names the
    fix (a package to install, a permission to grant)."""


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What a collector may know of the engine, as plain (picklable) data."""

    name: str  # the engine spec's name: vllm, sglang, trtllm, triton, openai
    command: tuple[str, ...] = ()  # the serving command; empty when attached
    pid: int | None = None  # its first process (run: the session leader; attach: --pid)
    metrics_endpoints: tuple[MetricsEndpoint, ...] = ()
    live_families: LiveFamilies = field(default_factory=dict)
    # the engine's process roles by title (a stack sampler's labels); () when unknown
    process_roles: tuple[ProcessRole, ...] = ()
    # CUDA_VISIBLE_DEVICES as the engine got it (None: unset or unknown; run: servescope's
    # own environment, which the engine inherits; attach: /proc/PID/environ when readable)
    cuda_visible_devices: str | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    """The load as servescope's process last saw it (every progress tick, ~0.25–0.5 s)."""

    updated_ns: int  # when it was written (monotonic, the run's clock); 0: never
    last_token_ns: int  # when the count of stream chunks last grew, or requests began
    in_flight: int  # requests sent and not ended
    chunks: int  # stream chunks received so far
    completed: int = -1  # requests ended so far; -1: not reported

    def stalled_s(self, now_ns: int) -> float:
        """How long requests have been in flight with no chunk arriving (0 when none are)."""
        if self.in_flight <= 0 or self.updated_ns == 0:
            return 0.0
        return max(0.0, (now_ns - self.last_token_ns) / 1e9)


class ActivityBoard:
    """:class:`Activity` in shared memory: servescope's process writes it, a collector's
    child reads it (it travels in the :class:`CollectContext`; a torn read of one tick is
    harmless). Made before the children start."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self._a: Any = mp.get_context("spawn").RawArray("q", 5)

    def write(self, now_ns: int, in_flight: int, chunks: int, completed: int = -1) -> None:
        a = self._a
        if chunks != a[3] or a[2] <= 0:  # a chunk arrived, or requests began after none
            a[1] = now_ns
        a[2], a[3], a[4], a[0] = in_flight, chunks, completed, now_ns

    def read(self) -> Activity:
        a = self._a
        return Activity(int(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]))


@dataclass(frozen=True, slots=True)
class CollectContext:
    """Everything a collector starts with. ``options`` holds each collector's own options
    under its name (:meth:`options_for`); ``secrets`` are the values the runner registers
    for redaction in the collector's process before :meth:`Collector.start`."""

    run_dir: Path
    base_url: str
    engine: EngineFacts
    anchor: ClockAnchor
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    activity: ActivityBoard | None = None  # the load's progress, for stall detection

    def options_for(self, name: str) -> Mapping[str, Any]:
        return self.options.get(name, {})

    def engine_pids(self) -> tuple[int, ...]:
        """The engine's processes now: its first process and every process of its session
        (``run`` starts the engine as a session leader) or below it; ``()`` if unknown."""
        return session_pids(self.engine.pid) if self.engine.pid is not None else ()


@dataclass(slots=True)
class CollectorStats:
    """A collector's counts at its end: :meth:`to_json` is what the manifest records (the
    collector's own counts and ``process_cpu_ns``); ``error`` ("" or one sentence) goes to
    the run's warnings."""

    counts: dict[str, Any] = field(default_factory=dict)  # the collector's own, JSON-able
    error: str = ""
    process_cpu_ns: int = -1  # CPU of the collector's whole process (-1: not measured)

    def to_json(self) -> dict[str, Any]:
        return {**self.counts, "process_cpu_ns": self.process_cpu_ns}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], error: str = "") -> CollectorStats:
        counts = {k: v for k, v in data.items() if k != "process_cpu_ns"}
        return cls(counts, error, int(data.get("process_cpu_ns", -1)))


@runtime_checkable
class Collector(Protocol):
    """One kind of observation of a run (see the module's docstring for the life cycle)."""

    name: str  # what --collect calls it
    label: str  # what the run's warnings call it, e.g. "metrics scraper"

    def validate_environment(self) -> None:
        """Raise :class:`CollectorUnavailable` if this machine cannot run the collector."""
        ...

    def skip_reason(self, ctx: CollectContext) -> str:
        """Why there is nothing to collect from this engine ("" to start)."""
        ...

    def stop_bound_s(self, ctx: CollectContext) -> float:
        """How long :meth:`stop` may take at most (``ValueError`` for a bad option)."""
        ...

    def start(self, ctx: CollectContext) -> None:
        """Begin collecting; return once collecting (an exception: it did not start)."""
        ...

    def stop(self) -> CollectorStats:
        """End collecting within :meth:`stop_bound_s`; the counts (zero if never started)."""
        ...


class LaunchChangeLike(Protocol):
    argv: list[str]
    env: dict[str, str]
    notes: list[str]


@runtime_checkable
class LaunchAmender(Protocol):
    """A collector that must change the serving command before ``run`` starts it (the
    kernels collector enables the engine's profiler, or servescope's in-process hook). Called
    in servescope's process after the run directory exists; its state travels to the child."""

    def amend_launch(self, engine: str, argv: Sequence[str], env: Mapping[str, str],
                     run_dir: Path, options: Mapping[str, Any]) -> LaunchChangeLike: ...


@runtime_checkable
class LiveSource(Protocol):
    """A collector whose latest values servescope's live view shows while the run goes on
    (read in servescope's process from memory the collector's process writes)."""

    def live_values(self) -> dict[str, float]: ...


def session_pids(root: int) -> tuple[int, ...]:
    """``root``, the processes of the session it leads, and its descendants, from Linux
    ``/proc`` (elsewhere: ``(root,)``); sorted."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return (root,)
    parent: dict[int, int] = {}
    found = {root}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                rest = fh.read(4096).rsplit(b")", 1)[1].split()
            pid, ppid, sid = int(name), int(rest[1]), int(rest[3])  # state ppid pgrp session
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        parent[pid] = ppid
        if sid == root:
            found.add(pid)
    for pid in parent:  # descendants that left the session (setsid) are still the engine's
        seen: set[int] = set()
        p = pid
        while p in parent and p not in seen and p not in found:
            seen.add(p)
            p = parent[p]
        if p in found:
            found.update(seen)
    return tuple(sorted(pid for pid in found if pid in parent or pid == root))
