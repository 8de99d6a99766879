"""Replay a timestamped request trace: the Mooncake JSONL trace or the Azure LLM inference CSV.

Formats (detected from the file's first line):

- Mooncake: one JSON object per line, ``{"timestamp": ms, "input_length": int,
  "output_length": int, "hash_ids": [int, …]}``. Each hash id names a block of
  ``block_size`` (512) prompt tokens; the same id gives the same block text, so rows that share
  hash-id prefixes share prompt prefixes and exercise prefix caching as the trace intends.
- Azure: CSV with header ``TIMESTAMP,ContextTokens,GeneratedTokens``, ``TIMESTAMP`` a
  datetime string such as ``2023-11-16 18:15:46.6805900`` (any number of fractional digits,
  optional ``Z``/``±HH:MM``).

Rows are ordered by time; the first ``n`` are replayed, ``arrival_offset_ns`` relative to the
first of them and divided by ``time_scale``. Lengths of 0 are raised to 1 (a request needs a
prompt token and ``max_tokens >= 1``).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from profiler.workloads.errors import WorkloadError
from profiler.workloads.files import read_bytes
from profiler.workloads.sessions import Session, Turn
from profiler.workloads.spec import DatasetSpec
from profiler.workloads.textgen import WINDOW_CHARS, PromptSynth
from profiler.workloads.tokenizer import Tokenizer

__all__ = ["TraceRow", "build_trace", "parse_datetime_ns", "read_trace"]

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000
AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_KEYS = ("timestamp", "input_length", "output_length")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?"
)


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One trace request: absolute time in ns on the trace's own clock, and its lengths."""

    line: int
    t_ns: int
    input_len: int
    output_len: int
    hash_ids: tuple[int, ...] = ()


def parse_datetime_ns(text: str) -> int:
    """Nanoseconds since the epoch of an ISO-like datetime string, exact to the digit
    (naive times are taken as UTC)."""
    m = _DATETIME.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a datetime: {text!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac, tz = m.group(7) or "", m.group(8)
    base = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC)
    ns = int(base.timestamp()) * _NS_PER_S + int((frac + "0" * 9)[:9])
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        ns -= sign * (hh * 3600 + mm * 60) * _NS_PER_S
    return ns


def _int_field(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WorkloadError(f"{where}: {key!r} must be an integer >= 0, got {value!r}")
    return value


def _mooncake_row(line: str, line_no: int, path: str) -> TraceRow:
    where = f"{path}:{line_no}"
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise WorkloadError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise WorkloadError(f"{where}: expected a JSON object")
    missing = [k for k in MOONCAKE_KEYS if k not in obj]
    if missing:
        raise WorkloadError(f"{where}: missing {', '.join(missing)} (Mooncake trace row)")
    ts = obj["timestamp"]
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not ts >= 0:
        raise WorkloadError(f"{where}: 'timestamp' must be a number of ms >= 0, got {ts!r}")
    hash_ids = obj.get("hash_ids", [])
    if not isinstance(hash_ids, list) or not all(
        isinstance(h, int) and not isinstance(h, bool) for h in hash_ids
    ):
        raise WorkloadError(f"{where}: 'hash_ids' must be a list of integers")
    t_ns = ts * _NS_PER_MS if isinstance(ts, int) else round(ts * _NS_PER_MS)
    return TraceRow(
        line_no, t_ns, _int_field(obj, "input_length", where),
        _int_field(obj, "output_length", where), tuple(hash_ids),
    )


def _azure_rows(lines: list[str], path: str) -> list[TraceRow]:
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in AZURE_COLUMNS if c not in header]
    if missing:
        raise WorkloadError(
            f"{path}:1: CSV header lacks {', '.join(missing)} "
            f"(Azure trace: {','.join(AZURE_COLUMNS)})"
        )
    i_t, i_in, i_out = (header.index(c) for c in AZURE_COLUMNS)
    rows = []
    for rec in reader:
        where = f"{path}:{reader.line_num}"
        if not any(f.strip() for f in rec):
            continue
        if len(rec) != len(header):
            raise WorkloadError(f"{where}: {len(rec)} fields, header has {len(header)}")
        try:
            t_ns = parse_datetime_ns(rec[i_t])
            n_in, n_out = int(rec[i_in]), int(rec[i_out])
        except ValueError as exc:
            raise WorkloadError(f"{where}: {exc}") from exc
        if n_in < 0 or n_out < 0:
            raise WorkloadError(f"{where}: token counts must be >= 0")
        rows.append(TraceRow(reader.line_num, t_ns, n_in, n_out))
    return rows


