"""``servescope bench hbm|p2p|collectives|net``: kernels_bench's microbenchmarks, each
written as a run directory (``compare``/``gate`` read it) and printed as a table.

Every user error is one line on stderr and exit code 2. torch is imported only when a
benchmark runs (the ``kernels`` extra); without it the command says how to install it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from servescope.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from kernels_bench.results import BenchRun

__all__ = ["bench_app", "parse_sizes"]

bench_app = typer.Typer(no_args_is_help=True, help="Bandwidth microbenchmarks (HBM, host "
                        "memory, GPU pairs, collectives, RDMA) against the hardware's peak.")

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
          "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")
_MAX_SIZES = 64


def _size(text: str) -> int:
    m = _SIZE.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"size {text!r}: expected a number with an optional unit (8, 64K, "
                         "16MiB, 1G; binary units)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"64K,1M"`` (a list) or ``"8:1G"`` / ``"8:1G:2"`` (nccl-tests' -b/-e/-f: from, to,
    factor, default 4)."""
    if ":" in text:
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"--sizes {text!r}: use FROM:TO[:FACTOR] or a comma list")
        lo, hi = _size(parts[0]), _size(parts[1])
        factor = int(parts[2]) if len(parts) == 3 and parts[2].strip().isdigit() else 4
        if len(parts) == 3 and not parts[2].strip().isdigit():
            raise ValueError(f"--sizes {text!r}: FACTOR must be a whole number")
        if lo < 1 or hi < lo or factor < 2:
            raise ValueError(f"--sizes {text!r}: need 1 <= FROM <= TO and FACTOR >= 2")
        out = [lo]
        while out[-1] * factor <= hi and len(out) < _MAX_SIZES:
            out.append(out[-1] * factor)
        return tuple(out)
    sizes = tuple(_size(p) for p in text.split(",") if p.strip())
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--sizes {text!r}: give at least one positive size")
    return sizes


def _err(msg: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(msg)}",
                                              highlight=False)


def _out_dir(out: Path | None, label: str) -> Path:
    from profiler.cli_workload import default_run_dir

    return out if out is not None else default_run_dir(f"bench-{label}")


def _finish(run: BenchRun, out: Path, settings: dict[str, object], title: str) -> int:
    from kernels_bench.results import write_bench_run
    from reports.bench_view import print_bench

    write_bench_run(out, run, command_line=sys.argv, settings=settings)
    from reports.console import stdout_console

    console = stdout_console()
    print_bench(console, run.samples, title=title, notes=run.warnings)
    console.print(f"run directory: {escape(str(out))}", highlight=False)
    return EXIT_OK


