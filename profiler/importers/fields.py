"""Typed reads of parsed JSON that fail with :class:`ImportFormatError` naming the key.

A :class:`Where` is a position in a file (path, line for JSONL, key path); every getter takes
the containing object and a key and returns the typed value or raises, so an importer's
parsing code reads as a list of the fields it needs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from profiler.importers.errors import ImportFormatError

__all__ = ["Where", "load_json", "parse_json", "sub"]

_MISSING = object()


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a file: ``line`` (JSONL, 1-based; 0 for a whole-file JSON) and key path."""

    path: Path
    key: str = ""
    line: int = 0

    def at(self, key: str | int) -> Where:
        part = f"[{key}]" if isinstance(key, int) else (f".{key}" if self.key else key)
        return Where(self.path, self.key + part, self.line)

    def on_line(self, line: int) -> Where:
        return Where(self.path, "", line)

    def describe(self) -> str:
        parts = [f"line {self.line}"] if self.line else []
        if self.key:
            parts.append(f"key '{self.key}'")
        return ", ".join(parts)

    def fail(self, expected: str, *found: object) -> ImportFormatError:
        return ImportFormatError(self.path, self.describe(), expected,
                                 found=found[0] if found else None, has_found=bool(found))

    # -- getters -----------------------------------------------------------------------

    def obj(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail("a JSON object", value)
        return value

    def field(self, d: dict[str, Any], key: str) -> Any:
        if key not in d:
            raise self.at(key).fail("this key to be present")
        return d[key]

    def dict_(self, d: dict[str, Any], key: str) -> dict[str, Any]:
        return self.at(key).obj(self.field(d, key))

    def list_(self, d: dict[str, Any], key: str) -> list[Any]:
        value = self.field(d, key)
        if not isinstance(value, list):
            raise self.at(key).fail("a list", value)
        return value

    def int_(self, d: dict[str, Any], key: str) -> int:
        return self.at(key).as_int(self.field(d, key))

    def float_(self, d: dict[str, Any], key: str) -> float:
        return self.at(key).as_float(self.field(d, key))

    def str_(self, d: dict[str, Any], key: str) -> str:
        value = self.field(d, key)
        if not isinstance(value, str):
            raise self.at(key).fail("a string", value)
        return value

    def opt_int(self, d: dict[str, Any], key: str) -> int | None:
        value = d.get(key)
        return None if value is None else self.at(key).as_int(value)

    def opt_float(self, d: dict[str, Any], key: str) -> float | None:
        value = d.get(key)
        return None if value is None else self.at(key).as_float(value)

    def opt_str(self, d: dict[str, Any], key: str) -> str | None:
        value = d.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.at(key).fail("a string or null", value)

    def as_int(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise self.fail("an integer", value)
        return value

    def as_float(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail("a number", value)
        if not math.isfinite(value):
            raise self.fail("a finite number", value)
        return float(value)

    def floats(self, value: object) -> list[float]:
        if not isinstance(value, list):
            raise self.fail("a list of numbers", value)
        return [self.at(i).as_float(v) for i, v in enumerate(value)]


def sub(d: dict[str, Any], key: str) -> dict[str, Any]:
    """``d[key]`` if it is an object, else an empty one (for optional metadata)."""
    value = d.get(key)
    return value if isinstance(value, dict) else {}


def load_json(path: Path, what: str) -> Any:
    """The parsed JSON document in ``path``; a truncated or invalid file names the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(path, "", f"a readable UTF-8 {what}",
                                found=str(exc), has_found=True) from None
    if not text.strip():
        raise ImportFormatError(path, "", f"{what}, found an empty file")
    return parse_json(path, text, what, line=0)


def parse_json(path: Path, text: str, what: str, *, line: int) -> Any:
    """``json.loads`` whose error names the file, line and column (JSONL: ``line`` given)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"line {line}, column {exc.colno}" if line else (
            f"line {exc.lineno}, column {exc.colno}")
        # the parser stopped at the very end, or inside a string that never closed
        cut = exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        expected = f"{what} (the file ends early: truncated?)" if cut else what
        raise ImportFormatError(path, at, expected, found=exc.msg, has_found=True) from None
