"""The HTML report's engine-span section: where each request's TTFT went, from the engine's
own request spans joined to the client's requests (``--collect otel``; analyzers.otel).

Shows the join (how many requests found their span), the distribution of each TTFT and E2E
share, the span-based means beside the histogram-based decomposition, and the slowest
requests decomposed. Nothing when the run received no spans. Engine strings (request ids)
go through :func:`~reports.html.text.esc`.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzers.decompose import Decomposition
from analyzers.otel import PartStats, SpanAttribution, compare_with_histograms
from reports.html.sections import table
from reports.html.text import esc, fmt_num, fmt_pct

__all__ = ["otel_section"]

SLOWEST = 10


def _ms(ns: float) -> str:
    return fmt_num(ns / 1e6, 2)


def _parts_table(parts: Sequence[PartStats]) -> str:
    rows = [[esc(p.name), _ms(p.mean_ns), _ms(p.p50_ns), _ms(p.p90_ns), _ms(p.p99_ns),
             fmt_pct(p.share, 1)] for p in parts]
    return table(["part", "mean ms", "p50 ms", "p90 ms", "p99 ms", "share of mean"], rows)


def _slowest(att: SpanAttribution) -> str:
    per = att.per_request.head(SLOWEST)
    rows = [[str(int(r["request_id"])), esc(str(r["x_request_id"])),
             _ms(r["client_ttft_ns"]), _ms(r["net_in_ns"]), _ms(r["queue_ns"]),
             _ms(r["prefill_ns"]), _ms(r["engine_other_ns"]), _ms(r["net_out_ns"]),
             esc(str(r["engine_request_id"]))] for r in per.to_dict("records")]
    return table(["request", "x-request-id", "client TTFT ms", "way in ms", "queue ms",
                  "prefill ms", "engine other ms", "way out ms", "engine request id"], rows)


def _comparison(att: SpanAttribution, decomposition: tuple[Decomposition, ...]) -> str:
    rows = compare_with_histograms(att, decomposition)
    if not rows:
        return ("<p>No histogram-based decomposition to compare with (the engine's latency "
                "histograms were not scraped).</p>")
    body = [[esc(lat.upper()), esc(part), _ms(span), _ms(hist),
             _ms(span - hist)] for lat, part, span, hist in rows]
    return ("<p>Means per part: from the joined spans (per request) and from the engine's "
            "histograms over the window (all requests it finished there).</p>"
            + table(["latency", "part", "spans ms", "histograms ms", "difference ms"], body))


def otel_section(att: SpanAttribution | None, decomposition: tuple[Decomposition, ...]
                 ) -> str:
    """The section's HTML ("" without spans)."""
    if att is None:
        return ""
    head = (f"<h2>Where TTFT went, request by request (engine spans)</h2>"
            f"<p>{att.joined:,} of {att.requests:,} successful measured requests joined "
            f"their engine span by the trace id of the client's traceparent "
            f"({att.request_spans:,} request spans received, {att.unjoined_spans:,} joined "
            "none). Client TTFT = way in (send → the engine's arrival stamp) + queue + "
            "prefill + engine other (the residual: tokenization, scheduling hops, output "
            "processing) + way out (the engine's first token → the client's read).</p>")
    if att.joined == 0:
        return head + "<p>No request joined: nothing to attribute.</p>"
    checks = ""
    if att.net_in_negative or att.net_out_negative:
        checks = (f"<p class=\"warn\">{att.net_in_negative} requests arrived at the engine "
                  f"before they were sent and {att.net_out_negative} had their first token "
                  "read before the engine produced it (by more than 1 ms): the clocks or the "
                  "join are off for them.</p>")
    return (head + checks + "<h3>TTFT shares</h3>" + _parts_table(att.ttft)
            + "<h3>E2E shares</h3>" + _parts_table(att.e2e)
            + "<h3>Spans and histograms</h3>" + _comparison(att, decomposition)
            + f"<h3>The {min(SLOWEST, att.joined)} slowest requests (client TTFT)</h3>"
            + _slowest(att))
