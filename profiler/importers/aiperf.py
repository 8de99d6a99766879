"""AIPerf ``profile_export.jsonl`` (``--export-level records``) → an :class:`ImportedRun`.

One JSON object per line, as AIPerf 0.13 writes it (``MetricRecordInfo``): ``metadata``
(``request_start_ns``, ``request_ack_ns``, ``request_end_ns``: wall-clock ns;
``benchmark_phase``, ``worker_id``, ``x_request_id``, ``was_cancelled``, …), ``metrics``
(each ``{"value", "unit"}`` in display units: ``time_to_first_token``,
``inter_chunk_latency`` (list), ``request_latency``, ``output_sequence_length``,
``usage_*_tokens``, …), ``error`` (``type``, ``message``, ``code``) and, with
``--export-http-trace``, ``trace_data``. The run's aggregates are read from the
``profile_export_aiperf.json`` beside it when it is there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profiler.importers import aiperf_summary
from profiler.importers.base import ImportedRun
from profiler.importers.conversations import ConversationIds
from profiler.importers.fields import Where, parse_json
from profiler.importers.outcomes import classify_error, error_text
from profiler.importers.timeconv import spread_chars
from servescope.clock import ClockAnchor
from servescope.records import EventKind, Outcome, RequestRecord

__all__ = ["AiperfImporter"]

_WHAT = "an AIPerf profile_export.jsonl record (one JSON object per line)"
_NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "sec": 1_000_000_000, "s": 1_000_000_000}


@dataclass(slots=True)
class _Tally:
    unrecognized: int = 0
    osl_as_usage: int = 0
    latency_mismatch: int = 0
    traced: int = 0
    workers: dict[str, int] = field(default_factory=dict)
    conversations: ConversationIds = field(default_factory=ConversationIds)


def _metric(metrics: dict[str, Any], name: str, w: Where) -> Any:
    entry = metrics.get(name)
    return None if entry is None else w.at("metrics").at(name).obj(entry).get("value")


def _duration_ns(metrics: dict[str, Any], name: str, w: Where) -> list[int] | None:
    """A time metric (scalar or list) in ns, whatever its display unit."""
    entry = metrics.get(name)
    if entry is None:
        return None
    wm = w.at("metrics").at(name)
    unit = wm.str_(wm.obj(entry), "unit")
    scale = _NS_PER_UNIT.get(unit)
    if scale is None:
        raise wm.at("unit").fail(f"a time unit ({', '.join(_NS_PER_UNIT)})", unit)
    value = entry.get("value")
    values = wm.at("value").floats(value if isinstance(value, list) else [value])
    return [round(v * scale) for v in values]


def _tokens(metrics: dict[str, Any], name: str, w: Where) -> int | None:
    value = _metric(metrics, name, w)
    return None if value is None else w.at("metrics").at(name).at("value").as_int(value)


def _events(t_start: int, metrics: dict[str, Any], w: Where, tally: _Tally) -> list[int]:
    ttft = _duration_ns(metrics, "time_to_first_token", w)
    latency = _duration_ns(metrics, "request_latency", w)
    if ttft is None:  # not streamed: the whole answer arrived at once
        return [t_start + latency[0]] if latency is not None else []
    times = [t_start + ttft[0]]
    for gap in _duration_ns(metrics, "inter_chunk_latency", w) or []:
        times.append(times[-1] + gap)
    if latency is not None and times[-1] != t_start + latency[0]:
        tally.latency_mismatch += 1
    return times


def _outcome(meta: dict[str, Any], error: object, w: Where,
             tally: _Tally) -> tuple[Outcome, int, str]:
    if meta.get("was_cancelled") is True and not error:
        return Outcome.CANCELLED, -1, "cancelled"
    if not error:
        return Outcome.SUCCESS, 200, ""
    err = w.at("error").obj(error)
    code = err.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    text = " ".join(str(err.get(k) or "") for k in ("type", "message", "cause"))
    outcome, recognized = classify_error(text, status)
    if meta.get("was_cancelled") is True:
        outcome, recognized = Outcome.CANCELLED, True
    tally.unrecognized += not recognized
    message = f"{err.get('type') or 'error'}: {err.get('message') or ''}"
    return outcome, -1 if status is None else status, error_text(message)


def _index(table: dict[str, int], key: str) -> int:
    return table.setdefault(key, len(table))


def _record(request_id: int, line: dict[str, Any], w: Where, endpoint: str,
            tally: _Tally) -> RequestRecord:
    meta = w.dict_(line, "metadata")
    wm = w.at("metadata")
    metrics = w.at("metrics").obj(line.get("metrics") or {})
    t_start = wm.int_(meta, "request_start_ns")
    t_end = wm.int_(meta, "request_end_ns")
    outcome, status, err = _outcome(meta, line.get("error"), w, tally)
    times = _events(t_start, metrics, w, tally)
    usage_out = _tokens(metrics, "usage_completion_tokens", w)
    osl = _tokens(metrics, "output_sequence_length", w)
    if usage_out is None and osl is not None:
        tally.osl_as_usage += 1
    t_send = t_start
    trace = line.get("trace_data")
    if isinstance(trace, dict) and isinstance(trace.get("request_send_end_ns"), int):
        t_send = max(t_start, trace["request_send_end_ns"])
        tally.traced += 1
    turn = wm.opt_int(meta, "turn_index") or 0
    conv = wm.opt_str(meta, "conversation_id")
    rec = RequestRecord(
        request_id=request_id,
        worker_id=_index(tally.workers, str(meta.get("worker_id", ""))),
        phase="warmup" if meta.get("benchmark_phase") == "warmup" else "measure",
        conversation_id=tally.conversations.of(conv), turn=turn,
        x_request_id=wm.opt_str(meta, "x_request_id") or "", endpoint=endpoint,
        prompt_tokens_planned=_or_unknown(_tokens(metrics, "input_sequence_length", w)),
        t_start_ns=t_start, t_send_ns=t_send,
        t_headers_ns=_or_unknown(wm.opt_int(meta, "request_ack_ns")),
        t_end_ns=max(t_end, times[-1]) if times else t_end,
        status=status, outcome=outcome.value, error=err,
        usage_prompt_tokens=_or_unknown(_tokens(metrics, "usage_prompt_tokens", w)),
        usage_completion_tokens=_or_unknown(usage_out if usage_out is not None else osl),
        output_chars=-1,
    )
    rec.ev_t_ns = times
    rec.ev_kind = [int(EventKind.OUTPUT)] * len(times)
    rec.ev_chars = spread_chars(0, len(times))
    rec.ev_tokens_cum = [-1] * len(times)
    return rec


def _or_unknown(value: int | None) -> int:
    return -1 if value is None else value


def _read_lines(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Where(path).fail("a readable UTF-8 AIPerf profile_export.jsonl", str(exc)) from None
    numbered = [(n, text) for n, text in enumerate(raw.splitlines(), start=1) if text.strip()]
    if not numbered:
        raise Where(path).fail(f"{_WHAT}, found an empty file")
    out: list[tuple[int, dict[str, Any]]] = []
    warnings: list[str] = []
    for k, (n, text) in enumerate(numbered):
        last = k == len(numbered) - 1
        try:
            value = parse_json(path, text, _WHAT, line=n)
        except ValueError:
            if last and len(numbered) > 1 and not raw.endswith("\n"):
                warnings.append(f"line {n} of {path.name} is cut short (the file ends "
                                "mid-record); that request was skipped")
                continue
            raise
        line = Where(path).on_line(n)
        out.append((n, line.obj(value)))
    return out, warnings


class AiperfImporter:
    """AIPerf ``profile_export.jsonl``."""

    name = "aiperf"
    tool = "AIPerf (profile_export.jsonl, --export-level records)"
    definitions = "aiperf"

    def sniff(self, path: Path, head: str) -> bool:
        first = head.lstrip()
        return path.suffix == ".jsonl" and first.startswith("{") and (
            '"request_start_ns"' in first or path.name.endswith("profile_export.jsonl"))

    def read(self, path: Path) -> ImportedRun:
        lines, warnings = _read_lines(path)
        summary = aiperf_summary.read_summary(path)
        tally = _Tally()
        records = []
        for n, line in lines:
            w = Where(path).on_line(n)
            if "metadata" not in line:
                raise w.at("metadata").fail(f"{_WHAT}: this key to be present")
            records.append(_record(n - 1, line, w, summary.endpoint, tally))
        ConversationIds.finish(records)
        starts = [r.t_start_ns for r in records]
        ends = [r.t_end_ns for r in records]
        first = min(starts)
        return ImportedRun(
            importer=self.name, tool="AIPerf", version=summary.version,
            verified_with="AIPerf 0.13.0", source_file=path, records=tuple(records),
            clock=ClockAnchor(mono_ns=first, wall_ns=first),
            clock_note="times are AIPerf's wall-clock ns (time.time_ns paired with "
                       "perf_counter_ns once per request): intervals within a request are "
                       "exact perf_counter differences; between requests they follow the "
                       "wall clock; the anchor is the identity",
            started_wall_ns=first, ended_wall_ns=max(ends), status=summary.status,
            target=summary.target, workload=summary.workload, seed=summary.seed,
            workers=max(1, len(tally.workers)), command_line=summary.command_line,
            reconstructed=_reconstructed(tally, len(records)),
            warnings=tuple(warnings) + summary.warnings + _warnings(tally),
            aggregates=summary.aggregates, details=summary.details,
        )


def _reconstructed(tally: _Tally, n: int) -> tuple[str, ...]:
    send = ("t_send_ns = trace_data.request_send_end_ns (--export-http-trace; AIPerf converts "
            "it to wall-clock with its own clock pairing, ~us apart from the record's)"
            if tally.traced == n else
            "t_send_ns = t_start_ns = request_start_ns: AIPerf records when it began the "
            "request, not when the body was written (run with --export-http-trace for that)")
    return (
        send,
        "events: one output event per content response (AIPerf's definition: a response with "
        "text), at request_start + time_to_first_token + cumulative inter_chunk_latency; "
        "role, usage-only and [DONE] messages are not in the file",
        "ev_chars = 1 per event and output_chars = -1: AIPerf does not export text or its "
        "length",
        "ev_tokens_cum = -1: per-response token counts are not exported (per-token ITL falls "
        "back to one token per response)",
        "t_headers_ns = request_ack_ns; t_end_ns = request_end_ns (arrival of the last SSE "
        "message, normally [DONE]; not told apart, so t_done_ns = -1)",
        "usage_*_tokens from the usage_*_tokens metrics (the server's); "
        "prompt_tokens_planned = input_sequence_length",
        "failed requests: outcome read from error.type/message/code; AIPerf exports no "
        "metrics for them, so they have no events",
    )


def _warnings(tally: _Tally) -> tuple[str, ...]:
    out = ["imported from AIPerf: chunk times are rebuilt from time_to_first_token + "
           "inter_chunk_latency; per-chunk token counts and text are unknown"]
    if tally.osl_as_usage:
        out.append(f"{tally.osl_as_usage} requests have no server usage: output tokens are "
                   "AIPerf's output_sequence_length (its client-side tokenizer count)")
    if tally.unrecognized:
        out.append(f"{tally.unrecognized} failed requests have an error we do not recognize; "
                   "recorded as invalid_response")
    if tally.latency_mismatch:
        out.append(f"{tally.latency_mismatch} requests' request_latency differs from "
                   "time_to_first_token + sum(inter_chunk_latency)")
    return tuple(out)
