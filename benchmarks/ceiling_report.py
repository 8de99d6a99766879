"""Rendering the client-ceiling results: the JSON document and its Markdown table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.peers.common import CellResult
from servescope.jsonio import write_json

__all__ = ["markdown_table", "result_document", "write_outputs"]

_HEADER = (
    "| tool | streams | in flight | requests/s | events/s "
    "| CPU µs/event (window) | CPU µs/event (whole run) | client cores | server CPU "
    "| other CPU | duration s | outer wall s | completed | errors |"
)


def _row(c: CellResult) -> str:
    errors = str(c.failed)
    if c.error:
        errors += f" ({c.error.splitlines()[0][:80]})"
    server = f"{c.server_cpu_util:.0%}" + (" ⚠" if c.server_bound else "")
    in_flight = "–" if c.mean_in_flight is None else f"{c.mean_in_flight:.0f}"
    return (
        f"| {c.tool} | {c.concurrency} | {in_flight} "
        f"| {c.requests_per_s:,.0f} | {c.events_per_s:,.0f} "
        f"| {c.cpu_us_per_event:.1f} | {c.cpu_total_us_per_event:.1f} "
        f"| {c.client_cores_used:.2f} | {server} | {c.other_cpu_util:.2f} "
        f"| {c.duration_s:.2f} | {c.outer_wall_s:.1f} "
        f"| {c.completed}/{c.requests_planned} | {errors} |"
    )


def markdown_table(cells: Sequence[CellResult]) -> str:
    """One row per cell, in run order."""
    sep = "|" + "---|" * _HEADER.count(" | ") + "---|"
    return "\n".join([_HEADER, sep, *(_row(c) for c in cells)])


def _notes(cells: Sequence[CellResult]) -> str:
    lines = [
        f"- {c.tool} @ {c.concurrency}: {note}"
        for c in cells
        for note in (*c.notes, *([c.error] if c.error else []))
    ]
    return "\n".join(lines)


def result_document(cells: Sequence[CellResult], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document: run metadata plus every cell's fields."""
    return {**meta, "cells": list(cells)}  # servescope.jsonio writes the dataclasses


def write_outputs(
    out: Path, cells: Sequence[CellResult], meta: Mapping[str, Any]
) -> tuple[str, Path]:
    """Write ``out`` (JSON) and ``out`` with ``.md``; return the Markdown and its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result_document(cells, meta))
    machine = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    settings = meta.get("settings", {})
    md = "\n".join(
        [
            f"Client ingestion ceiling, {meta.get('date')} — {machine.get('cpu_model')}, "
            f"{machine.get('nproc')} CPUs; {versions}.",
            f"Settings: {json.dumps(settings)}",
            "",
            markdown_table(cells),
            "",
            _notes(cells),
        ]
    )
    md_path = out.with_suffix(".md")
    md_path.write_text(md + "\n")
    return md, md_path
