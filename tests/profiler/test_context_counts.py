"""One analysis context per run directory (issue 9): at the end of ``servescope run`` and
``attach``, in ``servescope report A B``, ``analyze``, ``summarize``, ``compare`` and ``gate``,
each run directory is loaded once, its timeline built once and its engine tables read once.

The three readers are wrapped with counters in every module that holds them (patched where
they are used, so a new caller anywhere is counted too), and the commands run on copies of the
committed real run directories (tests/data/rundirs: an attach and a run, both with the
engine's metrics tables)."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

DATA = Path(__file__).parents[1] / "data" / "rundirs"
READERS = (("servescope.rundir.reader", "load_run"), ("analyzers.timeline", "build_timeline"),
           ("servescope.rundir.engine_tables", "read_engine_tables"))
_OURS = ("servescope", "analyzers", "reports", "profiler", "collectors")

Calls = Counter[tuple[str, str]]  # (reader, run directory) -> calls


def _dir_of(source: Any) -> str:
    path = getattr(source, "path", source)  # RunData, or a path
    return Path(path).resolve().name


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    for name in ("profiler.commands", "profiler.commands_run", "profiler.commands_report",
                 "profiler.commands_compare", "reports.html", "analyzers.context"):
        importlib.import_module(name)  # bind every module-level import before wrapping
    seen: Calls = Counter()
    for module, name in READERS:
        original = getattr(importlib.import_module(module), name)

        def counted(source: Any, *args: Any, _f: Callable[..., Any] = original,
                    _name: str = name, **kwargs: Any) -> Any:
            seen[(_name, _dir_of(source))] += 1
            return _f(source, *args, **kwargs)

        for mod_name, mod in list(sys.modules.items()):
            if mod_name.split(".")[0] in _OURS and mod.__dict__.get(name) is original:
                monkeypatch.setattr(mod, name, counted)
    return seen


def _once(*dirs: str) -> Calls:
    return Counter({(reader, d): 1 for d in dirs for _, reader in READERS})


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    out = []
    for name in ("v1_attach", "v1_run"):
        shutil.copytree(DATA / name, tmp_path / name)
        out.append(tmp_path / name)
    return out[0], out[1]


@pytest.mark.parametrize("name", ["v1_attach", "v1_run"])
def test_the_end_of_a_run_reads_its_directory_once(runs: tuple[Path, Path], name: str,
                                                   calls: Calls,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from profiler.commands_run import _end_of_run
    from profiler.engine_run import EngineRunResult
    from profiler.loadrun import LoadResult

    run_dir = runs[0] if name == "v1_attach" else runs[1]
    res = EngineRunResult(run_dir, "complete", LoadResult(run_dir, "complete", 20, []), None,
                          1.0, [])
    assert _end_of_run(Console(stderr=True), res) == 0
    out = capsys.readouterr().out
    assert "client vs server" in out  # the summary with its engine view,
    assert "details: servescope analyze" in out  # the findings,
    assert (run_dir / "report.html").is_file()  # and the report were all made
    assert calls == _once(name)


def test_an_ab_report_reads_each_directory_once(runs: tuple[Path, Path], calls: Calls,
                                                tmp_path: Path) -> None:
    from profiler.commands_report import report_command

    a, b = runs
    assert report_command(a, b, tmp_path / "ab.html", slo="ttft:50") == 0
    assert calls == _once(a.name, b.name)


def test_analyze_summarize_compare_and_gate_read_each_directory_once(
        runs: tuple[Path, Path], calls: Calls, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from profiler.commands import analyze_command, summarize_command
    from profiler.commands_compare import compare_command, gate_command

    a, b = runs
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[budgets]\nttft_p99 = "+10%"\n[validity]\nmin_requests = 5\n')
    steps: list[tuple[Callable[[], int], tuple[str, ...]]] = [
        (lambda: analyze_command(a, "ttft:50", tmp_path / "a.json"), (a.name,)),
        (lambda: summarize_command(b, "all", "ttft:50"), (b.name,)),
        (lambda: compare_command(a, b, json_out=tmp_path / "c.json"), (a.name, b.name)),
        (lambda: gate_command(b, budgets=budgets, baseline=a), (a.name, b.name)),
    ]
    for step, dirs in steps:
        calls.clear()
        assert step() == 0, capsys.readouterr()
        assert calls == _once(*dirs)
