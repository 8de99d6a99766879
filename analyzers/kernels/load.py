"""A run directory's kernel-trace tables (``RUN/kernels/``, written by the ingestion) as the
one event frame :func:`analyzers.kernels.analyze_kernels` takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from analyzers.kernels.frame import EVENT_COLUMNS
from servescope.rundir.layout import (
    KERNEL_ANNOTATIONS_FILE,
    KERNEL_CPU_OPS_FILE,
    KERNEL_GPU_FILE,
    KERNEL_RUNTIME_FILE,
    RunDirError,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["ANALYSIS_COLUMNS", "EVENT_FILES", "events_frame", "read_kernel_events"]

EVENT_FILES = (KERNEL_GPU_FILE, KERNEL_RUNTIME_FILE, KERNEL_CPU_OPS_FILE,
               KERNEL_ANNOTATIONS_FILE)
# what analyze_kernels reads: the KernelEvent fields and the trace's cat (the GPU-side
# annotation filter); pid/tid/external_id/bytes/grid/block stay on disk (grid and block,
# one numpy array per row in pandas, were a third of the frame's memory)
ANALYSIS_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, "cat")


def read_kernel_events(run_dir: str | Path,
                       columns: Sequence[str] | None = ANALYSIS_COLUMNS) -> pd.DataFrame | None:
    """The event tables of ``run_dir/kernels/`` stacked, with ``columns`` (those a table
    lacks are left out; None: every column); None when the run has none;
    :class:`RunDirError` (one line) for a table that cannot be read. The tables are stacked
    in arrow (no copy) and converted once, the arrow buffers freed as the columns convert."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for name in EVENT_FILES:
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        try:
            have = pq.read_schema(path).names
            tables.append(pq.read_table(path, columns=None if columns is None else [
                c for c in columns if c in have]))
        except Exception as exc:  # noqa: BLE001 - one line naming the file
            raise RunDirError(f"cannot read {path}: {exc}") from None
    if not tables:
        return None
    try:
        return events_frame(tables)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RunDirError(f"cannot stack the event tables of {run_dir}: {exc}") from None


def events_frame(tables: list[pa.Table]) -> pd.DataFrame:
    """Event tables (as read from ``kernels/``, or as the ingestion just made them) stacked in
    arrow (no copy) and converted once, the arrow buffers freed as the columns convert;
    ``tables`` is emptied (its tables are the caller's no more)."""
    import pyarrow as pa

    stacked = pa.concat_tables(tables, promote_options="default")
    tables.clear()
    events: pd.DataFrame = stacked.to_pandas(split_blocks=True, self_destruct=True)
    return events
