"""The engine's request spans joined to the client's requests (issue 14): per-request TTFT
and E2E attribution, the shares' distributions, and the comparison with the histogram-based
decomposition (:mod:`analyzers.decompose`)."""

from analyzers.otel.attribution import (
    ATTRIBUTION_COLUMNS,
    PartStats,
    SpanAttribution,
    attribute_requests,
    compare_with_histograms,
    summarize,
)
from analyzers.otel.load import read_spans
from analyzers.otel.run import run_attribution

__all__ = ["ATTRIBUTION_COLUMNS", "PartStats", "SpanAttribution", "attribute_requests",
           "compare_with_histograms", "read_spans", "run_attribution", "summarize"]
