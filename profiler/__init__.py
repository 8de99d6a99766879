"""The top floor of servescope: the CLI, orchestration of runs (starting engines, driving
workloads, collecting), workloads, importers and the reference server. Everything below it
(:mod:`servescope`, :mod:`collectors`, :mod:`analyzers`, :mod:`reports`) is usable without
it. Heavy libraries are imported lazily inside functions."""

from __future__ import annotations

from servescope.version import __version__

__all__ = ["__version__"]
