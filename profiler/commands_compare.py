"""``compare``, ``gate`` and ``gate --history`` as plain functions returning an exit code.

Exit codes: ``compare`` 0 (whatever it found) or 2; ``gate`` 0 pass, 1 regression, 2 invalid
input or an invalid run; history 0, 1 (a metric regressed) or 2. Every error a user can cause
(a missing run, a newer schema, a budgets typo, an unknown metric, an unwritable output) is one
line on stderr and exit code 2, never a traceback: an uncaught exception would exit with 1,
which CI would read as a regression, so even an unexpected one is reported as exit code 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from analyzers.goodput import SLO

__all__ = ["arm_paths", "compare_command", "gate_command", "gate_entry", "history_command",
           "parse_fraction"]

from servescope.exitcodes import EXIT_OK, EXIT_USAGE


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True)


def _stdout() -> Console:
    from reports.console import stdout_console

    return stdout_console()  # pipes and logs: wide enough that no cell is cut


def _err(msg: str) -> None:
    _stderr().print(f"[bold red]error:[/] {escape(msg)}", highlight=False)


def parse_fraction(text: str, what: str = "--min-effect") -> float:
    """``"5%"`` or ``"0.05"`` → 0.05."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*", text)
    if not m:
        raise ValueError(f"{what} {text!r}: expected a percentage like 5% or a fraction "
                         "like 0.05")
    value = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    if value >= 1 and not m.group(2):
        raise ValueError(f"{what} {text!r}: a fraction must be below 1 (did you mean "
                         f"{text}%?)")
    return value


def _slo(text: str | None) -> SLO | None:
    from analyzers.goodput import parse_slo

    return parse_slo(text) if text else None


