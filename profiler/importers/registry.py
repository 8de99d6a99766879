"""The importers, by name, and detection of a file's tool. An explicit list: importing
registers nothing. Adding a tool is one new module and one line in :data:`IMPORTERS`."""

from __future__ import annotations

import difflib
from pathlib import Path

from profiler.importers.aiperf import AiperfImporter
from profiler.importers.base import Importer
from profiler.importers.errors import ImportFormatError
from profiler.importers.guidellm import GuidellmImporter
from profiler.importers.vllm_bench import VllmBenchImporter

__all__ = ["IMPORTERS", "UnknownImporterError", "detect_importer", "get_importer",
           "importer_names"]

IMPORTERS: tuple[Importer, ...] = (VllmBenchImporter(), AiperfImporter(), GuidellmImporter())
_HEAD_CHARS = 8192


class UnknownImporterError(ValueError):
    """No importer of that name; the message lists the valid names."""


def importer_names() -> tuple[str, ...]:
    return tuple(i.name for i in IMPORTERS)


def get_importer(name: str) -> Importer:
    key = name.strip().lower().replace("_", "-")
    for importer in IMPORTERS:
        if importer.name == key:
            return importer
    names = importer_names()
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownImporterError(f"unknown tool {name!r}{hint}; valid tools: {', '.join(names)}")


def read_head(path: Path) -> str:
    """The first characters of ``path`` (for sniffing); a clear error if it is unreadable."""
    if not path.is_file():
        raise ImportFormatError(path, "", "a result file", found="no such file", has_found=True)
    try:
        with path.open("rb") as fh:
            return fh.read(_HEAD_CHARS).decode("utf-8", errors="replace")
    except OSError as exc:
        raise ImportFormatError(path, "", "a readable result file",
                                found=str(exc), has_found=True) from None


def detect_importer(path: Path) -> Importer:
    """The importer whose tool wrote ``path``, from its name and first bytes."""
    head = read_head(path)
    if not head.strip():
        raise ImportFormatError(path, "", "a result file, found an empty file")
    matches = [i for i in IMPORTERS if i.sniff(path, head)]
    if len(matches) == 1:
        return matches[0]
    tools = "; ".join(f"{i.name}: {i.tool}" for i in IMPORTERS)
    if not matches:
        raise ImportFormatError(path, "", f"a result file of a known tool ({tools}); "
                                "name the tool with --tool if it is one of them")
    names = ", ".join(i.name for i in matches)
    raise ImportFormatError(path, "", f"one tool's result file, but it looks like several "
                            f"({names}); name the tool with --tool")
