"""Workload options shared by ``attach`` and ``run``, turned into a :class:`LoadConfig`, and
:func:`option_groups`, which gives a command a group of options defined once.

An option group is a dataclass whose fields are the options, each annotated as typer reads
it (``Annotated[type, typer.Option(...)]``) with its default: :class:`WorkloadOptions` here,
``EngineFlags`` in :mod:`profiler.cli`. A command takes the group as one parameter
(``workload: WorkloadOptions``); :func:`option_groups` puts the group's fields in its place in
the signature typer reads, and hands the command one instance built from them. Both
``run`` and ``attach`` take the same groups, so their options are the same by construction.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from profiler.loadrun import LoadConfig

__all__ = ["WorkloadOptions", "default_run_dir", "option_groups"]

_W = "Workload"
F = TypeVar("F", bound=Callable[..., Any])


def _opt(help_text: str, *decls: str) -> Any:
    return typer.Option(*decls, help=help_text, rich_help_panel=_W)


@dataclass(slots=True)
class WorkloadOptions:
    """The CLI's workload flags, as typed (no parsing done yet)."""

    model: Annotated[str | None, _opt("Model name (default: first of /v1/models)")] = None
    endpoint: Annotated[str, _opt("completions | chat")] = "completions"
    dataset: Annotated[str, _opt("synthetic | jsonl | sharegpt | shared_prefix | multi_turn | "
                                 "trace")] = "synthetic"
    dataset_path: Annotated[str | None, _opt("Data file for jsonl/sharegpt/trace")] = None
    tokenizer: Annotated[str | None, _opt("tokenizer.json or a directory with one (real-token "
                                          "prompts and counts)")] = None
    input_len: Annotated[str, _opt("Prompt tokens: fixed:N | uniform:LO,HI | normal:MEAN,SD | "
                                   "lognormal:MEAN,SD")] = "fixed:128"
    output_len: Annotated[str | None, _opt("max_tokens, same forms as --input-len")] = None
    concurrency: Annotated[int | None, _opt("Closed loop: requests in flight; with --rate: a "
                                            "cap")] = None
    rate: Annotated[float | None, _opt("Open loop: requests per second")] = None
    arrival: Annotated[str, _opt("Open-loop arrivals: poisson | constant | gamma")] = "poisson"
    burstiness: Annotated[float, _opt("Gamma shape k (<1 bursty, 1 = Poisson)")] = 1.0
    requests: Annotated[int | None, _opt("Requests (sessions) per step (default 100 unless "
                                         "--duration)")] = None
    duration: Annotated[float | None, _opt("Seconds per step")] = None
    warmup_requests: Annotated[int, _opt("Warm-up requests, excluded from metrics")] = 0
    warmup_s: Annotated[float, _opt("Warm-up seconds, excluded from metrics")] = 0.0
    sweep: Annotated[str | None, _opt("Sweep rates (with --rate) or concurrencies: 1,2,4 | "
                                      "1:16:x2 | 2:10:+2")] = None
    seed: Annotated[int, _opt("Seed for prompts, lengths and arrivals")] = 0
    workers: Annotated[int, _opt("Client worker processes")] = 1
    groups: Annotated[int, _opt("shared_prefix: groups")] = 8
    prefix_len: Annotated[int, _opt("shared_prefix: prefix tokens")] = 512
    turns: Annotated[str, _opt("multi_turn: turns per conversation")] = "fixed:3"
    think_time: Annotated[float, _opt("multi_turn: seconds between turns")] = 0.0
    time_scale: Annotated[float, _opt("trace: replay speed-up")] = 1.0
    multi_turn: Annotated[bool, _opt("sharegpt: keep every human turn of a conversation",
                                     "--multi-turn")] = False
    per_chunk_usage: Annotated[bool, _opt("Ask for usage on every event (exact tokens per "
                                          "event)", "--per-chunk-usage/--no-per-chunk-usage")
                               ] = True
    ignore_eos: Annotated[bool, _opt("Send ignore_eos so outputs reach max_tokens",
                                     "--ignore-eos/--no-ignore-eos")] = True
    request_timeout: Annotated[float, _opt("Per-request limit, seconds")] = 600.0
    stall_timeout: Annotated[float, _opt("Give up on a stream silent this long, seconds")
                             ] = 120.0
    # run overrides this one (default None: the serving command's own key)
    api_key_env: Annotated[str | None, _opt("Environment variable holding the API key (never "
                                            "written anywhere)")] = "OPENAI_API_KEY"
    max_response_bytes: Annotated[int, _opt("Largest non-streamed answer read, bytes (a larger "
                                            "one ends invalid_response)")] = 64 << 20
    packet_timestamps: Annotated[bool, _opt(
        "Time each streamed event by its own packet (a packet socket: Linux, needs "
        "CAP_NET_RAW; exact even when the client falls behind)", "--packet-timestamps")
    ] = False

    def to_config(self, base_url: str, model: str, out: Path, argv: list[str],
                  api_key: str | None = None, *, done_marker: bool = True) -> LoadConfig:
        """``api_key``: the key to send (already resolved); else the one in the variable
        named by ``api_key_env``. ``done_marker``: whether the server ends its streams with
        ``[DONE]`` (the engine spec's ``stream_done_marker``)."""
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
            max_response_bytes=self.max_response_bytes, done_marker=done_marker,
            tokenizer=self.tokenizer, packet_timestamps=self.packet_timestamps,
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


def _group_params(group: type[Any]) -> list[inspect.Parameter]:
    hints = typing.get_type_hints(group, include_extras=True)
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints[f.name],
                              default=f.default)
            for f in dataclasses.fields(group)]


def _is_group(annotation: object) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def option_groups(fn: F) -> F:
    """Give ``fn`` the options of each option group it takes (a parameter annotated with a
    dataclass). In the signature typer reads, each such parameter becomes the group's fields,
    in place; a parameter of ``fn`` named like a field replaces that field (its own help and
    default, same place). ``fn`` is called with one instance of each group."""
    sig = inspect.signature(fn, eval_str=True)
    groups = {p.name: p.annotation for p in sig.parameters.values() if _is_group(p.annotation)}
    fields = {name: [f.name for f in dataclasses.fields(g)] for name, g in groups.items()}
    grouped = {f for names in fields.values() for f in names}
    own = {p.name: p for p in sig.parameters.values() if p.name not in groups}
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if p.name in groups:
            params.extend(own.get(q.name, q) for q in _group_params(groups[p.name]))
        elif p.name not in grouped:
            params.append(p)
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]

    @functools.wraps(fn)
    def command(**values: Any) -> Any:
        for name, group in groups.items():
            values[name] = group(**{k: values.pop(k) for k in fields[name]})
        return fn(**values)

    command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return typing.cast(F, command)
