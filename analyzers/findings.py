"""Typed findings: what a bottleneck rule concluded, with its evidence and the action.

A :class:`Finding` is data. Its ``evidence`` holds the numbers the rule decided on (raw
units, named), its window the time it looked at (client monotonic ns), its requests the ones
affected (a sample of their ids, and their count), and ``actions`` what to change, in the
engine's own flag names where the rule knows the engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Evidence", "Finding", "Severity"]

MAX_IDS = 20


class Severity(StrEnum):
    CRITICAL = "critical"  # the run's numbers are dominated by this; fix it first
    WARNING = "warning"  # costs latency or throughput, or makes numbers less trustworthy
    INFO = "info"  # worth knowing; no action needed for this workload


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One number a rule used: ``name`` carries the unit (``kv_usage_max_frac``)."""

    name: str
    value: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    title: str
    summary: str  # one sentence with the key numbers
    evidence: tuple[Evidence, ...]
    window_start_ns: int
    window_end_ns: int
    requests_affected: int
    request_ids: tuple[int, ...]  # at most MAX_IDS of them
    actions: tuple[str, ...]

    def value(self, name: str) -> float:
        """The evidence value called ``name`` (KeyError if the rule did not record it)."""
        for e in self.evidence:
            if e.name == name:
                return e.value
        raise KeyError(f"{self.rule} has no evidence {name!r}; it has "
                       f"{', '.join(e.name for e in self.evidence)}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sample_ids(ids: Any) -> tuple[int, ...]:
    """The first :data:`MAX_IDS` ids, as plain ints."""
    return tuple(int(i) for i in list(ids)[:MAX_IDS])
