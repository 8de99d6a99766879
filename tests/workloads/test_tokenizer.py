from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from profiler.workloads.errors import WorkloadError
from profiler.workloads.tokenizer import HFTokenizer, WordsTokenizer, load_tokenizer


def test_loads_from_directory_or_file(bpe_dir: Path) -> None:
    a = load_tokenizer(bpe_dir)
    b = load_tokenizer(str(bpe_dir / "tokenizer.json"))
    assert a.source == b.source == "tokenizer"
    text = "the café was running 42 times"
    assert a.encode(text) == b.encode(text)
    assert a.decode(a.encode(text)) == text


def test_missing_tokenizer_json(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"no tokenizer\.json in directory"):
        load_tokenizer(tmp_path)
    with pytest.raises(WorkloadError, match="does not exist"):
        load_tokenizer(tmp_path / "nope" / "tokenizer.json")


def test_corrupt_tokenizer_json(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0", "model": 3}')
    with pytest.raises(WorkloadError, match=r"cannot load .*tokenizer\.json"):
        load_tokenizer(tmp_path)


def test_sampling_ids_exclude_special_and_added_tokens(bpe_dir: Path, bpe: HFTokenizer) -> None:
    raw = Tokenizer.from_file(str(bpe_dir / "tokenizer.json"))
    added = {tok.content: tid for tid, tok in raw.get_added_tokens_decoder().items()}
    assert set(added) == {"<s>", "</s>", "<|im_start|>", "<tool_call>"}
    pool = set(bpe.sampling_ids().tolist())
    assert not pool & set(added.values())
    assert len(pool) > 200
    for tid in pool:
        text = bpe.decode([tid])
        assert text.strip()
        assert "\ufffd" not in text


def test_words_tokenizer_counts_whitespace_words() -> None:
    tok = load_tokenizer(None)
    assert isinstance(tok, WordsTokenizer)
    assert tok.source == "words"
    ids = tok.encode("the  quick\nbrown fox")
    assert len(ids) == 4
    pool = tok.sampling_ids().tolist()
    assert tok.encode(tok.decode(pool)) == pool
