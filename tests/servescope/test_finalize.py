"""The one journal → parquet finalizer (servescope.rundir.finalize) and the two collectors'
table specs that use it: the client's (requests/events) and the engine's (metrics/scrapes)."""

from __future__ import annotations

import errno
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.timeline import TimelineRecorder
from servescope.records import RequestRecord
from servescope.rundir import engine_tables, tables
from servescope.rundir.atomic import RunDirWriteError
from servescope.rundir.engine_tables import (
    METRICS_JOURNAL,
    engine_dir,
    finalize_engine_tables,
    read_engine_tables,
)
from servescope.rundir.finalize import Rows, TableSpec, finalize, read_tables
from servescope.rundir.journal import JournalEntry
from servescope.rundir.layout import journal_path
from servescope.rundir.tables import finalize_tables, journal_tables

SPEC = TableSpec("t.parquet", (("k", "int64"), ("name", "string"), ("x", "float64")))
TWICE = TableSpec("sub/t2.parquet", (("k", "int64"), ("ok", "bool")))


class Toy:
    """Lines {"k": int, "name": str, "x": number}: one row in each table per line."""

    specs = (SPEC, TWICE)

    def __init__(self, batch_bytes: int = 1 << 20, fail_on_batch: int = -1) -> None:
        self.batch_bytes = batch_bytes
        self.fail_on_batch = fail_on_batch
        self.batches = 0

    def torn(self, name: str, line: int) -> str:
        return f"{name}:{line}: torn"

    def key(self, entry: JournalEntry, where: str, warnings: list[str]) -> tuple[int] | None:
        if type(entry.value) is not dict or type(entry.value.get("k")) is not int:
            warnings.append(f"{where}: no k")
            return None
        return (entry.value["k"],)

    def convert(self, lines: list[Any], warnings: list[str]) -> Sequence[pa.Table]:
        if self.batches == self.fail_on_batch:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.batches += 1
        a, b = Rows(SPEC), Rows(TWICE)
        for d in lines:
            for c in SPEC.names:
                a.cols[c].append(d[c])
            b.cols["k"].append(d["k"])
            b.cols["ok"].append(d["x"] > 0)
        return a.take(), b.take()


def _journals(tmp_path: Path) -> list[Path]:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_bytes(b"".join(orjson.dumps({"k": k, "name": f"n{k}", "x": k - 3}) + b"\n"
                             for k in (5, 1, 3)) + b'[1]\n{"k": 9, "na')
    two.write_bytes(b"".join(orjson.dumps({"k": k, "name": f"n{k}", "x": k - 3.5}) + b"\n"
                             for k in (4, 0, 2)))
    return [one, two]


def test_lines_of_several_journals_in_key_order_in_batches(tmp_path: Path) -> None:
    journals = _journals(tmp_path)
    rows, warnings = finalize(tmp_path, journals, Toy(batch_bytes=1))
    assert rows == [6, 6]
    assert warnings == ["one.jsonl:4: no k", "one.jsonl:5: torn"]
    t = pq.read_table(tmp_path / "t.parquet")
    assert t.schema == SPEC.schema()
    assert t.column("k").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert t.column("x").to_pylist() == [-3.5, -2.0, -1.5, 0.0, 0.5, 2.0]
    assert t.column("name").to_pylist() == [f"n{k}" for k in range(6)]
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups == 6
    t2 = pq.read_table(tmp_path / "sub" / "t2.parquet")
    assert t2.column("ok").to_pylist() == [False, False, False, False, True, True]
    assert not any(p.exists() for p in journals)  # removed once the tables are in place
    assert sorted(p.name for p in tmp_path.rglob("*.tmp")) == []


def test_in_memory_reading_gives_the_same_tables(tmp_path: Path) -> None:
    journals = _journals(tmp_path)
    (got_a, got_b), warnings = read_tables(journals, Toy(batch_bytes=1))
    assert warnings == ["one.jsonl:4: no k", "one.jsonl:5: torn"]
    finalize(tmp_path, journals, Toy(), keep_journal=True)
    assert got_a.equals(pq.read_table(tmp_path / "t.parquet"))
    assert got_b.equals(pq.read_table(tmp_path / "sub" / "t2.parquet"))
    assert all(p.exists() for p in journals)


