"""Import one peer tool's result file into a new run directory: the library entry point."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profiler.importers.base import Importer
from profiler.importers.errors import ImportFormatError
from profiler.importers.registry import IMPORTERS, detect_importer, get_importer, read_head
from profiler.importers.writer import prepare_out_dir, write_imported

__all__ = ["ImportResult", "import_run"]


@dataclass(frozen=True, slots=True)
class ImportResult:
    run_dir: Path
    importer: str
    definitions: str  # the tool's metric definitions (analyzers.definitions)
    tool: str
    version: str
    requests: int
    reconstructed: tuple[str, ...]
    warnings: tuple[str, ...]


def import_run(source: Path, out: Path, tool: str | None = None) -> ImportResult:
    """Read ``source`` (with ``tool``'s importer, or the one its content names) and write the
    run directory ``out``, which must not exist or be empty.

    Raises :class:`~profiler.importers.errors.ImportFormatError` for a file that is not
    the tool's, :class:`~profiler.importers.registry.UnknownImporterError` for an unknown
    ``tool`` and :class:`~servescope.rundir.layout.RunDirError` for an unusable ``out``; in
    every case nothing is written.
    """
    importer = _named(tool, source) if tool else detect_importer(source)
    if out.exists():
        prepare_out_dir(out)  # refuse a non-empty --out before reading a large file
    run = importer.read(source)
    warnings = write_imported(run, out)
    return ImportResult(out, importer.name, importer.definitions, run.tool, run.version,
                        len(run.records), run.reconstructed, tuple(warnings))


def _named(tool: str, source: Path) -> Importer:
    """The importer named ``tool``; a file that plainly is another tool's is refused."""
    importer = get_importer(tool)
    head = read_head(source)
    if head.strip() and not importer.sniff(source, head):
        others = [i for i in IMPORTERS if i is not importer and i.sniff(source, head)]
        if others:
            raise ImportFormatError(
                source, "", f"{importer.tool}, but it looks like {others[0].tool}: "
                f"use --tool {others[0].name}")
    return importer
