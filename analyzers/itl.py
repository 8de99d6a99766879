"""Inter-token latency (ITL), two ways, from the output events of each request.

**Per event**: the gaps between consecutive output events of a request (what
``vllm bench serve`` calls ITL), one sample per gap whatever the event carried.

**Per token**: an output event that brings ``k`` new tokens (known from the server's
cumulative ``usage.completion_tokens`` carried per chunk) after a gap ``g`` since the
previous token-bearing event yields ``k`` samples of ``g / k``, so the samples of a request
sum to ``t_last_token_event - t_first_token_event``. Tokens that arrived with the first
token (the ``k - 1`` extra tokens of the first token-bearing event) have no gap and yield no
sample. The counts are the client's own (``itl_tokens_source == "client_tokenizer"``,
flagged) when the server sent none and a tokenizer counted each event's text
(:mod:`collectors.client.tokens`). When any output event of a request lacks a count, the
whole request falls
back to one token per output event (``itl_tokens_source == "one_per_event"``, flagged); per
token then equals per event for that request.

Output events are ``Timeline.ev_output``: OUTPUT events with text or new tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analyzers.timeline import (
    BoolArray,
    FloatArray,
    IntArray,
    Timeline,
    as_timeline,
    int_column,
    segment_max,
    segment_sum,
)

if TYPE_CHECKING:
    import pandas as pd

    from servescope.rundir.reader import RunData

__all__ = [
    "ITL_REQUEST_COLUMNS",
    "TOKENS_CHUNK_USAGE",
    "TOKENS_CLIENT",
    "TOKENS_NONE",
    "TOKENS_ONE_PER_EVENT",
    "ITLSamples",
    "itl_samples",
]

TOKENS_CHUNK_USAGE = "chunk_usage"  # per-event token counts from per-chunk server usage
TOKENS_CLIENT = "client_tokenizer"  # per-event counts from the client's tokenizer
TOKENS_ONE_PER_EVENT = "one_per_event"  # no per-chunk usage: one token per output event
TOKENS_NONE = "none"  # the request had no output event

ITL_REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id",
    "itl_tokens_source",
    "first_event_tokens",
    "itl_event_count",
    "itl_event_mean_ns",
    "itl_event_max_ns",
    "itl_token_count",
    "itl_token_mean_ns",
    "itl_token_max_ns",
)


@dataclass(frozen=True, slots=True)
class ITLSamples:
    """Flat ITL samples of every request, with the request row each sample belongs to.

    ``per_request`` has one row per request, in the order of the run's request table
    (:data:`ITL_REQUEST_COLUMNS`): the source of its token counts, tokens of its first
    token-bearing event (``-1`` if none), and count, mean and max of its per-event and
    per-token samples (NaN where it has none). ``per_event_row[i]`` is the ``per_request``
    row of sample ``per_event_ns[i]``; likewise ``per_token_row``.
    """

    per_event_ns: FloatArray
    per_event_row: IntArray
    per_token_ns: FloatArray
    per_token_row: IntArray
    per_request: pd.DataFrame

    def per_event_of(self, rows: BoolArray) -> FloatArray:
        """Per-event samples of the requests whose row is true in ``rows``."""
        return self.per_event_ns[rows[self.per_event_row]]

    def per_token_of(self, rows: BoolArray) -> FloatArray:
        """Per-token samples of the requests whose row is true in ``rows``."""
        return self.per_token_ns[rows[self.per_token_row]]


def itl_samples(source: RunData | Timeline) -> ITLSamples:
    import pandas as pd

    tl = as_timeline(source)
    n = tl.n_requests
    out = tl.select(tl.ev_output)
    n_out = out.count()

    ev_gap, ev_pos = out.gap_ns(), out.gap_pos()
    ev_count = np.maximum(n_out - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ev_mean = segment_sum(ev_gap, ev_pos, n) / ev_count
    ev_vals = ev_gap.astype(np.float64)

    # A request uses per-chunk counts only if every output event of it carries one.
    new = out.values(tl.ev_new_tokens)
    n_unknown = np.bincount(out.pos[new < 0], minlength=n)
    chunk_mode = (n_unknown == 0) & (n_out > 0)
    req = tl.requests
    client = (req["tokens_cum_source"].to_numpy() == TOKENS_CLIENT
              if "tokens_cum_source" in req.columns else np.zeros(n, dtype=np.bool_))
    source_col = np.where(n_out == 0, TOKENS_NONE, np.where(
        chunk_mode, np.where(client, TOKENS_CLIENT, TOKENS_CHUNK_USAGE), TOKENS_ONE_PER_EVENT))
    k_out = np.where(chunk_mode[out.pos], new, 1)
    has_tokens = k_out > 0
    tok = out if has_tokens.all() else out.subset(has_tokens)
    k_tok = k_out if tok is out else k_out[has_tokens]

    tok_gap, tok_pos, k = tok.gap_ns(), tok.gap_pos(), k_tok[tok.later]
    per_gap = tok_gap / k
    tok_count = np.bincount(tok_pos, weights=k, minlength=n).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tok_mean = segment_sum(tok_gap, tok_pos, n) / tok_count

    per_request = pd.DataFrame({
        "request_id": int_column(tl.requests, "request_id"),
        "itl_tokens_source": source_col,
        "first_event_tokens": tok.first(k_tok),
        "itl_event_count": ev_count,
        "itl_event_mean_ns": ev_mean,
        "itl_event_max_ns": segment_max(ev_vals, ev_pos, n),
        "itl_token_count": tok_count,
        "itl_token_mean_ns": tok_mean,
        "itl_token_max_ns": segment_max(per_gap, tok_pos, n),
    })
    return ITLSamples(
        per_event_ns=ev_vals,
        per_event_row=ev_pos,
        per_token_ns=np.repeat(per_gap, k),
        per_token_row=np.repeat(tok_pos, k),
        per_request=per_request,
    )
