"""The HTML report: one self-contained page for a run or an A/B comparison (docs/reports.md).

:func:`run_report_html` and :func:`ab_report_html` render what a run's report shows, a
:class:`~analyzers.report_inputs.RunInputs` that the caller gathered
(:func:`analyzers.report_inputs.gather_run`, from the run's context). Figures are plain data
(:mod:`reports.html.figspec`); plotly is imported only when a page is assembled.
"""

from __future__ import annotations

from analyzers.report_inputs import RunInputs
from reports.html.report import ab_figures, ab_report_html, run_figures, run_report_html

__all__ = ["RunInputs", "ab_figures", "ab_report_html", "run_figures", "run_report_html"]

