"""Workload options shared by ``attach`` and ``run``, turned into a :class:`LoadConfig`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from profiler.loadrun import LoadConfig

__all__ = ["WorkloadOptions", "default_run_dir"]


@dataclass(slots=True)
class WorkloadOptions:
    """The CLI's workload flags, as typed (no parsing done yet)."""

    model: str | None = None
    endpoint: str = "completions"
    dataset: str = "synthetic"
    dataset_path: str | None = None
    tokenizer: str | None = None
    input_len: str = "fixed:128"
    output_len: str | None = None
    concurrency: int | None = None
    rate: float | None = None
    arrival: str = "poisson"
    burstiness: float = 1.0
    requests: int | None = None
    duration: float | None = None
    warmup_requests: int = 0
    warmup_s: float = 0.0
    sweep: str | None = None
    seed: int = 0
    workers: int = 1
    groups: int = 8
    prefix_len: int = 512
    turns: str = "fixed:3"
    think_time: float = 0.0
    time_scale: float = 1.0
    multi_turn: bool = False
    per_chunk_usage: bool = True
    ignore_eos: bool = True
    request_timeout: float = 600.0
    stall_timeout: float = 120.0
    max_response_bytes: int = 64 << 20
    api_key_env: str | None = "OPENAI_API_KEY"  # run: None = the serving command's key

    def to_config(self, base_url: str, model: str, out: Path, argv: list[str],
                  api_key: str | None = None) -> LoadConfig:
        """``api_key``: the key to send (already resolved); else the one in the variable
        named by ``api_key_env``."""
        from collectors.client.target import Target
        from profiler.loadrun import LoadConfig
        from profiler.workloads.arrivals import sweep_values
        from profiler.workloads.spec import ArrivalSpec, DatasetSpec, LengthDist

        if self.rate is not None and self.dataset == "trace":
            raise ValueError("--rate and --dataset trace exclude each other (the trace has times)")
        if self.dataset == "trace":
            arrival = ArrivalSpec("trace", concurrency=self.concurrency)
        elif self.rate is not None or (self.sweep and self.arrival != "closed"
                                       and self.concurrency is None):
            kind = self.arrival if self.arrival != "closed" else "poisson"
            arrival = ArrivalSpec(kind, rate_per_s=self.rate or 1.0,  # type: ignore[arg-type]
                                  burstiness=self.burstiness, concurrency=self.concurrency)
        else:
            arrival = ArrivalSpec("closed", concurrency=self.concurrency or 1)
        dataset = DatasetSpec(
            self.dataset,  # type: ignore[arg-type]
            path=self.dataset_path, tokenizer=self.tokenizer,
            input_len=LengthDist.parse(self.input_len),
            output_len=LengthDist.parse(self.output_len) if self.output_len else None,
            num_groups=self.groups, prefix_len=self.prefix_len,
            turns=LengthDist.parse(self.turns), think_time_s=self.think_time,
            multi_turn=self.multi_turn or self.dataset == "multi_turn",
            time_scale=self.time_scale,
        )
        target = Target(
            base_url=base_url, model=model, endpoint=self.endpoint,  # type: ignore[arg-type]
            api_key=api_key or os.environ.get(self.api_key_env or "OPENAI_API_KEY") or None,
            per_chunk_usage=self.per_chunk_usage, ignore_eos=self.ignore_eos,
            request_timeout_s=self.request_timeout, stall_timeout_s=self.stall_timeout,
            max_response_bytes=self.max_response_bytes,
        )
        requests = self.requests
        if requests is None and self.duration is None:
            if self.dataset == "trace" and self.dataset_path:
                from profiler.workloads.traces import read_trace

                requests = len(read_trace(self.dataset_path)[1])  # the whole trace
            else:
                requests = 100
        return LoadConfig(
            target=target, dataset=dataset, arrival=arrival, out_dir=out,
            num_requests=requests, duration_s=self.duration,
            warmup_requests=self.warmup_requests, warmup_s=self.warmup_s, seed=self.seed,
            sweep=tuple(sweep_values(self.sweep)) if self.sweep else (),
            workers=self.workers, command_line=tuple(argv),
        )


def default_run_dir(label: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}"
