"""Rich tables for ``compare``, ``gate`` and history results. Strings from runs are passed as
:class:`rich.text.Text`, never as markup, so an engine flag like ``[bold]`` prints as is."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from analyzers.compare import Comparison, Verdict
from analyzers.gate import BudgetStatus, GateResult
from analyzers.history import History, HistoryVerdict
from analyzers.manifest_diff import ManifestChange
from reports.compare_format import fmt_change, fmt_interval, fmt_p, fmt_value

__all__ = ["print_comparison", "print_gate", "print_history"]

_VERDICT_STYLE = {Verdict.REGRESSED: "bold red", Verdict.IMPROVED: "bold green",
                  Verdict.UNCHANGED: "dim", Verdict.INCONCLUSIVE: "yellow",
                  Verdict.NOT_TESTED: "dim"}
_STATUS_STYLE = {BudgetStatus.PASS: "green", BudgetStatus.BREACH: "bold red",
                 BudgetStatus.UNCERTAIN: "yellow", BudgetStatus.MISSING: "bold yellow"}
_HISTORY_STYLE = {HistoryVerdict.REGRESSED: "bold red", HistoryVerdict.IMPROVED: "bold green",
                  HistoryVerdict.CHANGED: "yellow", HistoryVerdict.STABLE: "dim"}


def _t(text: object, style: str = "") -> Text:
    return Text(str(text), style=style)


def _changes_table(changes: tuple[ManifestChange, ...]) -> Table | Text:
    if not changes:
        return _t("no setting differs between the two manifests", "dim")
    t = Table(title="settings that differ (manifest)", title_justify="left")
    for c in ("setting", "baseline", "candidate"):
        t.add_column(c, overflow="fold")
    for ch in changes:
        t.add_row(_t(ch.key), _t(ch.baseline), _t(ch.candidate))
    return t


def _warnings(console: Console, warnings: tuple[str, ...]) -> None:
    for w in warnings:
        console.print(Text.assemble(("warning: ", "yellow"), w))


def print_comparison(console: Console, c: Comparison) -> None:
    s = c.settings
    between = c.between_runs
    model = (f"between-run model over {c.runs[0]}/{c.runs[1]} runs (means of the runs; "
             "MDE: the smallest worsening caught 90 % of the time)" if between
             else "within-run intervals (one run per side)")
    t = Table(title=Text(f"{c.baseline.run_id} → {c.candidate.run_id}"), title_justify="left",
              caption=(f"CI {s.confidence:.0%}; minimum effect {s.min_effect_frac:.0%} "
                       f"({s.min_effect_points * 100:g} pp for proportions); "
                       f"{s.correction.value} correction, α = {s.alpha:g}; {model}"),
              caption_justify="left")
    cols = [("metric", "left"), ("baseline", "right"), ("candidate", "right"),
            ("change", "right"), ("CI", "right"), *([("MDE", "right")] if between else []),
            ("p adj.", "right"), ("verdict", "left"), ("note", "left")]
    for col, just in cols:
        t.add_column(col, justify=just, no_wrap=col != "note",  # type: ignore[arg-type]
                     overflow="fold", min_width=24 if col == "note" else None)
    for m in c.metrics:
        mde = [_t(_fmt_mde(m.spec.relative, m.mde))] if between else []
        t.add_row(_t(m.name), fmt_value(m.spec, m.baseline), fmt_value(m.spec, m.candidate),
                  fmt_change(m.spec, m.change), fmt_interval(m.spec, m.change), *mde,
                  fmt_p(m.p_adjusted), _t(m.verdict.value, _VERDICT_STYLE[m.verdict]),
                  _t(m.note, "dim"))
    console.print(t)
    console.print(_changes_table(c.manifest_changes))
    _warnings(console, c.warnings)


def _fmt_mde(relative: bool, mde: float) -> str:
    if not math.isfinite(mde):
        return "–"
    return f"{mde * 100:.1f} %" if relative else f"{mde * 100:.2f} pp"


def print_gate(console: Console, g: GateResult) -> None:
    for issue in g.issues:
        console.print(Text.assemble(("invalid: ", "bold yellow"), issue.message))
    if g.results:
        t = Table(title=_t(f"budgets ({g.budgets_path}); relative budgets on "
                           f"{g.confidence:.1%} intervals"), title_justify="left")
        for col in ("metric", "budget", "baseline", "candidate", "change", "CI", "status",
                    "note"):
            t.add_column(col, overflow="fold", no_wrap=col != "note",
                         min_width=24 if col == "note" else None)
        for r in g.results:
            spec = r.budget.spec
            t.add_row(_t(r.budget.metric), _t(r.budget.text), fmt_value(spec, r.baseline),
                      fmt_value(spec, r.candidate),
                      fmt_change(spec, r.change) if r.change else "",
                      fmt_interval(spec, r.change) if r.change else "",
                      _t(r.status.value, _STATUS_STYLE[r.status]), _t(r.message, "dim"))
        console.print(t)
    for note in g.notes:
        console.print(_t(note, "dim"))
    if g.comparison is not None:
        console.print(_changes_table(g.comparison.manifest_changes))
        _warnings(console, g.comparison.warnings)
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[g.exit_code]
    console.print(Text(f"gate: {g.verdict} (exit code {g.exit_code})", style=style))


def print_history(console: Console, h: History) -> None:
    ids = [r.run_id + (f" ({r.runs} runs)" if r.runs > 1 else "") for r in h.runs]
    repeats = any(r.runs > 1 for r in h.runs)
    t = Table(title=_t(f"{len(h.runs)} points: {', '.join(ids)}"), title_justify="left")
    for col in ("metric", "first", "last", "change points", "trend (total)",
                *(["run-to-run sd"] if repeats else []), "p adj.", "verdict"):
        t.add_column(col, overflow="fold")
    for m in h.metrics:
        spec = m.spec
        cps = "; ".join(f"run {c.index + 1}: {fmt_value(spec, c.before_mean)} → "
                        f"{fmt_value(spec, c.after_mean)}" for c in m.changes.change_points)
        tr = m.changes.trend
        trend = "–" if tr is None else (f"{tr.total_effect * 100:+.1f} %" if spec.relative
                                        else f"{tr.total_effect:+.3g}")
        first = fmt_value(spec, m.values[0]) if m.values else "–"
        last = fmt_value(spec, m.values[-1]) if m.values else "–"
        sd = [_t(_fmt_mde(spec.relative, m.spread))] if repeats else []
        t.add_row(_t(spec.name), first, last, _t(cps or "–"), trend, *sd, fmt_p(m.p_adjusted),
                  _t(m.verdict.value, _HISTORY_STYLE[m.verdict]))
    console.print(t)
    for s in h.skipped:
        console.print(Text.assemble(("skipped: ", "yellow"), s))
    style = {0: "bold green", 1: "bold red", 2: "bold yellow"}[h.exit_code]
    console.print(Text(f"history: exit code {h.exit_code}", style=style))
