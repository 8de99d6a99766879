from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from profiler.workloads.datasets import build_sessions
from profiler.workloads.sessions import Session, TokenCountSource
from profiler.workloads.spec import DatasetSpec, LengthDist
from profiler.workloads.textgen import WINDOW_CHARS, PromptSynth
from profiler.workloads.tokenizer import HFTokenizer, Tokenizer, WordsTokenizer

TARGETS = (1, 2, 3, 7, 16, 64, 250)


def _synthetic(tok: Tokenizer, length: int, n: int, seed: int = 0) -> list[Session]:
    spec = DatasetSpec("synthetic", input_len=LengthDist.fixed(length))
    return build_sessions(spec, n, seed, tokenizer=tok)


@pytest.mark.parametrize("which", ["bpe", "metaspace"])
def test_synthetic_prompts_have_the_target_token_count(
    which: str, request: pytest.FixtureRequest
) -> None:
    tok: HFTokenizer = request.getfixturevalue(which)
    misses: Counter[int] = Counter()
    for target in TARGETS:
        for s in _synthetic(tok, target, 40, seed=target):
            (turn,) = s.turns
            assert s.prompt_tokens_source == "tokenizer"
            assert len(tok.encode(turn.prompt)) == turn.prompt_tokens  # always the real count
            misses[turn.prompt_tokens - target] += 1
    total = 40 * len(TARGETS)
    assert misses[0] >= 0.98 * total, misses
    assert all(abs(d) <= 2 for d in misses), misses


def test_synthetic_lengths_follow_the_distributions(bpe: HFTokenizer) -> None:
    spec = DatasetSpec(
        "synthetic", input_len=LengthDist.uniform(10, 90),
        output_len=LengthDist.normal(50, 10, lo=30, hi=70),
    )
    sessions = build_sessions(spec, 300, 5, tokenizer=bpe)
    ins = [s.turns[0].prompt_tokens for s in sessions]
    outs = [s.turns[0].max_tokens for s in sessions]
    assert 8 <= min(ins) <= 12
    assert 88 <= max(ins) <= 92
    assert np.mean(ins) == pytest.approx(50, rel=0.08)
    assert 30 <= min(outs) <= max(outs) <= 70
    assert np.mean(outs) == pytest.approx(50, rel=0.05)


def test_same_seed_same_sessions_different_seed_different(bpe: HFTokenizer) -> None:
    spec = DatasetSpec("synthetic", input_len=LengthDist.lognormal(40, 20))
    a = build_sessions(spec, 30, 11, tokenizer=bpe)
    assert a == build_sessions(spec, 30, 11, tokenizer=bpe)
    b = build_sessions(spec, 30, 12, tokenizer=bpe)
    assert [s.turns[0].prompt for s in a] != [s.turns[0].prompt for s in b]
    assert len({s.turns[0].prompt for s in a}) == 30


def test_tokenizer_path_in_spec_is_loaded(bpe_dir: object, bpe: HFTokenizer) -> None:
    spec = DatasetSpec("synthetic", tokenizer=str(bpe_dir), input_len=LengthDist.fixed(20))
    assert build_sessions(spec, 5, 1) == build_sessions(spec, 5, 1, tokenizer=bpe)


def test_without_tokenizer_counts_are_words_and_flagged() -> None:
    spec = DatasetSpec("synthetic", input_len=LengthDist.fixed(33))
    for s in build_sessions(spec, 10, 0):
        assert s.prompt_tokens_source == "words"
        assert len(s.turns[0].prompt.split()) == 33 == s.turns[0].prompt_tokens


