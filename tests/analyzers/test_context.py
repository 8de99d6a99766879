"""``analyzers.context.RunContext``: a run loaded once, each member computed once and shared,
the same numbers as the functions that take a loaded run, and the engine left out (with the
summary's warning) when the run names an engine this version does not know or its tables
cannot be read. On copies of the committed real run directories (tests/data/rundirs: an
attach and a run written by servescope, with the engine's metrics tables)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from analyzers.context import HISTOGRAM_COLUMNS, RunContext
from analyzers.definitions import definition_table
from analyzers.engine_signals import engine_inputs, engine_window
from analyzers.goodput import SLO
from analyzers.run_analysis import analyze_run
from analyzers.run_samples import run_samples
from analyzers.server_histograms import server_histograms
from analyzers.summary import send_to_last, summarize
from servescope.rundir import engine_tables, reader
from servescope.rundir.layout import RunDirError
from servescope.rundir.manifest import read_manifest, write_manifest

DATA = Path(__file__).parents[1] / "data" / "rundirs"


@pytest.fixture(params=["v1_attach", "v1_run"])
def run_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA / request.param, tmp_path / request.param))


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[object]:
    calls: list[object] = []
    original = getattr(module, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_context_loads_on_first_use_and_computes_each_member_once(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _counting(monkeypatch, reader, "load_run")
    reads = _counting(monkeypatch, engine_tables, "read_engine_tables")
    ctx = RunContext(run_dir)
    assert ctx.path == run_dir
    assert loads == []  # nothing read until something is asked
    assert RunContext.of(ctx) is ctx
    assert ctx.timeline is ctx.timeline
    assert ctx.metrics is ctx.metrics
    slo = SLO(ttft_ms=50)
    assert ctx.summary() is ctx.summary() is summarize(ctx)
    assert ctx.summary(slo) is summarize(ctx, slo) is not ctx.summary()
    assert ctx.summary(slo).goodput is not None
    assert analyze_run(ctx, n_resamples=50) is ctx.analysis(n_resamples=50)
    assert ctx.analysis(n_resamples=50).summary is ctx.summary()
    assert ctx.rules is ctx.rules
    assert ctx.rules.timeline is ctx.timeline
    assert ctx.signals is ctx.signals is not None
    assert run_samples(ctx).summary is ctx.summary()
    assert loads == [run_dir]
    assert reads == [run_dir]


def test_the_context_reads_the_same_numbers_as_a_loaded_run(run_dir: Path) -> None:
    run = reader.load_run(run_dir)
    ctx = RunContext(run)
    assert ctx.run is run
    assert repr(ctx.summary()) == repr(summarize(run))
    w = ctx.window
    assert repr(ctx.engine) == repr(engine_window(run, w.start_ns, w.end_ns))
    pd.testing.assert_frame_equal(ctx.histograms, server_histograms(run, w.start_ns, w.end_ns))
    assert repr(ctx.engine_whole) == repr(engine_window(run))
    load = ctx.engine_load
    assert load is not None
    assert repr(load.window) == repr(engine_window(run, send_to_last(ctx.measured)[0]))
    assert set(load.histograms) == set(server_histograms(run, load.window.start_ns)["histogram"])
    for name in ("servescope", "vllm"):
        assert repr(definition_table(ctx, name)) == repr(definition_table(run_dir, name))
    from_path = run_samples(run_dir)
    shared = run_samples(ctx)
    assert from_path.path == shared.path == run_dir
    assert repr(from_path.summary) == repr(shared.summary)
    assert repr(from_path.server) == repr(shared.server)


def _rename_engine(run_dir: Path, name: str) -> None:
    m = read_manifest(run_dir)
    assert m.engine is not None
    m.engine.name = name
    write_manifest(run_dir, m)


def test_an_unknown_engine_is_left_out_with_a_warning_and_its_tables_unread(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rename_engine(run_dir, "futurellm")
    reads = _counting(monkeypatch, engine_tables, "read_engine_tables")
    ctx = RunContext(run_dir)
    assert ctx.spec is None
    warning = ctx.unknown_engine_warning
    assert warning is not None
    assert "unknown engine 'futurellm'" in warning
    assert warning in ctx.summary().warnings
    assert ctx.signals is None
    assert ctx.engine is None
    assert ctx.engine_whole is None
    assert ctx.engine_load is None
    assert ctx.histograms.empty
    assert tuple(ctx.histograms.columns) == HISTOGRAM_COLUMNS
    assert ctx.analysis(n_resamples=50).decomposition == ()
    assert reads == []
    with pytest.raises(RunDirError, match="futurellm"):
        engine_inputs(ctx)


def test_unreadable_engine_tables_are_read_once_and_leave_the_engine_out(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (run_dir / "engine" / "metrics.parquet").write_bytes(b"not parquet")
    reads = _counting(monkeypatch, engine_tables, "read_engine_tables")
    ctx = RunContext(run_dir)
    assert ctx.signals is None
    assert ctx.engine_load is None
    assert ctx.histograms.empty
    for _ in range(2):
        with pytest.raises(RunDirError, match="cannot read the engine tables"):
            _ = ctx.engine_tables
    assert ctx.analysis(n_resamples=50).findings is not None
    assert reads == [run_dir]


def test_an_unreadable_run_raises_where_it_is_first_used(tmp_path: Path) -> None:
    ctx = RunContext(tmp_path / "missing")
    with pytest.raises(RunDirError, match="does not exist"):
        ctx.summary()
