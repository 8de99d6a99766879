"""Peer tools' metric definitions, computed from the same raw timeline as ours.

Each :class:`Definition` turns a run's timeline into the samples a peer tool would report
under its own names (``vllm``: ``vllm bench serve``; ``aiperf``: NVIDIA AIPerf 0.13;
``guidellm``: GuideLLM 0.8; ``servescope``: ours). Only successful measured requests count,
as in every peer. Output token counts are the server's (``usage``), falling back like ours
(docs/metrics.md, "Peer definitions" has the cross-walk and every caveat).

Look a definition up by name with :func:`get_definition`; :data:`DEFINITIONS` is the
registry (one line per definition; add a new one there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from analyzers.itl import ITLSamples, itl_samples
from analyzers.request_metrics import OUTPUT_EVENTS, request_metrics
from analyzers.stats import Stats, describe
from analyzers.timeline import (
    FINISH,
    OUTPUT,
    BoolArray,
    FloatArray,
    IntArray,
    Selection,
    Timeline,
    int_column,
    interval_ns,
)

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.context import RunSource

__all__ = [
    "DEFINITIONS",
    "Definition",
    "DefinitionInput",
    "UnknownDefinitionError",
    "definition_samples",
    "definition_table",
    "definition_tables",
    "get_definition",
]


@dataclass(frozen=True, slots=True)
class DefinitionInput:
    """What a definition reads.

    The timeline, its ITL samples, our per-request metrics (rows = request-table rows) and
    ``selected``, the request rows that count.
    """

    tl: Timeline
    itl: ITLSamples
    metrics: pd.DataFrame
    selected: BoolArray  # per request row: successful, measured (and in the step asked)

    def col(self, name: str) -> IntArray:
        return np.asarray(self.metrics[name].to_numpy(), dtype=np.int64)

    def per_request(self, values: FloatArray) -> FloatArray:
        return values[self.selected]

    def gaps_of(self, events: Selection) -> FloatArray:
        """Pooled gaps between consecutive ``events`` of the selected requests."""
        gap, pos = events.gap_ns(), events.gap_pos()
        return gap[self.selected[pos]].astype(np.float64)


Compute = Callable[[DefinitionInput], dict[str, FloatArray]]


@dataclass(frozen=True, slots=True)
class Definition:
    """A tool's definitions: ``metrics`` maps each metric name (ns) to how it is computed."""

    name: str
    tool: str
    metrics: Mapping[str, str]
    compute: Compute


class UnknownDefinitionError(ValueError):
    """A definition name not in the registry; the message lists the valid names."""


def _ratio(num: FloatArray, den: IntArray, valid: BoolArray) -> FloatArray:
    out = np.full(num.shape, np.nan)
    out[valid] = num[valid] / den[valid]
    return out


def _servescope(x: DefinitionInput) -> dict[str, FloatArray]:
    m, sel = x.metrics, x.selected
    return {
        "ttft_ns": m["ttft_ns"].to_numpy()[sel],
        "itl_per_token_ns": x.itl.per_token_of(sel),
        "itl_per_event_ns": x.itl.per_event_of(sel),
        "tpot_ns": m["tpot_ns"].to_numpy()[sel],
        "e2e_ns": m["e2e_ns"].to_numpy()[sel],
        "e2e_done_ns": m["e2e_done_ns"].to_numpy()[sel],
    }


def _vllm(x: DefinitionInput) -> dict[str, FloatArray]:
    # An output chunk: any OUTPUT event (empty text included) or finish chunk; not the
    # chat role chunk, the usage chunk or [DONE].
    chunks = x.tl.select(x.tl.kind_mask(OUTPUT, FINISH))
    first, last = chunks.first(), chunks.last()
    send, n = x.col("t_start_ns"), x.col("output_tokens")
    return {
        "ttft_ns": x.per_request(interval_ns(first, send)),
        "tpot_ns": x.per_request(_ratio(interval_ns(last, first), n - 1, n > 1)),
        "itl_ns": x.gaps_of(chunks),
        "e2el_ns": x.per_request(interval_ns(last, send)),
    }


def _content(tl: Timeline) -> BoolArray:
    """A content response: an OUTPUT event with text (chars > 0)."""
    mask: BoolArray = (tl.ev_kind == OUTPUT) & (tl.ev_chars > 0)
    return mask


def _aiperf(x: DefinitionInput) -> dict[str, FloatArray]:
    tl = x.tl
    is_content = _content(tl)
    content = tl.select(is_content)
    first, last = content.first(), content.last()
    send, osl = x.col("t_start_ns"), x.col("output_tokens")
    # first_chunk_tokens: the cumulative count on the first content response that carries
    # per-chunk usage (AIPerf's first_content_chunk_completion_tokens); none (-1) falls
    # back to one, as AIPerf does without --per-chunk-usage.
    counted = tl.select(is_content & (tl.ev_tokens_cum >= 0))
    fct = counted.first(counted.values(tl.ev_tokens_cum))
    decode = np.where(fct > 0, osl - fct, osl - 1)
    decode = np.where(decode < 1, osl - 1, decode)  # inconsistent count: AIPerf's fallback
    return {
        "time_to_first_token_ns": x.per_request(interval_ns(first, send)),
        "inter_token_latency_ns": x.per_request(
            _ratio(interval_ns(last, first), decode, (osl >= 2) & (decode >= 1))),
        "inter_chunk_latency_ns": x.gaps_of(content),
        "request_latency_ns": x.per_request(interval_ns(last, send)),
    }


