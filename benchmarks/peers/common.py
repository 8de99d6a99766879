"""What every peer runner takes and returns, and how a tool's process is run and measured.

A runner (``benchmarks/peers/<tool>.py``) turns a :class:`CellSpec` into a command line,
runs it with :func:`run_measured`, parses the tool's own output files into a
:class:`ToolReport`, and returns :func:`make_result`'s :class:`CellResult`. A runner never
raises: any failure becomes ``CellResult.error`` so the other tools still run.

Definitions (one each):

- ``events``: content SSE events received = completed requests x ``output_tokens`` (the
  reference server sends exactly one token per event and ``output_tokens`` per request, so
  this is ground truth); ``tool_output_tokens`` is the tool's own count, for checking.
- ``duration_s``: the benchmark phase as the tool itself reports it; ``outer_wall_s``: the
  whole process, start-up and reporting included.
- ``mean_in_flight``: time-averaged requests in flight = sum of request latencies (the tool's
  own per-request start and end) / ``duration_s``; below the target concurrency the tool
  did not keep that many streams open.
- ``events_per_s`` / ``requests_per_s``: events and completed requests over ``duration_s``.
- ``cpu_window_s``: CPU seconds of the tool's whole process tree inside the benchmark window
  (sampled from /proc, see :mod:`benchmarks.peers.proctree`); ``cpu_us_per_event`` =
  ``cpu_window_s`` / ``events``. ``cpu_total_s`` is the whole run, start-up included: the
  larger of ``getrusage(RUSAGE_CHILDREN)`` (``cpu_rusage_s``) and the /proc tree
  (``cpu_tree_s``); ``cpu_total_us_per_event`` is its share per event.
- ``client_cores_used``: ``cpu_window_s`` / window length (how many cores the tool kept busy).
- ``server_cpu_util``: the reference server's CPU seconds in the window / window length; near
  1.0 the single-threaded server, not the client, was the bottleneck.
- ``other_cpu_util``: the machine's busy CPU in the window (``/proc/stat``) minus the tool's
  and the server's, in cores: kernel work charged to no process (loopback softirq), this
  harness (~2 % of a core), and anything else running on the machine.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.peers.proctree import MACHINE, CpuSeries, TreeSampler

__all__ = [
    "CellResult",
    "CellSpec",
    "ProcessRun",
    "ToolReport",
    "error_result",
    "make_result",
    "run_measured",
    "wall_to_mono_ns",
]

_TAIL_LINES = 40
_SERVER_BOUND_UTIL = 0.9
_CLOCK_SLACK_NS = 50_000_000  # epoch-to-monotonic conversion of a tool's timestamps


@dataclass(frozen=True)
class CellSpec:
    """One cell of the matrix: a tool variant against one fresh reference server."""

    url: str
    model: str
    concurrency: int
    requests: int
    input_tokens: int
    output_tokens: int
    tokenizer_dir: Path
    work_dir: Path  # the tool writes its artifacts here
    server_pid: int
    client_cpus: frozenset[int] | None = None  # CPU affinity of the tool; None = any
    timeout_s: float = 900.0


@dataclass(frozen=True)
class ToolReport:
    """What a tool's own output files say about its run."""

    completed: int
    failed: int
    duration_s: float
    window_mono_ns: tuple[int, int] | None  # benchmark phase on CLOCK_MONOTONIC
    tool_output_tokens: int | None = None
    tool_content_events: int | None = None
    busy_s: float | None = None  # sum of request latencies (send to end) over the run
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessRun:
    """One measured run of a tool's command line."""

    argv: tuple[str, ...]
    returncode: int | None  # None: killed at the timeout
    t_start_ns: int
    t_end_ns: int
    cpu_rusage_s: float
    client: CpuSeries
    server: CpuSeries
    machine: CpuSeries
    lines: tuple[tuple[int, str], ...]  # (monotonic ns when read, stdout/stderr line)

    @property
    def outer_wall_s(self) -> float:
        return (self.t_end_ns - self.t_start_ns) / 1e9

    @property
    def cpu_total_s(self) -> float:
        return max(self.cpu_rusage_s, self.client.total_s)

    def tail(self, n: int = _TAIL_LINES) -> str:
        return "\n".join(line for _, line in self.lines[-n:])

    def first_line_time_ns(self, needle: str) -> int | None:
        """Monotonic time at which the first output line containing ``needle`` was read."""
        for t, line in self.lines:
            if needle in line:
                return t
        return None


