"""Analyzer results as JSON-ready data: :func:`servescope.jsonio.to_jsonable` (one JSON-ifier
for the project: dataclasses become objects, enums their values, paths strings, non-finite
floats ``null``). Kept for importers of ``reports.jsonable``; new code imports
:mod:`servescope.jsonio`."""

from __future__ import annotations

from servescope.jsonio import to_jsonable

__all__ = ["to_jsonable"]
