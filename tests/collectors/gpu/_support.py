"""Running the GPU collector against the fake NVML, in this process or in its child."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from collectors.base import CollectContext, CollectorStats, EngineFacts
from collectors.gpu.collector import GpuCollector
from servescope.clock import take_anchor
from tests.fakes.nvml import FakeNvml, FakeNvmlConfig


class KeepingProvider:
    """A provider that keeps the fakes it made (for call counts; in-process only)."""

    def __init__(self, config: FakeNvmlConfig) -> None:
        self.config = config
        self.made: list[FakeNvml] = []

    def __call__(self) -> FakeNvml:
        self.made.append(FakeNvml(self.config))
        return self.made[-1]

    @property
    def last(self) -> FakeNvml:
        return self.made[-1]


def context(run_dir: Path, *, pid: int | None = None, visible: str | None = None,
            interval_s: float = 0.1) -> CollectContext:
    facts = EngineFacts("openai", pid=pid, cuda_visible_devices=visible)
    return CollectContext(run_dir, "http://127.0.0.1:1", facts, take_anchor(),
                          options={"gpu": {"interval_s": interval_s}})


def run_in_process(config: FakeNvmlConfig, run_dir: Path, seconds: float,
                   **ctx_args: Any) -> tuple[CollectorStats, FakeNvml]:
    """Start the collector here (no child), let it sample ``seconds``, stop it."""
    provider = KeepingProvider(config)
    collector = GpuCollector(nvml=provider)
    collector.start(context(run_dir, **ctx_args))
    time.sleep(seconds)
    stats = collector.stop()
    return stats, provider.last


def me() -> int:
    return os.getpid()


def run_with_fake_h200(out: Path, *, requests: int, concurrency: int,
                       output_len: str) -> int:
    """``servescope run --collect gpu -- <fake engine>`` in this process, the fake H200 in its
    copy phase reaching the run through the collector registry the command takes (the real
    registry and CLI left alone); the command's exit code."""
    import sys

    from collectors.registry import CollectorEntry
    from profiler.cli_workload import WorkloadOptions
    from profiler.commands_run import run_command
    from profiler.engine_run import EngineOptions
    from servescope.registry import Registry
    from tests.collectors._server import free_port
    from tests.fakes.nvml import FakeNvmlProvider

    fake = FakeNvmlProvider(FakeNvmlConfig(phases=(("copy", 1e9),)))
    reg = Registry("collector", [("gpu", CollectorEntry(
        "gpu", "the fake H200", lambda: GpuCollector(nvml=fake)))])
    port = free_port()
    engine = [sys.executable, "-m", "tests.faults.fake_engine", "--port", str(port)]
    return run_command(engine, WorkloadOptions(requests=requests, concurrency=concurrency,
                                               input_len="fixed:8", output_len=output_len),
                       EngineOptions(engine="openai", url=f"http://127.0.0.1:{port}",
                                     collect="gpu", registry=reg, ready_timeout_s=60,
                                     stop_grace_s=(5.0, 3.0, 2.0)),
                       out, ["run", "--collect", "gpu"])
