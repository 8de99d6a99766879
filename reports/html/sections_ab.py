"""HTML sections of an A/B report: what changed, whether it matters, the settings diff.

Renders :class:`~analyzers.compare.Comparison` (A = baseline, B = candidate); every value
from the runs goes through :func:`~reports.html.text.esc`.
"""

from __future__ import annotations

from collections import Counter

from analyzers.compare import Comparison, MetricComparison, Verdict
from analyzers.metric_catalog import Kind
from analyzers.run_analysis import RunAnalysis
from analyzers.summary import RunSummary
from reports.compare_format import fmt_change, fmt_interval, fmt_p, fmt_value
from reports.html.sections import HEADLINE, card, table
from reports.html.text import DEFINITIONS, esc, fmt_ms, fmt_num, fmt_pct, short
from servescope.redact import redact_text

__all__ = ["ab_headline", "ab_verdict", "changes_table", "manifest_changes"]

_CLASS = {Verdict.REGRESSED: "v-regressed", Verdict.IMPROVED: "v-improved",
          Verdict.UNCHANGED: "v-unchanged", Verdict.INCONCLUSIVE: "v-inconclusive",
          Verdict.NOT_TESTED: "v-not"}


def _verdict(v: Verdict) -> str:
    return f'<span class="verdict {_CLASS[v]}">{esc(v.value)}</span>'


def _line(m: MetricComparison) -> str:
    return (f"{esc(m.spec.label)} {esc(fmt_change(m.spec, m.change))} "
            f"<span class='ci'>{esc(fmt_interval(m.spec, m.change))}</span>")


_CLIENT = (Kind.PERCENTILE, Kind.RATE, Kind.PROPORTION)


def _listing(what: str, ms: tuple[MetricComparison, ...]) -> str:
    """Client metrics with their change and interval; the engine's own ones by name."""
    client = [m for m in ms if m.spec.kind in _CLIENT]
    engine = [m for m in ms if m.spec.kind not in _CLIENT]
    text = "; ".join(_line(m) for m in client)
    if engine:
        names = ", ".join(esc(m.spec.label) for m in engine)
        text += ("; " if text else "") + f"<span class='ci'>engine side: {names}</span>"
    return f"<div>{what}: {text}</div>"


def ab_verdict(c: Comparison) -> str:
    """The answer first: which metrics got worse or better beyond the minimum effect, and
    how many could not be told apart."""
    counts = Counter(m.verdict for m in c.metrics)
    worse, better = c.with_verdict(Verdict.REGRESSED), c.with_verdict(Verdict.IMPROVED)
    cls = "critical" if worse else ("ok" if better else "warning")
    head = ("B is worse" if worse and not better else "B is better" if better and not worse
            else "Mixed: B is better in some metrics and worse in others" if worse
            else "No change that matters could be shown")
    parts = [_listing(what, ms) for what, ms in (("Regressed", worse), ("Improved", better))
             if ms]
    tally = ", ".join(f"{counts[v]} {v.value}" for v in Verdict if counts[v])
    t = c.settings.min_effect_frac
    return (f'<div class="banner {cls}"><div class="kicker">A/B verdict</div><b>{esc(head)}'
            f"</b>{''.join(parts)}<div class='more'>{esc(tally)}. A change counts when its "
            f"{c.settings.confidence:.0%} interval lies beyond ±{t:.0%} and a test across the "
            f"runs is significant after {esc(c.settings.correction.value)} correction; "
            "\"inconclusive\" means these runs cannot tell.</div></div>")


def _value_pair(a: float, b: float, unit: str) -> str:
    if unit == "ms":
        return f"{fmt_ms(a)} → {fmt_ms(b)} <span class='unit'>ms</span>"
    if unit == "%":
        return f"{fmt_pct(a)} → {fmt_pct(b)}"
    return f"{fmt_num(a)} → {fmt_num(b)} <span class='unit'>{esc(unit)}</span>"


def _metric_verdict(c: Comparison, name: str) -> str:
    try:
        m = c.metric(name)
    except KeyError:
        return ""
    return (f"<div class='unit'>{esc(fmt_change(m.spec, m.change))} "
            f"{esc(fmt_interval(m.spec, m.change))} {_verdict(m.verdict)}</div>")


def ab_headline(a: RunAnalysis, b: RunAnalysis, c: Comparison) -> str:
    """Headline cards with A → B and the p99 verdict (p50 in the table below)."""
    sa, sb = a.summary, b.summary
    cards = []
    for key, label, field in HEADLINE:
        x, y = getattr(sa.latency, field), getattr(sb.latency, field)
        value = (f"<span class='pct'>p50</span> {_value_pair(x.p50, y.p50, 'ms')}<br>"
                 f"<span class='pct'>p99</span> {_value_pair(x.p99, y.p99, 'ms')}")
        cards.append(card(label, value, DEFINITIONS[key], _metric_verdict(c, f"{key}_p99")))
    cards.append(card("Output throughput", _value_pair(
        sa.output_token_throughput_per_s, sb.output_token_throughput_per_s, "tok/s"),
        DEFINITIONS["throughput"], _metric_verdict(c, "output_throughput")))
    cards.append(card("Request throughput", _value_pair(
        sa.request_throughput_per_s, sb.request_throughput_per_s, "req/s"),
        DEFINITIONS["throughput"], _metric_verdict(c, "request_throughput")))
    cards.append(_goodput_card(sa, sb, c))
    cards.append(card("Error rate", _value_pair(sa.error_rate, sb.error_rate, "%"),
                      DEFINITIONS["error_rate"], _metric_verdict(c, "error_rate")))
    return f'<div class="cards">{"".join(cards)}</div>'


def _goodput_card(sa: RunSummary, sb: RunSummary, c: Comparison) -> str:
    if sa.goodput is None or sb.goodput is None:
        return card("Goodput", '<span class="na">no SLO given</span>', DEFINITIONS["goodput"])
    slo = ", ".join(f"{k.removesuffix('_ms')} ≤ {v:g} ms"
                    for k, v in sa.goodput.slo.given().items())
    value = (_value_pair(sa.goodput.good_requests_per_s, sb.goodput.good_requests_per_s,
                         "req/s") + f"<br><span class='unit'>meeting {esc(slo)}</span>")
    return card("Goodput", value, DEFINITIONS["goodput"], _metric_verdict(c, "goodput"))


def changes_table(c: Comparison) -> str:
    rows = [[esc(m.spec.label), esc(fmt_value(m.spec, m.baseline)),
             esc(fmt_value(m.spec, m.candidate)), esc(fmt_change(m.spec, m.change)),
             esc(fmt_interval(m.spec, m.change)), esc(m.test or "–"), esc(fmt_p(m.p_adjusted)),
             _verdict(m.verdict), esc(short(m.note, 200))] for m in c.metrics]
    return table(["metric", "A", "B", "change", f"{c.settings.confidence:.0%} CI", "test",
                  "p (adjusted)", "verdict", "note"], rows, "num")


def manifest_changes(c: Comparison) -> str:
    if not c.manifest_changes:
        return "<p>The two runs' recorded settings are the same (run ids, times and ports " \
               "aside).</p>"
    rows = [[f"<code>{esc(ch.key)}</code>",
             f"<code>{esc(redact_text(short(ch.baseline, 300)))}</code>",
             f"<code>{esc(redact_text(short(ch.candidate, 300)))}</code>"]
            for ch in c.manifest_changes]
    return table(["setting", "A", "B"], rows, "kv")
