"""Parsed trace events → columnar batches of the ``kernels/`` tables.

Events are sorted into tables by their ``cat`` (complete events, ``ph`` "X", only):

============  ==========================================================  ============
table         categories                                                  kind
============  ==========================================================  ============
gpu           kernel, gpu_op / gpu_memcpy, memcpy / gpu_memset, memset     kernel/memcpy/memset
runtime       cuda_runtime, cuda_driver, runtime, hip_runtime              runtime
cpu_ops       cpu_op, operator (python_function when asked)                cpu_op
annotations   user_annotation, gpu_user_annotation                         annotation
============  ==========================================================  ============

Flow endpoints (``ph`` "s"/"f", e.g. ``ac2g``) go to ``flows``. Everything else (metadata,
instant events, the profiler's own spans) is counted and dropped. Events come either as a
batch of parsed dicts (:meth:`EventBatcher.add`: column lists built in Python) or as an arrow
table of :func:`parse_schema`'s fields (:meth:`EventBatcher.add_table`: the same columns
built with arrow and numpy, no Python object per event); both give the same rows. Each added
batch becomes arrow arrays at once, and a table's pending arrays are handed on as one record
batch once they hold ``rows_per_batch`` rows, so memory holds about one batch per table,
never the whole trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from servescope.records.kernels import TraceEventKind, TraceEventRow, TraceFlowRow

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EVENT_TABLES", "STRING_FIELDS", "EventBatcher", "PreparedEvents", "arrow_accepts",
           "arrow_readable", "event_schema", "flow_schema", "parse_schema"]

EVENT_TABLES = ("gpu", "runtime", "cpu_ops", "annotations")
_K = TraceEventKind
_BY_CAT: dict[str, tuple[str, str]] = {
    "kernel": ("gpu", _K.KERNEL.value), "gpu_op": ("gpu", _K.KERNEL.value),
    "gpu_memcpy": ("gpu", _K.MEMCPY.value), "memcpy": ("gpu", _K.MEMCPY.value),
    "gpu_memset": ("gpu", _K.MEMSET.value), "memset": ("gpu", _K.MEMSET.value),
    "cuda_runtime": ("runtime", _K.RUNTIME.value), "cuda_driver": ("runtime", _K.RUNTIME.value),
    "runtime": ("runtime", _K.RUNTIME.value), "hip_runtime": ("runtime", _K.RUNTIME.value),
    "cpu_op": ("cpu_ops", _K.CPU_OP.value), "operator": ("cpu_ops", _K.CPU_OP.value),
    "user_annotation": ("annotations", _K.ANNOTATION.value),
    "gpu_user_annotation": ("annotations", _K.ANNOTATION.value),
}
_PYTHON = ("cpu_ops", _K.CPU_OP.value)
_INT_COLS = ("rank", "t_start_ns", "dur_ns", "device", "stream", "correlation_id", "step",
             "pid", "tid", "external_id", "bytes")
_DIM_COLS = ("grid", "block")
_EVENT_COLS = tuple(f.name for f in fields(TraceEventRow))
_FLOW_COLS = tuple(f.name for f in fields(TraceFlowRow))


def event_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c in _INT_COLS else pa.list_(pa.int64())
                       if c in _DIM_COLS else pa.string()) for c in _EVENT_COLS])


def flow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(c, pa.string() if c in ("cat", "phase") else pa.int64())
                      for c in _FLOW_COLS])


# the trace fields the tables take (arrow's JSON reader ignores the others)
_ARGS_INTS = ("correlation", "External id", "device", "stream", "bytes")
STRING_FIELDS = ("ph", "cat", "name")


def parse_schema() -> pa.Schema:
    """The event fields :meth:`EventBatcher.add_table` reads, as arrow's JSON reader is to
    parse them (a value of another type makes it reject the piece). Arrow reads a missing key
    and a JSON ``null`` alike, where the dict path does not (``e.get("name", "")``), so text
    holding ``null`` is not to be read this way (:func:`arrow_readable`)."""
    import pyarrow as pa

    dims = pa.list_(pa.int64())
    args = pa.struct([*((k, pa.int64()) for k in _ARGS_INTS), ("grid", dims), ("block", dims)])
    return pa.schema([*((k, pa.string()) for k in STRING_FIELDS), ("pid", pa.int64()),
                      ("tid", pa.int64()), ("ts", pa.float64()), ("dur", pa.float64()),
                      ("id", pa.int64()), ("args", args)])


def arrow_readable(text: bytes) -> bool:
    """Whether a piece of trace text may be parsed into :func:`parse_schema`: no ``null``
    (see there)."""
    return b"null" not in text


def arrow_accepts(table: pa.Table) -> bool:
    """Whether a piece arrow parsed holds what orjson would have read: valid UTF-8 in the
    string fields (arrow does not check) and no NaN or infinity in ``ts``/``dur`` (arrow
    reads the ``NaN``/``Infinity`` literals, which strict JSON, and orjson, rejects; in a
    field not read here they are let through, so such a file keeps the events orjson would
    have dropped as unreadable)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        for name in STRING_FIELDS:
            table.column(name).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return not any(pc.any(pc.invert(pc.is_finite(table.column(c)))).as_py()
                   for c in ("ts", "dur"))


