"""Torch-profiler trace files → the run directory's ``kernels/`` tables.

:func:`ingest_traces` streams each file once (:class:`~collectors.kernels.jsonstream.TraceStream`),
sorts its events into the event tables (:class:`~collectors.kernels.tables.EventBatcher`),
moves them to the run's monotonic clock (:mod:`collectors.kernels.clock`) and writes
``kernels/{gpu,runtime,cpu_ops,annotations,flows,traces}.parquet`` (one set for all ranks,
a ``rank`` column telling them apart). :func:`read_trace` is the same into memory, for a
trace file a user already has. Bad input never raises: an unreadable file becomes a
``traces`` row with its warning; a file cut short keeps what was read.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from collectors.kernels.clock import trace_clock
from collectors.kernels.jsonstream import ArrowParse, TraceFormatError, TraceStream
from collectors.kernels.tables import (
    EVENT_TABLES,
    EventBatcher,
    PreparedEvents,
    arrow_accepts,
    arrow_readable,
    event_schema,
    flow_schema,
    parse_schema,
)
from servescope.clock import ClockAnchor
from servescope.gcpause import gc_paused
from servescope.records.kernels import TraceFileRecord
from servescope.rundir.atomic import RunDirWriteError
from servescope.rundir.layout import (
    KERNEL_ANNOTATIONS_FILE,
    KERNEL_CPU_OPS_FILE,
    KERNEL_FLOWS_FILE,
    KERNEL_GPU_FILE,
    KERNEL_RUNTIME_FILE,
    KERNEL_TRACES_FILE,
    KERNELS_DIR,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["KernelTables", "MemorySink", "TableSink", "ingest_trace", "ingest_traces", "rank_of",
           "read_trace"]

TABLE_FILES = {"gpu": KERNEL_GPU_FILE, "runtime": KERNEL_RUNTIME_FILE,
               "cpu_ops": KERNEL_CPU_OPS_FILE, "annotations": KERNEL_ANNOTATIONS_FILE,
               "flows": KERNEL_FLOWS_FILE}
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)
_TP_IN_NAME = re.compile(r"tp[-_]?(\d+)", re.IGNORECASE)


class TableSink(Protocol):
    """Where record batches of the ``kernels/`` tables go."""

    def write(self, table: str, batch: pa.RecordBatch) -> None: ...


def _schema(table: str) -> pa.Schema:
    return flow_schema() if table == "flows" else event_schema()


@dataclass
class KernelTables:
    """The tables of one or more traces, in memory (arrow); ``traces`` one record per file."""

    gpu: pa.Table
    runtime: pa.Table
    cpu_ops: pa.Table
    annotations: pa.Table
    flows: pa.Table
    traces: list[TraceFileRecord] = field(default_factory=list)

    def events(self) -> pa.Table:
        """Every event table stacked: the frame :mod:`analyzers.kernels` takes (to_pandas)."""
        import pyarrow as pa

        return pa.concat_tables([getattr(self, t) for t in EVENT_TABLES])


class MemorySink:
    """Collects batches; :meth:`tables` concatenates them. ``columns``: keep only these of
    the event tables (those a table has), e.g. what the analysis reads."""

    def __init__(self, columns: Sequence[str] | None = None) -> None:
        self.batches: dict[str, list[pa.RecordBatch]] = {t: [] for t in TABLE_FILES}
        self.columns = columns

    def write(self, table: str, batch: pa.RecordBatch) -> None:
        if self.columns is not None and table in EVENT_TABLES:
            batch = batch.select([c for c in self.columns if c in batch.schema.names])
        self.batches[table].append(batch)

    def _table_schema(self, name: str) -> pa.Schema:
        import pyarrow as pa

        schema = _schema(name)
        if self.columns is None or name not in EVENT_TABLES:
            return schema
        return pa.schema([schema.field(c) for c in self.columns if c in schema.names])

    def tables(self, traces: list[TraceFileRecord]) -> KernelTables:
        import pyarrow as pa

        t = {name: pa.Table.from_batches(b, schema=self._table_schema(name))
             for name, b in self.batches.items()}
        return KernelTables(traces=traces, **t)


class _Tee:
    """Every batch to both sinks."""

    def __init__(self, first: TableSink, second: TableSink) -> None:
        self.sinks = (first, second)

    def write(self, table: str, batch: pa.RecordBatch) -> None:
        for sink in self.sinks:
            sink.write(table, batch)


class ParquetSink:
    """One parquet writer per table, each batch appended as it comes (memory: one batch);
    files are written under temporary names and renamed by :meth:`close`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.writers: dict[str, Any] = {}

    def _tmp(self, table: str) -> Path:
        path = self.run_dir / TABLE_FILES[table]
        return path.with_name(path.name + ".tmp")

    def write(self, table: str, batch: pa.RecordBatch) -> None:
        import pyarrow.parquet as pq

        if table not in self.writers:
            tmp = self._tmp(table)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            self.writers[table] = pq.ParquetWriter(tmp, _schema(table))
        self.writers[table].write_batch(batch)

    def abort(self) -> None:
        """Close and remove the temporary files (a failed write leaves nothing behind)."""
        for table, writer in self.writers.items():
            try:
                writer.close()
            except OSError:
                pass  # the write that failed is the error to report
            self._tmp(table).unlink(missing_ok=True)
        self.writers.clear()

    def close(self, traces: list[TraceFileRecord]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for table in TABLE_FILES:
            if table not in self.writers:
                self.write(table, pa.RecordBatch.from_pylist([], schema=_schema(table)))
        for table, writer in self.writers.items():
            writer.close()
            self._tmp(table).replace(self.run_dir / TABLE_FILES[table])
        rows = pa.Table.from_pylist([_row(r) for r in traces], schema=_traces_schema())
        pq.write_table(rows, self.run_dir / KERNEL_TRACES_FILE)


def _traces_schema() -> pa.Schema:
    from dataclasses import fields

    import pyarrow as pa
    types = {"int": pa.int64(), "str": pa.string(), "bool": pa.bool_()}
    return pa.schema([(f.name, types[str(f.type)]) for f in fields(TraceFileRecord)])


def _row(rec: TraceFileRecord) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(rec)


def rank_of(path: Path, header: dict[str, Any]) -> int:
    """The file's rank: ``distributedInfo.rank`` if the trace has it, else the last
    ``rank<N>``/``rank-<N>`` in the file name, else the last ``TP-<N>``/``tp<N>``, else -1
    (a frontend trace)."""
    info = header.get("distributedInfo")
    if isinstance(info, dict):
        r = info.get("rank")
        if isinstance(r, int) and not isinstance(r, bool) and r >= 0:
            return r
    found = _RANK_IN_NAME.findall(path.name) or _TP_IN_NAME.findall(path.name)
    return int(found[-1]) if found else -1


@contextlib.contextmanager
def _system_pool() -> Iterator[None]:
    """Arrow's allocations on the C library's malloc while traces are read. Arrow's default,
    mimalloc, keeps the pages the parsing threads freed for those threads, so the analysis
    that follows (numpy and pandas, on malloc) cannot reuse them; on malloc it does (peak RSS
    of a 200 k-event load + analysis: 272 -> 234 MB, a 95 k-event H200 trace: 294 -> 248 MB;
    same speed). Process-wide while it lasts (arrow has no per-thread pool)."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


def _first_ts(batch: list[dict[str, Any]] | PreparedEvents) -> float | None:
    """The ``ts`` of the first complete ("X") event with a numeric one."""
    if isinstance(batch, PreparedEvents):
        return batch.first_x_ts_us
    return next((e["ts"] for e in batch if e.get("ph") == "X"
                 and isinstance(e.get("ts"), (int, float))), None)


def ingest_trace(path: Path, sink: TableSink, anchor: ClockAnchor | None, *,
                 rank: int | None = None, python_functions: bool = False,
                 batch_bytes: int = 1 << 20, arrow: bool = True) -> TraceFileRecord:
    """Stream one trace file into ``sink``; the record says what was kept and how its clock
    was mapped. Never raises for bad input (the record's ``warnings`` say what went wrong).
    ``arrow``: parse pieces with arrow's JSON reader on threads where it can (the tables are
    the same either way; False: every piece with orjson)."""
    batcher = EventBatcher(-1 if rank is None else rank, sink.write,
                           python_functions=python_functions)
    stream = TraceStream(path, batch_bytes=batch_bytes, arrow=ArrowParse(
        parse_schema(), arrow_readable, arrow_accepts, batcher.prepare) if arrow else None)
    clock = None
    problem = ""
    with gc_paused(), _system_pool():
        try:
            for batch in stream:
                if clock is None:
                    if rank is None:
                        batcher.rank = rank_of(path, stream.header)
                    clock = trace_clock(stream.header, anchor, _first_ts(batch))
                    batcher.shift_ns = clock.shift_ns
                if isinstance(batch, list):
                    batcher.add(batch)
                else:
                    batcher.add_prepared(batch)
        except TraceFormatError as exc:
            problem = str(exc)
        batcher.close()
    if clock is None:
        clock = trace_clock(stream.header, anchor, None)
    warnings = stream.warnings + ([problem] if problem else [])
    return TraceFileRecord(
        rank=batcher.rank, file=path.name, clock=clock.rule.value,
        trace_to_mono_ns=clock.trace_to_mono_ns,
        clock_uncertainty_ns=clock.uncertainty_ns(batcher.first_ts_us),
        events_read=batcher.events_read, events_kept=batcher.events_kept,
        flows_kept=batcher.flows_kept, truncated=stream.truncated or bool(problem),
        warnings="; ".join(warnings))


def _duplicates(records: list[TraceFileRecord]) -> None:
    seen: dict[int, str] = {}
    for i, rec in enumerate(records):
        if rec.rank >= 0 and rec.rank in seen:
            note = f"rank {rec.rank} also in {seen[rec.rank]}"
            records[i] = TraceFileRecord(**{**_row(rec), "warnings": "; ".join(
                w for w in (rec.warnings, note) if w)})
        seen.setdefault(rec.rank, rec.file)


def _ingest_part(path: Path, part_dir: Path, anchor: ClockAnchor | None,
                 python_functions: bool) -> TraceFileRecord:
    """One file into its own ``part_dir/kernels/`` tables (a worker process's job)."""
    sink = ParquetSink(part_dir)
    rec = ingest_trace(path, sink, anchor, python_functions=python_functions)
    sink.close([rec])
    return rec


def _ingest_parallel(paths: Sequence[Path], sink: TableSink, run_dir: Path,  # noqa: PLR0917
                     anchor: ClockAnchor | None, python_functions: bool, workers: int
                     ) -> list[TraceFileRecord]:
    """Files read by ``workers`` spawned processes into part tables, then appended to
    ``sink`` in the order of ``paths``, a row group at a time (memory: one batch)."""
    import multiprocessing
    import shutil
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    import pyarrow.parquet as pq

    parts = Path(tempfile.mkdtemp(prefix=".parts-", dir=run_dir / KERNELS_DIR))
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")
                                 ) as pool:
            futures = [pool.submit(_ingest_part, p, parts / str(i), anchor, python_functions)
                       for i, p in enumerate(paths)]
            records = [f.result() for f in futures]
        for i in range(len(paths)):
            for table, file in TABLE_FILES.items():
                for batch in pq.ParquetFile(parts / str(i) / file).iter_batches():
                    sink.write(table, batch)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return records


def ingest_traces(paths: Sequence[Path], run_dir: Path, anchor: ClockAnchor | None, *,
                  python_functions: bool = False, workers: int = 1,
                  also: TableSink | None = None) -> list[TraceFileRecord]:
    """Every file (one rank each) into ``run_dir/kernels/*.parquet``; one
    :class:`TraceFileRecord` per file, also written to ``kernels/traces.parquet``. With
    ``workers`` > 1 the files are read by that many processes at once (rows still in the
    order of ``paths``); memory: one batch per table per process. Bad trace files never
    raise; a failed write of the tables (a full disk) raises
    :class:`~servescope.rundir.atomic.RunDirWriteError` and leaves no temporary file.
    ``also``: every batch goes there too (a :class:`MemorySink`, for an analysis of the
    tables just written without reading them back)."""
    sink = ParquetSink(run_dir)
    out: TableSink = sink if also is None else _Tee(sink, also)
    try:
        (run_dir / KERNELS_DIR).mkdir(parents=True, exist_ok=True)
        if workers > 1 and len(paths) > 1:
            records = _ingest_parallel(paths, out, run_dir, anchor, python_functions,
                                       min(workers, len(paths)))
        else:
            records = [ingest_trace(p, out, anchor, python_functions=python_functions)
                       for p in paths]
        _duplicates(records)
        sink.close(records)
    except OSError as exc:
        sink.abort()
        raise RunDirWriteError(run_dir / KERNELS_DIR, exc) from None
    except BaseException:
        sink.abort()
        raise
    return records


def read_trace(path: Path, anchor: ClockAnchor | None = None, *, rank: int | None = None,
               python_functions: bool = False) -> KernelTables:
    """One trace file into memory (without an anchor its times stay on the trace's wall
    clock, rule ``unaligned``)."""
    sink = MemorySink()
    rec = ingest_trace(path, sink, anchor, rank=rank, python_functions=python_functions)
    return sink.tables([rec])
