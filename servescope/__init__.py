"""servescope's ground floor: the run-directory contract and everything it is made of.

Typed records, clocks, redaction, units and the engines' facts as data live here, with the
reader and writers of a run directory. Nothing here imports the rest of the project, so a
notebook can read any run directory with only this package::

    import servescope
    run = servescope.load_run("runs/20261203-demo")
    run.requests.head()

Heavy libraries (pandas, pyarrow) are imported only when a run is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from servescope.version import __version__

if TYPE_CHECKING:
    from servescope.rundir.manifest import Manifest
    from servescope.rundir.reader import RunData, load_run

__all__ = ["Manifest", "RunData", "__version__", "load_run"]


def __getattr__(name: str) -> Any:
    """The run-directory API, imported on first use (``servescope --help`` stays instant)."""
    if name in ("RunData", "load_run"):
        from servescope.rundir import reader

        return getattr(reader, name)
    if name == "Manifest":
        from servescope.rundir.manifest import Manifest

        return Manifest
    raise AttributeError(f"module 'servescope' has no attribute {name!r}")
