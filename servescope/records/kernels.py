"""Kernel-timeline events from an engine's profiler window (torch.profiler traces), moved to
the run's monotonic clock.

The schema the kernel-trace ingestion (:mod:`collectors.kernels`) writes (issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["KernelEvent", "KernelWindow", "TraceClockRule", "TraceEventKind", "TraceEventRow",
           "TraceFileRecord", "TraceFlowRow"]


class TraceEventKind(StrEnum):
    KERNEL = "kernel"
    MEMCPY = "memcpy"
    MEMSET = "memset"
    RUNTIME = "runtime"  # cudaLaunchKernel, cudaGraphLaunch, ... on the CPU
    CPU_OP = "cpu_op"
    ANNOTATION = "annotation"  # record_function ranges: engine steps


@dataclass(frozen=True, slots=True)
class KernelEvent:
    """One event of a trace file (one rank)."""

    rank: int  # which trace file (one per rank / worker)
    kind: TraceEventKind
    name: str
    t_start_ns: int  # on the run's clock (docs/run-format.md says how traces are aligned)
    dur_ns: int
    device: int  # GPU index; -1 for CPU-side events
    stream: int  # CUDA stream; -1 for CPU-side events
    correlation_id: int  # links a runtime call to the kernels it launched (-1: none)
    step: int  # the engine step it falls in (-1: outside every step)


@dataclass(frozen=True, slots=True)
class TraceEventRow(KernelEvent):
    """A :class:`KernelEvent` as the ingestion writes it (``kernels/*.parquet`` event tables):
    the analysis's columns plus where the event came from. ``step`` is -1 at ingestion (the
    analysis cuts steps)."""

    cat: str  # the trace's own category (kernel, gpu_memcpy, cuda_runtime, cpu_op, ...)
    pid: int  # process id (CPU events) or device (GPU events); -1 when not an integer
    tid: int  # thread id (CPU events) or stream (GPU events); -1 when not an integer
    external_id: int  # args["External id"]: links a CPU op to the runtime calls it made (-1)
    bytes: int  # memcpy/memset size (args["bytes"]); -1 otherwise
    grid: tuple[int, ...] | None  # kernel grid (x, y, z); None when absent
    block: tuple[int, ...] | None  # kernel block (x, y, z); None when absent


@dataclass(frozen=True, slots=True)
class TraceFlowRow:
    """One end of a flow arrow (``ph`` "s" at the launch, "f" at the kernel); kineto's
    ``ac2g`` flows carry the correlation id as their ``id``."""

    rank: int
    cat: str  # "ac2g" for launch → GPU
    flow_id: int  # = the correlation id for ac2g
    phase: str  # "s" (start, on the CPU) or "f" (finish, on the GPU)
    t_ns: int  # on the run's clock
    pid: int
    tid: int


@dataclass(frozen=True, slots=True)
class TraceFileRecord:
    """One ingested trace file: its rank, how its clock was mapped, what was read."""

    rank: int
    file: str  # the file's name
    clock: str  # TraceClockRule value (servescope/records/kernels.py)
    trace_to_mono_ns: int  # mono_ns = trace wall ns + this (0 with rule "unaligned")
    clock_uncertainty_ns: int  # bound on the mapping error (-1: unknown)
    events_read: int  # every traceEvents entry parsed
    events_kept: int  # rows written to the event tables
    flows_kept: int
    truncated: bool  # the file ended early (a killed export): what was before is kept
    warnings: str  # "; "-joined, "" when none


class TraceClockRule(StrEnum):
    """How a trace's ``ts`` were put on the run's monotonic clock."""

    BASE_WALL = "base_wall"  # wall = baseTimeNanoseconds + ts·1000, then the run's anchor
    EPOCH_WALL = "epoch_wall"  # no base: ts already µs since the Unix epoch (older torch)
    UNALIGNED = "unaligned"  # no anchor or no absolute time: ns of the trace's own clock


@dataclass(slots=True)
class KernelWindow:
    """The profiler window the kernels collector took (``kernels/window.json``). Times on the
    run's monotonic clock; 0 when the moment never came. ``state``: ``taken`` (trace files
    were written), ``not_opened`` (the load never reached steady state, or the engine has no
    window to open: ``reason``) or ``failed`` (``reason``)."""

    engine: str
    mechanism: str  # "http" (the engine's own /start_profile) or "hook" (servescope's)
    state: str
    reason: str = ""
    steps_asked: int = 0  # the engine-step bound sent (0: none; the hook bounds by time)
    duration_asked_s: float = 0.0  # the hook's window length
    target_in_flight: int = 0  # the load's in-flight target the gate waited for (0: any)
    in_flight_at_open: int = -1
    t_steady_ns: int = 0  # when the gate saw the load steady
    t_open_ns: int = 0  # when the engine (or the hook) acknowledged the start
    t_close_ns: int = 0  # when the window ended: stop acknowledged, or trace files complete
    files: list[str] = field(default_factory=list)  # under kernels/raw
    processes: dict[str, str] = field(default_factory=dict)  # hook: pid -> its last state