def _int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and not math.isnan(v) and abs(v) < 9e18:
        return int(v)
    return -1


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _dims(values: list[Any]) -> Any:
    """A list<int64> array of kernel grid/block shapes (null when absent or malformed)."""
    import pyarrow as pa

    typ = pa.list_(pa.int64())
    try:
        return pa.array(values, type=typ)
    except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([v if isinstance(v, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v) else None
            for v in values], type=typ)


def _ints(values: list[Any]) -> Any:
    """An int64 array of ``values`` (bad ones as -1), the fast way when all are integers."""
    import numpy as np

    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        return np.array([_int(v) for v in values], dtype=np.int64)


def _floats(values: list[Any]) -> Any:
    import numpy as np

    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.array([_num(v) for v in values], dtype=np.float64)
    return arr


def _strs(values: list[Any]) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.string())
    except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(["" if v is None else str(v) for v in values], type=pa.string())


_EMPTY: dict[str, Any] = {}
_BUF_COLS = ("kind", "name", "cat", "ts", "dur", "device", "stream", "correlation_id", "pid",
             "tid", "external_id", "bytes", "grid", "block")
_FLOW_BUF = ("cat", "flow_id", "phase", "ts", "pid", "tid")
_GPU_CATS = frozenset(("gpu_user_annotation",))
_FLOW_PHASES = ["s", "f"]
_ARGS_FIELDS = (*_ARGS_INTS, "grid", "block")


@dataclass
class PreparedEvents:
    """A parsed piece's columns per table (``ts`` in trace µs), before rank and clock."""

    events_read: int
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    flows: dict[str, Any] | None = None
    first_ts_us: float | None = None  # of the rows kept
    first_x_ts_us: float | None = None  # of the first complete event (the clock's)


def _table_columns(table: str, t: pa.Table, kind: Any) -> dict[str, Any]:
    """One event table's columns from parsed rows bound for it (``ts`` for the clock)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = t.num_rows
    t = t.combine_chunks()
    args = dict(zip(_ARGS_FIELDS, t.column("args").chunk(0).flatten(), strict=True))
    pid = pc.fill_null(t.column("pid").chunk(0), -1)
    tid = pc.fill_null(t.column("tid").chunk(0), -1)
    cat = t.column("cat").chunk(0)
    none = np.full(n, -1, dtype=np.int64)
    if table == "gpu":
        device, stream = pc.fill_null(args["device"], pid), pc.fill_null(args["stream"], tid)
        nbytes, grid, block = pc.fill_null(args["bytes"], -1), args["grid"], args["block"]
    else:
        nulls = pa.nulls(n, type=pa.list_(pa.int64()))
        nbytes, grid, block = none, nulls, nulls
        device = stream = none
        if table == "annotations":
            on_gpu = pc.is_in(cat, value_set=pa.array(sorted(_GPU_CATS)))
            device = pc.if_else(on_gpu, pc.fill_null(args["device"], pid), -1)
            stream = pc.if_else(on_gpu, pc.fill_null(args["stream"], tid), -1)
    dur = pc.fill_null(t.column("dur").chunk(0), 0.0).to_numpy()
    return {"kind": pa.array(kind, pa.string()),
            "name": pc.fill_null(t.column("name").chunk(0), ""), "cat": cat,
            "ts": t.column("ts").chunk(0).to_numpy(),
            "dur_ns": np.rint(np.clip(dur, 0, None) * 1000.0).astype(np.int64),
            "device": device, "stream": stream,
            "correlation_id": pc.fill_null(args["correlation"], -1),
            "step": np.full(n, -1, dtype=np.int64), "pid": pid, "tid": tid,
            "external_id": pc.fill_null(args["External id"], -1), "bytes": nbytes,
            "grid": grid, "block": block}


def _flow_columns(t: pa.Table) -> dict[str, Any]:
    import pyarrow.compute as pc

    t = t.combine_chunks()
    return {"cat": pc.fill_null(t.column("cat").chunk(0), ""),
            "flow_id": pc.fill_null(t.column("id").chunk(0), -1), "phase": t.column("ph").chunk(0),
            "ts": t.column("ts").chunk(0).to_numpy(),
            "pid": pc.fill_null(t.column("pid").chunk(0), -1),
            "tid": pc.fill_null(t.column("tid").chunk(0), -1)}


class _Buffer:
    """One table's pending rows as column lists (``ts``/``dur`` in trace µs, unchecked)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.cols: dict[str, list[Any]] = {n: [] for n in names}

    def __len__(self) -> int:
        return len(self.cols[self.names[0]])

    def reset(self) -> None:
        self.cols = {n: [] for n in self.names}