def test_no_lines_still_makes_tables_with_their_columns(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_bytes(b"")
    assert finalize(tmp_path, [empty], Toy()) == ([0, 0], [])
    assert pq.read_table(tmp_path / "t.parquet").schema == SPEC.schema()
    (a, _), _ = read_tables([], Toy())
    assert a.num_rows == 0
    assert a.schema == SPEC.schema()


def test_a_failure_mid_way_writes_no_table_and_keeps_the_journals(tmp_path: Path) -> None:
    journals = _journals(tmp_path)
    with pytest.raises(RunDirWriteError, match="no space left on device"):
        finalize(tmp_path, journals, Toy(batch_bytes=1, fail_on_batch=3))
    assert all(p.exists() for p in journals)
    assert not (tmp_path / "t.parquet").exists()
    assert list(tmp_path.rglob("*.parquet*")) == []


def test_a_spec_knows_its_types() -> None:
    with pytest.raises(ValueError, match="unknown column types"):
        TableSpec("x.parquet", (("a", "int16"),))
    table = SPEC.table({"x": [1, 2], "name": ["a", None], "k": pa.array([7, 8], pa.int32())})
    assert table.schema == SPEC.schema()  # any column order in, the spec's out; cast
    assert table.column("x").to_pylist() == [1.0, 2.0]


# ---------------------------------------------------------------------------- the client


def _records(n: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    out = []
    for rid in range(n):
        k = rng.randrange(0, 6)
        rec = RequestRecord(request_id=rid, worker_id=rid % 2, t_send_ns=10**15 + rid,
                            usage_completion_tokens=k, status=200, x_request_id=f"r{rid}")
        rec.ev_t_ns = [10**15 + rid * 1000 + j for j in range(k)]
        rec.ev_kind = [0] * k
        rec.ev_chars = [j + 1 for j in range(k)]
        rec.ev_tokens_cum = list(range(1, k + 1))
        out.append(rec)
    return out


def test_client_tables_streamed_in_small_batches_hold_every_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = _records(60, seed=1)
    order = list(recs)
    random.Random(2).shuffle(order)  # requests end out of id order
    writers = {w: TimelineRecorder(tmp_path, w) for w in (0, 1)}
    for rec in order:
        writers[rec.worker_id].write(rec)
    for w in writers.values():
        w.close()
    with journal_path(tmp_path, 1).open("ab") as fh:  # one bad line: kept as a row
        fh.write(orjson.dumps({"request_id": 99, "ev_t_ns": [1], "ev_kind": []}) + b"\n")
    monkeypatch.setattr(tables, "BATCH_BYTES", 600)  # a few requests per batch
    in_memory = journal_tables(tmp_path)
    n, warnings = finalize_tables(tmp_path)
    assert n == 61
    assert warnings == ["request 99: event lists of unequal length (ev_t_ns 1, ev_kind 0, "
                        "ev_chars 0, ev_tokens_cum 0); kept as invalid_response without its "
                        "events"]
    req = pq.read_table(tmp_path / "requests.parquet")
    ev = pq.read_table(tmp_path / "events.parquet")
    assert pq.ParquetFile(tmp_path / "requests.parquet").metadata.num_row_groups > 3
    assert req.column("request_id").to_pylist() == [*range(60), 99]
    assert req.column("x_request_id").to_pylist()[:60] == [f"r{r}" for r in range(60)]
    assert req.column("outcome").to_pylist()[60] == "invalid_response"
    assert req.column("n_events").to_pylist() == [len(r.ev_t_ns) for r in recs] + [0]
    want = [(r.request_id, j, t, c) for r in recs
            for j, (t, c) in enumerate(zip(r.ev_t_ns, r.ev_chars, strict=True))]
    assert list(zip(*(ev.column(c).to_pylist() for c in ("request_id", "seq", "t_ns", "chars")),
                    strict=True)) == want
    assert in_memory[0].equals(req)
    assert in_memory[1].equals(ev)
    assert not (tmp_path / "journal").exists()


# ---------------------------------------------------------------------------- the engine


def _scrape(t: float, **changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"endpoint": "e", "format": "prometheus", "tag": "", "t_sched_ns": t,
                         "t_start_ns": t, "t_end_ns": t + 1, "ok": True, "status": 200,
                         "outcome": "ok", "error": "", "body_bytes": 10, "cpu_ns": 0,
                         "n_entries": 0,
                         "samples": [["vllm:x", "gauge", "vllm:x", "{}", float(t)]]}
    d.update(changes)
    return d


def test_engine_lines_whose_values_do_not_fit_are_skipped_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edir = engine_dir(tmp_path)
    edir.mkdir()
    lines = [_scrape(30), _scrape(10), _scrape(20, status="two hundred"),
             _scrape(40, samples=[["a", "gauge", "a", "{}", "NaN?"]]), [1, 2],
             _scrape(50, t_start_ns="late"), _scrape(60, samples=[[1, 2]]), _scrape(5.0)]
    (edir / METRICS_JOURNAL).write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in lines))
    monkeypatch.setattr(engine_tables, "BATCH_BYTES", 1)
    journal = read_engine_tables(tmp_path)
    assert journal is not None
    n, warnings = finalize_engine_tables(tmp_path)
    assert n == 3
    assert warnings == [
        "metrics.jsonl:5: scrape line is not a JSON object; skipped",
        "metrics.jsonl:6: t_start_ns \"late\" is not an integer; scrape line skipped",
        "scrape at t_start_ns 20: \"two hundred\" is not an integer; skipped",
        "scrape at t_start_ns 40: could not convert string to float: 'NaN?'; skipped",
        "scrape at t_start_ns 60: not enough values to unpack (expected 5, got 2); skipped",
    ]
    tables_now = read_engine_tables(tmp_path)
    assert tables_now is not None
    assert list(tables_now.scrapes["t_start_ns"]) == [5, 10, 30]
    assert list(tables_now.scrapes["scrape"]) == [0, 1, 2]
    assert list(tables_now.metrics["value"]) == [5.0, 10.0, 30.0]
    assert list(tables_now.metrics["t_ns"]) == [6, 11, 31]
    assert journal.warnings == warnings
    assert journal.scrapes.equals(tables_now.scrapes)
    assert journal.metrics.equals(tables_now.metrics)
