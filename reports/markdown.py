"""Markdown for ``compare``, ``gate`` and history results (GitHub's ``$GITHUB_STEP_SUMMARY``,
pull-request comments). Every string that came from a run (paths, run ids, manifest values,
engine messages) goes through :func:`md_escape`: HTML is escaped, table pipes and newlines
neutralized, so an engine flag cannot break the table or inject markup."""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from pathlib import Path

from analyzers.compare import Comparison, MetricComparison, Verdict
from analyzers.gate import BudgetResult, BudgetStatus, GateResult
from analyzers.history import History, HistoryVerdict, MetricHistory
from analyzers.manifest_diff import ManifestChange
from analyzers.metric_catalog import MetricSpec
from reports.compare_format import fmt_change, fmt_interval, fmt_p, fmt_value

__all__ = ["append_step_summary", "comparison_markdown", "gate_markdown", "history_markdown",
           "md_escape"]

_VERDICT = {Verdict.REGRESSED: "🔴 regressed", Verdict.IMPROVED: "🟢 improved",
            Verdict.UNCHANGED: "⚪ unchanged", Verdict.INCONCLUSIVE: "🟡 inconclusive",
            Verdict.NOT_TESTED: "not tested"}
_STATUS = {BudgetStatus.PASS: "✅ pass", BudgetStatus.BREACH: "❌ breach",
           BudgetStatus.UNCERTAIN: "🟡 uncertain", BudgetStatus.MISSING: "⚠️ missing"}
_GATE = {"pass": "✅ pass", "regression": "❌ regression", "invalid": "⚠️ invalid input"}
_HISTORY = {HistoryVerdict.REGRESSED: "🔴 regressed", HistoryVerdict.IMPROVED: "🟢 improved",
            HistoryVerdict.CHANGED: "🟡 changed", HistoryVerdict.STABLE: "⚪ stable"}
_MAX_CELL = 300


def md_escape(text: object) -> str:
    """Safe inside a Markdown table cell: HTML-escaped, ``|`` and backticks escaped, one line,
    at most 300 characters."""
    s = " ".join(str(text).split())
    if len(s) > _MAX_CELL:
        s = s[:_MAX_CELL - 1] + "…"
    s = html.escape(s, quote=False)
    for ch in ("\\", "|", "`", "*", "_", "[", "]"):
        s = s.replace(ch, "\\" + ch)
    return s


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _metric_row(m: MetricComparison) -> list[str]:
    return [md_escape(m.name), fmt_value(m.spec, m.baseline), fmt_value(m.spec, m.candidate),
            fmt_change(m.spec, m.change), fmt_interval(m.spec, m.change), fmt_p(m.p_adjusted),
            _VERDICT[m.verdict], md_escape(m.note)]


def _changes(changes: tuple[ManifestChange, ...]) -> list[str]:
    if not changes:
        return ["No setting differs between the two manifests."]
    return ["**Settings that differ** (manifest):", "",
            *_table(("setting", "baseline", "candidate"),
                    ((md_escape(c.key), md_escape(c.baseline), md_escape(c.candidate))
                     for c in changes))]


def _bullets(title: str, items: Iterable[str]) -> list[str]:
    lines = [f"- {md_escape(i)}" for i in items]
    return [f"**{title}**", "", *lines, ""] if lines else []


