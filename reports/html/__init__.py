"""The HTML report: one self-contained page for a run or an A/B comparison (docs/reports.md).

:func:`gather_run` collects the analyzer results a report shows (:class:`RunInputs`);
:func:`run_report_html` and :func:`ab_report_html` render them. Figures are plain data
(:mod:`reports.html.figspec`); plotly is imported only when a page is assembled.
"""

from __future__ import annotations

from reports.html.inputs import RunInputs, gather_run
from reports.html.report import ab_figures, ab_report_html, run_figures, run_report_html

__all__ = ["RunInputs", "ab_figures", "ab_report_html", "gather_run", "run_figures",
           "run_report_html"]
