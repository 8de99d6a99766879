"""``otel/spans.jsonl`` (the receiver's journal) → ``otel/spans.parquet``, one row a span, the
columns of :class:`~servescope.records.spans.SpanRecord` (``attributes`` as a JSON string).
A torn last line (the engine or servescope killed mid-write) is skipped and counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from servescope.records.spans import SPAN_COLUMNS
from servescope.rundir.layout import OTEL_SPANS_FILE, OTEL_SPANS_JOURNAL

__all__ = ["write_spans_table"]

_INT = {"t_start_ns", "t_end_ns", "t_start_wall_ns", "ttft_ns", "e2e_ns", "queue_ns",
        "prefill_ns", "decode_ns", "inference_ns", "kv_transfer_ns", "prompt_tokens",
        "output_tokens", "cached_tokens"}


def write_spans_table(run_dir: Path) -> tuple[int, int]:
    """(spans written, lines skipped); (0, 0) and no file when nothing was received."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    journal = run_dir / OTEL_SPANS_JOURNAL
    if not journal.exists():
        return 0, 0
    rows: list[dict[str, Any]] = []
    skipped = 0
    with journal.open("rb") as fh:
        for line in fh:
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError:
                skipped += 1
                continue
            d["attributes"] = orjson.dumps(d.get("attributes", {})).decode()
            rows.append(d)
    if not rows:
        return 0, skipped
    schema = pa.schema([(c, pa.int64() if c in _INT else pa.string()) for c in SPAN_COLUMNS])
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = run_dir / (OTEL_SPANS_FILE + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(run_dir / OTEL_SPANS_FILE)
    return len(rows), skipped