def read_trace(path: str) -> tuple[str, list[TraceRow]]:
    """``(format, rows)`` of a trace file, ``format`` being ``"mooncake"`` or ``"azure"``;
    rows sorted by time (stable)."""
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkloadError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first:
        raise WorkloadError(f"{path}: no rows (empty file)")
    if first.startswith("{"):
        fmt = "mooncake"
        rows = [_mooncake_row(ln, i, path) for i, ln in enumerate(lines, 1) if ln.strip()]
    elif "," in first:
        fmt = "azure"
        rows = _azure_rows(lines, path)
    else:
        raise WorkloadError(
            f"{path}: unrecognized trace format; expected Mooncake JSONL "
            f'({{"timestamp": ms, "input_length": …}}) or Azure CSV ({",".join(AZURE_COLUMNS)})'
        )
    if not rows:
        raise WorkloadError(f"{path}: no rows")
    rows.sort(key=lambda r: r.t_ns)
    return fmt, rows


class _BlockPrompts:
    """Mooncake prompts assembled from per-hash-id blocks, each block's text made once."""

    def __init__(self, tok: Tokenizer, synth: PromptSynth, block_size: int) -> None:
        self.tok = tok
        self.synth = synth
        self.block_size = block_size
        self.blocks: dict[tuple[int, int], str] = {}

    def prompt(self, n_tokens: int, hash_ids: Sequence[int]) -> str:
        """Blocks of ``block_size`` tokens (the last one partial); block ``j`` is the text of
        ``(hash_ids[j], its token count)``, made on first use as a continuation of the end of
        the block before it so the boundary does not merge; blocks beyond ``hash_ids`` are
        unique. The caller counts the whole prompt's tokens."""
        parts: list[str] = []
        prev = ""
        for j, start in enumerate(range(0, n_tokens, self.block_size)):
            size = min(self.block_size, n_tokens - start)
            key = (hash_ids[j], size) if j < len(hash_ids) else None
            piece = self.blocks.get(key) if key is not None else None
            if piece is None:
                piece, _ = self.synth.fit(size, prev[-WINDOW_CHARS:])
                if key is not None:
                    self.blocks[key] = piece
            parts.append(piece)
            prev = piece
        return "".join(parts)


def build_trace(
    spec: DatasetSpec, n: int, tok: Tokenizer, rng: np.random.Generator
) -> list[Session]:
    """Single-turn sessions replaying the first ``n`` rows of a trace (see module doc)."""
    path = spec.path or ""
    fmt, rows = read_trace(path)
    if n > len(rows):
        raise WorkloadError(f"{path}: the {fmt} trace has {len(rows)} rows, {n} asked for")
    rows = rows[:n]
    synth = PromptSynth(tok, rng)
    blocks = _BlockPrompts(tok, synth, spec.block_size)
    t0 = rows[0].t_ns
    sessions = []
    for i, row in enumerate(rows):
        n_in = max(1, row.input_len)
        if row.hash_ids:
            prompt = blocks.prompt(n_in, row.hash_ids)
            count = len(tok.encode(prompt))
        else:
            prompt, count = synth.fit(n_in)
        if spec.output_len is not None:
            max_tokens = spec.output_len.sample(rng, 1)[0]
        else:
            max_tokens = max(1, row.output_len)
        delta = row.t_ns - t0
        offset = delta if spec.time_scale == 1.0 else round(delta / spec.time_scale)
        sessions.append(
            Session(
                i, (Turn(prompt, count, max_tokens),), arrival_offset_ns=offset,
                prompt_tokens_source=tok.source,
            )
        )
    return sessions
