"""Kernel timelines (issue 11): torch-profiler Chrome traces streamed once into the run
directory's ``kernels/`` tables (:func:`ingest_traces`), or into memory (:func:`read_trace`).
Opening the engine's profiler window is not here yet."""

from collectors.kernels.ingest import (
    KernelTables,
    TableSink,
    ingest_trace,
    ingest_traces,
    rank_of,
    read_trace,
)
from collectors.kernels.jsonstream import TraceFormatError, TraceStream

__all__ = ["KernelTables", "TableSink", "TraceFormatError", "TraceStream", "ingest_trace",
           "ingest_traces", "rank_of", "read_trace"]