class _PairTokenizer:
    """Every word is two tokens, so odd counts cannot be reached: the builder must report
    the count it got, not the target it wanted."""

    _words = WordsTokenizer()

    @property
    def name(self) -> str:
        return "pairs"

    @property
    def source(self) -> TokenCountSource:
        return "tokenizer"

    def encode(self, text: str) -> list[int]:
        return [i for w in self._words.encode(text) for i in (w, w)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._words.decode(ids[::2])

    def sampling_ids(self) -> npt.NDArray[np.int64]:
        return self._words.sampling_ids()


def test_unreachable_target_reports_the_real_count() -> None:
    tok = _PairTokenizer()
    for s in _synthetic(tok, 7, 5):
        (turn,) = s.turns
        assert turn.prompt_tokens == len(tok.encode(turn.prompt))
        assert turn.prompt_tokens in (6, 8)


@pytest.mark.parametrize("which", ["bpe", "metaspace", "words"])
def test_shared_prefix_groups_share_exactly_the_prefix_tokens(
    which: str, request: pytest.FixtureRequest
) -> None:
    tok: Tokenizer = WordsTokenizer() if which == "words" else request.getfixturevalue(which)
    prefix_len, n, groups = 150, 60, 4  # a prefix longer than textgen.WINDOW_CHARS
    spec = DatasetSpec("shared_prefix", num_groups=groups, prefix_len=prefix_len,
                       input_len=LengthDist.uniform(1, 30))
    sessions = build_sessions(spec, n, 2, tokenizer=tok)
    prefixes: dict[int, list[int]] = {}
    suffix_lens = []
    for s in sessions:
        (turn,) = s.turns
        ids = tok.encode(turn.prompt)
        assert len(ids) == turn.prompt_tokens
        prefixes.setdefault(s.group_id, ids[:prefix_len])
        assert ids[:prefix_len] == prefixes[s.group_id]
        suffix_lens.append(len(ids) - prefix_len)
    assert min(len(s.turns[0].prompt) for s in sessions) > WINDOW_CHARS
    assert sorted(prefixes) == list(range(groups))
    assert len({tuple(p) for p in prefixes.values()}) == groups  # groups differ
    assert min(suffix_lens) >= 1
    assert max(suffix_lens) <= 30
    assert len({s.turns[0].prompt for s in sessions}) == n  # suffixes are unique
    sizes = Counter(s.group_id for s in sessions)
    assert set(sizes.values()) == {n // groups}
    order = [s.group_id for s in sessions]
    assert sum(a != b for a, b in itertools.pairwise(order)) > n // 2  # interleaved
    assert [s.session_id for s in sessions] == list(range(n))


def test_shared_prefix_order_depends_on_seed(bpe: HFTokenizer) -> None:
    spec = DatasetSpec("shared_prefix", num_groups=3, prefix_len=10,
                       input_len=LengthDist.fixed(5))
    a = build_sessions(spec, 30, 1, tokenizer=bpe)
    assert a == build_sessions(spec, 30, 1, tokenizer=bpe)
    b = build_sessions(spec, 30, 2, tokenizer=bpe)
    assert [s.group_id for s in a] != [s.group_id for s in b]


def test_multi_turn_conversations(bpe: HFTokenizer) -> None:
    spec = DatasetSpec("multi_turn", turns=LengthDist.uniform(1, 5),
                       input_len=LengthDist.fixed(12), output_len=LengthDist.fixed(9),
                       think_time_s=1.25)
    sessions = build_sessions(spec, 200, 4, tokenizer=bpe)
    turns = [len(s.turns) for s in sessions]
    assert min(turns) == 1
    assert max(turns) == 5
    assert np.mean(turns) == pytest.approx(3, rel=0.1)
    all_turns = [t for s in sessions for t in s.turns]
    assert all(s.think_time_ns == 1_250_000_000 for s in sessions)
    assert all(t.max_tokens == 9 for t in all_turns)
    assert all(len(bpe.encode(t.prompt)) == t.prompt_tokens for t in all_turns)
    assert sum(t.prompt_tokens == 12 for t in all_turns) >= 0.98 * len(all_turns)
    assert len({t.prompt for t in all_turns}) == len(all_turns)


class _MarkedTokenizer(_PairTokenizer):
    """Words count double in a text that starts with "!": a context effect far outside the
    window that the final check against the whole context must catch."""

    shadow = 1_000_000  # the second token of a doubled word; decodes to nothing

    def encode(self, text: str) -> list[int]:
        ids = self._words.encode(text)
        if not text.startswith("!"):
            return ids
        return [i for w in ids for i in (w, w + self.shadow)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._words.decode([i for i in ids if i < self.shadow])


def test_long_context_is_verified_against_the_whole_context() -> None:
    tok = _MarkedTokenizer()
    context = "!" + " the" * 200
    assert len(context) > WINDOW_CHARS
    synth = PromptSynth(tok, np.random.default_rng(0))
    text, count = synth.fit(10, context)
    assert count == 10
    assert len(tok.encode(context + text)) - len(tok.encode(context)) == 10
    assert len(text.split()) == 5  # the window alone would have given 10 words
