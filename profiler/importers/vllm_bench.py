"""``vllm bench serve --save-result --save-detailed`` JSON → an :class:`ImportedRun`.

Schema read as vLLM 0.32 writes it (``vllm/benchmarks/serve.py``): parallel per-request
lists ``ttfts``, ``itls`` (seconds between consecutive chunks), ``latencies``,
``start_times`` (``time.perf_counter()`` before the POST: CLOCK_MONOTONIC on Linux),
``queue_times`` (wait for the concurrency semaphore), ``input_lens``, ``output_lens``,
``generated_texts``, ``errors``; aggregates (``mean_ttft_ms`` …) at the top level. Older
versions without ``latencies`` / ``start_times`` / ``queue_times`` / ``generated_texts``
are read too, and what is missing is said. docs/importers.md lists every field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from profiler.importers.base import ImportedRun
from profiler.importers.fields import Where, load_json
from profiler.importers.outcomes import classify_error, error_text, status_from_reason
from profiler.importers.timeconv import s_to_ns, spread_chars, timestamp_s_to_ns
from servescope.clock import ClockAnchor
from servescope.records import EventKind, Outcome, RequestRecord

__all__ = ["VllmBenchImporter"]

_WHAT = "a `vllm bench serve --save-result --save-detailed` result (a JSON object)"
_METADATA = ("date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id",
             "num_prompts", "request_rate", "burstiness", "max_concurrency",
             "ramp_up_strategy", "ramp_up_start_rps", "ramp_up_end_rps")
_OPTIONAL = ("latencies", "start_times", "queue_times", "generated_texts")
_LATENCY_SLACK_NS = 1_000  # ttft + sum(itl) vs latency: float rounding is far below this


@dataclass(frozen=True, slots=True)
class _Columns:
    ttfts: list[float]
    itls: list[list[float]]
    input_lens: list[int]
    output_lens: list[int]
    errors: list[str]
    latencies: list[float] | None
    start_times: list[float] | None
    queue_times: list[float] | None
    texts: list[str] | None


def _columns(data: dict[str, Any], w: Where) -> _Columns:
    if "ttfts" not in data:
        raise w.at("ttfts").fail(
            "per-request details (ttfts, itls, errors, …): run vllm bench serve with "
            "--save-result --save-detailed")
    n = len(w.list_(data, "ttfts"))
    lists: dict[str, list[Any]] = {}
    for key in ("ttfts", "itls", "input_lens", "output_lens", "errors", *_OPTIONAL):
        if key not in data and key in _OPTIONAL:
            continue
        value = w.list_(data, key)
        if len(value) != n:
            raise w.at(key).fail(f"{n} entries, one per request like 'ttfts'", len(value))
        lists[key] = value

    def opt_floats(key: str) -> list[float] | None:
        return w.at(key).floats(lists[key]) if key in lists else None

    def strings(key: str) -> list[str]:
        out = lists[key]
        for i, v in enumerate(out):
            if not isinstance(v, str):
                raise w.at(key).at(i).fail("a string", v)
        return out

    return _Columns(
        ttfts=w.at("ttfts").floats(lists["ttfts"]),
        itls=[w.at("itls").at(i).floats(v) for i, v in enumerate(lists["itls"])],
        input_lens=[w.at("input_lens").at(i).as_int(v) for i, v in enumerate(lists["input_lens"])],
        output_lens=[w.at("output_lens").at(i).as_int(v)
                     for i, v in enumerate(lists["output_lens"])],
        errors=strings("errors"),
        latencies=opt_floats("latencies"),
        start_times=opt_floats("start_times"),
        queue_times=opt_floats("queue_times"),
        texts=strings("generated_texts") if "generated_texts" in lists else None,
    )


def _rate(data: dict[str, Any]) -> float:
    rate = data.get("request_rate", "inf")
    return float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else math.inf


@dataclass(slots=True)
class _Tally:
    unrecognized: int = 0
    latency_mismatch: int = 0


def _record(i: int, c: _Columns, endpoint: str, open_loop: bool, tally: _Tally) -> RequestRecord:
    err = c.errors[i]
    ok = err == ""
    t_start = timestamp_s_to_ns(c.start_times[i]) if c.start_times is not None else 0
    times: list[int] = []
    if ok or c.ttfts[i] > 0 or c.itls[i]:  # vLLM stamps ttft at the first chunk it reads
        t = t_start + s_to_ns(c.ttfts[i])
        times.append(t)
        for gap in c.itls[i]:
            t += s_to_ns(gap)
            times.append(t)
    t_end = times[-1] if times else t_start
    if ok and c.latencies is not None:
        by_latency = t_start + s_to_ns(c.latencies[i])
        tally.latency_mismatch += abs(by_latency - t_end) > _LATENCY_SLACK_NS
        t_end = max(t_end, by_latency)
    status = 200 if ok else status_from_reason(err)
    outcome = Outcome.SUCCESS
    if not ok:
        outcome, recognized = classify_error(err, status)
        tally.unrecognized += not recognized
    chars = len(c.texts[i]) if c.texts is not None else -1
    rec = RequestRecord(
        request_id=i, endpoint=endpoint,
        t_intended_ns=(t_start - s_to_ns(c.queue_times[i])
                       if open_loop and c.queue_times is not None else -1),
        t_start_ns=t_start, t_send_ns=t_start, t_end_ns=t_end,
        status=-1 if status is None else status, outcome=outcome.value, error=error_text(err),
        usage_prompt_tokens=c.input_lens[i] if c.input_lens[i] >= 0 else -1,
        usage_completion_tokens=c.output_lens[i] if ok else -1, output_chars=chars,
    )
    rec.ev_t_ns = times
    rec.ev_kind = [int(EventKind.OUTPUT)] * len(times)
    rec.ev_chars = spread_chars(chars, len(times))
    rec.ev_tokens_cum = [-1] * len(times)
    return rec


def _anchor(date: object, end_ns: int) -> tuple[ClockAnchor, int, str]:
    """(anchor, wall ns of ``end_ns``, note) from the file's ``date`` (local time, 1 s)."""
    try:
        wall = datetime.strptime(str(date), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return (ClockAnchor(mono_ns=end_ns, wall_ns=-1), -1,
                "times are vLLM's time.perf_counter() (CLOCK_MONOTONIC of the host that ran "
                "it); no usable 'date', so the wall clock is unknown")
    wall_ns = int(wall.timestamp()) * 1_000_000_000
    return (ClockAnchor(mono_ns=end_ns, wall_ns=wall_ns), wall_ns,
            "times are vLLM's time.perf_counter() (CLOCK_MONOTONIC of the host that ran it); "
            "the wall-clock anchor is approximate: the file's 'date' (local time of that host, "
            "1 s resolution, time zone unknown, read as UTC) is taken as the end of the last "
            "request")


class VllmBenchImporter:
    """``vllm bench serve`` detailed result JSON."""

    name = "vllm-bench"
    tool = "vllm bench serve (--save-result --save-detailed JSON)"
    definitions = "vllm"

    def sniff(self, path: Path, head: str) -> bool:
        text = head.lstrip()
        return path.suffix == ".json" and text.startswith("{") and (
            '"ttfts"' in text or ('"endpoint_type"' in text and '"num_prompts"' in text))

    def read(self, path: Path) -> ImportedRun:
        w = Where(path)
        data = w.obj(load_json(path, _WHAT))
        c = _columns(data, w)
        backend = str(data.get("backend", data.get("endpoint_type", "")))
        endpoint = "chat" if "chat" in backend else "completions"
        rate = _rate(data)
        tally = _Tally()
        records = tuple(_record(i, c, endpoint, math.isfinite(rate), tally)
                        for i in range(len(c.ttfts)))
        end_ns = max((r.t_end_ns for r in records), default=0)
        start_ns = min((r.t_start_ns for r in records), default=0)
        clock, end_wall, note = _anchor(data.get("date"), end_ns)
        return ImportedRun(
            importer=self.name, tool="vllm bench serve", version="unknown",
            verified_with="vLLM 0.32.0", source_file=path, records=records, clock=clock,
            clock_note=note, started_wall_ns=clock.to_wall_ns(start_ns) if end_wall >= 0 else -1,
            ended_wall_ns=end_wall,
            target={"model": str(data.get("model_id", "")), "endpoint": endpoint,
                    "stream": True, "per_chunk_usage": False, "backend": backend},
            workload={k: data[k] for k in _METADATA if k in data and k != "date"},
            reconstructed=_reconstructed(c, rate),
            warnings=_warnings(data, c, records, tally),
            aggregates={k: v for k, v in data.items() if k not in _METADATA
                        and isinstance(v, int | float) and not isinstance(v, bool)},
            details={k: v for k, v in data.items() if k in _METADATA or isinstance(v, str)},
        )


def _reconstructed(c: _Columns, rate: float) -> tuple[str, ...]:
    out = [
        "t_send_ns = t_start_ns = start_times (perf_counter before the POST): vLLM does not "
        "record when the body was written, so our ttft_ns/e2e_ns include the client's "
        "request preparation, as vLLM's own do",
        "events: one output event per chunk vLLM counted (every chunk with 'choices', empty "
        "text and the finish chunk included), at start + ttft + cumulative itls; chunks "
        "vLLM did not count (usage-only chunk, [DONE]) are not in the file",
        "ev_chars: the request's generated text length spread evenly over its chunks (at "
        "least 1 each); per-chunk text is not kept",
        "ev_tokens_cum = -1: per-chunk token counts are not kept (per-token ITL falls back to "
        "one token per chunk)",
        "usage_completion_tokens = output_lens (the server's usage.completion_tokens, or "
        "vLLM's re-tokenized text when the server sent no usage: the file does not say which);"
        " usage_prompt_tokens = input_lens (the server's usage.prompt_tokens, else the "
        "dataset's planned length)",
        "t_headers_ns, t_done_ns, finish_reason: not recorded by vLLM (-1 / empty)",
        "failed requests: outcome read from the error text (a traceback keeps its last "
        "line); their partial chunks are kept as events",
    ]
    if math.isfinite(rate) and c.queue_times is not None:
        out.append("t_intended_ns = start_times - queue_times: when vLLM's arrival process "
                   "released the request (open loop)")
    if c.start_times is None:
        out.append("start_times missing (older vLLM): every request is placed at t = 0")
    if c.latencies is None:
        out.append("latencies missing (older vLLM): end = start + ttft + sum(itls)")
    return tuple(out)


def _warnings(data: dict[str, Any], c: _Columns, records: tuple[RequestRecord, ...],
              tally: _Tally) -> tuple[str, ...]:
    out = ["imported from vllm bench serve: send times are vLLM's start_times (before the "
           "POST), chunk times are rebuilt from ttfts + itls, and per-chunk token counts "
           "are unknown"]
    if c.start_times is None:
        out.append("the file has no start_times: every request starts at t = 0, so the "
                   "window, throughputs and concurrency are not meaningful (latencies are)")
    ok = sum(r.outcome == Outcome.SUCCESS.value for r in records)
    completed = data.get("completed")
    if isinstance(completed, int) and completed != ok:
        out.append(f"the file says completed={completed}, but {ok} requests have no error "
                   "text; outcomes follow the error texts")
    if tally.unrecognized:
        out.append(f"{tally.unrecognized} failed requests have an error text we do not "
                   "recognize; recorded as invalid_response")
    if tally.latency_mismatch:
        out.append(f"{tally.latency_mismatch} requests' latency differs from ttft + sum(itls) "
                   "by more than 1 us; their end is the later of the two")
    return tuple(out)
