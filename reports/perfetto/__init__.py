"""A run as one trace for Perfetto's UI: the client's requests, the engine's and the GPU's
samples as counters, the engine's stack summary and the kernel timelines, on one clock
(:func:`export_perfetto`; docs/run-format.md, "Perfetto export")."""

from reports.perfetto.export import DEFAULT_NAME, PerfettoExport, export_perfetto

__all__ = ["DEFAULT_NAME", "PerfettoExport", "export_perfetto"]
