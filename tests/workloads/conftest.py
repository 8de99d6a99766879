"""Real tokenizers trained in the test session (no downloads): a byte-level BPE like GPT-2 /
Llama-3 / Qwen, and a Metaspace BPE like SentencePiece models (Llama-2, Mistral)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from profiler.workloads.tokenizer import HFTokenizer, load_tokenizer

_TEXT = (
    "the of and to in is was he for it with as his on be at by had are but from or have an "
    "they which one you were her all she there would their we him been has when who will more "
    "no if out so said what up its about into than them can only other new some could time "
    "café naïve résumé 東京 ünïcödé 🙂"
)
_WORDS = _TEXT.split()


def _corpus(rnd: random.Random, lines: int) -> list[str]:
    out = []
    for _ in range(lines):
        words = [
            rnd.choice(_WORDS) + rnd.choice(["", "", "s", "ing", "ed", "ly"])
            for _ in range(rnd.randint(5, 25))
        ]
        out.append(" ".join(words) + rnd.choice([".", "!", "?", ", 42.", " (x=3);", "\n"]))
    return out


def _train(pre: pre_tokenizers.PreTokenizer, dec: decoders.Decoder, out: Path) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = dec
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<s>", "</s>", "<|im_start|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        if isinstance(pre, pre_tokenizers.ByteLevel) else [],
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(random.Random(7), 400), trainer)
    tok.add_tokens(["<tool_call>"])  # an added (non-special) token: must never be sampled
    out.mkdir(parents=True)
    tok.save(str(out / "tokenizer.json"))
    return out


@pytest.fixture(scope="session")
def bpe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a byte-level BPE ``tokenizer.json`` (vocab ~500)."""
    root = tmp_path_factory.mktemp("tok")
    return _train(pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel(),
                  root / "bytelevel")


@pytest.fixture(scope="session")
def bpe(bpe_dir: Path) -> HFTokenizer:
    tok = load_tokenizer(bpe_dir)
    assert isinstance(tok, HFTokenizer)
    return tok


@pytest.fixture(scope="session")
def metaspace(tmp_path_factory: pytest.TempPathFactory) -> HFTokenizer:
    """A Metaspace BPE: decode drops the word-start marker of the first token, so new text
    merges into a preceding context unless separated."""
    root = tmp_path_factory.mktemp("tok")
    path = _train(pre_tokenizers.Metaspace(), decoders.Metaspace(), root / "metaspace")
    tok = load_tokenizer(path / "tokenizer.json")
    assert isinstance(tok, HFTokenizer)
    return tok
