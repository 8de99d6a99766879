"""The typed sections of ``manifest.json`` (schema 2): what the client, the engine, the GPUs
and an import recorded about a run. Units live in field names; every field's JSON name is
its name here (docs/run-format.md). Decoded and checked by
:func:`servescope.rundir.manifest_check.decode`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from servescope.rundir.manifest_check import OMIT_DEFAULT, decode

__all__ = [
    "ClientInfo",
    "ClientStep",
    "EngineError",
    "EngineInfo",
    "EngineStop",
    "GpuDevice",
    "GpuInventory",
    "ImportInfo",
    "ScrapeCounts",
    "ScrapedEndpoint",
]


@dataclass(slots=True)
class ClientStep:
    """The client's CPU time over one step: ``cpu_ns`` of all its processes (workers
    included) during ``wall_ns`` of wall time, with ``workers`` worker processes."""

    step: int
    workers: int
    wall_ns: int
    cpu_ns: int


@dataclass(slots=True)
class ClientInfo:
    """``timestamps``: where event times were taken (``packet_rx``: each packet's receive
    time from a packet socket, ``kernel_rx``: the kernel's receive time of each read,
    ``socket_read`` or ``coroutine_wakeup``; "" when not recorded, e.g. an imported
    run); ``steps``: one :class:`ClientStep` per step."""

    timestamps: str = ""
    steps: list[ClientStep] = field(default_factory=list)


@dataclass(slots=True)
class GpuDevice:
    index: int
    name: str
    memory_bytes: int = -1


@dataclass(slots=True)
class GpuInventory:
    """The host's GPUs as NVML saw them when the run started (empty when there are none, or
    NVML or its driver is missing). GPU collectors extend this section."""

    driver_version: str = ""
    devices: list[GpuDevice] = field(default_factory=list)


@dataclass(slots=True)
class ScrapedEndpoint:
    """A metrics URL the run scraped (see :class:`servescope.engines.spec.MetricsEndpoint`)."""

    url: str
    format: str
    destructive: bool = False
    optional: bool = False
    min_interval_s: float = 0.0


@dataclass(slots=True)
class ScrapeCounts:
    """The metrics scraper's counts over the run (docs/engines.md): scrapes by outcome, ticks
    skipped (a scrape overran) or rested (journal rate limit), the largest page, journal write
    errors, the scraper's CPU, and the first error text of each failed outcome."""

    scrapes: int = 0
    ok: int = 0
    failed: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    skipped_ticks: int = 0
    throttled_ticks: int = 0
    body_bytes_max: int = 0
    journal_errors: int = 0
    cpu_ns_total: int = 0  # journal writes (and parsing, when not deferred)
    cpu_ns_max: int = 0
    process_cpu_ns: int = -1  # the whole scraper process (-1: not measured)
    examples: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScrapeCounts:
        return decode(cls, data, "scrapes")


@dataclass(slots=True)
class EngineStop:
    """How servescope stopped the engine it started: the signals sent, the engine's return
    code (None: it did not exit), how long it took, processes left alive after SIGKILL,
    whether a second interrupt cut the grace periods short, and the engine's processes that
    had left its process group (pid → title)."""

    signals: list[str] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0
    leftover_pids: list[int] = field(default_factory=list)
    escalated: bool = False
    outside_group: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineStop:
        return decode(cls, data, "stop")


@dataclass(slots=True)
class EngineError:
    """Why the engine ended the run: ``kind`` ``exited`` (``returncode``) or ``not_ready``,
    the message and the end of its log (redacted)."""

    kind: str
    message: str
    returncode: int | None = None
    log_tail: str = ""


@dataclass(slots=True)
class EngineInfo:
    """The engine a run measured (``run`` started it, ``attach`` found it running).

    ``name`` is the engine spec the analyzers look up; ``command`` the serving command
    (secrets masked; absent for attach); ``processes`` pid → title once it was ready;
    ``server_pid`` the pid given to ``attach --pid``; ``scrapes`` the metrics scraper's counts;
    ``stop`` how it was stopped; ``error`` why it ended the run.
    """

    name: str
    base_url: str = ""
    readiness_paths: list[str] = field(default_factory=list)
    metrics: list[ScrapedEndpoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    command: list[str] | None = None
    attached: bool = field(default=False, metadata=OMIT_DEFAULT)
    detected_from: str = field(default="", metadata=OMIT_DEFAULT)  # attach: how it was told
    version: str | None = None
    ready_s: float | None = None
    processes: dict[str, str] | None = None
    server_pid: int | None = None
    scrapes: ScrapeCounts | None = None
    stop: EngineStop | None = None
    error: EngineError | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineInfo:
        """An engine entry (``EngineSpec.manifest_entry``) as a section."""
        return decode(cls, data, "engine")


@dataclass(slots=True)
class ImportInfo:
    """Where an imported run came from (docs/importers.md): the tool and its version as the
    file records it, the importer and the version it was verified with, the source file, its
    size and sha256, when it was imported, how its clock was mapped, what was reconstructed
    (one sentence each), and the tool's own aggregates and other metadata, under its names."""

    tool: str
    importer: str
    version: str
    verified_with: str
    source_file: str
    source_sha256: str
    source_bytes: int
    imported_wall_ns: int
    clock_note: str = ""
    reconstructed: list[str] = field(default_factory=list)
    aggregates: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
