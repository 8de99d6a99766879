from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from profiler.workloads.datasets import build_sessions
from profiler.workloads.errors import WorkloadError
from profiler.workloads.spec import DatasetSpec, LengthDist
from profiler.workloads.tokenizer import HFTokenizer
from profiler.workloads.traces import parse_datetime_ns, read_trace

MOONCAKE: list[dict[str, object]] = [
    {"timestamp": 1000, "input_length": 1100, "output_length": 30, "hash_ids": [1, 2, 3]},
    {"timestamp": 1500, "input_length": 1300, "output_length": 0, "hash_ids": [1, 2, 4]},
    {"timestamp": 3000, "input_length": 600, "output_length": 5, "hash_ids": [1, 7]},
    {"timestamp": 3000.5, "input_length": 50, "output_length": 5},
]


def _trace(path: Path, **kw: object) -> DatasetSpec:
    return DatasetSpec("trace", path=str(path), **kw)  # type: ignore[arg-type]


def _write_mooncake(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mooncake_replay(tmp_path: Path, bpe: HFTokenizer) -> None:
    path = _write_mooncake(tmp_path / "mooncake.jsonl", MOONCAKE)
    sessions = build_sessions(_trace(path), 4, 0, tokenizer=bpe)
    assert read_trace(str(path))[0] == "mooncake"
    assert [s.arrival_offset_ns for s in sessions] == [0, 500_000_000, 2_000_000_000,
                                                       2_000_500_000]
    assert [s.turns[0].max_tokens for s in sessions] == [30, 1, 5, 5]  # 0 raised to 1
    ids = [bpe.encode(s.turns[0].prompt) for s in sessions]
    assert [len(i) for i in ids] == [s.turns[0].prompt_tokens for s in sessions]
    assert [len(i) for i in ids] == [1100, 1300, 600, 50]
    # same hash ids -> same blocks of 512 tokens; a different id -> a different block
    assert ids[0][:1024] == ids[1][:1024]
    assert ids[0][:512] == ids[2][:512]
    assert ids[0][512:600] != ids[2][512:600]
    assert ids[0][1024:1100] != ids[1][1024:1100]
    assert ids[3][:50] != ids[0][:50]


def test_mooncake_shared_blocks_are_the_same_text(tmp_path: Path, bpe: HFTokenizer) -> None:
    path = _write_mooncake(tmp_path / "mooncake.jsonl", MOONCAKE[:2])
    a, b = (s.turns[0].prompt for s in build_sessions(_trace(path), 2, 0, tokenizer=bpe))
    two_blocks = bpe.decode(bpe.encode(a)[:1024])
    assert a.startswith(two_blocks)
    assert b.startswith(two_blocks)


def test_mooncake_block_size_time_scale_sorting_and_override(
    tmp_path: Path, bpe: HFTokenizer
) -> None:
    rows = [MOONCAKE[2], MOONCAKE[0], MOONCAKE[1]]  # out of time order in the file
    path = _write_mooncake(tmp_path / "mooncake.jsonl", rows)
    spec = _trace(path, time_scale=2.0, block_size=100, output_len=LengthDist.fixed(9))
    sessions = build_sessions(spec, 3, 0, tokenizer=bpe)
    assert [s.arrival_offset_ns for s in sessions] == [0, 250_000_000, 1_000_000_000]
    assert [s.turns[0].prompt_tokens for s in sessions] == [1100, 1300, 600]
    assert {s.turns[0].max_tokens for s in sessions} == {9}
    ids = [bpe.encode(s.turns[0].prompt) for s in sessions]
    assert ids[0][:200] == ids[1][:200]
    assert ids[0][:100] == ids[2][:100]
    assert ids[0][100:200] != ids[2][100:200]
    assert ids[0][300:400] != ids[1][300:400]  # past its hash ids a prompt is its own
    assert sessions == build_sessions(spec, 3, 0, tokenizer=bpe)
    with pytest.raises(WorkloadError, match="mooncake trace has 3 rows, 4 asked for"):
        build_sessions(spec, 4, 0, tokenizer=bpe)


AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:47.0000001,40,7

2023-11-16 23:59:59.5,10,0
2023-11-17 00:00:00,12,3
"""


def test_azure_csv_offsets_from_datetime_strings(tmp_path: Path, bpe: HFTokenizer) -> None:
    path = tmp_path / "AzureLLMInferenceTrace_conv.csv"
    path.write_text(AZURE, encoding="utf-8")
    assert read_trace(str(path))[0] == "azure"
    sessions = build_sessions(_trace(path), 4, 0, tokenizer=bpe)
    assert [s.arrival_offset_ns for s in sessions] == [
        0, 319_410_100, 20_652_819_410_000, 20_653_319_410_000]
    assert [s.turns[0].prompt_tokens for s in sessions] == [374, 40, 10, 12]
    assert [len(bpe.encode(s.turns[0].prompt)) for s in sessions] == [374, 40, 10, 12]
    assert [s.turns[0].max_tokens for s in sessions] == [44, 7, 1, 3]
    fast = build_sessions(_trace(path, time_scale=10.0), 2, 0, tokenizer=bpe)
    assert [s.arrival_offset_ns for s in fast] == [0, 31_941_010]


def test_parse_datetime_ns() -> None:
    ref = dt.datetime(2024, 5, 10, 7, 8, 9, 123456, tzinfo=dt.UTC)
    assert parse_datetime_ns("2024-05-10 07:08:09.123456") == int(ref.timestamp()) * 10**9 \
        + 123_456_000
    assert parse_datetime_ns("2024-05-10T07:08:09.123456789Z") == int(ref.timestamp()) * 10**9 \
        + 123_456_789
    assert parse_datetime_ns("2024-05-10T09:08:09+02:00") == int(ref.timestamp()) * 10**9
    with pytest.raises(ValueError, match="not a datetime"):
        parse_datetime_ns("10/05/2024 07:08")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"timestamp": 1, "input_length": 2, "output_length": 3}\n'
         '{"timestamp": 2, "input_length": 2}\n', 2, "missing output_length"),
        ('{"timestamp": 1, "input_length": 2, "output_length": 3}\n\n{"timestamp": \n', 3,
         "invalid JSON"),
        ('{"timestamp": "x", "input_length": 2, "output_length": 3}\n', 1, "'timestamp' must"),
        ('{"timestamp": 1, "input_length": -2, "output_length": 3}\n', 1, "'input_length'"),
        ('{"timestamp": 1, "input_length": 2, "output_length": 3, "hash_ids": [1, "a"]}\n', 1,
         "'hash_ids' must be a list of integers"),
        ('{"timestamp": 1, "input_length": 2, "output_length": 3}\n[1]\n', 2,
         "expected a JSON object"),
        ("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46,1\n", 1, "lacks GeneratedTokens"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,2\nyesterday,1,1\n", 3,
         "not a datetime"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1\n", 2,
         "2 fields, header has 3"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,many\n", 2,
         "invalid literal"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,-1,2\n", 2, ">= 0"),
    ],
)
def test_malformed_traces_name_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "trace.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WorkloadError, match=message) as err:
        build_sessions(_trace(path), 1, 0)
    assert f"{path}:{line}:" in str(err.value)


def test_unrecognized_or_empty_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.txt"
    path.write_text("just some words\n")
    with pytest.raises(WorkloadError, match="unrecognized trace format"):
        build_sessions(_trace(path), 1, 0)
    path.write_text("\n")
    with pytest.raises(WorkloadError, match="empty file"):
        build_sessions(_trace(path), 1, 0)
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    with pytest.raises(WorkloadError, match="no rows"):
        build_sessions(_trace(path), 1, 0)
