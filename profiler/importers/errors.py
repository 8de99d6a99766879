"""The one error an importer raises for a file it cannot read."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ImportFormatError"]

_FOUND_CHARS = 80


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _FOUND_CHARS else text[: _FOUND_CHARS - 1] + "…"


class ImportFormatError(ValueError):
    """A file that is not what its importer expects, said for the user.

    ``where`` names the place (``line 3``, ``key 'itls[4]'``), ``expected`` what should have
    been there; ``found`` (optional) what was.
    """

    def __init__(self, path: Path, where: str, expected: str, *,
                 found: object = None, has_found: bool = False) -> None:
        self.path = path
        self.where = where
        self.expected = expected
        place = f"{path}: {where}: " if where else f"{path}: "
        tail = f", found {_short(found)}" if has_found else ""
        super().__init__(f"{place}expected {expected}{tail}")
