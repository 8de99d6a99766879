"""servescope analyzers: read run directories and return data (never rendering).

Every metric is derived from the raw client timeline recorded in the run directory and is
defined once (docs/metrics.md). Numbers under peer tools' definitions come from the same
timeline through :mod:`analyzers.definitions`.
"""

from __future__ import annotations

from analyzers.itl import ITLSamples, itl_samples
from analyzers.request_metrics import REQUEST_METRIC_COLUMNS, request_metrics
from analyzers.stats import Stats, describe

__all__ = [
    "REQUEST_METRIC_COLUMNS",
    "ITLSamples",
    "Stats",
    "describe",
    "itl_samples",
    "request_metrics",
]
