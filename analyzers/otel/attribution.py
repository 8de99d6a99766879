"""Per-request attribution of TTFT and E2E from the engine's request spans.

Each successful request is joined to the engine's request span by trace id: the client sent
``traceparent`` with a trace id that is a pure function of the run's id and the request's
``x-request-id`` (:mod:`servescope.tracecontext`), so the join recomputes it. For a joined
request, on one clock (the span's wall-clock start moved to the run's monotonic clock):

- ``net_in_ns`` = span start − client send: the request's way in (connection, HTTP parsing,
  up to the engine's arrival stamp);
- ``queue_ns``, ``prefill_ns``, ``decode_ns``: the span's own (``time_in_queue``,
  ``time_in_model_prefill``, ``time_in_model_decode``);
- ``engine_other_ns`` = engine TTFT − queue − prefill: what the engine does not name
  (tokenization, the frontend↔core hop, output processing) — the **residual**;
- ``net_out_ns`` = client TTFT − net in − engine TTFT: the first token's way out (the SSE
  write, the network, the client's read);
- ``transport_ns`` = net in + net out: the client/network share.

So client TTFT = transport + queue + prefill + residual, each part measured, and two checks
that can fail: the engine's arrival stamp is not before the send (``net_in_ns`` ≥ 0) and its
first token is not after the client read it (``net_out_ns`` ≥ 0), both up to the clocks'
alignment (one host: the same wall clock; the anchor is good to ~1 µs). E2E likewise:
transport (client E2E − engine E2E) + queue + prefill + decode + engine other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from servescope.tracecontext import client_trace_ids

if TYPE_CHECKING:
    import pandas as pd

    from analyzers.decompose import Decomposition

__all__ = ["ATTRIBUTION_COLUMNS", "PartStats", "SpanAttribution", "attribute_requests",
           "compare_with_histograms", "summarize"]

ATTRIBUTION_COLUMNS: tuple[str, ...] = (
    "request_id", "x_request_id", "trace_id", "client_ttft_ns", "client_e2e_ns",
    "engine_ttft_ns", "engine_e2e_ns", "net_in_ns", "net_out_ns", "transport_ns", "queue_ns",
    "prefill_ns", "engine_other_ns", "decode_ns", "transport_e2e_ns", "engine_other_e2e_ns",
    "prompt_tokens", "output_tokens", "engine_request_id",
)
TTFT_PARTS = (("transport and client", "transport_ns"), ("queue", "queue_ns"),
              ("prefill", "prefill_ns"), ("engine other", "engine_other_ns"))
E2E_PARTS = (("transport and client", "transport_e2e_ns"), ("queue", "queue_ns"),
             ("prefill", "prefill_ns"), ("decode", "decode_ns"),
             ("engine other", "engine_other_e2e_ns"))
CLOCK_SLACK_NS = 1_000_000  # a net share below −1 ms is a clock or join error


@dataclass(frozen=True, slots=True)
class PartStats:
    name: str
    mean_ns: float
    p50_ns: float
    p90_ns: float
    p99_ns: float
    share: float  # of the mean client latency


@dataclass(frozen=True, slots=True)
class SpanAttribution:
    requests: int  # successful requests of the measured phase
    request_spans: int  # the engine's request spans received
    joined: int
    unjoined_spans: int  # request spans no request of ours claims (warm-up, other clients)
    ttft: tuple[PartStats, ...]
    e2e: tuple[PartStats, ...]
    net_in_negative: int  # joined requests whose net in < −1 ms
    net_out_negative: int
    per_request: pd.DataFrame  # ATTRIBUTION_COLUMNS, slowest client TTFT first


def _f(col: pd.Series) -> np.ndarray:
    import pandas as pd

    return np.asarray(pd.to_numeric(col, errors="coerce"), dtype=np.float64)


def attribute_requests(requests: pd.DataFrame, spans: pd.DataFrame, seed: str,
                       request_span: str | None) -> tuple[pd.DataFrame, int]:
    """(one row per joined request, :data:`ATTRIBUTION_COLUMNS`, slowest TTFT first; the
    number of request spans). ``requests``: ``request_id``, ``x_request_id``, ``t_send_ns``,
    ``ttft_ns``, ``e2e_ns`` (client, ns); ``spans``: the received spans; ``seed``: the run's
    id; ``request_span``: the engine's request span name (a regular expression; None: every
    span with an engine TTFT)."""
    import pandas as pd

    if request_span:
        rx = re.compile(request_span)
        is_req = spans["name"].astype(str).map(lambda n: rx.fullmatch(n) is not None)
    else:
        is_req = spans["ttft_ns"].notna() if "ttft_ns" in spans else pd.Series(False,
                                                                               spans.index)
    rs = spans[is_req.astype(bool)].drop_duplicates("trace_id")
    rs = rs.rename(columns={c: f"span_{c}" for c in rs.columns if c != "trace_id"})
    req = requests[["request_id", "x_request_id", "t_send_ns", "ttft_ns", "e2e_ns"]].copy()
    req["trace_id"] = [client_trace_ids(seed, str(x))[0] for x in req["x_request_id"]]
    m = req.merge(rs, on="trace_id", how="inner")
    out = pd.DataFrame({"request_id": m["request_id"], "x_request_id": m["x_request_id"],
                        "trace_id": m["trace_id"]})

    def span(col: str) -> np.ndarray:
        key = f"span_{col}"
        return _f(m[key]) if key in m else np.full(len(m), np.nan)

    c_ttft, c_e2e = _f(m["ttft_ns"]), _f(m["e2e_ns"])
    e_ttft, e_e2e = span("ttft_ns"), span("e2e_ns")
    queue, prefill, decode = span("queue_ns"), span("prefill_ns"), span("decode_ns")
    net_in = span("t_start_ns") - _f(m["t_send_ns"])
    out["client_ttft_ns"], out["client_e2e_ns"] = c_ttft, c_e2e
    out["engine_ttft_ns"], out["engine_e2e_ns"] = e_ttft, e_e2e
    out["net_in_ns"] = net_in
    out["net_out_ns"] = c_ttft - net_in - e_ttft
    out["transport_ns"] = c_ttft - e_ttft
    out["queue_ns"], out["prefill_ns"] = queue, prefill
    out["engine_other_ns"] = e_ttft - np.nan_to_num(queue) - np.nan_to_num(prefill)
    out["decode_ns"] = decode
    out["transport_e2e_ns"] = c_e2e - e_e2e
    out["engine_other_e2e_ns"] = e_e2e - np.nan_to_num(queue) - np.nan_to_num(prefill) - \
        np.nan_to_num(decode)
    out["prompt_tokens"], out["output_tokens"] = span("prompt_tokens"), span("output_tokens")
    out["engine_request_id"] = (m["span_engine_request_id"].astype(str)
                                if "span_engine_request_id" in m else "")
    out = out.sort_values("client_ttft_ns", ascending=False, kind="stable")
    return out.reset_index(drop=True)[list(ATTRIBUTION_COLUMNS)], len(rs)


def _parts(df: pd.DataFrame, parts: tuple[tuple[str, str], ...], total: str
           ) -> tuple[PartStats, ...]:
    t = _f(df[total])
    t_mean = float(np.nanmean(t)) if np.isfinite(t).any() else np.nan
    out = []
    for name, col in parts:
        v = _f(df[col])
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        p50, p90, p99 = (float(x) for x in np.percentile(v, [50, 90, 99]))
        mean = float(v.mean())
        out.append(PartStats(name, mean, p50, p90, p99,
                             mean / t_mean if t_mean and np.isfinite(t_mean) else np.nan))
    return tuple(out)


def summarize(requests: pd.DataFrame, spans: pd.DataFrame, seed: str,
              request_span: str | None) -> SpanAttribution:
    """The attribution of ``requests`` (the successful ones of the measured phase)."""
    per, n_spans = attribute_requests(requests, spans, seed, request_span)
    return SpanAttribution(
        requests=len(requests), request_spans=n_spans, joined=len(per),
        unjoined_spans=n_spans - len(per),
        ttft=_parts(per, TTFT_PARTS, "client_ttft_ns"),
        e2e=_parts(per, E2E_PARTS, "client_e2e_ns"),
        net_in_negative=int((_f(per["net_in_ns"]) < -CLOCK_SLACK_NS).sum()),
        net_out_negative=int((_f(per["net_out_ns"]) < -CLOCK_SLACK_NS).sum()),
        per_request=per)


def compare_with_histograms(att: SpanAttribution, decomposition: tuple[Decomposition, ...]
                            ) -> list[tuple[str, str, float, float]]:
    """(latency, part, span-based mean ns, histogram-based mean ns) for every part both
    name: the span means are over the joined requests, the histogram means over the
    engine's window (:func:`analyzers.decompose.decompose`)."""
    out = []
    for d in decomposition:
        mine = {p.name: p.mean_ns for p in (att.ttft if d.latency == "ttft" else att.e2e)}
        out += [(d.latency, p.name, mine[p.name], p.mean_ns) for p in d.parts
                if p.name in mine]
    return out