def _metrics(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ValueError("--metrics is empty; e.g. --metrics ttft_p99,output_throughput")
    from analyzers.metric_catalog import get_metric

    for n in names:
        get_metric(n)  # UnknownMetricError lists the valid names
    return names


def _guard(body: Callable[[], int]) -> int:
    """Run ``body``; any error becomes one line on stderr and exit code 2."""
    from analyzers.budgets import BudgetError
    from servescope.rundir.layout import RunDirError

    try:
        return body()
    except (RunDirError, BudgetError, ValueError, OSError) as exc:
        _err(str(exc))
    except Exception as exc:  # noqa: BLE001 - exit 1 would read as "regression"
        _err(f"internal error ({type(exc).__name__}: {exc}); please report it")
    return EXIT_USAGE


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.write_text(text, encoding="utf-8")


def _write_json(path: Path | None, obj: object) -> None:
    if path is not None:
        from reports.jsonable import to_jsonable

        path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n", encoding="utf-8")


_R = TypeVar("_R")


def _ci_outputs(result: _R, md: str, junit_of: Callable[[_R], Any] | None, *,
                markdown: Path | None, junit: Path | None, json_out: Path | None) -> None:
    """The files a CI step reads: Markdown (also appended to ``$GITHUB_STEP_SUMMARY``),
    JUnit XML and JSON, each where asked."""
    from reports.junit import write_junit
    from reports.markdown import append_step_summary

    _write(markdown, md)
    append_step_summary(md)
    if junit is not None and junit_of is not None:
        write_junit(junit, junit_of(result))
    _write_json(json_out, result)


def arm_paths(path: Path | str) -> list[Path]:
    """What one side names: a run directory, a run group, or run directories and groups
    separated by commas (``runs/a1,runs/a2,runs/a3``)."""
    parts = [p.strip() for p in str(path).split(",")]
    if not all(parts):
        raise ValueError(f"{path}: an empty path in the comma-separated list")
    return [Path(p) for p in parts]


def compare_command(baseline: Path, candidate: Path, *, slo: str | None = None,
                    min_effect: str = "5%", confidence: float = 0.95,
                    correction: str = "holm", metrics: str | None = None,
                    json_out: Path | None = None, markdown_out: Path | None = None) -> int:
    """Print the comparison of ``candidate`` against ``baseline``; exit 0 (or 2 on error)."""

    def body() -> int:
        from analyzers.compare import CompareSettings
        from analyzers.compare_groups import compare_arms
        from analyzers.significance import Correction
        from reports.compare_terminal import print_comparison
        from reports.markdown import comparison_markdown

        try:
            corr = Correction(correction.lower())
        except ValueError:
            raise ValueError(f"--correction {correction!r}: use holm or bh") from None
        settings = CompareSettings(confidence=confidence, correction=corr,
                                   min_effect_frac=parse_fraction(min_effect))
        result = compare_arms(arm_paths(baseline), arm_paths(candidate), slo=_slo(slo),
                              settings=settings, metrics=_metrics(metrics))
        print_comparison(_stdout(), result)
        _write_json(json_out, result)
        _write(markdown_out, comparison_markdown(result))
        return EXIT_OK

    return _guard(body)


def gate_command(candidate: Path | Sequence[Path], *, budgets: Path,
                 baseline: Path | None = None,
                 baseline_store: Path | None = None, junit: Path | None = None,
                 markdown: Path | None = None, json_out: Path | None = None) -> int:
    """Check ``candidate`` against a baseline run (or the newest complete run of a store)
    under ``budgets``; exit 0 pass, 1 regression, 2 invalid. The Markdown summary is also
    appended to ``$GITHUB_STEP_SUMMARY`` when that is set."""

    def body() -> int:
        from analyzers.budgets import load_budgets
        from analyzers.gate import run_gate
        from reports.compare_terminal import print_gate
        from reports.junit import gate_junit
        from reports.markdown import gate_markdown

        if (baseline is None) == (baseline_store is None):
            raise ValueError("give a baseline: --baseline RUN or --baseline-store DIR "
                             "(exactly one)")
        spec = load_budgets(budgets)
        cands = [q for c in ([candidate] if isinstance(candidate, (str, Path)) else candidate)
                 for q in arm_paths(c)]
        from analyzers.compare_groups import expand_arm

        if baseline is not None and (both := {q.resolve() for q in expand_arm(cands)} & {
                q.resolve() for q in expand_arm(arm_paths(baseline))}):
            raise ValueError(f"{sorted(both)[0]} is both a baseline and a candidate run")
        result = run_gate(cands, spec, baseline_store=baseline_store,
                          baseline=arm_paths(baseline) if baseline is not None else None)
        print_gate(_stdout(), result)
        _ci_outputs(result, gate_markdown(result), gate_junit if junit else None,
                    markdown=markdown, junit=junit, json_out=json_out)
        return result.exit_code

    return _guard(body)


def history_command(runs: Sequence[Path], *, metrics: str | None = None,
                    min_effect: str = "5%", alpha: float = 0.05, slo: str | None = None,
                    junit: Path | None = None, markdown: Path | None = None,
                    json_out: Path | None = None) -> int:
    """Change points and drift over ``runs`` (run directories and/or stores of them); exit 1
    when a metric regressed, 2 with fewer than 4 usable runs or on error."""

    def body() -> int:
        from analyzers.history import DEFAULT_HISTORY_METRICS, run_history
        from reports.compare_terminal import print_history
        from reports.junit import history_junit
        from reports.markdown import history_markdown

        if not runs:
            raise ValueError("--history needs run directories or a directory of runs")
        if not 0 < alpha < 1:
            raise ValueError(f"--alpha must be in (0, 1), not {alpha}")
        names = _metrics(metrics) or list(DEFAULT_HISTORY_METRICS)
        parsed = _slo(slo)
        if parsed is not None and metrics is None:
            names += ["goodput_frac"]
        result = run_history(runs, metrics=names, slo=parsed, alpha=alpha,
                             min_effect_frac=parse_fraction(min_effect))
        print_history(_stdout(), result)
        _ci_outputs(result, history_markdown(result), history_junit if junit else None,
                    markdown=markdown, junit=junit, json_out=json_out)
        if result.exit_code == EXIT_USAGE:
            _err(f"{len(result.runs)} usable runs; history mode needs at least 4")
        return result.exit_code

    return _guard(body)


def gate_entry(runs: Sequence[Path], *, history: bool = False, budgets: Path | None = None,
               baseline: Path | None = None, baseline_store: Path | None = None,
               junit: Path | None = None, markdown: Path | None = None,
               json_out: Path | None = None, metrics: str | None = None,
               min_effect: str = "5%", alpha: float = 0.05, slo: str | None = None) -> int:
    """``servescope gate`` in one call: ``--history RUN_OR_DIR...`` runs
    :func:`history_command`, otherwise one CANDIDATE is gated with :func:`gate_command`.
    Options that do not belong to the chosen mode are a usage error (exit 2)."""
    if history:
        wrong = [n for n, v in (("--budgets", budgets), ("--baseline", baseline),
                                ("--baseline-store", baseline_store)) if v is not None]
        if wrong:
            _err(f"{', '.join(wrong)} cannot be used with --history")
            return EXIT_USAGE
        return history_command(runs, metrics=metrics, min_effect=min_effect, alpha=alpha,
                               slo=slo, junit=junit, markdown=markdown, json_out=json_out)
    wrong = [n for n, v in (("--metrics", metrics), ("--slo", slo)) if v is not None]
    if wrong:
        _err(f"{', '.join(wrong)} belong to --history; the gate takes them from the budgets "
             "file ([budgets], [slo])")
        return EXIT_USAGE
    if budgets is None:
        _err("--budgets FILE is required (or --history to look for change points)")
        return EXIT_USAGE
    if not runs:
        _err("give the candidate: a run directory, a run group, or several run directories "
             "(its repeats)")
        return EXIT_USAGE
    return gate_command(list(runs), budgets=budgets, baseline=baseline,
                        baseline_store=baseline_store, junit=junit, markdown=markdown,
                        json_out=json_out)