def comparison_markdown(c: Comparison, *, title: str = "servescope compare") -> str:
    s = c.settings
    counts = {v: len(c.with_verdict(v)) for v in Verdict}
    lines = [
        f"## {md_escape(title)}", "",
        f"Baseline **{md_escape(c.baseline.run_id)}** ({c.baseline.measured_requests} requests) "
        f"→ candidate **{md_escape(c.candidate.run_id)}** ({c.candidate.measured_requests} "
        "requests).", "",
        f"{counts[Verdict.REGRESSED]} regressed, {counts[Verdict.IMPROVED]} improved, "
        f"{counts[Verdict.UNCHANGED]} unchanged, {counts[Verdict.INCONCLUSIVE]} inconclusive. "
        f"CI {s.confidence:.0%}, minimum effect {s.min_effect_frac:.0%} "
        f"({s.min_effect_points * 100:g} pp for proportions), {s.correction.value} "
        f"correction at α = {s.alpha:g}.", "",
        *_table(("metric", "baseline", "candidate", "change", "CI", "p (adj.)", "verdict",
                 "note"), (_metric_row(m) for m in c.metrics)), "",
        *_changes(c.manifest_changes), "",
        *_bullets("Warnings", c.warnings),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _budget_row(r: BudgetResult) -> list[str]:
    spec = r.budget.spec
    change = r.change
    return [md_escape(r.budget.metric), md_escape(r.budget.text),
            fmt_value(spec, r.baseline), fmt_value(spec, r.candidate),
            fmt_change(spec, change) if change else "",
            fmt_interval(spec, change) if change else "", _STATUS[r.status],
            md_escape(r.message)]


def gate_markdown(g: GateResult) -> str:
    lines = [f"## servescope gate: {_GATE[g.verdict]} (exit code {g.exit_code})", ""]
    if g.baseline is not None and g.candidate is not None:
        lines += [f"Candidate **{md_escape(g.candidate.run_id)}** against baseline "
                  f"**{md_escape(g.baseline.run_id)}**; budgets from "
                  f"{md_escape(g.budgets_path)}; relative budgets judged on "
                  f"{g.confidence:.1%} intervals ("
                  + ("between runs: a budget fails when the change is beyond it and the "
                     "interval excludes no change" if g.comparison is not None
                     and g.comparison.between_runs else
                     "a budget fails only when the whole interval is beyond it") + ").", ""]
    if g.issues:
        lines += ["**The runs cannot be judged:**", "",
                  *(f"- {md_escape(i.message)}" for i in g.issues), ""]
    if g.results:
        lines += _table(("metric", "budget", "baseline", "candidate", "change", "CI",
                         "status", "note"), (_budget_row(r) for r in g.results))
        lines.append("")
    lines += _bullets("Notes", g.notes)
    if g.comparison is not None:
        lines += [*_changes(g.comparison.manifest_changes), ""]
        lines += _bullets("Warnings", g.comparison.warnings)
    return "\n".join(lines).rstrip() + "\n"


def _history_row(m: MetricHistory, run_ids: list[str]) -> list[str]:
    spec = m.spec
    cps = "; ".join(
        f"run {c.index + 1} ({md_escape(run_ids[c.index]) if c.index < len(run_ids) else '?'}): "
        f"{fmt_value(spec, c.before_mean)} → {fmt_value(spec, c.after_mean)}"
        for c in m.changes.change_points)
    t = m.changes.trend
    trend = "–" if t is None else (
        f"{_per_run(spec, t.total_effect, len(m.values))}/run, p = {fmt_p(t.p_value)}")
    values = ", ".join(fmt_value(spec, v) for v in m.values)
    return [md_escape(spec.name), values, cps or "–", trend, fmt_p(m.p_adjusted),
            _HISTORY[m.verdict]]


def _per_run(spec: MetricSpec, total: float, n: int) -> str:
    per = total / max(n - 1, 1)
    return f"{per * 100:+.1f} %" if spec.relative else f"{per:+.3g}"


def history_markdown(h: History) -> str:
    run_ids = [r.run_id for r in h.runs]
    lines = [f"## servescope gate --history: {len(h.runs)} runs (exit code {h.exit_code})", "",
             f"Runs in order: {', '.join(md_escape(r) for r in run_ids)}.", "",
             f"Change points and drift at α = {h.alpha:g} (Holm over the metrics), minimum "
             f"effect {h.min_effect_frac:.0%}.", ""]
    if len(h.runs) < 4:
        lines += ["⚠️ Fewer than 4 usable runs: no history to judge.", ""]
    lines += _table(("metric", "values", "change points", "trend", "p (adj.)", "verdict"),
                    (_history_row(m, run_ids) for m in h.metrics))
    lines += ["", *_bullets("Skipped runs", h.skipped)]
    return "\n".join(lines).rstrip() + "\n"


def append_step_summary(markdown: str, env: dict[str, str] | None = None) -> Path | None:
    """Append to the file named by ``$GITHUB_STEP_SUMMARY`` (GitHub Actions); returns its path,
    or None when the variable is not set."""
    target = (env if env is not None else dict(os.environ)).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown + "\n")
    return path
