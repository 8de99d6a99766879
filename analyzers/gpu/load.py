"""The GPU collector's files read back into pandas: :func:`read_gpu` → :class:`GpuTables`.

A run recorded without ``--collect gpu`` has no ``gpu/`` directory: :func:`read_gpu` returns
None. A column a file lacks (an older or partial writer) is added as missing (NaN/None: the
field was not recorded), so the analysis never depends on every optional field being there.
A file that exists but cannot be read is left out (an empty table, or no devices) with one
sentence naming it in :attr:`GpuTables.warnings`; the other files are still used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servescope.records.gpu import GpmSample, GpuDeviceFacts, GpuProcessSample, GpuSample
from servescope.rundir.layout import (
    GPM_FILE,
    GPU_DEVICES_FILE,
    GPU_DIR,
    GPU_PROCESSES_FILE,
    GPU_SAMPLES_FILE,
    RunDirError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GpuTables", "read_devices", "read_gpu"]


@dataclass(frozen=True, slots=True)
class GpuTables:
    """Everything the GPU collector wrote; each table has its record's columns (possibly no
    rows), sorted by time."""

    devices: tuple[GpuDeviceFacts, ...]  # by gpu_index
    samples: pd.DataFrame  # GpuSample columns
    gpm: pd.DataFrame  # GpmSample columns (long: one row per metric and window)
    processes: pd.DataFrame  # GpuProcessSample columns
    warnings: tuple[str, ...] = ()  # files that could not be read, one sentence each

    def device(self, index: int) -> GpuDeviceFacts | None:
        return next((d for d in self.devices if d.gpu_index == index), None)

    @property
    def gpu_indices(self) -> tuple[int, ...]:
        """Every GPU seen: in devices.json or in the samples."""
        seen = {d.gpu_index for d in self.devices}
        for table in (self.samples, self.gpm):
            seen.update(int(i) for i in table["gpu_index"].dropna().unique())
        return tuple(sorted(seen))


def _columns(record: type) -> list[str]:
    return [f.name for f in dataclasses.fields(record)]


def _empty(record: type) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="float64") for c in _columns(record)})


def _read_table(path: Path, record: type, sort: str) -> pd.DataFrame:
    cols = _columns(record)
    if not path.is_file():
        return _empty(record)
    try:
        import pyarrow.parquet as pq

        df = pq.read_table(path).to_pandas()
    except Exception as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    for c in cols:
        if c not in df.columns:
            df[c] = float("nan")
    out: pd.DataFrame = df.sort_values(sort, kind="stable").reset_index(drop=True)
    return out


def _from_journal(run_dir: Path, kinds: tuple[tuple[str, type, str], ...],
                  warnings: list[str]) -> list[pd.DataFrame]:
    """The tables from the collector's journal, for a run that ended before it wrote them
    (killed): [] when there is no journal."""
    from servescope.rundir.gpu_tables import read_gpu_journal

    try:
        read = read_gpu_journal(run_dir)
    except Exception as exc:  # noqa: BLE001 - an unreadable journal is a warning
        warnings.append(f"cannot read the GPU journal of {run_dir}: {exc}")
        return []
    if read is None:
        return []
    arrow, journal_warnings = read
    warnings.extend(journal_warnings)
    warnings.append("the GPU tables were read from gpu/journal.jsonl: the run ended before "
                    "they were written (gpu/devices.json too: no device facts)")
    out = []
    for table, (_, record, sort) in zip(arrow, kinds, strict=True):
        df = table.to_pandas()
        for c in _columns(record):
            if c not in df.columns:
                df[c] = float("nan")
        out.append(df.sort_values(sort, kind="stable").reset_index(drop=True))
    return out


def _device(d: dict[str, Any], where: Path) -> GpuDeviceFacts:
    fields = {f.name: f for f in dataclasses.fields(GpuDeviceFacts)}
    if "gpu_index" not in d:
        raise RunDirError(f"{where}: a device without gpu_index")
    kw: dict[str, Any] = {}
    for name in fields:
        v = d.get(name)
        if name in ("mig_gpu_instances", "unsupported"):
            v = tuple(v or ())
        elif name in ("gpu_uuid", "name", "why_watched"):
            v = str(v or "")
        elif name == "gpm_supported":
            v = bool(v)
        kw[name] = v
    return GpuDeviceFacts(**kw)


def read_devices(run_dir: Path) -> tuple[GpuDeviceFacts, ...]:
    """``gpu/devices.json`` (a list of devices, or ``{"devices": [...]}``); () when absent."""
    import orjson

    path = run_dir / GPU_DEVICES_FILE
    if not path.is_file():
        return ()
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    items = raw.get("devices", []) if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise RunDirError(f"{path}: expected a list of devices")
    return tuple(sorted((_device(d, path) for d in items), key=lambda d: d.gpu_index))


def read_gpu(run_dir: str | Path) -> GpuTables | None:
    """The run's GPU tables, or None when it recorded no GPU telemetry (no ``gpu/``, or
    nothing readable in it: then the reason is lost with the tables; read_devices and the
    files themselves say it)."""
    run_dir = Path(run_dir)
    if not (run_dir / GPU_DIR).is_dir():
        return None
    warnings: list[str] = []
    devices: tuple[GpuDeviceFacts, ...] = ()
    try:
        devices = read_devices(run_dir)
    except RunDirError as exc:
        warnings.append(f"{exc}: the GPUs' facts are left out")
    kinds = ((GPU_SAMPLES_FILE, GpuSample, "t_ns"), (GPM_FILE, GpmSample, "t_start_ns"),
             (GPU_PROCESSES_FILE, GpuProcessSample, "t_ns"))
    tables = []
    if not any((run_dir / name).is_file() for name, _, _ in kinds):
        tables = _from_journal(run_dir, kinds, warnings)
    if not tables:
        for name, record, sort in kinds:
            try:
                tables.append(_read_table(run_dir / name, record, sort))
            except RunDirError as exc:
                warnings.append(f"{exc}: {name} is left out")
                tables.append(_empty(record))
    samples, gpm, processes = tables
    if not devices and samples.empty and gpm.empty:
        return None
    return GpuTables(devices, samples, gpm, processes, tuple(warnings))
