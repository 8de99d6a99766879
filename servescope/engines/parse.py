"""Parsing metrics bodies into samples: Prometheus text (with prometheus_client's parser)
and TensorRT-LLM's JSON iteration statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from servescope.engines.base import MetricsFormat
from servescope.engines.trtllm import ITER_PREFIX
from servescope.records.engine import MetricSample

__all__ = ["MetricSample", "parse_body", "parse_prometheus", "parse_trtllm_json"]

_SORT = orjson.OPT_SORT_KEYS


def _metric_name(line: str) -> str:
    if line.startswith("#"):
        parts = line.split(" ", 3)
        return parts[2] if len(parts) > 2 and parts[1] in ("HELP", "TYPE") else ""
    return line.split("{", 1)[0].split(" ", 1)[0]


def _without_created(text: str) -> str:
    """Drop ``*_created`` lines (counter/histogram creation times, one gauge family each in
    the text format) before parsing: a fifth of vLLM's page, of no use to servescope."""
    return "\n".join(ln for ln in text.split("\n") if not _metric_name(ln).endswith("_created"))


def _labels_json(labels: Mapping[str, str]) -> str:
    return orjson.dumps(labels, option=_SORT).decode() if labels else "{}"


def parse_prometheus(text: str, keep_created: bool = False) -> list[MetricSample]:
    """Samples of a Prometheus text exposition, parsed by prometheus_client. Raises
    ValueError on a body that is not Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    if not keep_created:
        text = _without_created(text)
    out: list[MetricSample] = []
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out.append(MetricSample(fam.name, fam.type, s.name, _labels_json(s.labels),
                                        float(s.value)))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ValueError(f"not Prometheus text: {exc}") from exc
    return out


def _flatten(prefix: str, obj: Any, out: list[tuple[str, float]]) -> None:
    if isinstance(obj, bool | int | float):
        out.append((prefix, float(obj)))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _flatten(f"{prefix}.{i}", v, out)
    # strings and nulls carry no number


def parse_trtllm_json(body: bytes) -> tuple[list[MetricSample], int]:
    """TensorRT-LLM ``/metrics``: a JSON list of iteration-stat dicts. Each numeric field
    becomes a sample ``trtllm_iter:<dotted.path>`` whose labels are the entry's own ``iter``
    and ``timestamp``. Returns (samples, entries). Raises ValueError on anything else."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of iteration stats, got {type(data).__name__}")
    out: list[MetricSample] = []
    for item in data:
        entry = item
        if isinstance(item, str | bytes):  # some versions queue stats as JSON strings
            try:
                entry = orjson.loads(item)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"iteration stat is not JSON: {exc}") from exc
        if not isinstance(entry, dict):
            raise ValueError(f"iteration stat is a {type(entry).__name__}, not an object")
        labels: dict[str, str] = {}
        if entry.get("iter") is not None:
            labels["iter"] = str(entry["iter"])
        if isinstance(entry.get("timestamp"), str):
            labels["timestamp"] = entry["timestamp"]
        lab = _labels_json(labels)
        fields: list[tuple[str, float]] = []
        _flatten("", entry, fields)
        out.extend(MetricSample(ITER_PREFIX + k, "trtllm_iter", ITER_PREFIX + k, lab, v)
                   for k, v in fields)
    return out, len(data)


def parse_body(fmt: MetricsFormat, body: bytes,
               keep_created: bool = False) -> tuple[list[MetricSample], int]:
    """(samples, entries) of a metrics body in ``fmt``; ValueError when it does not parse."""
    if fmt == "trtllm_json":
        return parse_trtllm_json(body)
    if fmt == "prometheus":
        return parse_prometheus(body.decode("utf-8", errors="replace"), keep_created), 0
    raise ValueError(f"no parser for metrics format {fmt!r}")