@dataclass(frozen=True)
class CellResult:
    """One tool x concurrency cell, the same shape for every tool."""

    tool: str
    concurrency: int
    requests_planned: int
    completed: int = 0
    failed: int = 0
    events: int = 0
    tool_output_tokens: int | None = None
    tool_content_events: int | None = None
    duration_s: float = 0.0
    outer_wall_s: float = 0.0
    mean_in_flight: float | None = None
    requests_per_s: float = 0.0
    events_per_s: float = 0.0
    cpu_window_s: float = 0.0
    cpu_us_per_event: float = 0.0
    cpu_total_s: float = 0.0
    cpu_total_us_per_event: float = 0.0
    cpu_rusage_s: float = 0.0
    cpu_tree_s: float = 0.0
    client_cores_used: float = 0.0  # cpu_window_s / window
    max_processes: int = 0
    server_cpu_window_s: float = 0.0
    server_cpu_util: float = 0.0
    server_bound: bool = False
    background_cpu_before: float | None = None  # machine busy cores just before the cell
    other_cpu_util: float = 0.0  # machine busy - tool - server, in the window (cores)
    error: str | None = None
    notes: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    artifacts: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def wall_to_mono_ns(wall_ns: int) -> int:
    """Convert epoch ns (``time.time_ns``) to CLOCK_MONOTONIC ns with one anchor reading."""
    return wall_ns - (time.time_ns() - time.monotonic_ns())


