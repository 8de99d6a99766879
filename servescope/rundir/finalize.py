"""Journals → parquet tables, for every collector: one finalizer driven by table specs.

A collector describes its tables with :class:`TableSpec` (file, column names, arrow types) and
how its journal lines become rows with a :class:`JournalTables` (a sort key per line; a batch
of lines → one arrow table per spec, with warnings for what it could not keep).
:func:`finalize` then

- reads every journal once to index it (line → sort key, byte offset), one line at a time;
  a torn or unreadable line, or one the collector has no key for, is skipped with a warning
  naming ``file:line``;
- reads the lines again in key order, a batch of about ``batch_bytes`` journal bytes at a time,
  converts each batch and appends it to the tables: memory holds the index and one batch,
  never the whole run;
- writes every table whole or none (:func:`servescope.rundir.atomic.staged`: temporary names
  renamed together; a failure leaves no temporary file) and removes the journals only after
  the tables are in place.

:func:`read_tables` is the same conversion into memory, for readers of a run that was killed
before it could finalize.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

from servescope.rundir.atomic import staged
from servescope.rundir.journal import JournalEntry, read_journal, read_line_at

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["JournalTables", "Rows", "TableSpec", "finalize", "read_tables"]

ARROW_TYPES = ("bool", "int8", "int32", "int64", "float64", "string")


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One table: its file (relative to the run directory) and its ``(name, arrow type)``
    columns (types from :data:`ARROW_TYPES`)."""

    file: str
    columns: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        bad = [t for _, t in self.columns if t not in ARROW_TYPES]
        if bad:
            raise ValueError(f"{self.file}: unknown column types {bad}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([(name, _arrow(typ)) for name, typ in self.columns])

    def table(self, columns: Mapping[str, Sequence[Any] | pa.Array]) -> pa.Table:
        """A table of ``columns`` (lists or arrays, every column of the spec, in any order)
        with the declared types."""
        import pyarrow as pa

        arrays = []
        for name, typ in self.columns:
            values = columns[name]
            arrays.append(values.cast(_arrow(typ)) if isinstance(values, pa.Array)
                          else pa.array(values, type=_arrow(typ)))
        return pa.Table.from_arrays(arrays, schema=self.schema())


def _arrow(typ: str) -> pa.DataType:
    import pyarrow as pa

    return {"bool": pa.bool_, "int8": pa.int8, "int32": pa.int32, "int64": pa.int64,
            "float64": pa.float64, "string": pa.string}[typ]()


class Rows:
    """The column lists of one table being filled (row by row or a column at a time)."""

    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.cols: dict[str, list[Any]] = {name: [] for name in spec.names}

    def __len__(self) -> int:
        first = self.spec.columns[0][0]
        return len(self.cols[first])

    def take(self) -> pa.Table:
        """The rows so far as a table; the lists start afresh."""
        table = self.spec.table(self.cols)
        self.cols = {name: [] for name in self.spec.names}
        return table


class JournalTables(Protocol):
    """How one collector's journal lines become rows of its tables."""

    @property
    def specs(self) -> tuple[TableSpec, ...]:
        """The tables made (their files are written together)."""
        ...

    @property
    def batch_bytes(self) -> int:
        """Journal bytes converted at a time (bounds memory)."""
        ...

    def torn(self, name: str, line: int) -> str:
        """The warning for a line of journal ``name`` that is not JSON (cut by a crash)."""
        ...

    def key(self, entry: JournalEntry, where: str, warnings: list[str]) -> tuple[Any, ...] | None:
        """The line's place in the tables (lines are converted in key order), or None to skip
        it, with a warning starting with ``where`` (``file:line``)."""
        ...

    def convert(self, lines: list[Any], warnings: list[str]) -> Sequence[pa.Table]:
        """One table per spec for consecutive lines (in key order); never raises for a bad
        line: it is kept with its reason, or skipped with a warning."""
        ...


@dataclass(frozen=True, slots=True)
class _Indexed:
    key: tuple[Any, ...]
    journal: int
    offset: int
    length: int
    where: str


def _index(journals: Sequence[Path], conv: JournalTables, warnings: list[str]
           ) -> list[_Indexed]:
    index: list[_Indexed] = []
    for j, path in enumerate(journals):
        for entry in read_journal(path, warnings, conv.torn):
            where = f"{path.name}:{entry.line}"
            key = conv.key(entry, where, warnings)
            if key is not None:
                index.append(_Indexed(key, j, entry.offset, entry.length, where))
    index.sort(key=lambda e: e.key)
    return index


def _batches(journals: Sequence[Path], index: list[_Indexed], conv: JournalTables,
             warnings: list[str]) -> Iterator[Sequence[pa.Table]]:
    """The converted tables of the indexed lines, in key order, a batch at a time."""
    with contextlib.ExitStack() as stack:
        files: list[IO[bytes]] = [stack.enter_context(p.open("rb")) for p in journals]
        batch: list[Any] = []
        size = batches = 0
        for e in index:
            try:
                batch.append(read_line_at(files[e.journal], e.offset, e.length))
            except orjson.JSONDecodeError:  # the file changed since it was indexed
                warnings.append(f"{e.where}: line changed while being read; skipped")
                continue
            size += e.length
            if size >= conv.batch_bytes:
                yield conv.convert(batch, warnings)
                batch, size, batches = [], 0, batches + 1
        if batch or not batches:  # (empty tables still have their columns)
            yield conv.convert(batch, warnings)


def finalize(run_dir: Path, journals: Sequence[Path], conv: JournalTables, *,
             keep_journal: bool = False) -> tuple[list[int], list[str]]:
    """Write ``conv``'s tables from ``journals``; returns (rows per table, warnings).

    Every table is written whole or none (a failure raises
    :class:`~servescope.rundir.atomic.RunDirWriteError` for an ``OSError``, and leaves the
    journals and no temporary file); the journals are removed after the tables are in place
    (unless ``keep_journal``)."""
    import pyarrow.parquet as pq

    warnings: list[str] = []
    index = _index(journals, conv, warnings)
    rows = [0] * len(conv.specs)
    paths = [Path(run_dir) / s.file for s in conv.specs]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with staged(*paths) as tmps, \
            contextlib.ExitStack() as stack:
        writers = [stack.enter_context(pq.ParquetWriter(tmp, spec.schema(), compression="zstd"))
                   for tmp, spec in zip(tmps, conv.specs, strict=True)]
        for tables in _batches(journals, index, conv, warnings):
            for k, (writer, table) in enumerate(zip(writers, tables, strict=True)):
                if table.num_rows or not rows[k]:
                    writer.write_table(table)
                rows[k] += table.num_rows
    if not keep_journal:
        for path in journals:
            path.unlink(missing_ok=True)
    return rows, warnings


def read_tables(journals: Sequence[Path], conv: JournalTables) -> tuple[list[pa.Table],
                                                                         list[str]]:
    """``conv``'s tables from ``journals``, in memory (nothing written); with warnings."""
    import pyarrow as pa

    warnings: list[str] = []
    index = _index(journals, conv, warnings)
    parts: list[list[pa.Table]] = [[] for _ in conv.specs]
    for tables in _batches(journals, index, conv, warnings):
        for part, table in zip(parts, tables, strict=True):
            part.append(table)
    return [pa.concat_tables(p) for p in parts], warnings
