"""``manifest.json``: what was run, where, when, and how the run ended."""

from __future__ import annotations

import os
import platform
import socket
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servescope.clock import ClockAnchor
from servescope.jsonio import dumps, loads
from servescope.rundir.atomic import atomic_write
from servescope.rundir.layout import MANIFEST_FILE, SCHEMA_VERSION, RunDirError
from servescope.rundir.manifest_check import (
    RUN_STATUSES,
    Check,
    ManifestShapeError,
    check_top,
    decode_value,
    encode,
    obj_check,
)
from servescope.rundir.manifest_sections import (
    ClientInfo,
    ClientStep,
    EngineError,
    EngineInfo,
    EngineStop,
    GpuDevice,
    GpuInventory,
    ImportInfo,
    ScrapeCounts,
    ScrapedEndpoint,
)
from servescope.rundir.manifest_v1 import V1_PATHS, convert_v1
from servescope.version import __version__

__all__ = ["RUN_STATUSES", "ClientInfo", "ClientStep", "EngineError", "EngineInfo", "EngineStop",
           "GpuDevice", "GpuInventory", "HostInfo", "ImportInfo", "Manifest", "ScrapeCounts",
           "ScrapedEndpoint", "gpu_inventory", "host_fingerprint", "read_manifest",
           "write_manifest"]



@dataclass(slots=True)
class HostInfo:
    hostname: str
    os: str
    python: str
    cpu_model: str
    cpu_count: int
    memory_bytes: int


# the typed sections, each decoded by its annotation (``engine``/``imported`` may be absent)
_SECTIONS = ("clock", "host", "client", "gpus", "engine", "imported", "collectors")
_ANY_SECTION: dict[str, Check] = {name: obj_check() for name in _SECTIONS}


@dataclass(slots=True)
class Manifest:
    """``manifest.json`` (schema 2, docs/run-format.md).

    ``schema_version`` is the schema the directory was written with (a schema-1 manifest is
    converted when read); a manifest is always written in the current schema. ``collectors``:
    the counts of each collector other than the metrics scraper (whose counts are
    ``engine.scrapes``), under its name, in its own fields. ``extra`` holds the sections a newer
    servescope wrote that this one does not know: kept and written back as they are, never
    read here.
    """

    run_id: str
    started_wall_ns: int
    clock: ClockAnchor
    host: HostInfo
    command_line: list[str]
    workload: dict[str, Any]
    seed: int
    target: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    servescope_version: str = __version__
    status: str = "running"
    ended_wall_ns: int = -1
    workers: int = 1
    warnings: list[str] = field(default_factory=list)
    client: ClientInfo = field(default_factory=ClientInfo)
    gpus: GpuInventory = field(default_factory=GpuInventory)
    engine: EngineInfo | None = None
    imported: ImportInfo | None = None
    collectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The manifest as written (schema 2); unknown sections go back where they were."""
        out: dict[str, Any] = {name: section for name, section in self.extra.items()
                               if name not in _KNOWN}
        for name in _KNOWN:
            value = getattr(self, name)
            if value is not None:
                out[name] = encode(value)
        out["schema_version"] = SCHEMA_VERSION
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """The manifest of a decoded ``manifest.json`` (schema 1 or 2); :class:`RunDirError`
        ``manifest.json is malformed: FIELD: expected …`` when a field has the wrong shape."""
        try:
            return cls._from_json(data)
        except ManifestShapeError as exc:
            raise RunDirError(f"{MANIFEST_FILE} is malformed: {exc}") from exc

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> Manifest:
        version = data.get("schema_version", SCHEMA_VERSION)
        paths: dict[str, str] = {}
        if version == 1:
            data, paths = convert_v1(data), V1_PATHS
        unknown = {k: v for k, v in data.items() if k not in _KNOWN}
        for name, value in unknown.items():
            if type(value) is not dict:  # a section is an object; anything else is a mistake
                raise ManifestShapeError(f"{name}: unknown field")
        check_top({k: v for k, v in data.items() if k in _KNOWN}, _ANY_SECTION)
        kwargs = {k: v for k, v in data.items() if k in _KNOWN}
        hints = typing.get_type_hints(cls)
        for name in _SECTIONS:
            if name in data:
                kwargs[name] = decode_value(hints[name], data[name], paths.get(name, name))
        return cls(**kwargs, extra=unknown)


_KNOWN = tuple(f for f in Manifest.__dataclass_fields__ if f != "extra")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return -1


def gpu_inventory() -> GpuInventory:
    """The host's GPUs via NVML when it is there; an empty inventory otherwise."""
    try:
        import pynvml  # lazy: heavy and absent on most CI machines
    except ImportError:
        return GpuInventory()
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no GPU: both mean "no GPUs"
        return GpuInventory()
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            devices.append(GpuDevice(index=i, name=str(pynvml.nvmlDeviceGetName(h)),
                                     memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(h).total)))
        return GpuInventory(str(pynvml.nvmlSystemGetDriverVersion()), devices)
    finally:
        pynvml.nvmlShutdown()


def host_fingerprint() -> HostInfo:
    return HostInfo(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
    )


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a manifest; a
    failed write leaves the previous manifest and no temporary file, and raises
    :class:`~servescope.rundir.atomic.RunDirWriteError` (a :class:`RunDirError`)."""
    atomic_write(run_dir / MANIFEST_FILE, dumps(manifest.to_json(), indent=True))


def read_manifest(run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a servescope run directory (no {MANIFEST_FILE})")
    try:
        data = loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise RunDirError(f"cannot read {path}: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is not a JSON object")
    version = data.get("schema_version")
    if type(version) is not int or version < 1:
        raise RunDirError(f"{path} has no schema_version (an integer from 1)")
    if version > SCHEMA_VERSION:
        raise RunDirError(
            f"{run_dir} was written with run-directory schema {version}, newer than this "
            f"servescope understands ({SCHEMA_VERSION}); upgrade servescope to read it"
        )
    try:
        return Manifest.from_json(data)
    except RunDirError as exc:
        detail = str(exc).removeprefix(f"{MANIFEST_FILE} is malformed: ")
        raise RunDirError(f"{path} is malformed: {detail}") from exc
