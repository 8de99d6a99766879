"""Kernel tables written into a run directory from an event frame the test built (the
layout the ingestion writes: one parquet table per kind of event), for the rules' and the
report's tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analyzers.kernels import EVENT_COLUMNS
from servescope.records.kernels import TraceEventKind as K
from servescope.rundir.layout import (
    KERNEL_ANNOTATIONS_FILE,
    KERNEL_CPU_OPS_FILE,
    KERNEL_GPU_FILE,
    KERNEL_RUNTIME_FILE,
)

_FILES = {KERNEL_GPU_FILE: (K.KERNEL, K.MEMCPY, K.MEMSET), KERNEL_RUNTIME_FILE: (K.RUNTIME,),
          KERNEL_CPU_OPS_FILE: (K.CPU_OP,), KERNEL_ANNOTATIONS_FILE: (K.ANNOTATION,)}


def write_kernel_tables(run_dir: Path, events: pd.DataFrame) -> None:
    """``events`` (columns EVENT_COLUMNS) into ``run_dir/kernels/*.parquet`` by kind."""
    (run_dir / "kernels").mkdir(exist_ok=True)
    for name, kinds in _FILES.items():
        part = events[events["kind"].isin([k.value for k in kinds])][list(EVENT_COLUMNS)]
        pq.write_table(pa.Table.from_pandas(part.reset_index(drop=True),
                                            preserve_index=False), run_dir / name)
