"""Other tools' results in servescope's pipeline: peer result files → run directories.

``import_run(FILE, OUT, tool=None)`` reads a ``vllm bench serve --save-detailed`` JSON, an
AIPerf ``profile_export.jsonl`` or a GuideLLM ``benchmarks.json`` and writes a standard run
directory (docs/run-format.md) whose ``manifest.imported`` says what was
reconstructed; every analyzer then works on it. docs/importers.md has the details per tool.
"""

from __future__ import annotations

from profiler.importers.api import ImportResult, import_run
from profiler.importers.base import ImportedRun, Importer
from profiler.importers.errors import ImportFormatError
from profiler.importers.registry import (
    IMPORTERS,
    UnknownImporterError,
    detect_importer,
    get_importer,
    importer_names,
)

__all__ = [
    "IMPORTERS",
    "ImportFormatError",
    "ImportResult",
    "ImportedRun",
    "Importer",
    "UnknownImporterError",
    "detect_importer",
    "get_importer",
    "import_run",
    "importer_names",
]
