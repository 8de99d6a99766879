"""servescope's version (also the version written into every run directory's manifest)."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
