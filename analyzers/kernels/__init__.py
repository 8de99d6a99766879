"""Serving-aware kernel-trace analysis (issue 11): engine steps cut from a torch-profiler
trace's events (:mod:`~analyzers.kernels.steps`), per-step GPU busy/idle and launch figures
with the launch-bound verdict (:mod:`~analyzers.kernels.timeline`), kernel categories and top
kernels (:mod:`~analyzers.kernels.breakdown`), one trace (:func:`analyze_kernels`) and two
(:func:`compare_kernels`). Input: pandas frames whose columns are
:class:`servescope.records.kernels.KernelEvent`'s fields."""

from analyzers.kernels.analysis import KernelAnalysis, LaunchBoundVerdict, analyze_kernels
from analyzers.kernels.breakdown import CategoryStats, KernelStats
from analyzers.kernels.categories import KernelCategory, categorize
from analyzers.kernels.compare import KernelComparison, KernelDelta, compare_kernels
from analyzers.kernels.frame import EVENT_COLUMNS, KernelFrameError
from analyzers.kernels.steps import Step, StepPhase, StepSource
from analyzers.kernels.timeline import StepTimeline

__all__ = ["EVENT_COLUMNS", "CategoryStats", "KernelAnalysis", "KernelCategory",
           "KernelComparison", "KernelDelta", "KernelFrameError", "KernelStats",
           "LaunchBoundVerdict", "Step", "StepPhase", "StepSource", "StepTimeline",
           "analyze_kernels", "categorize", "compare_kernels"]
