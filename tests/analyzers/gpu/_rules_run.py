"""A client run (4 closed-loop streams) with GPU rows on the same clock, whose GPU values
the test sets: the rules' ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analyzers.bottlenecks import RuleContext, build_context
from analyzers.context import RunContext
from servescope.records import RequestRecord
from servescope.records.gpu import GpmSample, GpuSample
from servescope.records.stacks import HotFrame, StackProcess, StackThread
from servescope.rundir.reader import load_run
from tests.analyzers._gate_runs import edit_manifest
from tests.analyzers._rundir import MS, finish, ns, out, request, usage, write_run
from tests.analyzers.gpu._gpurun import H200_MEM, gpm_rows, h200, sample, write_gpu, write_stacks

STREAMS, ROUNDS = 4, 15
RUN_MS = ROUNDS * 1000 + 500


@dataclass
class Gpu:
    sm_util: float = 70.0  # GPM percent
    occupancy: float = 40.0
    dram: float = 40.0
    tensor: float = 40.0
    tensor_prefill: float | None = None  # in GPM windows at k·1000 and k·1000 + 100 ms
    nvml: float = 0.75
    reasons: list[int] = field(default_factory=lambda: [0])  # cycled over the samples
    clocks: list[int] = field(default_factory=lambda: [1980])
    mem_frac: float = 0.5


def client(lag_ms: float = 0.0, prompt_tokens: int = 1000) -> list[RequestRecord]:
    """Stream c sends at k·1000 + 10c ms, gets its first token 100 ms later and one every
    50 ms until 950 ms. ``lag_ms``: sent that late after the intended time (open loop)."""
    recs = []
    rid = 0
    for k in range(ROUNDS):
        for c in range(STREAMS):
            t = k * 1000 + 10 * c
            evs = [out(t + 100 + 50 * i, cum=i + 1) for i in range(18)]
            evs += [usage(t + 951, 18), finish(t + 951, 18)]
            recs.append(request(rid, t, evs, done_ms=t + 952, completion_tokens=18,
                                prompt_tokens=prompt_tokens,
                                intended_ms=t - lag_ms if lag_ms else None))
            rid += 1
    return recs


def gpu_rows(g: Gpu) -> tuple[list[GpuSample], list[GpmSample]]:
    samples = []
    for i in range(RUN_MS // 100 + 1):
        samples.append(sample(ns(i * 100), util_gpu_frac=g.nvml, energy_mj=i * 30_000,
                              clock_event_reasons=g.reasons[i % len(g.reasons)],
                              sm_clock_mhz=g.clocks[i % len(g.clocks)],
                              mem_used_bytes=round(g.mem_frac * H200_MEM)))
    gpm: list[GpmSample] = []
    for i in range(RUN_MS // 100):
        prefill = (i % 10) in (0, 1) and g.tensor_prefill is not None
        gpm += gpm_rows(ns(i * 100), ns(i * 100 + 100), sm_util=g.sm_util,
                        sm_occupancy=g.occupancy, dram_bw_util=g.dram,
                        any_tensor_util=g.tensor_prefill if prefill and g.tensor_prefill
                        is not None else g.tensor)
    return samples, gpm


def hot_stacks(run_dir: Path, active: float) -> None:
    write_stacks(
        run_dir, [StackProcess(7, "engine_core", "transformers serve m", "", 1000, 0, 1, "")],
        [StackThread(7, "engine_core", 70, "MainThread", 50, 0.05),
         StackThread(7, "engine_core", 71, "Thread-2 (_run_generation_loop)", 970, active)],
        [HotFrame(7, "engine_core", 71, "Thread-2 (_run_generation_loop)", "_generation_step",
                  "continuous_batching.py", 812, 300, 900, 0.30, 0.90),
         HotFrame(7, "engine_core", 71, "Thread-2 (_run_generation_loop)", "forward",
                  "modeling_llama.py", 400, 200, 700, 0.20, 0.70)])


def rules_of(tmp: Path, g: Gpu | None, *, lag_ms: float = 0.0, stacks: float | None = None,
             name: str = "run", command: list[str] | None = None) -> RuleContext:
    """The rules' view of the run; ``command``: the engine's (its name from the command's
    first word), for the actions in its own flags."""
    run = write_run(tmp, client(lag_ms), name=name)
    if command is not None:
        edit_manifest(run.path, {"engine": {"name": command[0], "command": command}})
        run = load_run(run.path)
    if g is not None:
        samples, gpm = gpu_rows(g)
        write_gpu(run.path, [h200()], samples, gpm)
    if stacks is not None:
        hot_stacks(run.path, stacks)
    return build_context(RunContext(run))


__all__ = ["MS", "Gpu", "rules_of"]
