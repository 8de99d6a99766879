"""HTML sections of a run's report: headline, findings, intervals, errors, environment.

Each function returns an HTML fragment; every value that came from the run, the engine, the
workload or the command line goes through :func:`~reports.html.text.esc`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from analyzers.findings import Finding, Severity
from analyzers.manifest_diff import flatten
from analyzers.report_inputs import ErrorGroup
from analyzers.run_analysis import RunAnalysis
from analyzers.stats import Stats
from reports.html.describe import engine_name, started_text
from reports.html.text import DEFINITIONS, esc, fmt_ms, fmt_num, fmt_pct, redacted_command, short
from servescope.redact import redact_text
from servescope.rundir.manifest import Manifest

__all__ = [
    "HEADLINE",
    "card",
    "ci_table",
    "definitions_list",
    "environment",
    "errors_table",
    "finding_block",
    "headline_cards",
    "outputs_block",
    "problem_banner",
    "safe",
    "table",
    "warnings_block",
]

_CI_NAMES = {"ttft_ns": "TTFT", "itl_per_token_ns": "ITL (per token)", "tpot_ns": "TPOT",
             "e2e_ns": "E2E"}
# (key of DEFINITIONS, label, LatencySummary field)
HEADLINE = (("ttft", "TTFT", "ttft_ns"), ("itl", "ITL", "itl_per_token_ns"),
            ("tpot", "TPOT", "tpot_ns"), ("e2e", "E2E latency", "e2e_ns"))


def safe(text: object) -> str:
    """Text from the run (messages, flags, findings quoting them): secrets masked again,
    then escaped."""
    return esc(redact_text(str(text)))


def table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """A table; ``head`` and ``rows`` are HTML already (callers escape)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def card(label: str, value_html: str, definition: str, extra: str = "") -> str:
    return (f'<div class="card" title="{esc(definition)}"><div class="label">{esc(label)}'
            f'</div><div class="value">{value_html}</div>{extra}'
            f'<div class="def">{esc(definition)}</div></div>')


def _pair(st: Stats) -> str:
    if st.count == 0:
        return '<span class="na">no samples</span>'
    return (f'<span class="pct">p50</span> {fmt_ms(st.p50)} <span class="pct">p99</span> '
            f'{fmt_ms(st.p99)} <span class="unit">ms</span>')


def headline_cards(a: RunAnalysis) -> str:
    """TTFT, ITL, TPOT, E2E at p50 and p99, throughput, goodput and error rate."""
    s = a.summary
    cards = [card(label, _pair(getattr(s.latency, field)), DEFINITIONS[key])
             for key, label, field in HEADLINE]
    cards.append(card(
        "Throughput", f"{fmt_num(s.request_throughput_per_s)} <span class='unit'>req/s</span>"
        f"<br>{fmt_num(s.output_token_throughput_per_s, 1)} "
        "<span class='unit'>output tok/s</span>", DEFINITIONS["throughput"]))
    g = s.goodput
    if g is None:
        good = '<span class="na">no SLO given</span>'
    else:
        slo = ", ".join(f"{k.removesuffix('_ms')} ≤ {v:g} ms" for k, v in g.slo.given().items())
        good = (f"{fmt_num(g.good_requests_per_s)} <span class='unit'>req/s</span><br>"
                f"<span class='unit'>{fmt_pct(g.good_fraction)} meet {esc(slo)}</span>")
    cards.append(card("Goodput", good, DEFINITIONS["goodput"]))
    bad = s.measured_requests - s.successful_requests
    cls = "bad" if bad else ""
    cards.append(card("Error rate", f'<span class="{cls}">{fmt_pct(s.error_rate)}</span>'
                      f"<br><span class='unit'>{bad} of {s.measured_requests} requests"
                      "</span>", DEFINITIONS["error_rate"]))
    return f'<div class="cards">{"".join(cards)}</div>'


_SEV_CLASS = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


def problem_banner(findings: Sequence[Finding]) -> str:
    """The biggest problem in one box: the most severe finding, or that none was found."""
    top = next((f for f in findings if f.severity is not Severity.INFO), None)
    if top is None:
        return ('<div class="banner ok"><b>No bottleneck found</b> by the rules (KV cache, '
                'batch cap, prefill interference, prefix cache, client, errors, output '
                'length).</div>')
    more = len(findings) - 1
    action = f"<div>→ {safe(top.actions[0])}</div>" if top.actions else ""
    return (f'<div class="banner {_SEV_CLASS[top.severity]}"><div class="kicker">Biggest '
            f'problem ({esc(top.severity.value)})</div><b>{safe(top.title)}</b>'
            f"<div>{safe(top.summary)}</div>{action}"
            + (f'<div class="more">{more} more finding{"s" * (more != 1)} below.</div>'
               if more > 0 else "") + "</div>")


def _ev_value(name: str, v: float) -> str:
    if math.isnan(v):
        return "–"
    if name.endswith("_frac"):
        return fmt_pct(v)
    if name.endswith("_ns"):
        return f"{fmt_ms(v)} ms"
    if name.endswith("_s"):
        return f"{v:.3g} s"
    return f"{v:,.4g}"


