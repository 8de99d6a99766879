"""A manifest that is valid JSON with values of the wrong type is one error line naming the
field and what was expected (summarize, analyze and report exit 2), never a traceback
(issue 8, case 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from servescope.records import RequestRecord
from servescope.rundir.layout import RunDirError
from servescope.rundir.manifest import write_manifest
from servescope.rundir.reader import load_run
from tests.analyzers._rundir import out, request, write_run
from tests.e2e._support import new_tag, run_servescope


def _run(tmp_path: Path) -> Path:
    recs = [request(i, i * 10.0, [out(i * 10.0 + 1, 3, 1)], done_ms=i * 10.0 + 2,
                    completion_tokens=1) for i in range(3)]
    return write_run(tmp_path, recs).path


def _edit(run_dir: Path, path: str, value: Any) -> None:
    """Set (or with ``...`` delete) the manifest field at dotted ``path``."""
    mf = run_dir / "manifest.json"
    data = json.loads(mf.read_text())
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    mf.write_text(json.dumps(data))


CASES: list[tuple[str, Any, str]] = [
    ("engine", "x", "engine: expected an object, got a string"),
    ("extra", "x", "extra: unknown field"),  # schema 2 has no extra; a section is an object
    ("target", None, "target: expected an object, got null"),
    ("workload", [], "workload: expected an object, got a list"),
    ("clock.wall_ns", ..., "clock.wall_ns: missing"),
    ("clock.mono_ns", "1", "clock.mono_ns: expected an integer, got a string"),
    ("clock", 5, "clock: expected an object, got an integer"),
    ("warnings", "x", "warnings: expected a list of strings, got a string"),
    ("warnings", [1], "warnings[0]: expected a string, got an integer"),
    ("workers", "2", "workers: expected an integer, got a string"),
    ("workers", True, "workers: expected an integer, got a boolean"),
    ("workers", 2.0, "workers: expected an integer, got a number"),
    ("host", None, "host: expected an object, got null"),
    ("host.cpu_count", "4", "host.cpu_count: expected an integer, got a string"),
    ("host.gpus", [], "host.gpus: unknown field"),  # schema 1's place of the GPUs
    ("gpus", [], "gpus: expected an object, got a list"),
    ("gpus.devices", {}, "gpus.devices: expected a list of objects, got an object"),
    ("gpus.devices", [1], "gpus.devices[0]: expected an object, got an integer"),
    ("gpus.devices", [{"index": 0}], "gpus.devices[0].name: missing"),
    ("command_line", "servescope run", "command_line: expected a list of strings"),
    ("run_id", 5, "run_id: expected a string, got an integer"),
    ("seed", 1.5, "seed: expected an integer, got a number"),
    ("started_wall_ns", ..., "started_wall_ns: missing"),
    ("status", 5, "status: expected a string, got an integer"),
    ("ended_wall_ns", "late", "ended_wall_ns: expected an integer, got a string"),
    ("servescope_version", [], "servescope_version: expected a string, got a list"),
    ("surprise", 1, "surprise: unknown field"),
    ("client", "x", "client: expected an object, got a string"),
    ("client.steps", "x", "client.steps: expected a list of objects"),
    ("client.steps", [{"wall_ns": "1"}],
     "client.steps[0].wall_ns: expected an integer, got a string"),
    ("client.steps", [{"wall_ns": 1}], "client.steps[0].step: missing"),
    ("client.surprise", 1, "client.surprise: unknown field"),
    ("engine", [], "engine: expected an object, got a list"),
    ("engine", {}, "engine.name: missing"),
    ("engine.name", 5, "engine.name: expected a string, got an integer"),
    ("engine.command", "vllm serve", "engine.command: expected a list of strings or null"),
    ("engine.ready_s", "1", "engine.ready_s: expected a number or null, got a string"),
    ("engine.processes", {"1": 2}, "engine.processes.1: expected a string, got an integer"),
    ("engine.scrapes", {"ok": 1.5}, "engine.scrapes.ok: expected an integer, got a number"),
    ("engine.stop", {"returncode": "x"}, "engine.stop.returncode: expected an integer or null"),
    ("engine.error", {"kind": "exited"}, "engine.error.message: missing"),
    ("engine.surprise", 1, "engine.surprise: unknown field"),
    ("imported", {"tool": 1}, "imported.tool: expected a string, got an integer"),
    ("collectors", [], "collectors: expected an object, got a list"),
    ("collectors", {"gpu": 5}, "collectors.gpu: expected an object, got an integer"),
    ("workload.steps", "x", "workload.steps: expected a list of objects, got a string"),
    ("workload.dataset", 3, "workload.dataset: expected an object, got an integer"),
    ("workload.arrival", [], "workload.arrival: expected an object, got a list"),
]


@pytest.mark.parametrize(("field", "value", "why"), CASES,
                         ids=[f"{f}={json.dumps(v) if v is not ... else 'missing'}"
                              for f, v, _ in CASES])
def test_wrong_types_are_one_line_naming_the_field(tmp_path: Path, field: str, value: Any,
                                                   why: str) -> None:
    from profiler.commands import analyze_command, summarize_command

    run_dir = _run(tmp_path)
    if field.startswith("engine."):  # a run with an engine: edit one of its fields
        _edit(run_dir, "engine", {"name": "vllm"})
    _edit(run_dir, field, value)
    with pytest.raises(RunDirError) as err:
        load_run(run_dir)
    msg = str(err.value)
    assert msg.startswith(f"{run_dir / 'manifest.json'} is malformed: ")
    assert why in msg
    assert "\n" not in msg
    assert summarize_command(run_dir, "", None) == 2
    assert analyze_command(run_dir, None, None) == 2


@pytest.mark.parametrize("text", ["[" * 100_000, '{"schema_version": 1, "x": ' * 50_000])
def test_deeply_nested_manifest(tmp_path: Path, text: str) -> None:
    run_dir = _run(tmp_path)
    (run_dir / "manifest.json").write_text(text)
    with pytest.raises(RunDirError, match=r"manifest\.json"):
        load_run(run_dir)


def test_the_cli_says_it_in_one_line_and_exits_2(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    _edit(run_dir, "engine", "x")
    for command in ("summarize", "analyze", "report"):
        r = run_servescope([command, str(run_dir)], new_tag(), timeout_s=60)
        assert r.returncode == 2, (command, r.output)
        assert "Traceback" not in r.output
        assert "manifest.json is malformed: engine: expected an object, got a string" in r.text


def test_a_good_manifest_still_reads(tmp_path: Path) -> None:
    run = write_run(tmp_path, [RequestRecord(request_id=0)])
    assert run.manifest.status == "complete"
    assert run.manifest.host.cpu_count >= 1


V1 = Path(__file__).parents[1] / "data" / "rundirs" / "v1_run"
V1_CASES: list[tuple[str, Any, str]] = [
    ("extra", "x", "extra: expected an object, got a string"),
    ("extra.engine", [], "extra.engine: expected an object, got a list"),
    ("extra.engine.name", 5, "extra.engine.name: expected a string, got an integer"),
    ("extra.engine.command", "vllm serve", "extra.engine.command: expected a list of strings"),
    ("extra.engine.stop.seconds", "1", "extra.engine.stop.seconds: expected a number"),
    ("extra.engine.surprise", 1, "extra.engine.surprise: unknown field"),
    ("extra.client", "x", "extra.client: expected an object, got a string"),
    ("extra.client.steps", [{"wall_ns": "1"}],
     "extra.client.steps[0].wall_ns: expected an integer, got a string"),
    ("extra.imported", {"tool": 1}, "extra.imported.tool: expected a string, got an integer"),
    ("extra.notes", 5, "extra.notes: expected an object, got an integer"),
    ("host.gpus", {}, "host.gpus: expected a list of objects, got an object"),
    ("host.gpus", [1], "host.gpus[0]: expected an object, got an integer"),
    ("host.gpus", [{"name": 3}], "host.gpus[0].name: expected a string, got an integer"),
    ("surprise", 1, "surprise: unknown field"),
]


@pytest.mark.parametrize(("field", "value", "why"), V1_CASES,
                         ids=[f"{f}={json.dumps(v)}" for f, v, _ in V1_CASES])
def test_schema_1_errors_name_the_schema_1_field(tmp_path: Path, field: str, value: Any,
                                                 why: str) -> None:
    run_dir = tmp_path / "v1"
    shutil.copytree(V1, run_dir)
    _edit(run_dir, field, value)
    with pytest.raises(RunDirError) as err:
        load_run(run_dir)
    msg = str(err.value)
    assert msg.startswith(f"{run_dir / 'manifest.json'} is malformed: ")
    assert why in msg
    assert "\n" not in msg


def test_schema_1_sections_this_version_does_not_know_are_kept(tmp_path: Path) -> None:
    run_dir = tmp_path / "v1"
    shutil.copytree(V1, run_dir)
    _edit(run_dir, "extra.notes", {"by": "hand", "n": [1, 2]})
    _edit(run_dir, "host.gpus", [{"index": 0, "name": "NVIDIA H100", "driver": "550.54",
                                  "memory_bytes": 8 << 30}])
    m = load_run(run_dir).manifest
    assert m.extra == {"notes": {"by": "hand", "n": [1, 2]}}
    assert m.gpus.driver_version == "550.54"
    assert [(g.index, g.name, g.memory_bytes) for g in m.gpus.devices] == [
        (0, "NVIDIA H100", 8 << 30)]
    write_manifest(run_dir, m)
    raw = json.loads((run_dir / "manifest.json").read_text())
    assert raw["notes"] == {"by": "hand", "n": [1, 2]}  # written back as it was
    assert load_run(run_dir).manifest.extra == m.extra


def test_a_newer_section_in_schema_2_is_kept_and_written_back(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    _edit(run_dir, "kernels", {"profiler": "nsys", "captures": [{"step": 3}]})
    m = load_run(run_dir).manifest
    assert m.extra == {"kernels": {"profiler": "nsys", "captures": [{"step": 3}]}}
    m.status = "interrupted"
    write_manifest(run_dir, m)
    raw = json.loads((run_dir / "manifest.json").read_text())
    assert raw["kernels"] == {"profiler": "nsys", "captures": [{"step": 3}]}
    assert raw["status"] == "interrupted"


@pytest.mark.parametrize("version", [0, 3, "2"])
def test_schema_versions_this_version_cannot_read(tmp_path: Path, version: Any) -> None:
    run_dir = _run(tmp_path)
    _edit(run_dir, "schema_version", version)
    with pytest.raises(RunDirError, match="schema"):
        load_run(run_dir)