def _guard(body: Callable[[], int]) -> int:
    from servescope.rundir.layout import RunDirError

    try:
        return int(body())
    except ModuleNotFoundError as exc:
        if exc.name in ("torch", "triton"):
            _err(f"{exc.name} is not installed: pip install 'servescope[kernels]' (CPU: "
                 "pip install torch==2.13.0 first, for the CPU build)")
        else:
            _err(f"missing module {exc.name}")
    except (RunDirError, ValueError, OSError) as exc:
        _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except RuntimeError as exc:  # a backend's own failure (NCCL, CUDA): its first line
        _err(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return EXIT_USAGE


SizesOpt = Annotated[str | None, typer.Option(
    "--sizes", help="Sizes: a comma list (64K,1M) or FROM:TO[:FACTOR] like nccl-tests")]
OutOpt = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Run directory to write (default runs/<time>-bench-<kind>)")]
RepeatsOpt = Annotated[int, typer.Option(help="Timed repeats per size (median and spread)")]
WarmupOpt = Annotated[int, typer.Option(help="Untimed calls before timing")]


@bench_app.command("hbm")
def hbm(  # noqa: PLR0917 - typer options
    sizes: SizesOpt = None, repeats: RepeatsOpt = 50, warmup: WarmupOpt = 5, out: OutOpt = None,
    device: Annotated[str, typer.Option(
        help="cuda (HBM: Triton, torch, copy engine, paged-KV gather), cpu (host memory "
        "with torch), or auto (cuda when a GPU is there)")] = "auto",
    gpu: Annotated[int, typer.Option(help="GPU index")] = 0,
    threads: Annotated[int | None, typer.Option(help="cpu: torch threads")] = None,
) -> None:
    """Memory bandwidth: read, write, copy, triad over sizes past the cache, against the
    NVML-derived and the datasheet peak (host memory with --device cpu)."""

    def body() -> int:
        dev = device
        if dev == "auto":
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
        if dev == "cpu":
            from kernels_bench.host_mem import DEFAULT_HOST_SIZES, HostSettings, run_host_bench

            hs = HostSettings(sizes_bytes=parse_sizes(sizes) if sizes else DEFAULT_HOST_SIZES,
                              repeats=repeats, warmup=warmup, threads=threads)
            run = run_host_bench(hs)
            if device == "auto":
                run.warnings.append("no CUDA GPU: measured host memory (bench host_*)")
            return _finish(run, _out_dir(out, "host"), {"device": "cpu", **hs.to_json()},
                           "host memory bandwidth (torch on CPU)")
        if dev != "cuda":
            raise ValueError(f"--device {dev!r}: use cuda, cpu or auto")
        from kernels_bench.hbm import DEFAULT_HBM_SIZES, HbmSettings, run_hbm_bench

        st = HbmSettings(sizes_bytes=parse_sizes(sizes) if sizes else DEFAULT_HBM_SIZES,
                         repeats=repeats, warmup=warmup, device_index=gpu)
        return _finish(run_hbm_bench(st), _out_dir(out, "hbm"), st.to_json(),
                       f"HBM bandwidth (GPU {gpu})")

    raise typer.Exit(_guard(body))


@bench_app.command("p2p")
def p2p(
    size: Annotated[str, typer.Option(help="Bytes per copy")] = "256M",
    repeats: RepeatsOpt = 20, warmup: WarmupOpt = 3, out: OutOpt = None,
) -> None:
    """Peer-to-peer copies between every GPU pair: one direction and both, copy engine and
    an SM kernel, against the datasheet's NVLink peak; the topology beside them."""

    def body() -> int:
        from kernels_bench.p2p import P2PSettings, run_p2p_bench

        st = P2PSettings(size_bytes=_size(size), repeats=repeats, warmup=warmup)
        return _finish(run_p2p_bench(st), _out_dir(out, "p2p"), st.to_json(),
                       "GPU-to-GPU copies")

    raise typer.Exit(_guard(body))


@bench_app.command("collectives")
def collectives(  # noqa: PLR0917 - typer options
    backend: Annotated[str, typer.Option(help="gloo (CPU) or nccl (GPU)")] = "nccl",
    nproc: Annotated[int, typer.Option(help="Local processes to spawn (ignored under "
                                       "torchrun, which sets the ranks)")] = 2,
    sizes: SizesOpt = None,
    max_size: Annotated[str | None, typer.Option(help="Cap on the default sizes (8 B to "
                                                 "2 GiB; gloo default cap 4 MiB)")] = None,
    ops: Annotated[str | None, typer.Option(help="Comma list (all_reduce, all_gather, "
                   "reduce_scatter, all_to_all, broadcast, reduce, send_recv)")] = None,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16")] = "float32",
    hidden: Annotated[int, typer.Option(help="Model hidden size for the tensor-parallel "
                                        "decode all-reduces (hidden x batch x bytes)")] = 8192,
    force_net: Annotated[bool, typer.Option(
        "--force-net", help="NCCL: NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 (its network "
        "transport, as between nodes)")] = False,
    repeats: RepeatsOpt = 20, warmup: WarmupOpt = 2, out: OutOpt = None,
) -> None:
    """Collectives through torch.distributed: algbw and busbw as nccl-tests defines them,
    over sizes and at tensor-parallel decode sizes; NCCL's transport recorded."""

    def body() -> int:
        from kernels_bench.collectives import (
            DEFAULT_COLLECTIVE_SIZES,
            CollectiveSettings,
            run_spawned,
            run_torchrun,
        )
        from kernels_bench.formulas import Collective

        cap = _size(max_size) if max_size else (4 << 20 if backend == "gloo" else None)
        chosen = parse_sizes(sizes) if sizes else tuple(
            s for s in DEFAULT_COLLECTIVE_SIZES if cap is None or s <= cap)
        try:
            op_list = tuple(Collective(o.strip()) for o in ops.split(",")) if ops \
                else tuple(Collective)
        except ValueError as exc:
            raise ValueError(f"--ops: {exc}; valid: "
                             f"{', '.join(str(c) for c in Collective)}") from None
        st = CollectiveSettings(backend=backend, ops=op_list, sizes_bytes=chosen,
                                repeats=repeats, warmup=warmup, dtype=dtype, hidden=hidden,
                                force_net=force_net)
        title = f"collectives ({backend}{', forced network' if force_net else ''})"
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            run = run_torchrun(st)
            if run is None:
                return EXIT_OK  # not rank 0: rank 0 writes and prints
        else:
            run = run_spawned(st, nproc)
        return _finish(run, _out_dir(out, "collectives"), st.to_json(), title)

    raise typer.Exit(_guard(body))


@bench_app.command("net")
def net(
    server: Annotated[str | None, typer.Argument(
        help="The perftest server's host (omit to be the server)")] = None,
    tool: Annotated[str, typer.Option(help="ib_write_bw or ib_read_bw")] = "ib_write_bw",
    size: Annotated[str, typer.Option(help="Message size (perftest -s)")] = "64K",
    extra: Annotated[str, typer.Option(help="More perftest options, as one string "
                                       "(e.g. '-d mlx5_0 -q 4')")] = "",
    out: OutOpt = None,
) -> None:
    """RDMA bandwidth with perftest's ib_write_bw / ib_read_bw (when installed), parsed
    into the same records."""

    def body() -> int:
        from kernels_bench.perftest import run_perftest

        run = run_perftest(tool, server, _size(size), extra.split())
        if run is None:
            Console().print("server side done (the client records the run)")
            return EXIT_OK
        return _finish(run, _out_dir(out, "net"), {"tool": tool, "size_bytes": _size(size),
                                                   "server": server or ""}, f"{tool}")

    raise typer.Exit(_guard(body))
