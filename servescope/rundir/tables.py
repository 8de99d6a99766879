"""Journal lines → columnar tables (``requests.parquet``, ``events.parquet``) and back.

One malformed line never makes a run directory unreadable. A line that is not a request
(not a JSON object, no integer ``request_id``, cut short) is skipped with a warning naming
``file:line``. A request line whose values do not fit their columns (event lists of unequal
length, a value of the wrong type or beyond its column's range) is kept as a row with
outcome ``invalid_response``, the reason in ``error`` and no events, with a warning: the
columns of the other requests can never be misaligned by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from servescope.records import EventKind, Outcome, RequestRecord
from servescope.rundir.finalize import TableSpec, finalize, read_tables
from servescope.rundir.journal import JournalEntry, read_journal
from servescope.rundir.layout import EVENTS_FILE, JOURNAL_DIR, REQUESTS_FILE

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CLIENT_TABLES", "EVENTS", "EVENT_COLUMNS", "REQUESTS", "REQUEST_COLUMNS",
           "arrow_tables", "count_journals", "finalize_tables", "journal_files",
           "journal_tables", "read_journals"]

_EVENT_LISTS = ("ev_t_ns", "ev_kind", "ev_chars", "ev_tokens_cum", "ev_lag_ns")
# event lists a line may lack or leave empty (written before they existed, or by a client
# that has no such value): all -1 (unknown) then
_OPTIONAL_LISTS = frozenset({"ev_lag_ns"})
REQUEST_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(RequestRecord) if f.name not in _EVENT_LISTS
) + ("n_events",)
EVENT_COLUMNS = ("request_id", "seq", "t_ns", "kind", "chars", "tokens_cum", "lag_ns")
_STR_COLUMNS = {"phase", "x_request_id", "endpoint", "outcome", "error", "finish_reason",
                "ev_clock", "tokens_cum_source"}
_INT_COLUMNS = tuple(c for c in REQUEST_COLUMNS[:-1]
                     if c not in _STR_COLUMNS and c != "output_text")
_I64 = (-(2**63), 2**63 - 1)
_I32_MAX = 2**31 - 1
# each event list: (its column in events.parquet, its arrow type, the values it may hold)
_EVENT_RANGE: dict[str, tuple[str, str, int, int]] = {
    "ev_t_ns": ("t_ns", "int64", *_I64),
    "ev_kind": ("kind", "int8", min(EventKind), max(EventKind)),
    "ev_chars": ("chars", "int32", 0, _I32_MAX),
    "ev_tokens_cum": ("tokens_cum", "int32", -1, _I32_MAX),
    "ev_lag_ns": ("lag_ns", "int64", *_I64),
}
REQUESTS = TableSpec(REQUESTS_FILE, tuple(
    (c, "string" if c in _STR_COLUMNS or c == "output_text" else "int64")
    for c in REQUEST_COLUMNS))
EVENTS = TableSpec(EVENTS_FILE, (("request_id", "int64"), ("seq", "int32"), *(
    (col, typ) for col, typ, _, _ in _EVENT_RANGE.values())))
BATCH_BYTES = 16 << 20  # journal bytes converted at a time


def _is_int(v: object, lo: int = _I64[0], hi: int = _I64[1]) -> bool:
    return type(v) is int and lo <= v <= hi


def journal_files(run_dir: Path) -> list[Path]:
    """The workers' journals of ``run_dir``, in worker order of their names."""
    jdir = Path(run_dir) / JOURNAL_DIR
    return sorted(jdir.glob("worker-*.jsonl")) if jdir.is_dir() else []


class _ClientTables:
    """Request lines → ``requests.parquet`` and ``events.parquet``, in request_id order."""

    specs = (REQUESTS, EVENTS)

    @property
    def batch_bytes(self) -> int:
        return BATCH_BYTES

    def torn(self, name: str, line: int) -> str:
        return f"{name}:{line}: incomplete or unreadable journal line skipped"

    def key(self, entry: JournalEntry, where: str, warnings: list[str]
            ) -> tuple[int, int] | None:
        d = entry.value
        if type(d) is not dict:
            warnings.append(f"{where}: journal line is not a JSON object; skipped")
            return None
        if not _is_int(d.get("request_id")):
            warnings.append(f"{where}: journal line has no integer request_id; skipped")
            return None
        return d["request_id"], _worker(d)

    def convert(self, lines: list[Any], warnings: list[str]) -> Sequence[pa.Table]:
        requests, events, problems = arrow_tables(lines)
        warnings.extend(problems)
        return requests, events


