"""``RUN/engine/``: the engine-metrics journal and the two tables made from it.

While a run goes on, :class:`collectors.engine_metrics.MetricsScraper` appends one JSON line
per scrape to ``engine/metrics.jsonl``. :func:`finalize_engine_tables` turns the journal into

``engine/metrics.parquet`` (one row per sample, long format)

======== ======= ==============================================================
column   type    meaning
======== ======= ==============================================================
scrape   int64   joins ``scrapes.parquet`` (scrapes numbered in t_start_ns order)
t_ns     int64   the scrape's ``t_end_ns``: the value was read no later than this
family   string  metric family (prometheus_client's name: counters without _total)
type     string  counter, gauge, histogram, summary, info, unknown; ``trtllm_iter``
                 for TensorRT-LLM JSON iteration-stat fields
sample   string  exposed sample name (``vllm:num_preemptions_total``,
                 ``..._bucket``, ``trtllm_iter:kvCacheStats.usedNumBlocks``)
labels   string  labels as JSON with sorted keys (``{}`` when none); TensorRT-LLM
                 JSON entries carry their own ``iter`` and ``timestamp`` here
value    double  sample value (NaN/±Inf are stored as NaN)
======== ======= ==============================================================

``engine/scrapes.parquet`` (one row per scrape attempt, failed ones included): ``scrape, tag,
endpoint, format, t_sched_ns, t_start_ns, t_end_ns, ok, status, outcome, error, n_samples,
n_entries, body_bytes, cpu_ns`` (see docs/engines.md). Reading needs no engine and no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from servescope.redact import redact_text
from servescope.rundir.finalize import Rows, TableSpec, finalize, read_tables
from servescope.rundir.journal import JournalEntry
from servescope.rundir.journal import read_journal as _read_lines
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ENGINE_DIR",
    "METRICS",
    "METRICS_FILE",
    "METRICS_JOURNAL",
    "METRIC_COLUMNS",
    "SCRAPER_FILE",
    "SCRAPES",
    "SCRAPES_FILE",
    "SCRAPE_COLUMNS",
    "EngineTables",
    "engine_dir",
    "finalize_engine_tables",
    "read_engine_tables",
    "read_journal",
]

ENGINE_DIR = "engine"
METRICS_JOURNAL = "metrics.jsonl"
METRICS_FILE = "metrics.parquet"
SCRAPES_FILE = "scrapes.parquet"
SCRAPER_FILE = "scraper.json"  # the scraper's settings (interval, timeout, endpoints)

METRICS = TableSpec(f"{ENGINE_DIR}/{METRICS_FILE}", (
    ("scrape", "int64"), ("t_ns", "int64"), ("family", "string"), ("type", "string"),
    ("sample", "string"), ("labels", "string"), ("value", "float64")))
_SCRAPE_STR = frozenset({"tag", "endpoint", "format", "outcome", "error"})
SCRAPES = TableSpec(f"{ENGINE_DIR}/{SCRAPES_FILE}", tuple(
    (c, "string" if c in _SCRAPE_STR else "bool" if c == "ok" else "int64")
    for c in ("scrape", "tag", "endpoint", "format", "t_sched_ns", "t_start_ns", "t_end_ns",
              "ok", "status", "outcome", "error", "n_samples", "n_entries", "body_bytes",
              "cpu_ns")))
METRIC_COLUMNS = METRICS.names
SCRAPE_COLUMNS = SCRAPES.names
BATCH_BYTES = 16 << 20  # journal bytes (raw pages) parsed and written at a time


def engine_dir(run_dir: Path) -> Path:
    return Path(run_dir) / ENGINE_DIR


def _int(v: object, default: int = -1) -> int:
    """``v`` as an int (a float with an integer value too); ``default`` for None."""
    if v is None:
        return default
    if type(v) is int or (type(v) is float and v.is_integer()):
        return int(v)
    raise ValueError(f"{orjson.dumps(v).decode()[:30]} is not an integer")


def _parse_deferred(line: dict[str, Any]) -> None:
    """Parse a page the scraper journaled raw; a page that does not parse becomes a
    ``parse_error`` scrape, as it would have been at scrape time."""
    import time

    from servescope.engines.parse import parse_body

    body = str(line.pop("body")).encode()
    c0 = time.thread_time_ns()
    try:
        samples, entries = parse_body(line.get("format", "prometheus"), body,
                                      bool(line.pop("keep_created", False)))
    except ValueError as exc:
        line.update(ok=False, outcome="parse_error", error=redact_text(str(exc))[:500],
                    samples=[])
        return
    line["samples"] = [smp.row() for smp in samples]
    line["n_entries"] = entries
    line["parse_cpu_ns"] = time.thread_time_ns() - c0


class _EngineTables:
    """Scrape lines → ``metrics.parquet`` and ``scrapes.parquet``, in ``t_start_ns`` order
    (scrapes numbered in that order). A scrape line whose values do not fit its columns is
    skipped with a warning."""

    specs = (METRICS, SCRAPES)

    def __init__(self) -> None:
        self.next_scrape = 0

    @property
    def batch_bytes(self) -> int:
        return BATCH_BYTES

    def torn(self, name: str, line: int) -> str:
        return f"{name}:{line}: incomplete scrape line skipped"

    def key(self, entry: JournalEntry, where: str, warnings: list[str]
            ) -> tuple[int, str] | None:
        d = entry.value
        if type(d) is not dict:
            warnings.append(f"{where}: scrape line is not a JSON object; skipped")
            return None
        try:
            return _int(d.get("t_start_ns"), 0), str(d.get("endpoint", ""))
        except ValueError as exc:
            warnings.append(f"{where}: t_start_ns {exc}; scrape line skipped")
            return None

    def convert(self, lines: list[Any], warnings: list[str]) -> Sequence[pa.Table]:
        m, s = Rows(METRICS), Rows(SCRAPES)
        for d in lines:
            if "body" in d:
                _parse_deferred(d)
            try:
                scrape, metrics = _scrape_row(self.next_scrape, d), _metric_rows(d)
            except (TypeError, ValueError) as exc:
                warnings.append(f"scrape at t_start_ns {d.get('t_start_ns')}: {exc}; skipped")
                continue
            for c, v in zip(SCRAPE_COLUMNS, scrape, strict=True):
                s.cols[c].append(v)
            n = len(metrics[0])
            for c, vs in zip(METRIC_COLUMNS[2:], metrics, strict=True):
                m.cols[c].extend(vs)
            m.cols["scrape"].extend([self.next_scrape] * n)
            m.cols["t_ns"].extend([_int(d.get("t_end_ns"))] * n)
            self.next_scrape += 1
            d.pop("samples", None)  # free the parsed page now (the batch holds many)
        return m.take(), s.take()


def _metric_rows(d: dict[str, Any]) -> tuple[list[Any], ...]:
    """The family, type, sample, labels and value columns of ``d``'s samples."""
    samples = d.get("samples") or []
    if type(samples) is not list:
        raise TypeError("samples is not a list")
    cols: tuple[list[Any], ...] = ([], [], [], [], [])
    for row in samples:
        family, typ, sample, labels, value = row
        if not all(type(x) is str for x in (family, typ, sample, labels)):
            raise TypeError(f"sample {orjson.dumps(row).decode()[:60]} is not 4 strings "
                            "and a number")
        cols[0].append(family)
        cols[1].append(typ)
        cols[2].append(sample)
        cols[3].append(labels)
        cols[4].append(math.nan if value is None else float(value))
    return cols