def _guidellm(x: DefinitionInput) -> dict[str, FloatArray]:
    tl = x.tl
    content = tl.select(_content(tl))
    first, last, iterations = content.first(), content.last(), content.count()
    send = x.col("t_start_ns")
    # Without server usage GuideLLM counts one token per content iteration.
    n = np.where(x.metrics["output_tokens_source"].to_numpy() == OUTPUT_EVENTS, iterations,
                 x.col("output_tokens"))
    # GuideLLM 0.8 stops reading at [DONE] and stamps request_end; without one, the end of
    # the stream.
    done, closed = int_column(tl.requests, "t_done_ns"), int_column(tl.requests, "t_end_ns")
    end = np.where(done >= 0, done, closed)
    return {
        "time_to_first_token_ns": x.per_request(interval_ns(first, send)),
        "inter_token_latency_ns": x.per_request(_ratio(interval_ns(last, first), n - 1, n > 1)),
        "time_per_output_token_ns": x.per_request(_ratio(interval_ns(last, send), n, n > 0)),
        "request_latency_ns": x.per_request(interval_ns(end, send)),
    }


_SERVESCOPE = Definition("servescope", "servescope", MappingProxyType({
    "ttft_ns": "first output event (text or new tokens) - send",
    "itl_per_token_ns": "gap to the previous token-bearing output event / its new tokens, "
                        "one sample per token; first-event extra tokens have none",
    "itl_per_event_ns": "gaps between consecutive output events",
    "tpot_ns": "(e2e - ttft) / (output_tokens - 1), output_tokens > 1",
    "e2e_ns": "last output event - send",
    "e2e_done_ns": "[DONE] - send",
}), _servescope)
_VLLM = Definition("vllm", "vllm bench serve", MappingProxyType({
    "ttft_ns": "first output chunk (empty text and finish chunks count, role chunk not) - send",
    "tpot_ns": "(e2el - ttft) / (output_tokens - 1), output_tokens > 1",
    "itl_ns": "gaps between consecutive output chunks, one per chunk",
    "e2el_ns": "last output chunk - send",
}), _vllm)
_AIPERF = Definition("aiperf", "AIPerf", MappingProxyType({
    "time_to_first_token_ns": "first content response (text) - send",
    "inter_token_latency_ns": "(request_latency - ttft) / (OSL - first_chunk_tokens); "
                              "first_chunk_tokens from per-chunk usage, else 1",
    "inter_chunk_latency_ns": "gaps between consecutive content responses",
    "request_latency_ns": "last content response - send",
}), _aiperf)
_GUIDELLM = Definition("guidellm", "GuideLLM", MappingProxyType({
    "time_to_first_token_ns": "first token iteration (text) - start",
    "inter_token_latency_ns": "(last_token - first_token) / (N - 1), N > 1",
    "time_per_output_token_ns": "(last_token - start) / N, TTFT included",
    "request_latency_ns": "end of the stream ([DONE], else the stream closing) - start",
}), _guidellm)

DEFINITIONS: Mapping[str, Definition] = MappingProxyType(
    {d.name: d for d in (_SERVESCOPE, _VLLM, _AIPERF, _GUIDELLM)})


def get_definition(name: str) -> Definition:
    try:
        return DEFINITIONS[name.strip().lower()]
    except KeyError:
        raise UnknownDefinitionError(
            f"unknown metric definition {name!r}; choose one of: "
            f"{', '.join(sorted(DEFINITIONS))}") from None


def definition_samples(run: RunSource | Timeline, name: str, *,
                       step: int | None = None) -> dict[str, FloatArray]:
    """Samples (ns) of every metric of definition ``name``, NaN where not defined.

    Per-request metrics have one value per successful measured request (in request-table
    order); pooled ones (``itl_ns``, ``inter_chunk_latency_ns``, ``itl_per_*``) one per gap.
    ``step`` restricts to one sweep step. Given a :class:`RunContext`, from its timeline,
    ITL samples and request metrics.
    """
    from analyzers.context import RunContext

    definition = get_definition(name)
    if isinstance(run, Timeline):
        tl, itl = run, itl_samples(run)
        metrics = request_metrics(tl, itl=itl)
    else:
        ctx = RunContext.of(run)
        tl, itl, metrics = ctx.timeline, ctx.itl, ctx.metrics
    selected = ((metrics["outcome"].to_numpy() == "success")
                & (metrics["phase"].to_numpy() == "measure"))
    if step is not None:
        selected &= metrics["step"].to_numpy() == step
    rows = np.asarray(selected, dtype=np.bool_)
    return definition.compute(DefinitionInput(tl, itl, metrics, rows))


def definition_table(run: RunSource | Timeline, name: str, *,
                     step: int | None = None) -> dict[str, Stats]:
    """:func:`describe` of every metric of definition ``name``, keyed by the tool's names."""
    return {k: describe(v) for k, v in definition_samples(run, name, step=step).items()}


def definition_tables(run: RunSource | Timeline,
                      which: str) -> list[tuple[Definition, dict[str, Stats]]]:
    """:func:`definition_table` of each definition named in ``which`` (comma-separated, or
    ``all``), in that order (``all``: by name). UnknownDefinitionError for a name not in the
    registry, before any table is computed."""
    names = sorted(DEFINITIONS) if which.strip().lower() == "all" else [
        n.strip() for n in which.split(",") if n.strip()]
    chosen = [get_definition(n) for n in names]
    return [(d, definition_table(run, d.name)) for d in chosen]