CLIENT_TABLES = _ClientTables()


def count_journals(run_dir: Path) -> tuple[int, list[str]]:
    """(request lines in the workers' journals, warnings for the lines that are not), read
    one line at a time."""
    n = 0
    warnings: list[str] = []
    for path in journal_files(run_dir):
        for entry in read_journal(path, warnings, CLIENT_TABLES.torn):
            n += CLIENT_TABLES.key(entry, f"{path.name}:{entry.line}", warnings) is not None
    return n, warnings


def read_journals(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All request lines of all workers' journals, sorted by request_id (in memory).

    A line cut short by a crash mid-write, or one that is not a request (not a JSON
    object, no integer ``request_id``), is skipped and reported in the returned warnings.
    """
    lines: list[tuple[tuple[int, int], dict[str, Any]]] = []
    warnings: list[str] = []
    for path in journal_files(run_dir):
        for entry in read_journal(path, warnings, CLIENT_TABLES.torn):
            key = CLIENT_TABLES.key(entry, f"{path.name}:{entry.line}", warnings)
            if key is not None:
                lines.append((key, entry.value))
    lines.sort(key=lambda kv: kv[0])
    return [d for _, d in lines], warnings


def _worker(d: dict[str, Any]) -> int:
    w = d.get("worker_id", 0)
    return w if _is_int(w) else 0


def _fast_int_array(values: list[Any], lo: int, hi: int, typ: pa.DataType) -> pa.Array | None:
    """``values`` as an array of ``typ`` if every one is an int in [lo, hi] (checked in C,
    with no per-value Python work), else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None
    if len(arr) == 0:
        return pa.array([], type=typ)
    if arr.type != pa.int64() or arr.null_count:
        return None
    mm = pc.min_max(arr)
    if mm["min"].as_py() < lo or mm["max"].as_py() > hi:
        return None
    return arr.cast(typ)


def _present_lists(d: dict[str, Any]) -> tuple[str, ...]:
    """The event lists ``d`` must hold: all but the optional ones it lacks or left empty."""
    return tuple(c for c in _EVENT_LISTS if c not in _OPTIONAL_LISTS or d.get(c))


def _event_problem(d: dict[str, Any]) -> str:
    """Why the event lists of ``d`` cannot be columns ("" when they can)."""
    names = _present_lists(d)
    lists = [d.get(c) for c in names]
    for name, v in zip(names, lists, strict=True):
        if v is not None and type(v) is not list:
            return f"{name} is not a list"
    lengths = [len(v or ()) for v in lists]
    if len(set(lengths)) > 1:
        return "event lists of unequal length (" + ", ".join(
            f"{n} {k}" for n, k in zip(names, lengths, strict=True)) + ")"
    for name, v in zip(names, lists, strict=True):
        _, _, lo, hi = _EVENT_RANGE[name]
        for x in v or ():
            if not _is_int(x, lo, hi):
                return (f"{name} holds {orjson.dumps(x).decode()[:30]}, not an integer in "
                        f"[{lo}, {hi}]")
    return ""


def _scalar_problem(column: str, v: object) -> str:
    if v is None:
        return ""
    if column in _STR_COLUMNS or column == "output_text":
        return "" if type(v) is str else f"{column} is not a string"
    return "" if _is_int(v) else f"{column} is not a 64-bit integer"


def _line_problems(lines: list[dict[str, Any]]) -> dict[int, str]:
    """Line index → why its row cannot go into the tables as it is, from its event lists'
    shape and its scalar values. Each scalar column is checked at C speed first; only a
    column that fails is checked line by line."""
    import pyarrow as pa

    problems: dict[int, str] = {}
    for i, d in enumerate(lines):
        lists = [d.get(c) for c in _present_lists(d)]
        if any(v is not None and type(v) is not list for v in lists) or len(
                {len(v or ()) for v in lists}) > 1:
            problems[i] = _event_problem(d)
    for c in REQUEST_COLUMNS[:-1]:
        vals = [d.get(c) for d in lines]
        if c in _INT_COLUMNS:
            ok = _fast_int_array([-1 if v is None else v for v in vals], *_I64,
                                 pa.int64()) is not None
        else:
            try:
                pa.array(vals, type=pa.string())
                ok = True
            except (pa.ArrowException, TypeError, ValueError):
                ok = False
        if not ok:
            for i, v in enumerate(vals):
                if (why := _scalar_problem(c, v)) and i not in problems:
                    problems[i] = why
    return problems


def _columns(lines: list[dict[str, Any]], problems: dict[int, str]
             ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The request columns and the flat event columns (events of problem lines dropped)."""
    req_cols: dict[str, list[Any]] = {c: [] for c in REQUEST_COLUMNS}
    ev: dict[str, list[Any]] = {c: [] for c in EVENT_COLUMNS}
    for i, d in enumerate(lines):
        why = problems.get(i)
        for c in REQUEST_COLUMNS[:-1]:
            v = d.get(c)
            req_cols[c].append(None if why and _scalar_problem(c, v) else v)
        if why:
            req_cols["outcome"][-1] = Outcome.INVALID_RESPONSE.value
            req_cols["error"][-1] = f"unreadable journal line: {why}"
            req_cols["n_events"].append(0)
            continue
        t = d.get("ev_t_ns") or []
        n = len(t)
        req_cols["n_events"].append(n)
        ev["request_id"].extend([d["request_id"]] * n)
        ev["seq"].extend(range(n))
        ev["t_ns"].extend(t)
        ev["kind"].extend(d.get("ev_kind") or [])
        ev["chars"].extend(d.get("ev_chars") or [])
        ev["tokens_cum"].extend(d.get("ev_tokens_cum") or [])
        lag = d.get("ev_lag_ns")
        ev["lag_ns"].extend(lag if lag else [-1] * n)
    return req_cols, ev


def arrow_tables(lines: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table, list[str]]:
    """(requests, events, warnings) of journal lines (as :func:`read_journals` returns
    them). A line whose values do not fit is a row with outcome ``invalid_response``, the
    reason in ``error``, its bad values read as unknown and no events; never an exception."""
    import pyarrow as pa

    problems = _line_problems(lines)
    for attempt in range(3):
        req_cols, ev = _columns(lines, problems)
        ev_arrays: dict[str, Any] = {"request_id": ev["request_id"], "seq": ev["seq"]}
        for col, typ, lo, hi in _EVENT_RANGE.values():
            arr = _fast_int_array(ev[col], lo, hi, getattr(pa, typ)())
            if arr is None:
                break
            ev_arrays[col] = arr
        else:
            break
        # some line holds a bad event value: find it (line by line), drop its events, again
        problems.update({i: why or "event values unreadable" for i, d in enumerate(lines)
                         if i not in problems
                         and ((why := _event_problem(d)) or (attempt and d.get("ev_t_ns")))})
    req_arrays: dict[str, list[Any]] = {}
    for c, vals in req_cols.items():
        if c in _STR_COLUMNS:
            req_arrays[c] = ["" if v is None else v for v in vals]
        elif c != "output_text":
            req_arrays[c] = [-1 if v is None else v for v in vals]
        else:
            req_arrays[c] = vals
    warnings = [f"request {lines[i].get('request_id')}: {why}; kept as invalid_response "
                "without its events" for i, why in sorted(problems.items())]
    return REQUESTS.table(req_arrays), EVENTS.table(ev_arrays), warnings


def journal_tables(run_dir: Path) -> tuple[pa.Table, pa.Table, list[str]]:
    """(requests, events, warnings) of the journals of a run that did not finalize."""
    (requests, events), warnings = read_tables(journal_files(run_dir), CLIENT_TABLES)
    return requests, events, warnings


def finalize_tables(run_dir: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
    """Write the parquet tables from the journals; returns (requests written, warnings).

    Streamed (:func:`servescope.rundir.finalize.finalize`): both tables are written under
    temporary names and renamed together, and the journal is removed only after both are in
    place, so an interrupted or failed finalize (a full disk:
    :class:`~servescope.rundir.atomic.RunDirWriteError`) loses nothing and leaves no temporary
    file; readers then use the journal.
    """
    rows, warnings = finalize(run_dir, journal_files(run_dir), CLIENT_TABLES,
                              keep_journal=keep_journal)
    if not keep_journal:
        jdir = Path(run_dir) / JOURNAL_DIR
        if jdir.is_dir() and not any(jdir.iterdir()):
            jdir.rmdir()
    return rows[0], warnings
