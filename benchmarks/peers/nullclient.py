"""A near-zero-cost streaming client: the floor every real client is compared with.

It keeps ``concurrency`` keep-alive HTTP/1.1 connections, each sending one streaming
``/v1/completions`` request after another, and only counts ``data: `` occurrences in the
raw bytes: no SSE parsing, no JSON, no timestamps per event. Its events/s with the server
at ~100 % of a core is the reference server's own ceiling on this machine; its CPU per
event is a lower bound for any client.

``python -m benchmarks.peers.nullclient --url URL --model M --concurrency C --requests N
--output-tokens T`` prints one JSON line: completed, failed, events, t_start_ns, t_end_ns
(CLOCK_MONOTONIC).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from benchmarks.peers.common import CellResult, CellSpec, ToolReport, error_result, make_result
from benchmarks.peers.common import run_measured as _run_measured

__all__ = ["main", "run"]

TOOL = "null-client"
_END = b"data: [DONE]\n\n\r\n0\r\n\r\n"  # last SSE event, end of chunk, terminal chunk


def _request_bytes(host: str, model: str, output_tokens: int) -> bytes:
    body = json.dumps(
        {
            "model": model,
            "prompt": "one two three four five six seven eight nine ten eleven twelve",
            "max_tokens": output_tokens,
            "stream": True,
            "ignore_eos": True,
        }
    ).encode()
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    return head + body


async def _stream(url: str, request: bytes, queue: list[int], counts: list[int]) -> None:
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while queue:
            queue.pop()
            writer.write(request)
            chunks: list[bytes] = []
            tail = b""
            while not tail.endswith(_END):
                data = await reader.read(262_144)
                if not data:
                    raise ConnectionError("server closed the connection")
                chunks.append(data)
                tail = (tail + data)[-len(_END) :]
            body = b"".join(chunks)
            counts[0] += 1 if body.startswith(b"HTTP/1.1 200") else 0
            counts[1] += body.count(b"data: ") - 1  # minus [DONE]
    finally:
        writer.close()


async def _main(args: argparse.Namespace) -> dict[str, int]:
    parts = urllib.parse.urlsplit(args.url)
    request = _request_bytes(parts.netloc, args.model, args.output_tokens)
    queue = list(range(args.requests))
    counts = [0, 0]
    t0 = time.monotonic_ns()
    results = await asyncio.gather(
        *(_stream(args.url, request, queue, counts) for _ in range(args.concurrency)),
        return_exceptions=True,
    )
    t1 = time.monotonic_ns()
    errors = [r for r in results if isinstance(r, BaseException)]
    return {
        "completed": counts[0],
        "failed": args.requests - counts[0],
        "events": counts[1],
        "connection_errors": len(errors),
        "t_start_ns": t0,
        "t_end_ns": t1,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers.nullclient")
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="ref")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--output-tokens", type=int, default=256)
    args = parser.parse_args(argv)
    try:
        import uvloop

        result = uvloop.run(_main(args))
    except ImportError:
        result = asyncio.run(_main(args))
    print(json.dumps(result), flush=True)
    return 0


def run(spec: CellSpec) -> CellResult:
    """Run the null client as a cell (for the server's own ceiling)."""
    root = Path(__file__).resolve().parents[2]
    argv = [
        sys.executable, "-m", "benchmarks.peers.nullclient", "--url", spec.url,
        "--model", spec.model, "--concurrency", str(spec.concurrency),
        "--requests", str(spec.requests), "--output-tokens", str(spec.output_tokens),
    ]  # fmt: skip
    proc = _run_measured(argv, spec, cwd=root)
    try:
        out = json.loads(proc.lines[-1][1])
        report = ToolReport(
            completed=int(out["completed"]),
            failed=int(out["failed"]),
            duration_s=(out["t_end_ns"] - out["t_start_ns"]) / 1e9,
            window_mono_ns=(int(out["t_start_ns"]), int(out["t_end_ns"])),
            tool_content_events=int(out["events"]),
        )
    except (IndexError, ValueError, KeyError) as exc:
        return error_result(TOOL, spec, f"{type(exc).__name__}: {exc}\n{proc.tail()}", proc)
    return make_result(TOOL, spec, proc, report)


if __name__ == "__main__":
    raise SystemExit(main())
