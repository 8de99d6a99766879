"""``manifest.json``: what was run, where, when, and how the run ended."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from servescope.clock import ClockAnchor
from servescope.rundir.atomic import atomic_write
from servescope.rundir.layout import MANIFEST_FILE, SCHEMA_VERSION, RunDirError
from servescope.rundir.manifest_check import ManifestShapeError, check_manifest
from servescope.version import __version__

__all__ = ["HostInfo", "Manifest", "host_fingerprint", "read_manifest", "write_manifest"]

RUN_STATUSES = ("running", "complete", "interrupted", "failed")


@dataclass(slots=True)
class HostInfo:
    hostname: str
    os: str
    python: str
    cpu_model: str
    cpu_count: int
    memory_bytes: int
    gpus: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Manifest:
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
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """The manifest of a decoded ``manifest.json``; :class:`RunDirError`
        ``manifest.json is malformed: FIELD: expected …`` when a field has the wrong shape."""
        try:
            check_manifest(data)
        except ManifestShapeError as exc:
            raise RunDirError(f"{MANIFEST_FILE} is malformed: {exc}") from exc
        d = dict(data)
        d["clock"] = ClockAnchor(**d["clock"])
        d["host"] = HostInfo(**d["host"])
        return cls(**d)


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


def _gpus() -> list[dict[str, Any]]:
    """GPU names and driver via NVML when it is there; an empty list otherwise."""
    try:
        import pynvml  # lazy: heavy and absent on most CI machines
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no GPU: both mean "no GPUs"
        return []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out.append(
                {"index": i, "name": pynvml.nvmlDeviceGetName(h), "driver": driver,
                 "memory_bytes": int(mem.total)}
            )
        return out
    finally:
        pynvml.nvmlShutdown()


def host_fingerprint(probe_gpus: bool = True) -> HostInfo:
    return HostInfo(
        hostname=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        gpus=_gpus() if probe_gpus else [],
    )


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a manifest; a
    failed write leaves the previous manifest and no temporary file, and raises
    :class:`~servescope.rundir.atomic.RunDirWriteError` (a :class:`RunDirError`)."""
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True)
    atomic_write(run_dir / MANIFEST_FILE, text.encode())


def read_manifest(run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a servescope run directory (no {MANIFEST_FILE})")
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise RunDirError(f"cannot read {path}: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is not a JSON object")
    version = data.get("schema_version")
    if type(version) is not int:
        raise RunDirError(f"{path} has no integer schema_version")
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