def _scrape_row(scrape_id: int, d: dict[str, Any]) -> list[Any]:
    row: list[Any] = []
    for c in SCRAPE_COLUMNS:
        if c == "scrape":
            row.append(scrape_id)
        elif c == "n_samples":
            row.append(len(d.get("samples") or ()))
        elif c == "ok":
            row.append(bool(d.get("ok", False)))
        elif c in _SCRAPE_STR:
            row.append(str(d.get(c) or ""))
        else:
            row.append(_int(d.get(c)))
    return row


def read_journal(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every scrape line of ``engine/metrics.jsonl`` (raw pages parsed), in ``t_start_ns``
    order, in memory; a line cut by a crash is skipped and reported."""
    path = engine_dir(run_dir) / METRICS_JOURNAL
    if not path.is_file():
        return [], []
    warnings: list[str] = []
    conv = _EngineTables()
    keyed = []
    for entry in _read_lines(path, warnings, conv.torn):
        key = conv.key(entry, f"{path.name}:{entry.line}", warnings)
        if key is not None:
            keyed.append((key, entry.value))
    keyed.sort(key=lambda kv: kv[0])
    for _, d in keyed:
        if "body" in d:
            _parse_deferred(d)
    return [d for _, d in keyed], warnings


def finalize_engine_tables(run_dir: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
    """Write ``metrics.parquet`` and ``scrapes.parquet`` from the journal; returns (scrapes
    written, warnings). Streamed (:func:`servescope.rundir.finalize.finalize`): memory is
    bounded by a batch of raw pages (each capped by the scraper) and time by the bytes
    journaled. Both files are written whole or not at all (no stray temporary file), and the
    journal is removed only after both are in place. A run without an ``engine/`` journal is
    left alone."""
    journal = engine_dir(run_dir) / METRICS_JOURNAL
    if not journal.is_file():
        return 0, []
    rows, warnings = finalize(run_dir, [journal], _EngineTables(), keep_journal=keep_journal)
    return rows[1], warnings


@dataclass(slots=True)
class EngineTables:
    """The engine tables of a run; ``source`` is ``parquet`` or ``journal`` (a run killed
    before it could finalize)."""

    metrics: pd.DataFrame
    scrapes: pd.DataFrame
    source: str
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_engine_tables(run_dir: Path) -> EngineTables | None:
    """The run's engine tables, or None when the run scraped no engine metrics."""
    edir = engine_dir(run_dir)
    settings: dict[str, Any] = {}
    if (edir / SCRAPER_FILE).is_file():
        try:
            settings = orjson.loads((edir / SCRAPER_FILE).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            settings = {}
    m_path, s_path = edir / METRICS_FILE, edir / SCRAPES_FILE
    if m_path.is_file() and s_path.is_file():
        import pyarrow.parquet as pq

        try:
            metrics = pq.read_table(m_path).to_pandas()
            scrapes = pq.read_table(s_path).to_pandas()
        except Exception as exc:
            raise RunDirError(f"cannot read the engine tables of {run_dir}: {exc}") from exc
        return EngineTables(metrics, scrapes, "parquet", settings)
    if not (edir / METRICS_JOURNAL).is_file():
        return None
    (m_t, s_t), warnings = read_tables([edir / METRICS_JOURNAL], _EngineTables())
    return EngineTables(m_t.to_pandas(), s_t.to_pandas(), "journal", settings, warnings)
