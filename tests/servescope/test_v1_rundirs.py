"""Run directories of schema 1 (tests/data/rundirs/README.md: written by servescope at
84a4c5c) still load, and summarize, analyze and the report read the same numbers as the code
before schema 2 did (``v1_expected.json``)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from analyzers.bottlenecks import find_bottlenecks
from analyzers.bottlenecks.context import build_context
from analyzers.engine_signals import engine_window
from analyzers.manifest_diff import manifest_diff
from analyzers.side_by_side import engine_view
from analyzers.summary import summarize
from reports.html.describe import engine_name
from reports.html.sections import environment
from servescope import load_run
from servescope.rundir.engine_tables import read_engine_tables
from servescope.rundir.manifest import read_manifest, write_manifest

DATA = Path(__file__).parents[1] / "data" / "rundirs"
EXPECTED: dict[str, Any] = json.loads((DATA / "v1_expected.json").read_text())
NAMES = ("v1_attach", "v1_run")


def _same(got: Any, want: Any, where: str) -> None:
    if isinstance(want, dict):
        for k, v in want.items():
            _same(got[k], v, f"{where}.{k}")
    elif isinstance(want, float) or isinstance(got, float):
        assert got == pytest.approx(want, rel=1e-12, abs=0) or (
            want is None and math.isnan(got)), where
    else:
        assert got == want, where


@pytest.mark.parametrize("name", NAMES)
def test_a_schema_1_run_reads_the_same_numbers(name: str) -> None:
    want = EXPECTED[name]
    run = load_run(DATA / name)
    assert run.manifest.schema_version == 1
    assert run.source == "parquet"
    tables = read_engine_tables(run.path)
    assert tables is not None
    assert {"requests": len(run.requests), "events": len(run.events),
            "metrics": len(tables.metrics), "scrapes": len(tables.scrapes)} == want["rows"]
    summary = summarize(run)
    for key, value in want["summary"].items():
        if key != "latency":
            _same(getattr(summary, key), value, key)
    for metric, stats in want["summary"]["latency"].items():
        for stat, value in stats.items():
            _same(getattr(getattr(summary.latency, metric), stat), value, f"{metric}.{stat}")
    window = engine_window(run)
    for key, value in want["engine_window"].items():
        _same(getattr(window, key), value, f"engine_window.{key}")
    view = engine_view(run, summary)
    assert view is not None
    assert view.engine == "vllm"
    server = {r.metric: {p: v.value_s for p, v in r.server.items()} for r in view.rows}
    _same(server, want["engine_view"], "engine_view")
    assert [f.rule for f in find_bottlenecks(build_context(run))] == want["findings"]
    assert engine_name(run.manifest) == want["engine_name"]


def test_the_sections_of_schema_1_are_the_typed_ones() -> None:
    """Every value the schema-1 manifests held in ``extra`` (ground truth: the files)."""
    raw = {n: json.loads((DATA / n / "manifest.json").read_text()) for n in NAMES}
    attach, run = (read_manifest(DATA / n) for n in NAMES)
    for m, n in ((attach, "v1_attach"), (run, "v1_run")):
        extra = raw[n]["extra"]
        assert m.engine is not None
        assert m.client.timestamps == extra["client"]["timestamps"] == "socket_read"
        assert [(s.step, s.workers, s.wall_ns, s.cpu_ns) for s in m.client.steps] == [
            (s["step"], s["workers"], s["wall_ns"], s["cpu_ns"]) for s in extra["client"]["steps"]]
        eng = extra["engine"]
        assert (m.engine.name, m.engine.base_url, m.engine.version) == (
            eng["name"], eng["base_url"], eng["version"])
        assert [e.url for e in m.engine.metrics] == [e["url"] for e in eng["metrics"]]
        assert m.engine.scrapes is not None
        assert (m.engine.scrapes.scrapes, m.engine.scrapes.ok, m.engine.scrapes.cpu_ns_total,
                m.engine.scrapes.process_cpu_ns) == (
            eng["scrapes"]["scrapes"], eng["scrapes"]["ok"], eng["scrapes"]["cpu_ns_total"],
            eng["scrapes"]["process_cpu_ns"])
        assert m.engine.scrapes.throttled_ticks == 0  # not recorded then
        assert m.gpus.devices == []
        assert m.imported is None
        assert m.extra == {}
    assert attach.engine is not None
    assert run.engine is not None
    assert (attach.engine.attached, attach.engine.detected_from, attach.engine.server_pid) == (
        True, "/metrics names", raw["v1_attach"]["extra"]["engine"]["server_pid"])
    assert attach.engine.command is None
    assert attach.engine.stop is None
    eng = raw["v1_run"]["extra"]["engine"]
    assert run.engine.command == eng["command"]
    assert run.engine.processes == eng["processes"]
    assert run.engine.ready_s == eng["ready_s"]
    assert run.engine.stop is not None
    assert (run.engine.stop.signals, run.engine.stop.returncode, run.engine.stop.seconds,
            run.engine.stop.leftover_pids) == (eng["stop"]["signals"], eng["stop"]["returncode"],
                                               eng["stop"]["seconds"], eng["stop"]["leftover_pids"])
    assert not run.engine.attached
    assert run.engine.server_pid is None


def test_the_manifest_diff_and_the_report_read_it_as_before() -> None:
    a, b = (load_run(DATA / n).manifest for n in NAMES)
    assert [[c.key, c.baseline, c.candidate] for c in manifest_diff(a, b)] == \
        EXPECTED["manifest_diff"]
    html = environment(b)
    assert "SIGINT, return code -2" in html
    assert "tests.faults.fake_engine" in html
    assert "attached" in environment(a)
    assert "attached" not in html


def test_a_schema_1_run_rewritten_is_schema_2_with_the_same_content(tmp_path: Path) -> None:
    for name in NAMES:
        copy = tmp_path / name
        shutil.copytree(DATA / name, copy)
        before = read_manifest(copy)
        write_manifest(copy, before)
        raw = json.loads((copy / "manifest.json").read_text())
        assert raw["schema_version"] == 2
        assert "extra" not in raw
        assert "gpus" not in raw["host"]
        after = read_manifest(copy)
        assert after.schema_version == 2
        after.schema_version = before.schema_version
        assert after == before


@pytest.mark.parametrize("name", NAMES)
def test_the_html_report_of_a_schema_1_run(tmp_path: Path, name: str) -> None:
    from profiler.commands_report import write_run_report

    copy = tmp_path / name
    shutil.copytree(DATA / name, copy)
    html = write_run_report(copy).read_text()
    assert EXPECTED[name]["engine_name"] in html
    assert json.loads((copy / "manifest.json").read_text())["schema_version"] == 1  # untouched
