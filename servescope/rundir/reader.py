"""Read a run directory into DataFrames; needs no engine, network or GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from servescope.rundir.layout import EVENTS_FILE, REQUESTS_FILE, RunDirError
from servescope.rundir.manifest import Manifest, read_manifest
from servescope.rundir.tables import journal_tables

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunData", "load_run"]


@dataclass(slots=True)
class RunData:
    """A loaded run: the manifest plus the request and event tables.

    ``source`` is ``"parquet"`` for a finalized run and ``"journal"`` for a run that was
    killed before it could finalize (every request that had ended is still there).
    """

    path: Path
    manifest: Manifest
    requests: pd.DataFrame
    events: pd.DataFrame
    source: str
    warnings: list[str] = field(default_factory=list)


def load_run(path: str | Path) -> RunData:
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} does not exist or is not a directory")
    manifest = read_manifest(run_dir)
    req_path, ev_path = run_dir / REQUESTS_FILE, run_dir / EVENTS_FILE
    if req_path.is_file() and ev_path.is_file():
        import pyarrow.parquet as pq

        try:
            requests = pq.read_table(req_path).to_pandas()
            events = pq.read_table(ev_path).to_pandas()
        except Exception as exc:
            raise RunDirError(f"cannot read the tables of {run_dir}: {exc}") from exc
        return RunData(run_dir, manifest, requests, events, "parquet")
    req_t, ev_t, warnings = journal_tables(run_dir)
    if manifest.status == "running":
        warnings.append("the run did not finish (no final tables); read from its journal")
    return RunData(run_dir, manifest, req_t.to_pandas(), ev_t.to_pandas(), "journal", warnings)
