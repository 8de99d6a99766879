"""Typed records: one frozen (or slotted) dataclass per kind of measurement, raw integer
nanoseconds and native units, units in the field names."""

from __future__ import annotations

from servescope.records.client import UNKNOWN, EventKind, Outcome, RequestRecord

__all__ = ["UNKNOWN", "EventKind", "Outcome", "RequestRecord"]
