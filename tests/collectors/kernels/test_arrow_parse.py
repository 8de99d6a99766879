"""The arrow way of reading a trace (pieces parsed by arrow's JSON reader on threads) gives
exactly the tables of the orjson way, whatever the text holds: names with braces, brackets,
the separator, escapes and non-ASCII characters; values arrow cannot type (kineto's
``"pid": "Spans"``, floats in integer fields); JSON nulls; nested lists of objects laid out
like the event array; a file cut short."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.kernels.ingest import KernelTables, MemorySink, ingest_trace
from collectors.kernels.jsonstream import ArrowParse, TraceStream
from collectors.kernels.tables import arrow_accepts, arrow_readable, parse_schema
from servescope.clock import ClockAnchor
from tests.collectors.kernels._traces import BASE_NS, T0_US, VLLM_CPU, gpu_events, write_trace

ANCHOR = ClockAnchor(mono_ns=5_000_000_000, wall_ns=BASE_NS + int(T0_US * 1000) - 2_000_000)
TABLES = ("gpu", "runtime", "cpu_ops", "annotations", "flows")


def _read(path: Path, *, arrow: bool, batch_bytes: int) -> KernelTables:
    sink = MemorySink()
    rec = ingest_trace(path, sink, ANCHOR, batch_bytes=batch_bytes, arrow=arrow)
    return sink.tables([rec])


def _same(path: Path, batch_bytes: int) -> KernelTables:
    fast, slow = (_read(path, arrow=a, batch_bytes=batch_bytes) for a in (True, False))
    for name in TABLES:
        assert getattr(fast, name).equals(getattr(slow, name)), name
    assert fast.traces == slow.traces
    return fast


def _pieces(path: Path, batch_bytes: int) -> tuple[int, int]:
    """(pieces arrow read, batches in all)."""
    stream = TraceStream(path, batch_bytes=batch_bytes,
                         arrow=ArrowParse(parse_schema(), arrow_readable, arrow_accepts))
    n = sum(1 for _ in stream)
    return stream.arrow_pieces, n


def _tricky() -> list[dict[str, Any]]:
    t = T0_US + 1000
    names = ['k}, {"ph": "X"}', "k},\n  {x", 'quote " and \\ backslash', "naïve 🚀 カーネル",
             "]}", "}\n]", "\u2028line\tsep"]
    return [{"ph": "X", "cat": "kernel", "name": n, "pid": 0, "tid": 7, "ts": t + 10 * i,
             "dur": 1.5, "args": {"correlation": 100 + i, "device": 0, "stream": 7,
                                  "grid": [1, 2, 3], "note": n}}
            for i, n in enumerate(names)]


@pytest.mark.parametrize("layout", ["kineto", "lines", "minified"])
@pytest.mark.parametrize("batch_bytes", [1, 200, 1 << 20])
def test_tricky_names_same_tables(tmp_path: Path, layout: str, batch_bytes: int) -> None:
    path = write_trace(tmp_path / f"t.{layout}.json.gz", gpu_events() + _tricky() * 3,
                       layout=layout)
    got = _same(path, batch_bytes)
    names = got.gpu.column("name").to_pylist()
    assert [n for n in names if n in {e["name"] for e in _tricky()}] == [
        e["name"] for e in _tricky()] * 3


def test_arrow_reads_the_plain_pieces(tmp_path: Path) -> None:
    """Not a silent fallback: kineto's layout goes mostly through arrow."""
    # kineto's layout without a string pid ("Spans") or a list of objects in args (where a
    # cut may fall inside an event and be read again the orjson way)
    events = [e for e in gpu_events() if e["pid"] != "Spans"
              and "nested" not in e.get("args", {})] * 20
    path = write_trace(tmp_path / "t.json", events)
    arrow, total = _pieces(path, 400)
    assert total > 10
    assert arrow == total  # the last piece (up to "]") too


