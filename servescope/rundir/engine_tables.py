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

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from servescope.redact import redact_text
from servescope.rundir.atomic import staged
from servescope.rundir.layout import RunDirError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "ENGINE_DIR",
    "METRICS_FILE",
    "METRICS_JOURNAL",
    "METRIC_COLUMNS",
    "SCRAPER_FILE",
    "SCRAPES_FILE",
    "SCRAPE_COLUMNS",
    "EngineTables",
    "engine_dir",
    "finalize_engine_tables",
    "read_engine_tables",
]

ENGINE_DIR = "engine"
METRICS_JOURNAL = "metrics.jsonl"
METRICS_FILE = "metrics.parquet"
SCRAPES_FILE = "scrapes.parquet"
SCRAPER_FILE = "scraper.json"  # the scraper's settings (interval, timeout, endpoints)

METRIC_COLUMNS = ("scrape", "t_ns", "family", "type", "sample", "labels", "value")
SCRAPE_COLUMNS = ("scrape", "tag", "endpoint", "format", "t_sched_ns", "t_start_ns",
                  "t_end_ns", "ok", "status", "outcome", "error", "n_samples", "n_entries",
                  "body_bytes", "cpu_ns")
_SCRAPE_STR = frozenset({"tag", "endpoint", "format", "outcome", "error"})


def engine_dir(run_dir: Path) -> Path:
    return Path(run_dir) / ENGINE_DIR


_BATCH_ROWS = 200_000  # metric rows per parquet row group while writing


def _journal_index(path: Path) -> tuple[list[tuple[int, str, int, int]], list[str]]:
    """(t_start_ns, endpoint, offset, length) of every scrape line, in t_start_ns order,
    read one line at a time (a journal of capped pages is never held whole); a line cut by
    a crash is skipped and reported."""
    index: list[tuple[int, str, int, int]] = []
    warnings: list[str] = []
    offset = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            here, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                warnings.append(f"{path.name}:{n}: incomplete scrape line skipped")
                continue
            if isinstance(line, dict):
                index.append((int(line.get("t_start_ns", 0) or 0),
                              str(line.get("endpoint", "")), here, len(raw)))
    index.sort(key=lambda e: (e[0], e[1]))
    return index, warnings


def _iter_journal(path: Path, index: list[tuple[int, str, int, int]]
                  ) -> Iterator[dict[str, Any]]:
    """The indexed lines in order, raw pages parsed, one at a time."""
    with path.open("rb") as fh:
        for _t, _ep, offset, length in index:
            fh.seek(offset)
            line: dict[str, Any] = orjson.loads(fh.read(length))
            if "body" in line:
                _parse_deferred(line)
            yield line


def read_journal(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every scrape line of ``engine/metrics.jsonl``, in ``t_start_ns`` order; a line cut by
    a crash is skipped and reported."""
    path = engine_dir(run_dir) / METRICS_JOURNAL
    if not path.is_file():
        return [], []
    index, warnings = _journal_index(path)
    return list(_iter_journal(path, index)), warnings


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


class _Tables:
    """Rows of both tables, added one scrape at a time; metric rows are taken in batches."""

    def __init__(self) -> None:
        self.m: dict[str, list[Any]] = {c: [] for c in METRIC_COLUMNS}
        self.s: dict[str, list[Any]] = {c: [] for c in SCRAPE_COLUMNS}

    @property
    def metric_rows(self) -> int:
        return len(self.m["scrape"])

    def add(self, scrape_id: int, d: dict[str, Any]) -> None:
        m, s = self.m, self.s
        samples = d.get("samples") or []
        t_ns = int(d.get("t_end_ns", -1))
        for family, typ, sample, labels, value in samples:
            m["family"].append(family)
            m["type"].append(typ)
            m["sample"].append(sample)
            m["labels"].append(labels)
            m["value"].append(float("nan") if value is None else float(value))
        m["scrape"].extend([scrape_id] * len(samples))
        m["t_ns"].extend([t_ns] * len(samples))
        for c in SCRAPE_COLUMNS:
            if c == "scrape":
                s[c].append(scrape_id)
            elif c == "n_samples":
                s[c].append(len(samples))
            elif c == "ok":
                s[c].append(bool(d.get("ok", False)))
            elif c in _SCRAPE_STR:
                s[c].append(str(d.get(c) or ""))
            else:
                v = d.get(c)
                s[c].append(-1 if v is None else int(v))

    def take_metrics(self) -> pa.Table:
        import pyarrow as pa

        table = pa.table({c: pa.array(self.m[c], type=_metric_types()[c])
                          for c in METRIC_COLUMNS})
        self.m = {c: [] for c in METRIC_COLUMNS}
        return table

    def scrapes(self) -> pa.Table:
        import pyarrow as pa

        return pa.table({
            c: pa.array(self.s[c], type=(pa.string() if c in _SCRAPE_STR
                                         else pa.bool_() if c == "ok" else pa.int64()))
            for c in SCRAPE_COLUMNS
        })


def _metric_types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    return {"scrape": pa.int64(), "t_ns": pa.int64(), "family": pa.string(),
            "type": pa.string(), "sample": pa.string(), "labels": pa.string(),
            "value": pa.float64()}


def _arrow_tables(lines: Iterable[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    tables = _Tables()
    for scrape_id, d in enumerate(lines):
        tables.add(scrape_id, d)
    return tables.take_metrics(), tables.scrapes()


def _write_tables(path: Path, index: list[tuple[int, str, int, int]], metrics_to: Path,
                  scrapes_to: Path) -> int:
    """Stream the journal into both parquet files; returns the scrapes. Memory holds one
    parsed page and one batch of rows, not the whole run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = _Tables()
    schema = pa.schema([(c, t) for c, t in _metric_types().items()])
    with pq.ParquetWriter(metrics_to, schema, compression="zstd") as out:
        for scrape_id, d in enumerate(_iter_journal(path, index)):
            tables.add(scrape_id, d)
            if tables.metric_rows >= _BATCH_ROWS:
                out.write_table(tables.take_metrics())
        out.write_table(tables.take_metrics())
    scrapes = tables.scrapes()
    pq.write_table(scrapes, scrapes_to, compression="zstd")
    return int(scrapes.num_rows)


def finalize_engine_tables(run_dir: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
    """Write ``metrics.parquet`` and ``scrapes.parquet`` from the journal; returns (scrapes
    written, warnings). The journal is streamed one scrape at a time, so memory is bounded by
    the largest page (capped by the scraper) and time by the bytes journaled. Both files are
    written whole or not at all (:func:`servescope.rundir.atomic.staged`: no stray temporary
    file), and the journal is removed only after both are in place. A run without an
    ``engine/`` journal is left alone."""
    edir = engine_dir(run_dir)
    journal = edir / METRICS_JOURNAL
    if not journal.is_file():
        return 0, []
    index, warnings = _journal_index(journal)
    with staged(edir / METRICS_FILE, edir / SCRAPES_FILE) as (metrics_tmp, scrapes_tmp):
        n = _write_tables(journal, index, metrics_tmp, scrapes_tmp)
    if not keep_journal:
        journal.unlink()
    return n, warnings


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
    lines, warnings = read_journal(run_dir)
    m_t, s_t = _arrow_tables(lines)
    return EngineTables(m_t.to_pandas(), s_t.to_pandas(), "journal", settings, warnings)
