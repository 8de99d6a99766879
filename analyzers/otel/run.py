"""The span attribution of one run directory, as the report and the CLI want it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from analyzers.otel.attribution import SpanAttribution, summarize
from analyzers.otel.load import read_spans

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["run_attribution"]


def _request_span(engine: str | None) -> str | None:
    if not engine:
        return None
    from servescope.engines.registry import get_spec

    try:
        otel = get_spec(engine).otel
    except ValueError:
        return None
    return otel.request_span if otel is not None else None


def run_attribution(run_dir: Path, measured: pd.DataFrame, run_id: str,
                    engine: str | None) -> SpanAttribution | None:
    """The attribution of the successful ``measured`` requests (rows of
    :func:`analyzers.request_metrics.request_metrics`); None when the run received no spans."""
    spans = read_spans(run_dir)
    if spans is None or spans.empty:
        return None
    from servescope.rundir.reader import load_run

    ids = load_run(run_dir).requests[["request_id", "x_request_id"]]
    ok = measured[measured["outcome"] == "success"]
    req = ids.merge(ok, on="request_id")
    return summarize(req, spans, run_id, _request_span(engine))