def test_untypable_values_fall_back_piece_by_piece(tmp_path: Path) -> None:
    plain = [e for e in gpu_events() if e["pid"] != "Spans"]
    odd = [{**plain[6], "pid": 1.5}, {**plain[6], "name": None}, {**plain[3], "args": [1]},
           {**plain[6], "args": {**plain[6]["args"], "device": None}},
           {**plain[6], "args": {**plain[6]["args"], "device": "cuda:0"}}, gpu_events()[-1]]
    events = plain * 5 + odd + plain * 5
    path = write_trace(tmp_path / "t.json", events)
    for batch_bytes in (1, 300, 3000):
        _same(path, batch_bytes)
    arrow, total = _pieces(path, 300)
    assert 0 < arrow < total


def test_nested_lists_of_objects_in_the_event_layout(tmp_path: Path) -> None:
    """A list of objects inside an event, written with the separator of the event array:
    a cut inside it must be found out and read again."""
    ev = {"ph": "X", "cat": "cpu_op", "name": "aten::cat", "pid": 1, "tid": 1,
          "ts": T0_US, "dur": 2.0, "args": {"External id": 5}}
    head = '{"traceEvents": [\n  '
    inner = ",\n  ".join(f'{{"a": "{i}"}}' for i in range(200))
    big = ('{"ph": "X", "cat": "cpu_op", "name": "big", "pid": 1, "tid": 1, "ts": '
           f'{T0_US + 5}, "dur": 1.0, "args": {{"list": [\n  {inner}\n  ]}}}}')
    events = [json.dumps(ev)] * 30 + [big] + [json.dumps(ev)] * 30
    path = tmp_path / "nested.json"
    path.write_text(head + ",\n  ".join(events) + "\n]}\n")
    for batch_bytes in (1, 100, 500, 1 << 20):
        got = _same(path, batch_bytes)
        assert got.cpu_ops.num_rows == 61


@pytest.mark.parametrize("frac", [3, 5, 7, 9])
def test_truncated_same_as_orjson(tmp_path: Path, frac: int) -> None:
    raw = gzip.decompress(VLLM_CPU.read_bytes())
    cut = tmp_path / "cut.json"
    cut.write_bytes(raw[: len(raw) * frac // 10])
    got = _same(cut, 64 << 10)
    assert got.traces[0].truncated


def test_real_capture_same_tables() -> None:
    for batch_bytes in (32 << 10, 1 << 20):
        _same(VLLM_CPU, batch_bytes)


def test_several_ranks_same_tables(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from collectors.kernels import ingest_traces

    head = {"schemaVersion": 1, "baseTimeNanoseconds": BASE_NS}
    files = [write_trace(tmp_path / f"r_rank{i}.json.gz", gpu_events() * 50, header=head)
             for i in (2, 0, 1)]
    run = tmp_path / "run"
    recs = ingest_traces(files, run, ANCHOR)
    assert [r.rank for r in recs] == [2, 0, 1]
    for name in TABLES:
        got = pq.read_table(run / "kernels" / f"{name}.parquet")
        want = pa.concat_tables([getattr(_read(f, arrow=False, batch_bytes=1 << 20), name)
                                 for f in files])
        assert got.equals(want), name


@pytest.mark.parametrize("bad", [b'"name": "bad \xff utf8"', b'"ts": NaN', b'"dur": Infinity',
                                 b'"name": null'])
def test_text_orjson_rejects_or_reads_apart(tmp_path: Path, bad: bytes) -> None:
    """Invalid UTF-8, NaN/Infinity (not JSON) and nulls (arrow reads them as missing keys)
    in a field the tables take: the arrow way gives what the orjson way gives."""
    ev = {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": T0_US,
          "dur": 2.5, "args": {"correlation": 1, "device": 0, "stream": 7}}
    key = bad.split(b":")[0]
    line = json.dumps(ev).encode()
    start = line.index(key)
    end = line.index(b",", start)
    odd = line[:start] + bad + line[end:]
    body = b",\n  ".join([line] * 40 + [odd] + [line] * 40)
    path = tmp_path / "odd.json"
    path.write_bytes(b'{"traceEvents": [\n  ' + body + b"\n]}\n")
    for batch_bytes in (1, 500, 1 << 20):
        _same(path, batch_bytes)
