"""The end of ``run``/``attach`` keeps what finalizing the engine tables says: a torn journal
line is a warning in the manifest, and a finalize that fails leaves the journal and says so
(it used to be swallowed whole by ``suppress(Exception)``)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from profiler.engine_run import _finish
from servescope.clock import take_anchor
from servescope.rundir.engine_tables import METRICS_JOURNAL, engine_dir
from servescope.rundir.manifest import (
    EngineInfo,
    Manifest,
    host_fingerprint,
    read_manifest,
    write_manifest,
)

GOOD = {"endpoint": "http://127.0.0.1:1/metrics", "format": "prometheus", "tag": "",
        "t_sched_ns": 1, "t_start_ns": 1, "t_end_ns": 2, "ok": True, "status": 200,
        "outcome": "ok", "error": "", "body_bytes": 10, "cpu_ns": 0, "n_entries": 0,
        "samples": []}


def _run_dir(tmp_path: Path, journal: bytes) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    anchor = take_anchor()
    write_manifest(run, Manifest(run_id="run", started_wall_ns=anchor.wall_ns, clock=anchor,
                                 host=host_fingerprint(), command_line=[],
                                 workload={}, seed=0, target={}, engine=EngineInfo(name="")))
    engine_dir(run).mkdir()
    (engine_dir(run) / METRICS_JOURNAL).write_bytes(journal)
    return run


def test_a_torn_engine_journal_line_is_a_manifest_warning(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, orjson.dumps(GOOD) + b"\n" + b'{"endpoint": "http://12')
    _finish(run, EngineInfo(name="vllm"), None, [], status="complete")
    warnings = read_manifest(run).warnings
    assert any(w.startswith("engine metrics: ") and "incomplete scrape line" in w
               for w in warnings), warnings
    assert (engine_dir(run) / "scrapes.parquet").is_file()


def test_a_failed_finalize_keeps_the_journal_and_says_so(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import collectors.engine_metrics as em

    def broken(_run: Path, keep_journal: bool = False) -> tuple[int, list[str]]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(em, "finalize", broken)
    run = _run_dir(tmp_path, orjson.dumps(GOOD) + b"\n")
    _finish(run, EngineInfo(name="vllm"), None, [], status="complete")
    m = json.loads((run / "manifest.json").read_text())
    assert any("engine metrics tables not written" in w and "No space left" in w
               for w in m["warnings"]), m["warnings"]
    assert (engine_dir(run) / METRICS_JOURNAL).is_file()
