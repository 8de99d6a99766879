from __future__ import annotations

import json
from pathlib import Path

import pytest

from profiler.workloads.datasets import build_sessions
from profiler.workloads.errors import WorkloadError
from profiler.workloads.spec import DatasetSpec, LengthDist
from profiler.workloads.tokenizer import HFTokenizer

JSONL_ROWS = [
    {"prompt": "the first prompt was running", "max_tokens": 11},
    {"text": "a text field prompt", "output_len": 22},
    {"messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "an older question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "the last user message"},
    ]},
    {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "part one"}, {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "part two"},
    ]}], "max_tokens": 5},
]
JSONL_PROMPTS = [
    "the first prompt was running", "a text field prompt", "the last user message",
    "part one\npart two",
]


def _write_jsonl(path: Path, rows: list[object], blank_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(path: Path, **kw: object) -> DatasetSpec:
    return DatasetSpec("jsonl", path=str(path), **kw)  # type: ignore[arg-type]


def test_jsonl_fields_in_file_order(tmp_path: Path, bpe: HFTokenizer) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", JSONL_ROWS, blank_after=1)
    sessions = build_sessions(_jsonl(path, shuffle=False), 4, 0, tokenizer=bpe)
    assert [s.turns[0].prompt for s in sessions] == JSONL_PROMPTS
    assert [s.turns[0].max_tokens for s in sessions] == [11, 22, 128, 5]  # 128: the default
    for s in sessions:
        assert s.turns[0].prompt_tokens == len(bpe.encode(s.turns[0].prompt))
        assert s.prompt_tokens_source == "tokenizer"


def test_jsonl_output_len_overrides_and_shuffle(tmp_path: Path, bpe: HFTokenizer) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", JSONL_ROWS)
    spec = _jsonl(path, output_len=LengthDist.fixed(7))
    a = build_sessions(spec, 4, 3, tokenizer=bpe)
    assert sorted(s.turns[0].prompt for s in a) == sorted(JSONL_PROMPTS)
    assert {s.turns[0].max_tokens for s in a} == {7}
    orders = {tuple(s.turns[0].prompt for s in build_sessions(spec, 4, seed, tokenizer=bpe))
              for seed in range(6)}
    assert len(orders) > 1  # the seed picks the order
    assert a == build_sessions(spec, 4, 3, tokenizer=bpe)


def test_jsonl_without_tokenizer_counts_words(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", JSONL_ROWS[:1])
    (s,) = build_sessions(_jsonl(path), 1, 0)
    assert s.prompt_tokens_source == "words"
    assert s.turns[0].prompt_tokens == 5


def test_jsonl_max_input_tokens_and_too_few_entries(tmp_path: Path, bpe: HFTokenizer) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", JSONL_ROWS)
    cap = len(bpe.encode("a text field prompt"))
    kept = build_sessions(_jsonl(path, shuffle=False, max_input_tokens=cap), 1, 0, tokenizer=bpe)
    assert kept[0].turns[0].prompt in JSONL_PROMPTS
    assert kept[0].turns[0].prompt_tokens <= cap
    with pytest.raises(WorkloadError, match=r"only 4 usable entries of 4.* 5 asked for"):
        build_sessions(_jsonl(path), 5, 0, tokenizer=bpe)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "ok"', "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"question": "hi"}', "no prompt field"),
        ('{"prompt": 3}', "'prompt' must be a string"),
        ('{"prompt": "   "}', "empty prompt"),
        ('{"prompt": "hi", "max_tokens": 0}', "'max_tokens' must be an integer >= 1"),
        ('{"prompt": "hi", "output_len": "10"}', "'output_len' must be an integer"),
        ('{"messages": [{"role": "assistant", "content": "x"}]}', "no user message"),
        ('{"messages": [{"role": "user", "content": 5}]}', "content must be a string"),
        ('{"messages": "hi"}', "'messages' must be a list"),
    ],
)
def test_jsonl_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(WorkloadError, match=message) as err:
        build_sessions(_jsonl(path), 1, 0)
    assert f"{path}:3:" in str(err.value)


