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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from profiler.rundir.layout import RunDirError

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


def read_journal(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every scrape line of ``engine/metrics.jsonl``; a line cut by a crash is skipped and
    reported."""
    path = engine_dir(run_dir) / METRICS_JOURNAL
    lines: list[dict[str, Any]] = []
    warnings: list[str] = []
    if not path.is_file():
        return lines, warnings
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                warnings.append(f"{path.name}:{n}: incomplete scrape line skipped")
                continue
            if "body" in line:
                _parse_deferred(line)
            lines.append(line)
    lines.sort(key=lambda d: (d.get("t_start_ns", 0), d.get("endpoint", "")))
    return lines, warnings


def _parse_deferred(line: dict[str, Any]) -> None:
    """Parse a page the scraper journaled raw; a page that does not parse becomes a
    ``parse_error`` scrape, as it would have been at scrape time."""
    import time

    from collectors.engine_parse import parse_body

    body = str(line.pop("body")).encode()
    c0 = time.thread_time_ns()
    try:
        samples, entries = parse_body(line.get("format", "prometheus"), body,
                                      bool(line.pop("keep_created", False)))
    except ValueError as exc:
        line.update(ok=False, outcome="parse_error", error=str(exc)[:500], samples=[])
        return
    line["samples"] = [smp.row() for smp in samples]
    line["n_entries"] = entries
    line["parse_cpu_ns"] = time.thread_time_ns() - c0


def _arrow_tables(lines: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
    import pyarrow as pa

    m: dict[str, list[Any]] = {c: [] for c in METRIC_COLUMNS}
    s: dict[str, list[Any]] = {c: [] for c in SCRAPE_COLUMNS}
    for scrape_id, d in enumerate(lines):
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
    m_types = {"scrape": pa.int64(), "t_ns": pa.int64(), "family": pa.string(),
               "type": pa.string(), "sample": pa.string(), "labels": pa.string(),
               "value": pa.float64()}
    metrics = pa.table({c: pa.array(m[c], type=m_types[c]) for c in METRIC_COLUMNS})
    scrapes = pa.table({
        c: pa.array(s[c], type=(pa.string() if c in _SCRAPE_STR
                                else pa.bool_() if c == "ok" else pa.int64()))
        for c in SCRAPE_COLUMNS
    })
    return metrics, scrapes


def finalize_engine_tables(run_dir: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
    """Write ``metrics.parquet`` and ``scrapes.parquet`` from the journal; returns (scrapes
    written, warnings). Files are written under temporary names and renamed, and the journal is
    removed only after both are in place. A run without an ``engine/`` journal is left alone."""
    import pyarrow.parquet as pq

    edir = engine_dir(run_dir)
    journal = edir / METRICS_JOURNAL
    if not journal.is_file():
        return 0, []
    lines, warnings = read_journal(run_dir)
    metrics, scrapes = _arrow_tables(lines)
    for table, name in ((metrics, METRICS_FILE), (scrapes, SCRAPES_FILE)):
        tmp = edir / (name + ".tmp")
        try:
            pq.write_table(table, tmp, compression="zstd")
        except OSError as exc:
            raise RunDirError(f"cannot write {edir / name}: {exc}") from exc
        os.replace(tmp, edir / name)
    if not keep_journal:
        journal.unlink()
    return scrapes.num_rows, warnings


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