def finding_block(f: Finding) -> str:
    ev = table(["evidence", "value", "detail"],
               [[esc(e.name), esc(_ev_value(e.name, e.value)), safe(short(e.detail, 300))]
                for e in f.evidence], "evidence")
    ids = (f" (e.g. request ids {esc(', '.join(map(str, f.request_ids[:10])))})"
           if f.request_ids else "")
    actions = "".join(f"<li>{safe(a)}</li>" for a in f.actions)
    window = (f.window_end_ns - f.window_start_ns) / 1e9
    return (f'<div class="finding {_SEV_CLASS[f.severity]}"><div class="ftitle">'
            f'<span class="sev">{esc(f.severity.value)}</span> {safe(f.title)} '
            f'<span class="rule">{esc(f.rule)}</span></div><p>{safe(f.summary)}</p>{ev}'
            f'<p class="meta">window {window:.2f} s; requests affected: '
            f"{f.requests_affected}{ids}</p>"
            + (f'<div class="actions">What to change:<ul>{actions}</ul></div>' if actions
               else "") + "</div>")


def ci_table(a: RunAnalysis) -> str:
    w = a.steady
    head = ("Steady state" if w.found else "No steady state") + (
        f": {w.window_ns / 1e9:.2f} s, {w.steady_requests} of {w.measured_requests} "
        f"requests. {w.reason}.")
    rows = []
    for key, cis in a.percentile_cis.items():
        cells = [esc(_CI_NAMES.get(key, key))]
        for q in (50.0, 90.0, 99.0):
            i = cis.get(q)
            cells.append("–" if i is None else
                         f"{fmt_ms(i.estimate)} <span class='ci'>[{fmt_ms(i.low)}–"
                         f"{fmt_ms(i.high)}]</span>")
        n = next(iter(cis.values())).n if cis else 0
        cells.append(f"{n:,}")
        rows.append(cells)
    thr = (f"<p>Steady-state throughput: {fmt_num(a.steady_request_throughput_per_s)} req/s, "
           f"{fmt_num(a.steady_output_token_throughput_per_s, 1)} output tok/s.</p>"
           if w.found else "")
    return (f"<p>{esc(head)}</p>{thr}"
            + table(["ms", "p50 [95 % CI]", "p90 [95 % CI]", "p99 [95 % CI]", "n"], rows,
                    "num"))


def warnings_block(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{safe(w)}</li>" for w in dict.fromkeys(warnings))
    return f'<div class="warnings"><b>Caveats about these numbers</b><ul>{items}</ul></div>'


def errors_table(errors: Sequence[ErrorGroup]) -> str:
    if not errors:
        return ""
    rows = [[esc(e.outcome), esc(e.status if e.status >= 0 else "–"), f"{e.count:,}",
             f'<span class="msg">{safe(short(e.message, 300))}</span>']
            for e in errors]
    return ("<h3>Failed requests</h3>"
            + table(["outcome", "HTTP", "count", "message (as the server sent it)"], rows))


def outputs_block(outputs: Sequence[tuple[int, str]]) -> str:
    if not outputs:
        return ""
    items = "".join(f'<details><summary>request {rid}</summary><pre class="text">'
                    f"{esc(short(text, 2000))}</pre></details>" for rid, text in outputs)
    return ("<h2>Sample outputs</h2><p>Included because the report was made with "
            f"<code>--include-text</code>; slowest requests first.</p>{items}")


def _kv_rows(d: Mapping[str, Any]) -> list[list[str]]:
    return [[esc(k), f"<code>{safe(short(str(v), 400))}</code>"]
            for k, v in d.items() if v not in (None, "", [], {})]


def environment(m: Manifest) -> str:
    """Host, target, workload, engine and command lines (secrets masked)."""
    h = m.host
    gpus = "; ".join(f"{g.name} ({max(g.memory_bytes, 0) / 2**30:.0f} GiB, "
                     f"driver {m.gpus.driver_version or '?'})" for g in m.gpus.devices) or "none"
    run = {"run id": m.run_id, "status": m.status, "started": started_text(m),
           "servescope": m.servescope_version, "schema version": m.schema_version,
           "seed": m.seed, "client workers": m.workers}
    host = {"hostname": h.hostname, "os": h.os, "python": h.python,
            "cpu": f"{h.cpu_model} × {h.cpu_count}",
            "memory": f"{h.memory_bytes / 2**30:.1f} GiB", "gpus": gpus}
    eng = m.engine
    engine: dict[str, Any] = {"engine": engine_name(m)}
    if eng is not None:
        if eng.command:
            engine["engine command"] = redacted_command(eng.command)
        if eng.ready_s is not None:
            engine["ready_s"] = eng.ready_s
        if eng.attached:
            engine["attached"] = True
        if eng.stop is not None:
            engine["stopped"] = (f"{', '.join(eng.stop.signals) or 'no signal'}, "
                                 f"return code {eng.stop.returncode}")
    engine["servescope command"] = redacted_command(m.command_line)
    workload = flatten(m.workload, "")
    blocks = [("Run", run), ("Target", {k: v for k, v in m.target.items()}),
              ("Engine and command lines", engine), ("Host", host), ("Workload", workload)]
    html = "".join(f"<h3>{esc(title)}</h3>" + table(["setting", "value"], _kv_rows(d), "kv")
                   for title, d in blocks)
    if m.warnings:
        html += warnings_block(m.warnings)
    return html


def definitions_list() -> str:
    items = "".join(f"<dt>{esc(k.upper().replace('_', ' '))}</dt><dd>{esc(v)}</dd>"
                    for k, v in DEFINITIONS.items())
    return f'<dl class="defs">{items}</dl>'
