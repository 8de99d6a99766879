"""What an importer returns, and the Protocol every importer follows.

An importer reads one peer tool's result file into an :class:`ImportedRun`: the requests as
:class:`~servescope.records.RequestRecord` (timeline as faithful as the file allows), the
run's metadata, what had to be reconstructed, and the tool's own aggregate numbers. It does
no writing: :func:`profiler.importers.writer.write_imported` turns any ``ImportedRun`` into
a run directory through the same writer a live run uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from servescope.clock import ClockAnchor
from servescope.records import RequestRecord

__all__ = ["ImportedRun", "Importer"]


@dataclass(frozen=True, slots=True)
class ImportedRun:
    """One tool's result file, read.

    ``clock`` maps the records' ``*_ns`` times to epoch ns (the identity for tools that
    record wall-clock times). ``reconstructed`` says, one sentence each, what was synthesized
    and how; ``warnings`` what the reader of the numbers must know. ``aggregates`` are the
    tool's own numbers from the file, under the tool's own names and units.
    """

    importer: str  # registry name, e.g. "vllm-bench"
    tool: str  # what the tool calls itself, e.g. "vllm bench serve"
    version: str  # the tool's version as the file records it, else "unknown"
    verified_with: str  # the tool version this importer was checked against
    source_file: Path
    records: tuple[RequestRecord, ...]
    clock: ClockAnchor
    clock_note: str
    started_wall_ns: int
    ended_wall_ns: int
    status: str = "complete"
    target: Mapping[str, Any] = field(default_factory=dict)
    workload: Mapping[str, Any] = field(default_factory=dict)
    seed: int = -1
    workers: int = 1
    command_line: tuple[str, ...] = ()
    host: Mapping[str, Any] = field(default_factory=dict)  # what the file says of its host
    reconstructed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    aggregates: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)  # other metadata of the file


class Importer(Protocol):
    """Reads one tool's result file. Stateless; no I/O besides reading ``path``."""

    @property
    def name(self) -> str:
        """Registry name (``--tool``)."""
        ...

    @property
    def tool(self) -> str:
        """The tool and the file it reads, for messages."""
        ...

    @property
    def definitions(self) -> str:
        """The tool's metric definitions in :mod:`analyzers.definitions` (``vllm`` …)."""
        ...

    def sniff(self, path: Path, head: str) -> bool:
        """Whether ``path`` (whose first characters are ``head``) looks like this tool's file."""
        ...

    def read(self, path: Path) -> ImportedRun:
        """The file as an :class:`ImportedRun`; :class:`ImportFormatError` if it is not one."""
        ...
