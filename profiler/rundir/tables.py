"""Journal lines → columnar tables (``requests.parquet``, ``events.parquet``) and back."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from profiler.records import RequestRecord
from profiler.rundir.layout import EVENTS_FILE, JOURNAL_DIR, REQUESTS_FILE, RunDirError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EVENT_COLUMNS", "REQUEST_COLUMNS", "finalize_tables", "read_journals"]

_EVENT_LISTS = ("ev_t_ns", "ev_kind", "ev_chars", "ev_tokens_cum")
REQUEST_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(RequestRecord) if f.name not in _EVENT_LISTS
) + ("n_events",)
EVENT_COLUMNS = ("request_id", "seq", "t_ns", "kind", "chars", "tokens_cum")
_STR_COLUMNS = {"phase", "x_request_id", "endpoint", "outcome", "error", "finish_reason"}


def read_journals(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All request lines of all workers' journals, sorted by request_id.

    A line cut short by a crash mid-write is skipped and reported in the returned warnings.
    """
    lines: list[dict[str, Any]] = []
    warnings: list[str] = []
    jdir = run_dir / JOURNAL_DIR
    for path in sorted(jdir.glob("worker-*.jsonl")) if jdir.is_dir() else []:
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    lines.append(orjson.loads(raw))
                except orjson.JSONDecodeError:
                    warnings.append(f"{path.name}:{n}: incomplete journal line skipped")
    lines.sort(key=lambda d: (d.get("request_id", 0), d.get("worker_id", 0)))
    return lines, warnings


def _arrow_tables(lines: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    import pyarrow as pa

    req_cols: dict[str, list[Any]] = {c: [] for c in REQUEST_COLUMNS}
    ev: dict[str, list[int]] = {c: [] for c in EVENT_COLUMNS}
    for d in lines:
        t = d.get("ev_t_ns") or []
        for c in REQUEST_COLUMNS[:-1]:
            req_cols[c].append(d.get(c))
        req_cols["n_events"].append(len(t))
        rid = d["request_id"]
        n = len(t)
        ev["request_id"].extend([rid] * n)
        ev["seq"].extend(range(n))
        ev["t_ns"].extend(t)
        ev["kind"].extend(d.get("ev_kind") or [])
        ev["chars"].extend(d.get("ev_chars") or [])
        ev["tokens_cum"].extend(d.get("ev_tokens_cum") or [])
    req_arrays = {}
    for c, vals in req_cols.items():
        if c == "output_text":
            req_arrays[c] = pa.array(vals, type=pa.string())
        elif c in _STR_COLUMNS:
            req_arrays[c] = pa.array(["" if v is None else v for v in vals], type=pa.string())
        else:
            req_arrays[c] = pa.array([-1 if v is None else v for v in vals], type=pa.int64())
    ev_types = {"request_id": pa.int64(), "seq": pa.int32(), "t_ns": pa.int64(),
                "kind": pa.int8(), "chars": pa.int32(), "tokens_cum": pa.int32()}
    ev_arrays = {c: pa.array(ev[c], type=ev_types[c]) for c in EVENT_COLUMNS}
    return pa.table(req_arrays), pa.table(ev_arrays)


def finalize_tables(run_dir: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
    """Write the parquet tables from the journals; returns (requests written, warnings).

    The parquet files are written under temporary names and renamed, and the journal is
    removed only after both are in place, so an interrupted finalize loses nothing.
    """
    import pyarrow.parquet as pq

    lines, warnings = read_journals(run_dir)
    requests, events = _arrow_tables(lines)
    for table, name in ((requests, REQUESTS_FILE), (events, EVENTS_FILE)):
        tmp = run_dir / (name + ".tmp")
        try:
            pq.write_table(table, tmp, compression="zstd")
        except OSError as exc:
            raise RunDirError(f"cannot write {run_dir / name}: {exc}") from exc
        os.replace(tmp, run_dir / name)
    if not keep_journal:
        jdir = run_dir / JOURNAL_DIR
        for path in jdir.glob("worker-*.jsonl"):
            path.unlink()
        if jdir.is_dir() and not any(jdir.iterdir()):
            jdir.rmdir()
    return requests.num_rows, warnings