class EventBatcher:
    """Accumulates events of one trace (one rank) and hands record batches to ``emit(table,
    batch)``; ``shift_ns`` (set once the clock is known, before the first event is added)
    maps ``round(ts·1000)`` to the run's clock. Each added batch of dicts is turned into
    column lists at once (list comprehensions), so no event dict outlives its batch."""

    def __init__(self, rank: int, emit: Callable[[str, pa.RecordBatch], None], *,
                 python_functions: bool = False, rows_per_batch: int = 16384) -> None:
        self.rank = rank
        self.emit = emit
        self.shift_ns: int | None = None
        self.rows_per_batch = rows_per_batch
        self.by_cat = dict(_BY_CAT)
        if python_functions:
            self.by_cat["python_function"] = _PYTHON
        self.buffers = {t: _Buffer(_BUF_COLS) for t in EVENT_TABLES}
        self.flows = _Buffer(_FLOW_BUF)
        self.pending: dict[str, list[pa.RecordBatch]] = {t: [] for t in (*EVENT_TABLES,
                                                                           "flows")}
        self.events_read = 0
        self.events_kept = 0
        self.flows_kept = 0
        self.first_ts_us: float | None = None

    def add(self, events: list[dict[str, Any]]) -> None:
        self.events_read += len(events)
        by_cat = self.by_cat
        groups: dict[str, list[tuple[str, dict[str, Any]]]] = {t: [] for t in EVENT_TABLES}
        flows: list[dict[str, Any]] = []
        for ev in events:
            ph = ev.get("ph")
            if ph == "X":
                cat = ev.get("cat")
                if cat.__class__ is str:
                    where = by_cat.get(cat) or by_cat.get(cat.lower())  # type: ignore[union-attr,unused-ignore]
                    if where is not None:
                        groups[where[0]].append((where[1], ev))
            elif ph in {"s", "f"}:
                flows.append(ev)
        for table, items in groups.items():
            if items:
                self._columns(table, items)
        if flows:
            self._flow_columns(flows)
        for table, buf in self.buffers.items():
            self._flush(table, buf)
        self._flush_flows()

    def add_table(self, events: pa.Table) -> None:
        """Events parsed into :func:`parse_schema` (no JSON ``null`` in their text): the rows
        :meth:`add` gives for the same events, built with arrow and numpy."""
        self.add_prepared(self.prepare(events))

    def prepare(self, events: pa.Table) -> PreparedEvents:
        """The first half of :meth:`add_table`, everything that does not need the rank or the
        clock; it changes nothing here, so worker threads run it on pieces as they parse."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        out = PreparedEvents(events_read=events.num_rows)
        if not events.num_rows:
            return out
        t = events.combine_chunks()
        enc = pc.dictionary_encode(t.column("cat")).combine_chunks()
        cats = enc.dictionary.to_pylist()
        where = [self.by_cat.get(c) or self.by_cat.get(c.lower()) for c in cats]
        dest_of = np.array([-1 if w is None else EVENT_TABLES.index(w[0]) for w in where]
                           + [-1], dtype=np.int64)
        code = pc.fill_null(enc.indices, len(cats)).to_numpy()
        ph = t.column("ph")
        has_ts = t.column("ts").is_valid().to_numpy(zero_copy_only=False)
        is_x = pc.fill_null(pc.equal(ph, "X"), False).to_numpy(zero_copy_only=False)
        is_flow = pc.fill_null(pc.is_in(ph, value_set=pa.array(_FLOW_PHASES)), False).to_numpy(
            zero_copy_only=False)
        # one take: rows grouped by destination (the event tables, then flows), in order
        x_ts = np.flatnonzero(is_x & has_ts)
        if len(x_ts):
            out.first_x_ts_us = float(t.column("ts")[int(x_ts[0])].as_py())
        dest = np.where(is_x & has_ts, dest_of[code], np.where(is_flow & has_ts, 4, -1))
        order = np.argsort(dest, kind="stable")
        bounds = np.searchsorted(dest[order], np.arange(6))
        keep = order[bounds[0]:]
        grouped = t.take(keep)
        kinds = np.array([w[1] if w is not None else "" for w in where] + [""], dtype=object)
        kind = kinds[code[keep]]
        for i, table in enumerate(EVENT_TABLES):
            lo, hi = bounds[i] - bounds[0], bounds[i + 1] - bounds[0]
            if hi > lo:
                out.tables[table] = _table_columns(table, grouped.slice(lo, hi - lo),
                                                   kind[lo:hi])
        lo, hi = bounds[4] - bounds[0], bounds[5] - bounds[0]
        if hi > lo:
            out.flows = _flow_columns(grouped.slice(lo, hi - lo))
        firsts = [float(c["ts"].min()) for c in out.tables.values()]
        out.first_ts_us = min(firsts) if firsts else None
        return out

    def add_prepared(self, prepared: PreparedEvents) -> None:
        """The second half of :meth:`add_table`: the rank and the clock, and the rows queued."""
        import numpy as np
        import pyarrow as pa

        self.events_read += prepared.events_read
        first = prepared.first_ts_us
        if first is not None and (self.first_ts_us is None or first < self.first_ts_us):
            self.first_ts_us = first
        for table, cols in prepared.tables.items():
            n = len(cols["ts"])
            batch = pa.RecordBatch.from_pydict(
                {**cols, "rank": np.full(n, self.rank, dtype=np.int64),
                 "t_start_ns": self._ns(cols["ts"])}, schema=event_schema())
            self._put(table, batch)
            self.events_kept += n
        if prepared.flows is not None:
            cols = prepared.flows
            n = len(cols["ts"])
            self._put("flows", pa.RecordBatch.from_pydict(
                {**cols, "rank": np.full(n, self.rank, dtype=np.int64),
                 "t_ns": self._ns(cols["ts"])}, schema=flow_schema()))
            self.flows_kept += n

    def _put(self, table: str, batch: pa.RecordBatch | None, *, last: bool = False) -> None:
        """Queue a batch; hand the queue on as one batch once it holds ``rows_per_batch``
        rows (``last``: whatever it holds)."""
        import pyarrow as pa

        pending = self.pending[table]
        if batch is not None and batch.num_rows:
            pending.append(batch)
        if pending and (last or sum(b.num_rows for b in pending) >= self.rows_per_batch):
            one = pa.Table.from_batches(pending).combine_chunks().to_batches()
            self.emit(table, one[0])
            pending.clear()

    def _columns(self, table: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        items = [it for it in items if it[1].get("ts").__class__ in (float, int)]
        if not items:
            return
        evs = [e for _, e in items]
        c = self.buffers[table].cols
        ts = [e["ts"] for e in evs]
        first = min(ts)
        if self.first_ts_us is None or first < self.first_ts_us:
            self.first_ts_us = float(first)
        args = [e.get("args", _EMPTY) for e in evs]
        args = [a if a.__class__ is dict else _EMPTY for a in args]
        pid = [e.get("pid", -1) for e in evs]
        tid = [e.get("tid", -1) for e in evs]
        c["kind"] += [k for k, _ in items]
        c["name"] += [e.get("name", "") for e in evs]
        c["cat"] += [e["cat"] for e in evs]
        c["ts"] += ts
        c["dur"] += [e.get("dur", 0) for e in evs]
        c["pid"] += pid
        c["tid"] += tid
        c["correlation_id"] += [a.get("correlation", -1) for a in args]
        c["external_id"] += [a.get("External id", -1) for a in args]
        n = len(evs)
        if table == "gpu":
            c["device"] += [a.get("device", p) for a, p in zip(args, pid, strict=True)]
            c["stream"] += [a.get("stream", t) for a, t in zip(args, tid, strict=True)]
            c["bytes"] += [a.get("bytes", -1) for a in args]
            c["grid"] += [a.get("grid") for a in args]
            c["block"] += [a.get("block") for a in args]
        else:
            if table == "annotations":
                gpu = [e["cat"] in _GPU_CATS for e in evs]
                c["device"] += [a.get("device", p) if g else -1
                                for a, p, g in zip(args, pid, gpu, strict=True)]
                c["stream"] += [a.get("stream", t) if g else -1
                                for a, t, g in zip(args, tid, gpu, strict=True)]
            else:
                c["device"] += [-1] * n
                c["stream"] += [-1] * n
            c["bytes"] += [-1] * n
            c["grid"] += [None] * n
            c["block"] += [None] * n
        self.events_kept += n

    def _flow_columns(self, flows: list[dict[str, Any]]) -> None:
        flows = [f for f in flows if f.get("ts").__class__ in (float, int)]
        c = self.flows.cols
        c["cat"] += [f.get("cat", "") for f in flows]
        c["flow_id"] += [f.get("id", -1) for f in flows]
        c["phase"] += [f["ph"] for f in flows]
        c["ts"] += [f["ts"] for f in flows]
        c["pid"] += [f.get("pid", -1) for f in flows]
        c["tid"] += [f.get("tid", -1) for f in flows]
        self.flows_kept += len(flows)

    def _ns(self, ts_us: list[Any]) -> Any:
        """round(ts·1000) + shift as int64, exact for µs with three decimals: the whole µs
        and the fraction are converted apart (float64 alone loses ns above ~9e15 ns)."""
        import numpy as np

        ts = _floats(ts_us)
        whole = np.floor(ts)
        frac_ns = np.rint((ts - whole) * 1000.0).astype(np.int64)
        return whole.astype(np.int64) * 1000 + frac_ns + (self.shift_ns or 0)

    def _flush(self, table: str, buf: _Buffer) -> None:
        import numpy as np
        import pyarrow as pa

        if not len(buf):
            return
        c, n = buf.cols, len(buf)
        dur_ns = np.rint(np.clip(_floats(c["dur"]), 0, None) * 1000.0).astype(np.int64)
        cols: dict[str, Any] = {
            "rank": np.full(n, self.rank, dtype=np.int64), "t_start_ns": self._ns(c["ts"]),
            "dur_ns": dur_ns, "step": np.full(n, -1, dtype=np.int64)}
        for name in _EVENT_COLS:
            if name not in cols:
                cols[name] = (_ints(c[name]) if name in _INT_COLS else _dims(c[name])
                              if name in _DIM_COLS else _strs(c[name]))
        self._put(table, pa.RecordBatch.from_pydict(cols, schema=event_schema()))
        buf.reset()

    def _flush_flows(self) -> None:
        import numpy as np
        import pyarrow as pa

        if not len(self.flows):
            return
        c = self.flows.cols
        cols: dict[str, Any] = {"rank": np.full(len(self.flows), self.rank, dtype=np.int64),
                                "t_ns": self._ns(c["ts"])}
        for name in _FLOW_COLS:
            if name not in cols:
                cols[name] = _strs(c[name]) if name in ("cat", "phase") else _ints(c[name])
        self._put("flows", pa.RecordBatch.from_pydict(cols, schema=flow_schema()))
        self.flows.reset()

    def close(self) -> None:
        """Flush every pending row."""
        for table, buf in self.buffers.items():
            self._flush(table, buf)
        self._flush_flows()
        for table in self.pending:
            self._put(table, None, last=True)
