"""servescope: profiling and observability for LLM inference servers.

The ``profiler`` package orchestrates runs: the CLI, the streaming client, workloads and the
run-directory format. Heavy libraries are imported lazily inside functions.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
