"""Generated datasets: ``synthetic``, ``shared_prefix`` and ``multi_turn``.

Prompts are random real tokens of the tokenizer (see :class:`~profiler.workloads.textgen.
PromptSynth`); ``prompt_tokens`` is always the tokenizer's count of the text sent.
"""

from __future__ import annotations

import numpy as np

from profiler.workloads.sessions import Session, Turn
from profiler.workloads.spec import DatasetSpec
from profiler.workloads.textgen import PromptSynth
from profiler.workloads.tokenizer import Tokenizer

__all__ = ["build_multi_turn", "build_shared_prefix", "build_synthetic"]

_NS_PER_S = 1_000_000_000


def build_synthetic(
    spec: DatasetSpec, n: int, tok: Tokenizer, rng: np.random.Generator
) -> list[Session]:
    """``n`` single-turn sessions of ``input_len`` random tokens asking ``output_len``."""
    synth = PromptSynth(tok, rng)
    in_lens = spec.input_len.sample(rng, n)
    out_lens = spec.output_len_or_default().sample(rng, n)
    sessions = []
    for i, (n_in, n_out) in enumerate(zip(in_lens, out_lens, strict=True)):
        text, count = synth.fit(n_in)
        sessions.append(
            Session(i, (Turn(text, count, n_out),), prompt_tokens_source=tok.source)
        )
    return sessions


def group_order(n: int, groups: int, rng: np.random.Generator) -> list[int]:
    """Group ids for ``n`` sessions: group sizes differ by at most one, order shuffled."""
    labels = np.arange(n) % groups
    return [int(g) for g in rng.permutation(labels)]


def build_shared_prefix(
    spec: DatasetSpec, n: int, tok: Tokenizer, rng: np.random.Generator
) -> list[Session]:
    """``num_groups`` random prefixes of ``prefix_len`` tokens; each prompt is its group's
    prefix followed by a unique suffix of ``input_len`` tokens. The suffix is fitted against
    the prefix so the prompt's first ``prefix_len`` tokens are exactly the prefix's tokens.
    Groups are spread over the run in a seeded random order."""
    synth = PromptSynth(tok, rng)
    prefixes = [synth.fit(spec.prefix_len)[0] for _ in range(spec.num_groups)]
    prefix_ids = [tok.encode(p) for p in prefixes]
    order = group_order(n, spec.num_groups, rng)
    in_lens = spec.input_len.sample(rng, n)
    out_lens = spec.output_len_or_default().sample(rng, n)
    sessions = []
    for i, g in enumerate(order):
        suffix, added = synth.fit(in_lens[i], prefixes[g], prefix_ids[g])
        turn = Turn(prefixes[g] + suffix, len(prefix_ids[g]) + added, out_lens[i])
        sessions.append(Session(i, (turn,), group_id=g, prompt_tokens_source=tok.source))
    return sessions


def build_multi_turn(
    spec: DatasetSpec, n: int, tok: Tokenizer, rng: np.random.Generator
) -> list[Session]:
    """``n`` conversations of ``turns`` user messages, each of ``input_len`` tokens asking
    ``output_len``, with ``think_time_s`` between an answer and the next message."""
    synth = PromptSynth(tok, rng)
    out_dist = spec.output_len_or_default()
    think_ns = round(spec.think_time_s * _NS_PER_S)
    sessions = []
    for i, n_turns in enumerate(spec.turns.sample(rng, n)):
        in_lens = spec.input_len.sample(rng, n_turns)
        out_lens = out_dist.sample(rng, n_turns)
        turns = []
        for n_in, n_out in zip(in_lens, out_lens, strict=True):
            text, count = synth.fit(n_in)
            turns.append(Turn(text, count, n_out))
        sessions.append(
            Session(i, tuple(turns), think_time_ns=think_ns, prompt_tokens_source=tok.source)
        )
    return sessions
