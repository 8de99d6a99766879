"""A run directory's kernel-trace tables (``RUN/kernels/``, written by the ingestion) as the
one event frame :func:`analyzers.kernels.analyze_kernels` takes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from servescope.rundir.layout import (
    KERNEL_ANNOTATIONS_FILE,
    KERNEL_CPU_OPS_FILE,
    KERNEL_GPU_FILE,
    KERNEL_RUNTIME_FILE,
    RunDirError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EVENT_FILES", "read_kernel_events"]

EVENT_FILES = (KERNEL_GPU_FILE, KERNEL_RUNTIME_FILE, KERNEL_CPU_OPS_FILE,
               KERNEL_ANNOTATIONS_FILE)


def read_kernel_events(run_dir: str | Path) -> pd.DataFrame | None:
    """Every event table of ``run_dir/kernels/`` stacked; None when the run has none;
    :class:`RunDirError` (one line) for a table that cannot be read."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for name in EVENT_FILES:
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        try:
            frames.append(pq.read_table(path).to_pandas())
        except Exception as exc:  # noqa: BLE001 - one line naming the file
            raise RunDirError(f"cannot read {path}: {exc}") from None
    if not frames:
        return None
    events: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return events
