"""``gate --history`` over a store of run groups: each group is one point (the mean of its
repeats), the run-to-run spread within the groups is measured, and a store may mix groups and
plain runs. Runs are real run directories with exactly chosen TTFT p50s."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analyzers.history import HistoryVerdict, run_history
from servescope.rundir.group import RunGroup, write_group
from tests.analyzers.test_between_runs import _arm

PAIRS = [(100.0, 104.0), (102.0, 98.0), (101.0, 103.0), (99.0, 101.0), (100.0, 98.0),
         (130.0, 134.0), (132.0, 128.0), (131.0, 129.0), (133.0, 127.0), (130.0, 132.0)]


def test_a_store_of_groups_is_a_series_of_group_means(tmp_path: Path):
    store = tmp_path / "store"
    for i, pair in enumerate(PAIRS):
        g = store / f"g{i}"
        g.mkdir(parents=True)
        runs = _arm(g, "r", list(pair))
        write_group(RunGroup(g, [p.name for p in runs]))
    h = run_history([store], metrics=["ttft_p50"])
    assert [r.runs for r in h.runs] == [2] * len(PAIRS)
    m = h.metrics[0]
    assert m.values == pytest.approx([np.mean(p) * 1e6 for p in PAIRS])
    assert m.verdict is HistoryVerdict.REGRESSED
    logs = [np.log(p) - np.log(p).mean() for p in PAIRS]
    assert m.spread == pytest.approx(math.sqrt(sum((x ** 2).sum() for x in logs) / len(PAIRS)))


def test_groups_and_plain_runs_mix_and_an_unfinished_group_is_skipped(tmp_path: Path):
    store = tmp_path / "store"
    store.mkdir()
    _arm(store, "plain", [100.0, 101.0, 99.0])
    g = store / "grp"
    g.mkdir()
    runs = _arm(g, "r", [100.0, 102.0])
    write_group(RunGroup(g, [p.name for p in runs] + ["r9"]))  # r9 never ran
    ok = store / "ok"
    ok.mkdir()
    write_group(RunGroup(ok, [p.name for p in _arm(ok, "r", [98.0, 100.0])]))
    h = run_history([store], metrics=["ttft_p50"])
    assert sorted(r.runs for r in h.runs) == [1, 1, 1, 2]
    assert any(s.startswith(str(g)) for s in h.skipped)