def _preexec(cpus: frozenset[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _pump(stream: IO[bytes] | None, sink: list[tuple[int, str]]) -> None:
    if stream is None:
        return
    for raw in iter(stream.readline, b""):
        sink.append((time.monotonic_ns(), raw.decode(errors="replace").rstrip("\n")))


def run_measured(
    argv: Sequence[str],
    spec: CellSpec,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRun:
    """Run ``argv`` to completion (or ``spec.timeout_s``), measuring its tree's CPU.

    Output (stdout and stderr merged) is read line by line with the monotonic time of each
    read, so a tool's printed markers can place its benchmark window. On timeout the whole
    process group (the tool runs in a session of its own) is sent SIGTERM, then SIGKILL.
    """
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    lines: list[tuple[int, str]] = []
    rusage0 = _children_cpu_s()
    t0 = time.monotonic_ns()
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=(lambda: _preexec(spec.client_cpus)) if spec.client_cpus else None,  # noqa: PLW1509
    )
    sampler = TreeSampler({"client": proc.pid, "server": spec.server_pid}).start()
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    returncode: int | None
    try:
        returncode = proc.wait(spec.timeout_s)
    except subprocess.TimeoutExpired:
        returncode = None
        _kill_group(proc)
    except BaseException:  # Ctrl-C / SIGTERM of the harness: take the tool down with it
        _kill_group(proc)
        sampler.stop()
        raise
    t1 = time.monotonic_ns()
    series = sampler.stop()
    reader.join(timeout=5.0)
    with contextlib.suppress(OSError):  # the tool's output, for whoever reads the artifacts
        (spec.work_dir / "tool.log").write_text("\n".join(line for _, line in lines) + "\n")
    return ProcessRun(
        argv=tuple(argv),
        returncode=returncode,
        t_start_ns=t0,
        t_end_ns=t1,
        cpu_rusage_s=_children_cpu_s() - rusage0,
        client=series["client"],
        server=series["server"],
        machine=series[MACHINE],
        lines=tuple(lines),
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def error_result(
    tool: str, spec: CellSpec, error: str, run: ProcessRun | None = None
) -> CellResult:
    """A cell that failed before it produced numbers."""
    return CellResult(
        tool=tool,
        concurrency=spec.concurrency,
        requests_planned=spec.requests,
        outer_wall_s=run.outer_wall_s if run else 0.0,
        cpu_total_s=run.cpu_total_s if run else 0.0,
        cpu_rusage_s=run.cpu_rusage_s if run else 0.0,
        cpu_tree_s=run.client.total_s if run else 0.0,
        error=error,
        command=run.argv if run else (),
        artifacts=str(spec.work_dir),
    )


def make_result(
    tool: str,
    spec: CellSpec,
    run: ProcessRun,
    report: ToolReport,
    extra: dict[str, object] | None = None,
) -> CellResult:
    """Combine a tool's own report with the measured process run into one cell."""
    notes = list(report.notes)
    events = report.completed * spec.output_tokens
    if report.tool_output_tokens is not None and report.tool_output_tokens != events:
        notes.append(f"tool counted {report.tool_output_tokens} output tokens, expected {events}")
    if report.tool_content_events is not None and report.tool_content_events != events:
        notes.append(f"tool counted {report.tool_content_events} content events, expected {events}")
    if report.completed + report.failed < spec.requests:
        notes.append(f"only {report.completed + report.failed} of {spec.requests} requests ended")
    if run.returncode is None:
        notes.append(f"killed after the {spec.timeout_s:.0f} s timeout")
    elif run.returncode != 0:
        notes.append(f"exit status {run.returncode}")
    if report.window_mono_ns is not None:
        w0, w1 = report.window_mono_ns
    else:  # no window from the tool: the whole process
        w0, w1 = run.t_start_ns, run.t_end_ns
        notes.append("no benchmark window from the tool: CPU window = whole process")
    if w0 < run.t_start_ns - _CLOCK_SLACK_NS or w1 > run.t_end_ns + _CLOCK_SLACK_NS:
        return error_result(
            tool, spec, "the tool's window lies outside its own run (stale output?)", run
        )
    window_s = max((w1 - w0) / 1e9, 1e-9)
    cpu_window = run.client.between(w0, w1)
    server_cpu = run.server.between(w0, w1)
    server_util = server_cpu / window_s
    duration = report.duration_s if report.duration_s > 0 else window_s
    return CellResult(
        tool=tool,
        concurrency=spec.concurrency,
        requests_planned=spec.requests,
        completed=report.completed,
        failed=report.failed,
        events=events,
        tool_output_tokens=report.tool_output_tokens,
        tool_content_events=report.tool_content_events,
        duration_s=duration,
        outer_wall_s=run.outer_wall_s,
        mean_in_flight=None if report.busy_s is None else report.busy_s / duration,
        requests_per_s=report.completed / duration,
        events_per_s=events / duration,
        cpu_window_s=cpu_window,
        cpu_us_per_event=cpu_window / events * 1e6 if events else 0.0,
        cpu_total_s=run.cpu_total_s,
        cpu_total_us_per_event=run.cpu_total_s / events * 1e6 if events else 0.0,
        cpu_rusage_s=run.cpu_rusage_s,
        cpu_tree_s=run.client.total_s,
        client_cores_used=cpu_window / window_s,
        max_processes=run.client.max_processes,
        server_cpu_window_s=server_cpu,
        server_cpu_util=server_util,
        server_bound=server_util >= _SERVER_BOUND_UTIL,
        other_cpu_util=(run.machine.between(w0, w1) - cpu_window - server_cpu) / window_s,
        error=None if report.completed else "no request completed",
        notes=tuple(notes),
        command=run.argv,
        artifacts=str(spec.work_dir),
        extra={"window_s": window_s, **(extra or {})},
    )