def test_jsonl_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot read"):
        build_sessions(_jsonl(tmp_path / "missing.jsonl"), 1, 0)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(WorkloadError, match="no prompts"):
        build_sessions(_jsonl(empty), 1, 0)
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b'{"prompt": "\xff"}\n')
    with pytest.raises(WorkloadError, match="not UTF-8"):
        build_sessions(_jsonl(binary), 1, 0)


SHAREGPT = [
    {"id": "a", "conversations": [
        {"from": "human", "value": "what is the time"},
        {"from": "gpt", "value": "it was about one of the time when we had been there"},
        {"from": "human", "value": "and then what"},
        {"from": "gpt", "value": "they said no"},
    ]},
    {"id": "b", "conversations": [
        {"from": "system", "value": "you are kind"},
        {"from": "human", "value": "who are you"},
        {"from": "gpt", "value": "one of them"},
    ]},
    {"id": "no-human", "conversations": [{"from": "gpt", "value": "hello there"}]},
    {"id": "no-answer", "conversations": [{"from": "human", "value": "anyone here"}]},
    {"id": "empty", "conversations": []},
]


def _sharegpt(tmp_path: Path, data: object = SHAREGPT, **kw: object) -> DatasetSpec:
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return DatasetSpec("sharegpt", path=str(path), **kw)  # type: ignore[arg-type]


def test_sharegpt_single_turn_uses_first_human_and_answer_length(
    tmp_path: Path, bpe: HFTokenizer
) -> None:
    sessions = build_sessions(_sharegpt(tmp_path, shuffle=False), 2, 0, tokenizer=bpe)
    assert [s.turns[0].prompt for s in sessions] == ["what is the time", "who are you"]
    assert [len(s.turns) for s in sessions] == [1, 1]
    answers = ["it was about one of the time when we had been there", "one of them"]
    assert [s.turns[0].max_tokens for s in sessions] == [len(bpe.encode(a)) for a in answers]
    assert [s.turns[0].prompt_tokens for s in sessions] == [
        len(bpe.encode("what is the time")), len(bpe.encode("who are you"))]
    # the unanswered conversation counts only once an output length is given
    with pytest.raises(WorkloadError, match="only 2 usable entries of 5"):
        build_sessions(_sharegpt(tmp_path), 3, 0, tokenizer=bpe)
    spec = _sharegpt(tmp_path, output_len=LengthDist.fixed(4))
    third = build_sessions(spec, 3, 0, tokenizer=bpe)
    assert "anyone here" in {s.turns[0].prompt for s in third}
    assert {s.turns[0].max_tokens for s in third} == {4}


def test_sharegpt_multi_turn_keeps_every_human_turn(tmp_path: Path) -> None:
    spec = _sharegpt(tmp_path, shuffle=False, multi_turn=True, think_time_s=0.5)
    first, second = build_sessions(spec, 2, 0)
    assert [t.prompt for t in first.turns] == ["what is the time", "and then what"]
    assert [t.max_tokens for t in first.turns] == [12, 3]  # answer lengths in words
    assert first.think_time_ns == 500_000_000
    assert [t.prompt for t in second.turns] == ["who are you"]
    assert first.prompt_tokens_source == "words"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"conversations": []}, "expected a JSON list"),
        ([{"conversations": []}, {"conv": []}], r"entry 1: expected an object with a 'conv"),
        ([{"conversations": [{"from": "human"}]}], r"entry 0, message 0: needs string"),
        ([{"conversations": [{"from": "robot", "value": "x"}]}], "unknown 'from' 'robot'"),
        ([], "no conversations"),
    ],
)
def test_sharegpt_malformed(tmp_path: Path, data: object, message: str) -> None:
    spec = _sharegpt(tmp_path, data)
    with pytest.raises(WorkloadError, match=message) as err:
        build_sessions(spec, 1, 0)
    assert str(spec.path) in str(err.value)


def test_sharegpt_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n{"conversations": []},\n{"conversations": [}\n]\n')
    with pytest.raises(WorkloadError, match=rf"{path}:3: invalid JSON"):
        build_sessions(DatasetSpec("sharegpt", path=str(path)), 1, 0)
