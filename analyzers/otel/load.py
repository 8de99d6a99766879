"""``otel/spans.parquet`` as a DataFrame (or, for a run killed before its collector wrote the
table, ``otel/spans.jsonl``); None when the run has no spans."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from servescope.rundir.layout import OTEL_SPANS_FILE, OTEL_SPANS_JOURNAL, RunDirError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_spans"]


def read_spans(run_dir: Path) -> pd.DataFrame | None:
    """The received spans (columns of :class:`~servescope.records.spans.SpanRecord`);
    :class:`RunDirError` (one line) when the table exists but cannot be read."""
    import pandas as pd

    table, journal = run_dir / OTEL_SPANS_FILE, run_dir / OTEL_SPANS_JOURNAL
    if table.is_file():
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            df: pd.DataFrame = pq.read_table(table).to_pandas()
        except (OSError, pa.ArrowException) as exc:
            raise RunDirError(f"{table}: not a readable spans table ({exc})") from None
        return df
    if journal.is_file():
        import orjson

        rows = []
        for line in journal.read_bytes().splitlines():
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # a torn last line
        return pd.DataFrame(rows) if rows else None
    return None
