"""Token counting and prompt synthesis back-ends: a HuggingFace ``tokenizers`` tokenizer, or a
``words`` pseudo-tokenizer when none is given.

Counts are of the bare text with ``add_special_tokens=False``: a server's
``usage.prompt_tokens`` adds BOS and any chat template on top. Counts from :class:`WordsTokenizer`
are whitespace words and only approximate (``source == "words"``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from profiler.workloads._wordlist import WORDS
from profiler.workloads.errors import WorkloadError
from profiler.workloads.sessions import TokenCountSource

if TYPE_CHECKING:
    import tokenizers

__all__ = ["HFTokenizer", "Tokenizer", "WordsTokenizer", "load_tokenizer"]

IdArray = npt.NDArray[np.int64]


class Tokenizer(Protocol):
    """What the dataset builders need from a tokenizer."""

    @property
    def name(self) -> str: ...

    @property
    def source(self) -> TokenCountSource: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def sampling_ids(self) -> IdArray:
        """Ordinary token ids safe to draw random prompts from (no special/added tokens)."""
        ...


class HFTokenizer:
    """A ``tokenizers.Tokenizer`` (the ``tokenizer.json`` of a HuggingFace model)."""

    def __init__(self, tok: tokenizers.Tokenizer, name: str) -> None:
        self._tok = tok
        self._name = name
        self._pool: IdArray | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def source(self) -> TokenCountSource:
        return "tokenizer"

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def sampling_ids(self) -> IdArray:
        """Vocabulary ids minus added/special tokens, minus tokens that alone decode to
        nothing, whitespace, broken UTF-8 or control characters; preferring those that
        re-encode to themselves (so random prompts round-trip in few rounds). Computed once."""
        if self._pool is None:
            self._pool = self._build_pool()
        return self._pool

    def _build_pool(self) -> IdArray:
        added = set(self._tok.get_added_tokens_decoder())
        ids = sorted(set(self._tok.get_vocab(with_added_tokens=False).values()) - added)
        texts = self._tok.decode_batch([[i] for i in ids], skip_special_tokens=True)
        ok = [(i, t) for i, t in zip(ids, texts, strict=True) if _plain(t)]
        if not ok:
            raise WorkloadError(f"tokenizer {self._name}: no ordinary tokens to build prompts from")
        encoded = self._tok.encode_batch_fast([t for _, t in ok], add_special_tokens=False)
        stable = [i for (i, _), e in zip(ok, encoded, strict=True) if e.ids == [i]]
        chosen = stable if len(stable) >= min(64, len(ok)) else [i for i, _ in ok]
        return np.asarray(chosen, dtype=np.int64)


def _plain(text: str) -> bool:
    """Text worth putting in a prompt: not empty or blank, no broken UTF-8, no control
    characters other than newline and tab."""
    return (
        bool(text) and not text.isspace() and "\ufffd" not in text
        and all(c.isprintable() or c in "\n\t" for c in text)
    )


class WordsTokenizer:
    """Whitespace words over a fixed built-in vocabulary; unknown words count as one token."""

    def __init__(self) -> None:
        self._index = {w: i for i, w in enumerate(WORDS)}
        self._unk = len(WORDS)

    @property
    def name(self) -> str:
        return "words"

    @property
    def source(self) -> TokenCountSource:
        return "words"

    def encode(self, text: str) -> list[int]:
        return [self._index.get(w, self._unk) for w in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        n = len(WORDS)
        return " ".join(WORDS[i] if 0 <= i < n else "<unk>" for i in ids)

    def sampling_ids(self) -> IdArray:
        return np.arange(len(WORDS), dtype=np.int64)


def load_tokenizer(path: str | os.PathLike[str] | None) -> Tokenizer:
    """The tokenizer at ``path`` (a ``tokenizer.json`` file or a directory holding one), or a
    :class:`WordsTokenizer` when ``path`` is ``None``. Nothing is downloaded."""
    if path is None:
        return WordsTokenizer()
    p = Path(path).expanduser()
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        where = f"no tokenizer.json in directory {p}" if p.is_dir() else f"{p} does not exist"
        raise WorkloadError(
            f"tokenizer: {where}; pass a local model directory holding tokenizer.json or the "
            "tokenizer.json file itself (nothing is downloaded)"
        )
    from tokenizers import Tokenizer as _HF

    try:
        tok = _HF.from_file(str(file))
    except Exception as exc:
        raise WorkloadError(f"tokenizer: cannot load {file}: {exc}") from exc
    return HFTokenizer(tok, str(p))
