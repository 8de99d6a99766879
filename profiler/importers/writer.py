"""An :class:`ImportedRun` → a standard run directory, through the live run's own writer.

Records go through :class:`collectors.timeline.TimelineRecorder` (the journal) and
:func:`servescope.rundir.tables.finalize_tables` (the parquet tables), so ``load_run``,
``summarize`` and every analyzer read an imported run exactly as a recorded one.
``manifest.imported`` (:class:`~servescope.rundir.manifest.ImportInfo`) says where the data
came from and what was reconstructed.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from collectors.timeline import TimelineRecorder
from profiler.importers.base import ImportedRun
from servescope.rundir.atomic import RunDirWriteError
from servescope.rundir.layout import RunDirError
from servescope.rundir.manifest import HostInfo, ImportInfo, Manifest, write_manifest
from servescope.rundir.tables import finalize_tables

__all__ = ["import_info", "prepare_out_dir", "write_imported"]

_UNKNOWN = "unknown"


def prepare_out_dir(out: Path) -> None:
    """Create ``out``; refuse an existing file or a non-empty directory (never overwrite)."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise RunDirError(f"{out} already exists and is not empty; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {out}: {exc}") from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def import_info(run: ImportedRun) -> ImportInfo:
    """``manifest.imported`` of ``run``."""
    return ImportInfo(
        tool=run.tool,
        importer=run.importer,
        version=run.version,
        verified_with=run.verified_with,
        source_file=str(run.source_file.resolve()),
        source_sha256=_sha256(run.source_file),
        source_bytes=run.source_file.stat().st_size,
        imported_wall_ns=time.time_ns(),
        clock_note=run.clock_note,
        reconstructed=list(run.reconstructed),
        aggregates=dict(run.aggregates),
        details=dict(run.details),
    )


def _host(info: dict[str, Any]) -> HostInfo:
    return HostInfo(
        hostname=str(info.get("hostname", _UNKNOWN)), os=str(info.get("os", _UNKNOWN)),
        python=str(info.get("python", _UNKNOWN)), cpu_model=str(info.get("cpu_model", _UNKNOWN)),
        cpu_count=-1, memory_bytes=-1,
    )


def write_imported(run: ImportedRun, out: Path) -> list[str]:
    """Write ``run`` as the run directory ``out`` (new or empty); returns the run's warnings
    (the importer's and any met while writing), which are also in ``manifest.warnings``."""
    prepare_out_dir(out)
    manifest = Manifest(
        run_id=out.name, started_wall_ns=run.started_wall_ns, clock=run.clock,
        host=_host(dict(run.host)), command_line=list(run.command_line),
        workload=dict(run.workload), seed=run.seed, target=dict(run.target),
        workers=run.workers, warnings=list(run.warnings),
        imported=import_info(run),
    )
    write_manifest(out, manifest)
    with TimelineRecorder(out, worker_id=0) as recorder:
        for record in run.records:
            if not recorder.write(record):
                break
    if recorder.error is not None:  # a full disk: say so rather than import part of it
        raise RunDirWriteError(recorder.path, recorder.error)
    _, table_warnings = finalize_tables(out)
    manifest.warnings.extend(table_warnings)
    manifest.status = run.status
    manifest.ended_wall_ns = run.ended_wall_ns
    write_manifest(out, manifest)
    return list(manifest.warnings)
