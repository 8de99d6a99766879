"""The one exception the workload layer raises for bad input."""

from __future__ import annotations

__all__ = ["WorkloadError"]


class WorkloadError(ValueError):
    """A workload spec, dataset file or tokenizer is unusable; the message says why and where."""
