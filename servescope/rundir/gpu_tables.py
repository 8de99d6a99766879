"""The GPU collector's journal and the three tables made from it (in the ground floor: the
collector writes it, and a reader of a run that ended before its tables were written reads
it, :func:`read_gpu_journal`).

While the run goes on the collector appends one JSON line per tick to ``gpu/journal.jsonl``:
``{"t": t_ns, "s": [GpuSample rows], "g": [GpmSample rows], "p": [GpuProcessSample rows]}``
(each row a list in its dataclass's field order). At stop, :func:`finalize_gpu` turns it into
``gpu/samples.parquet``, ``gpu/gpm.parquet`` and ``gpu/processes.parquet`` (columns = the
fields of :mod:`servescope.records.gpu`) with the table-spec finalizer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servescope.records.gpu import GpmSample, GpuProcessSample, GpuSample
from servescope.rundir.finalize import Rows, TableSpec, finalize, read_tables
from servescope.rundir.journal import JournalEntry
from servescope.rundir.layout import GPM_FILE, GPU_DIR, GPU_PROCESSES_FILE, GPU_SAMPLES_FILE

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["GPM", "GPU_JOURNAL", "PROCESSES", "SAMPLES", "GpuTables", "finalize_gpu",
           "read_gpu_journal", "row"]

GPU_JOURNAL = f"{GPU_DIR}/journal.jsonl"
_BATCH_BYTES = 8 << 20
_FLOATS = {"util_gpu_frac", "util_mem_frac", "power_w", "pcie_tx_bytes_per_s",
           "pcie_rx_bytes_per_s", "value"}
_STRINGS = {"gpu_uuid", "metric"}


def _spec(file: str, cls: type[Any]) -> TableSpec:
    cols = tuple((f.name, "float64" if f.name in _FLOATS else
                  "string" if f.name in _STRINGS else "int64")
                 for f in dataclasses.fields(cls))
    return TableSpec(file, cols)


SAMPLES = _spec(GPU_SAMPLES_FILE, GpuSample)
GPM = _spec(GPM_FILE, GpmSample)
PROCESSES = _spec(GPU_PROCESSES_FILE, GpuProcessSample)
_KEYS = (("s", SAMPLES), ("g", GPM), ("p", PROCESSES))


def row(record: Any) -> list[Any]:
    """A record as its journal row (its fields in order)."""
    return [getattr(record, f.name) for f in dataclasses.fields(record)]


class GpuTables:
    """Tick lines → the three tables, in tick-time order. A row that does not fit its
    columns is skipped with a warning."""

    specs = (SAMPLES, GPM, PROCESSES)

    @property
    def batch_bytes(self) -> int:
        return _BATCH_BYTES

    def torn(self, name: str, line: int) -> str:
        return f"{name}:{line}: incomplete GPU sample line skipped"

    def key(self, entry: JournalEntry, where: str, warnings: list[str]) -> tuple[int] | None:
        d = entry.value
        if type(d) is not dict or type(d.get("t")) is not int:
            warnings.append(f"{where}: GPU sample line without an integer time; skipped")
            return None
        return (d["t"],)

    def convert(self, lines: list[Any], warnings: list[str]) -> Sequence[pa.Table]:
        tables = [Rows(spec) for _, spec in _KEYS]
        for d in lines:
            for (key, spec), rows in zip(_KEYS, tables, strict=True):
                for r in d.get(key) or ():
                    if type(r) is not list or len(r) != len(spec.names):
                        warnings.append(f"GPU line at {d['t']}: a {key!r} row does not fit "
                                        f"{spec.file}; skipped")
                        continue
                    for name, v in zip(spec.names, r, strict=True):
                        rows.cols[name].append(v)
        return [rows.take() for rows in tables]


def finalize_gpu(run_dir: Path) -> tuple[list[int], list[str]]:
    """``gpu/journal.jsonl`` → the three tables (rows per table, warnings); the journal is
    removed once they are written."""
    journal = Path(run_dir) / GPU_JOURNAL
    return finalize(run_dir, [journal] if journal.exists() else [], GpuTables())


def read_gpu_journal(run_dir: Path) -> tuple[list[pa.Table], list[str]] | None:
    """The three tables from ``gpu/journal.jsonl``, in memory (nothing written), for a run
    that ended before the collector wrote them (killed); None without a journal."""
    journal = Path(run_dir) / GPU_JOURNAL
    if not journal.is_file():
        return None
    return read_tables([journal], GpuTables())
