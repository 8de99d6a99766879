"""Kernel-timeline events from an engine's profiler window (torch.profiler traces), moved to
the run's monotonic clock.

The schema the kernel-trace ingestion writes (issue 11); no writer in this version yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["KernelEvent", "TraceEventKind"]


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
