"""servescope analyzers: read run directories and return data (never rendering).

Every metric is derived from the raw client timeline recorded in the run directory and is
defined once (docs/metrics.md). A run's :class:`RunContext` loads it once and computes each
derived member (timeline, summary, analysis, engine signals, ...) once for every analyzer.
Numbers under peer tools' definitions come from the same timeline through
:mod:`analyzers.definitions`. pandas is imported inside functions only.
"""

from __future__ import annotations

from analyzers.context import RunContext
from analyzers.definitions import (
    DEFINITIONS,
    Definition,
    UnknownDefinitionError,
    definition_samples,
    definition_table,
    get_definition,
)
from analyzers.goodput import SLO, Goodput, good_mask
from analyzers.itl import ITLSamples, itl_samples
from analyzers.request_metrics import REQUEST_METRIC_COLUMNS, request_metrics
from analyzers.stats import Stats, describe
from analyzers.summary import LatencySummary, RunSummary, summarize
from analyzers.timeline import Timeline, build_timeline

__all__ = [
    "DEFINITIONS",
    "REQUEST_METRIC_COLUMNS",
    "SLO",
    "Definition",
    "Goodput",
    "ITLSamples",
    "LatencySummary",
    "RunContext",
    "RunSummary",
    "Stats",
    "Timeline",
    "UnknownDefinitionError",
    "build_timeline",
    "definition_samples",
    "definition_table",
    "describe",
    "get_definition",
    "good_mask",
    "itl_samples",
    "request_metrics",
    "summarize",
]
