"""The client's own per-event token counts, for servers that send no per-chunk usage.

Without ``usage.completion_tokens`` on every chunk, a server that puts several tokens in one
SSE event would otherwise be read as one token per event, and per-token ITL would be that
many times too long. With a tokenizer (``Target.tokenizer``), the request's generated text
is tokenized once, whole, when the request ends (so merges across chunk boundaries count as
the server's detokenizer made them), and each token is given to the event that brought its
last character. The cumulative counts go into ``ev_tokens_cum`` of the output events,
flagged ``tokens_cum_source == "client_tokenizer"``; the total is kept as
``client_completion_tokens`` beside the server's ``usage_completion_tokens`` so a mismatch
(another tokenizer, a chat template's special tokens) is reported, not hidden. A request
whose server did send a count on any output event keeps the server's counts.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from pathlib import Path
from typing import TYPE_CHECKING

from servescope.records import UNKNOWN, EventKind, RequestRecord
from servescope.records.client import CLIENT_TOKENIZER

if TYPE_CHECKING:
    import tokenizers

__all__ = ["count_event_tokens", "load_tokenizer", "token_ends"]

_OUTPUT = int(EventKind.OUTPUT)


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: str) -> tokenizers.Tokenizer:
    """The ``tokenizer.json`` at ``path`` (or in the directory ``path``), once per process."""
    from tokenizers import Tokenizer

    p = Path(path).expanduser()
    return Tokenizer.from_file(str(p / "tokenizer.json" if p.is_dir() else p))


def token_ends(tok: tokenizers.Tokenizer, text: str) -> list[int]:
    """The character offset at which each token of ``text`` ends (no special tokens)."""
    return [end for _start, end in tok.encode(text, add_special_tokens=False).offsets]


def count_event_tokens(rec: RequestRecord, ev_text: list[tuple[int, str]],
                       tokenizer: str) -> None:
    """Fill ``rec``'s output events' cumulative token counts from the text each brought
    (``ev_text``: (event index, text) in arrival order), unless the server sent counts."""
    kinds, cum = rec.ev_kind, rec.ev_tokens_cum
    out_idx = [i for i, k in enumerate(kinds) if k == _OUTPUT]
    if not out_idx or any(cum[i] != UNKNOWN for i in out_idx):
        return  # nothing generated, or the server counted (per-chunk usage)
    try:
        tok = load_tokenizer(tokenizer)
    except Exception:  # noqa: BLE001 - an unreadable tokenizer leaves the counts unknown
        return
    text_end: list[int] = []  # cumulative characters at the end of each ev_text entry
    pos = 0
    for _i, t in ev_text:
        pos += len(t)
        text_end.append(pos)
    per_event = [0] * len(kinds)
    if ev_text:
        for end in token_ends(tok, "".join(t for _i, t in ev_text)):
            # the entry holding the token's last character ``end - 1``
            j = min(bisect_right(text_end, max(end - 1, 0)), len(ev_text) - 1)
            per_event[ev_text[j][0]] += 1
    total = 0
    for i in out_idx:
        total += per_event[i]
        cum[i] = total
    rec.client_completion_tokens = total
    rec.tokens_cum_source = CLIENT_TOKENIZER
