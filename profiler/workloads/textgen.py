"""Synthesize prompt text that encodes to an exact number of real tokens.

Random token ids rarely survive ``decode`` then ``encode`` unchanged (neighbours merge, bytes
split), so :meth:`PromptSynth.fit` re-encodes, trims or pads with fresh random ids, and
checks again, for a bounded number of rounds. With a ``context`` (a shared prefix, the
previous trace block) it also keeps the context's own tokens intact: the new text must not
merge into the context's last token. A long context is searched against its last
:data:`WINDOW_CHARS` characters only (tokenization is local to a few words), then verified
once against the whole context, and searched again in full if that check fails. The returned
count is what the tokenizer says, never the target taken on trust.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from profiler.workloads.tokenizer import Tokenizer

__all__ = ["WINDOW_CHARS", "PromptSynth"]

WINDOW_CHARS = 256


@dataclass(slots=True)
class PromptSynth:
    """Draws prompt text from ``tok``'s ordinary vocabulary with ``rng``."""

    tok: Tokenizer
    rng: np.random.Generator
    max_rounds: int = 24

    def _random_ids(self, n: int) -> list[int]:
        pool = self.tok.sampling_ids()
        return [int(i) for i in self.rng.choice(pool, size=n)]

    def fit(
        self, n: int, context: str = "", context_ids: Sequence[int] | None = None
    ) -> tuple[str, int]:
        """Text ``s`` with ``encode(context + s) == encode(context) + (n new tokens)``.

        Returns ``(s, count)`` with ``count == len(encode(context + s)) -
        len(encode(context))`` exactly; it equals ``n`` unless the bounded search failed, in
        which case the closest text found is returned. ``context_ids`` may pass
        ``encode(context)`` when the caller has it.
        """
        if n <= 0:
            return "", 0
        if len(context) > WINDOW_CHARS:
            text, _ = self._fit(n, context[-WINDOW_CHARS:], None)
            full = list(context_ids) if context_ids is not None else self.tok.encode(context)
            enc = self.tok.encode(context + text)
            if enc[: len(full)] == full and len(enc) - len(full) == n:
                return text, n
            return self._fit(n, context, full)
        return self._fit(n, context, context_ids)

    def _fit(
        self, n: int, context: str, context_ids: Sequence[int] | None
    ) -> tuple[str, int]:
        ctx_ids = list(context_ids) if context_ids is not None else self.tok.encode(context)
        k = len(ctx_ids)
        ids = self._random_ids(n)
        lead = ""  # a separating space, used once the context merges with the new text
        best: tuple[int, str, int] | None = None  # (error, text, count)
        for _ in range(self.max_rounds):
            text = self.tok.decode(ids)
            if lead and not text.startswith(lead):
                text = lead + text
            enc = self.tok.encode(context + text)
            if enc[:k] != ctx_ids:  # the new text merged into the context's last token
                if context and not lead:
                    lead = " "
                else:
                    ids[0] = self._random_ids(1)[0]
                continue
            got = enc[k:]
            err = abs(len(got) - n)
            if best is None or err < best[0]:
                best = (err, text, len(got))
            if err == 0:
                return text, n
            ids = got[:n] if len(got) > n else got + self._random_ids(n - len(got))
        if best is None:  # never separated from the context: count what the last try adds
            text = lead + self.tok.decode(ids)
            return text, len(self.tok.encode(context + text)) - k
        return best[1], best[2]
