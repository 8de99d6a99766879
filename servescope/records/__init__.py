"""Typed records: one dataclass per kind of measurement, raw integer nanoseconds and native
units, the unit in each field's name. ``client`` and ``engine`` are written today; ``gpu``,
``stacks``, ``kernels``, ``spans`` and ``bandwidth`` are the schema of the GPU half's
collectors (docs/run-format.md)."""

from __future__ import annotations

from servescope.records.bandwidth import BandwidthSample
from servescope.records.client import UNKNOWN, EventKind, Outcome, RequestRecord
from servescope.records.engine import MetricSample
from servescope.records.gpu import GpmSample, GpuDeviceFacts, GpuProcessSample, GpuSample
from servescope.records.kernels import KernelEvent, TraceEventKind
from servescope.records.spans import SpanRecord
from servescope.records.stacks import HangDump, HotFrame, StackProcess, StackSample, StackThread

__all__ = ["UNKNOWN", "BandwidthSample", "EventKind", "GpmSample", "GpuDeviceFacts",
           "GpuProcessSample", "GpuSample", "HangDump", "HotFrame", "KernelEvent",
           "MetricSample", "Outcome", "RequestRecord", "SpanRecord", "StackProcess",
           "StackSample", "StackThread", "TraceEventKind"]
