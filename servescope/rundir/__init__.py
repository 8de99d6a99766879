"""The run directory: the contract between collection and analysis (docs/run-format.md)."""

from __future__ import annotations

from servescope.rundir.layout import SCHEMA_VERSION, RunDirError

__all__ = ["SCHEMA_VERSION", "RunDirError"]
