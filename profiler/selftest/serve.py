"""Command line entry of the reference server.

``python -m profiler.selftest.serve --port 0 --ttft-ms 20 --itl-ms 5 --no-truth``

Every :class:`~profiler.selftest.schedule.RefSchedule` field is a flag (``--ttft-ms``,
``--itl-ms``, ``--tokens-per-event``, ``--output-tokens``, ``--first-event-tokens``,
``--events-per-write``, ``--fault``, ``--fault-after``, ``--eos-after``,
``--prompt-tokens``, ``--role-delay-ms``, ``--split-gap-ms``) setting the server default.
Server flags: ``--host`` (127.0.0.1), ``--port`` (0 picks a free port), ``--model``,
``--no-truth``, ``--truth-capacity``, ``--spin-us``, ``--no-uvloop``. Once listening it
prints ``REFSERVER_URL=http://HOST:PORT`` on one line of stdout (flushed) and serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from profiler.selftest.arrival import timed_arrivals
from profiler.selftest.refserver import DEFAULT_MODEL, URL_PREFIX, make_app
from profiler.selftest.schedule import FIELD_HELP, RefSchedule
from profiler.selftest.timing import DEFAULT_SPIN_NS
from profiler.selftest.truth import DEFAULT_TRUTH_CAPACITY

__all__ = ["build_parser", "main", "schedule_from_args"]

_SHUTDOWN_TIMEOUT_S = 1.0
_TYPES: dict[str, Callable[[str], Any]] = {
    "float": float,
    "float | None": float,
    "int": int,
    "int | None": int,
    "str | None": str,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; schedule flags are generated from RefSchedule's fields."""
    parser = argparse.ArgumentParser(
        prog="python -m profiler.selftest.serve",
        description="servescope reference server: OpenAI-compatible streams on an exact "
        "schedule, with ground truth at GET /_truth.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 = pick a free one")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name in /v1/models")
    parser.add_argument("--no-truth", action="store_true", help="do not record truth")
    parser.add_argument(
        "--truth-capacity", type=int, default=DEFAULT_TRUTH_CAPACITY, help="records kept"
    )
    parser.add_argument(
        "--spin-us",
        type=int,
        default=DEFAULT_SPIN_NS // 1000,
        help="busy-yield this long before each deadline for accuracy; 0 = never",
    )
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own loop")
    parser.add_argument("--reuse-port", action="store_true",
                        help="SO_REUSEPORT: several server processes share one port (the "
                        "kernel spreads connections), to outrun a multi-process client")
    group = parser.add_argument_group("schedule (server default; requests may override)")
    for f in dataclasses.fields(RefSchedule):
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=_TYPES[str(f.type)],
            default=None,
            help=FIELD_HELP[f.name] + ("" if f.default is None else f" (default {f.default})"),
        )
    return parser


def schedule_from_args(args: argparse.Namespace) -> RefSchedule:
    """The RefSchedule named by the parsed flags (unset flags keep their defaults)."""
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(RefSchedule)
        if getattr(args, f.name) is not None
    }
    return RefSchedule().merge(overrides)


async def _serve(args: argparse.Namespace, schedule: RefSchedule) -> None:
    app = make_app(
        schedule,
        model=args.model,
        record_truth=not args.no_truth,
        truth_capacity=args.truth_capacity,
        spin_ns=args.spin_us * 1000,
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    timed_arrivals(runner)
    site = web.TCPSite(runner, args.host, args.port, backlog=4096,
                       reuse_port=args.reuse_port or None)
    await site.start()
    port = runner.addresses[0][1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    sys.stdout.write(f"{URL_PREFIX}http://{host}:{port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGTERM/SIGINT, return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        schedule = schedule_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.spin_us < 0 or args.truth_capacity < 1:
        parser.error("--spin-us must be >= 0 and --truth-capacity >= 1")
    use_uvloop = not args.no_uvloop
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            use_uvloop = False
    if use_uvloop:
        uvloop.run(_serve(args, schedule))
    else:
        asyncio.run(_serve(args, schedule))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
