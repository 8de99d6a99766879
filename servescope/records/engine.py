"""What the engine's own metrics endpoint said: one sample of one scrape."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MetricSample"]


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One exposed sample of a metrics page (the row of ``engine/metrics.parquet`` without
    its scrape number and time; docs/run-format.md)."""

    family: str  # metric family (prometheus_client's name: counters without _total)
    type: str  # counter, gauge, histogram, summary, info, unknown, trtllm_iter
    sample: str  # exposed sample name
    labels: str  # JSON object, keys sorted
    value: float  # in the metric's own unit (the family name says which)

    def row(self) -> tuple[str, str, str, str, float]:
        return (self.family, self.type, self.sample, self.labels, self.value)
