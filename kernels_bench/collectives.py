"""Collectives through ``torch.distributed``: nccl-tests' sizes, algbw and busbw.

Each rank runs :func:`measure_rank` inside an initialized process group: for every
collective and size S (nccl-tests' size column, formulas.collective_size_bytes) it runs
``warmup`` untimed calls, then ``repeats`` timed calls, each between a barrier and the end of
the call (``torch.cuda.synchronize`` on NCCL); a repeat's time is the slowest rank's (one
``all_reduce(MAX)`` after the loop). nccl-tests instead averages a batch of iterations per
rank and then across ranks: our median-of-max is the more conservative figure.

Launch: under ``torchrun`` (``python -m torch.distributed.run --nproc-per-node K -m
profiler.cli bench collectives ...``: RANK/WORLD_SIZE in the environment) every rank runs
:func:`run_torchrun` and rank 0 writes the run; locally, :func:`run_spawned` starts K
processes with ``torch.multiprocessing.spawn`` and a file rendezvous (no port).
Sizes that do not split into whole elements per rank are skipped, as nccl-tests rounds them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kernels_bench.formulas import Collective, bus_factor, tp_decode_allreduce_bytes
from kernels_bench.nccl_log import parse_nccl_log
from kernels_bench.peaks import DevicePeaks, device_peaks
from kernels_bench.results import BenchRun, make_sample

__all__ = ["DEFAULT_COLLECTIVE_SIZES", "TP_DECODE_BATCHES", "CollectiveSettings",
           "measure_rank", "run_spawned", "run_torchrun"]

DEFAULT_COLLECTIVE_SIZES = tuple(8 << (2 * i) for i in range(15))  # 8 B .. 2 GiB, x4 steps
TP_DECODE_BATCHES = (1, 8, 32, 64, 128, 256)
_DTYPES = {"float32": 4, "bfloat16": 2, "float16": 2}
FORCE_NET_ENV = {"NCCL_P2P_DISABLE": "1", "NCCL_SHM_DISABLE": "1"}


@dataclass(frozen=True, slots=True)
class CollectiveSettings:
    backend: str = "gloo"
    ops: Sequence[Collective] = tuple(Collective)
    sizes_bytes: Sequence[int] = DEFAULT_COLLECTIVE_SIZES
    repeats: int = 20
    warmup: int = 2
    dtype: str = "float32"
    hidden: int = 8192  # tensor-parallel decode all-reduces: hidden x batch x bytes
    tp_batches: Sequence[int] = TP_DECODE_BATCHES
    force_net: bool = False  # NCCL: P2P and SHM off, so NCCL takes its network transport
    nccl_log_dir: str = ""  # where NCCL_DEBUG_FILE goes (NCCL only; set by the runner)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in ("gloo", "nccl"):
            raise ValueError(f"backend {self.backend!r}: use gloo or nccl")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype {self.dtype!r}: use one of {', '.join(_DTYPES)}")
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError("repeats must be at least 1 and warmup at least 0")

    @property
    def elem_bytes(self) -> int:
        return _DTYPES[self.dtype]

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "ops": [str(o) for o in self.ops],
                "sizes_bytes": list(self.sizes_bytes), "repeats": self.repeats,
                "warmup": self.warmup, "dtype": self.dtype, "hidden": self.hidden,
                "tp_batches": list(self.tp_batches), "force_net": self.force_net}


def _call(op: Collective, size: int, world: int, rank: int, s: CollectiveSettings,  # noqa: PLR0917
          device: Any) -> Callable[[], None] | None:
    """The call of ``op`` at nccl-tests size ``size`` (None: too small to split)."""
    import torch
    import torch.distributed as dist

    dt = getattr(torch, s.dtype)
    elems = size // s.elem_bytes
    split = op in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER, Collective.ALL_TO_ALL)
    if split:
        elems -= elems % world
    if elems < (world if split else 1):
        return None

    def buf(n: int) -> Any:
        return torch.ones(n, dtype=dt, device=device)

    if op is Collective.ALL_REDUCE:
        t = buf(elems)
        return lambda: dist.all_reduce(t)
    if op is Collective.BROADCAST:
        t = buf(elems)
        return lambda: dist.broadcast(t, src=0)
    if op is Collective.REDUCE:
        t = buf(elems)
        return lambda: dist.reduce(t, dst=0)
    if op is Collective.ALL_GATHER:
        inp, out = buf(elems // world), buf(elems)
        if s.backend == "nccl":
            return lambda: dist.all_gather_into_tensor(out, inp)
        parts = list(out.chunk(world))
        return lambda: dist.all_gather(parts, inp)
    if op is Collective.REDUCE_SCATTER:
        inp, out = buf(elems), buf(elems // world)
        return lambda: dist.reduce_scatter_tensor(out, inp)
    if op is Collective.ALL_TO_ALL:
        inp, out = buf(elems), buf(elems)
        return lambda: dist.all_to_all_single(out, inp)
    send, recv = buf(elems), buf(elems)  # send/recv: to the next rank, from the previous

    def sendrecv() -> None:
        if world == 1:
            recv.copy_(send)
            return
        reqs = [dist.isend(send, (rank + 1) % world), dist.irecv(recv, (rank - 1) % world)]
        for r in reqs:
            if r is not None:
                r.wait()
    return sendrecv


def _timed(fn: Callable[[], None], s: CollectiveSettings, device: Any) -> list[int]:
    import torch
    import torch.distributed as dist

    def sync() -> None:
        if s.backend == "nccl":
            torch.cuda.synchronize()

    for _ in range(s.warmup):
        fn()
    sync()
    out = []
    for _ in range(s.repeats):
        dist.barrier()
        t0 = time.perf_counter_ns()
        fn()
        sync()
        out.append(max(time.perf_counter_ns() - t0, 1))
    slowest = torch.tensor(out, dtype=torch.int64, device=device)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    return [int(v) for v in slowest.cpu().tolist()]


def _plan(s: CollectiveSettings) -> list[tuple[str, Collective, int]]:
    plan = [(str(op), op, size) for op in s.ops for size in s.sizes_bytes]
    plan += [("tp_decode_all_reduce", Collective.ALL_REDUCE,
              tp_decode_allreduce_bytes(s.hidden, b, s.elem_bytes)) for b in s.tp_batches]
    return plan


def measure_rank(s: CollectiveSettings) -> tuple[list[dict[str, Any]], list[str]]:
    """Run the plan on this rank of the initialized process group: one row per (bench,
    size) with the slowest rank's time per repeat (identical on every rank), and the
    warnings (an op the backend lacks)."""
    import torch
    import torch.distributed as dist

    world, rank = dist.get_world_size(), dist.get_rank()
    device: Any = torch.device("cpu")
    if s.backend == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    lacking: set[Collective] = set()
    for bench, op, size in _plan(s):
        if op in lacking:
            continue
        fn = _call(op, size, world, rank, s, device)
        if fn is None:
            continue
        try:
            times = _timed(fn, s, device)
        except (RuntimeError, ValueError) as exc:  # the backend lacks it: same on every rank
            lacking.add(op)
            warnings.append(f"{op} not measured on {s.backend}: {str(exc).splitlines()[0]}")
            continue
        real = (size // s.elem_bytes - ((size // s.elem_bytes) % world
                if op in (Collective.ALL_GATHER, Collective.REDUCE_SCATTER,
                          Collective.ALL_TO_ALL) else 0)) * s.elem_bytes
        rows.append({"bench": bench, "op": str(op), "size_bytes": real, "times_ns": times})
    return rows, warnings


def _to_run(rows: list[dict[str, Any]], warnings: list[str], s: CollectiveSettings,
            world: int, peaks: DevicePeaks | None) -> BenchRun:
    transport = "gloo/tcp" if s.backend == "gloo" else ""
    env: dict[str, Any] = {"world_size": world, "backend": s.backend}
    if s.backend == "nccl" and s.nccl_log_dir:
        lines: list[str] = []
        for p in sorted(Path(s.nccl_log_dir).glob("nccl.*.log")):
            lines += p.read_text(errors="replace").splitlines()
        parsed = parse_nccl_log(lines)
        transport = parsed.summary or "unknown (no NCCL channel lines)"
        env["nccl"] = parsed.to_json()
    if peaks is not None:
        env["peaks"] = {peaks.name: peaks.to_json()}
    run = BenchRun("collectives", environment=env, warnings=list(warnings))
    for r in rows:
        op = Collective(r["op"])
        impl = s.backend + ("-net" if s.force_net else "")
        run.add(make_sample(r["bench"], impl, size_bytes=r["size_bytes"],
                            moved_bytes=r["size_bytes"], times_ns=r["times_ns"], peaks=peaks,
                            dtype=s.dtype, bus_factor=bus_factor(op, world), ranks=world,
                            transport=transport, nvlink=True,
                            device=peaks.name if peaks else "cpu"), r["times_ns"])
    return run


def _nccl_env(s: CollectiveSettings) -> None:
    if s.backend != "nccl":
        return
    if s.nccl_log_dir:
        os.environ.setdefault("NCCL_DEBUG", "INFO")
        os.environ["NCCL_DEBUG_FILE"] = str(Path(s.nccl_log_dir) / "nccl.%h.%p.log")
    if s.force_net:
        os.environ.update(FORCE_NET_ENV)


def _worker(rank: int, world: int, s: CollectiveSettings, init_file: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    _nccl_env(s)
    if s.backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(s.backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        rows, warnings = measure_rank(s)
        if rank == 0:
            Path(out).write_text(json.dumps({"rows": rows, "warnings": warnings}))
    finally:
        dist.destroy_process_group()


def _peaks(s: CollectiveSettings) -> DevicePeaks | None:
    return device_peaks(0) if s.backend == "nccl" else None


def run_spawned(s: CollectiveSettings, nproc: int) -> BenchRun:
    """Run on ``nproc`` local processes (torch.multiprocessing.spawn); rank ``i`` uses GPU
    ``i`` on NCCL."""
    import torch
    import torch.multiprocessing as mp

    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, not {nproc}")
    if s.backend == "nccl":
        if not torch.cuda.is_available():
            raise ValueError("backend nccl needs a CUDA GPU; use --backend gloo on CPU")
        if nproc > torch.cuda.device_count():
            raise ValueError(f"NCCL needs one GPU per rank: {nproc} ranks, "
                             f"{torch.cuda.device_count()} GPUs")
    with tempfile.TemporaryDirectory(prefix="servescope-coll-") as tmp:
        if s.backend == "nccl" and not s.nccl_log_dir:
            s = replace(s, nccl_log_dir=tmp)
        out = str(Path(tmp) / "result.json")
        args = (nproc, s, str(Path(tmp) / "rendezvous"), out)
        mp.spawn(_worker, args=args, nprocs=nproc, join=True)  # type: ignore[attr-defined,no-untyped-call]
        data = json.loads(Path(out).read_text())
        return _to_run(data["rows"], data["warnings"], s, nproc, _peaks(s))


def run_torchrun(s: CollectiveSettings) -> BenchRun | None:
    """Run as one rank of a ``torchrun`` job (env:// rendezvous); rank 0 returns the run,
    the others None. LOCAL_RANK picks the GPU on NCCL."""
    import torch
    import torch.distributed as dist

    log_dir = s.nccl_log_dir or tempfile.mkdtemp(prefix="servescope-nccl-")
    s = replace(s, nccl_log_dir=log_dir)
    _nccl_env(s)
    if s.backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(s.backend)
    try:
        rows, warnings = measure_rank(s)
        world, rank = dist.get_world_size(), dist.get_rank()
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return _to_run(rows, warnings, s, world, _peaks(s)) if rank == 0 else None
