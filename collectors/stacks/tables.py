"""The stack collector's files at the end of a run: ``stacks/processes.json``,
``stacks/threads.parquet`` and ``stacks/hot.parquet`` (columns: the fields of
:mod:`servescope.records.stacks`, in order)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from servescope.jsonio import dumps
from servescope.records.stacks import HotFrame, StackProcess, StackThread
from servescope.rundir.atomic import atomic_write, staged
from servescope.rundir.finalize import TableSpec
from servescope.rundir.layout import STACK_HOT_FILE, STACK_PROCESSES_FILE, STACK_THREADS_FILE

__all__ = ["HOT_SPEC", "THREADS_SPEC", "spec_of", "write_tables"]

_ARROW = {"int": "int64", "float": "float64", "str": "string", "bool": "bool"}


def spec_of(cls: type[Any], file: str) -> TableSpec:
    """The table of a record dataclass: its fields, in order, as columns."""
    return TableSpec(file, tuple((f.name, _ARROW[str(f.type)])
                                 for f in dataclasses.fields(cls)))


THREADS_SPEC = spec_of(StackThread, STACK_THREADS_FILE)
HOT_SPEC = spec_of(HotFrame, STACK_HOT_FILE)


def _table(spec: TableSpec, rows: Sequence[Any]) -> Any:
    return spec.table({name: [getattr(r, name) for r in rows] for name in spec.names})


def write_tables(run_dir: Path, processes: Sequence[StackProcess],
                 threads: Sequence[StackThread], hot: Sequence[HotFrame]) -> None:
    """Write the three files (the two tables together, whole or none);
    :class:`~servescope.rundir.atomic.RunDirWriteError` when the disk refuses."""
    import pyarrow.parquet as pq

    run_dir = Path(run_dir)
    atomic_write(run_dir / STACK_PROCESSES_FILE, dumps(list(processes), indent=True))
    paths = [run_dir / THREADS_SPEC.file, run_dir / HOT_SPEC.file]
    with staged(*paths) as tmps:
        for tmp, spec, rows in zip(tmps, (THREADS_SPEC, HOT_SPEC), (threads, hot),
                                   strict=True):
            pq.write_table(_table(spec, rows), tmp, compression="zstd")
