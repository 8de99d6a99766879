"""Repeated runs: the interleaving schedule, the run group's manifest, and ``attach --repeat`` /
``run --repeat`` (engine kept, and restarted between repeats) as a user runs them, against the
loopback reference server and the fake engine of the fault tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from profiler.repeats import interleaved_order, run_interleaved, run_repeats
from profiler.selftest.process import RefServerHandle
from servescope.rundir.group import read_group
from servescope.rundir.layout import RunDirError
from servescope.rundir.manifest import read_manifest
from tests.collectors._server import free_port
from tests.faults._signal_support import fake_engine

WORKLOAD = ("--concurrency", "2", "--requests", "8", "--input-len", "fixed:8", "--output-len",
            "fixed:4")


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiler.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_each_round_runs_every_arm_once_alternating_or_shuffled():
    assert interleaved_order(["A", "B"], 3) == [("A", 0), ("B", 0), ("A", 1), ("B", 1),
                                                ("A", 2), ("B", 2)]
    sched = interleaved_order(["A", "B", "C"], 6, "shuffled", seed=3)
    for i in range(6):
        assert sorted(a for a, r in sched if r == i) == ["A", "B", "C"]
        assert [r for _, r in sched[3 * i:3 * i + 3]] == [i, i, i]
    assert len({tuple(a for a, _ in sched[3 * i:3 * i + 3]) for i in range(6)}) > 1
    assert sched == interleaved_order(["A", "B", "C"], 6, "shuffled", seed=3)
    with pytest.raises(ValueError, match="alternate or shuffled"):
        interleaved_order(["A"], 1, "random")


def test_interleaved_groups_record_the_whole_schedule(tmp_path: Path):
    ran: list[str] = []

    def arm(name: str):
        def one(d: Path) -> str:
            d.mkdir(parents=True)
            ran.append(f"{name}/{d.name}")
            return name
        return one

    res = run_interleaved({"A": arm("A"), "B": arm("B")}, 2, tmp_path / "ab")
    assert res == {"A": ["A", "A"], "B": ["B", "B"]}
    assert ran == ["A/r01", "B/r01", "A/r02", "B/r02"]
    for name in ("A", "B"):
        g = read_group(tmp_path / "ab" / name)
        assert g.arm == name
        assert g.runs == ["r01", "r02"]
        assert g.order == [["A", "r01"], ["B", "r01"], ["A", "r02"], ["B", "r02"]]
    with pytest.raises(RunDirError, match="not empty"):
        run_interleaved({"A": arm("A")}, 1, tmp_path / "ab")


def test_a_failed_repeat_stops_the_group_and_the_group_lists_what_ran(tmp_path: Path):
    codes = iter([0, 1, 0])

    def one(d: Path) -> int:
        d.mkdir(parents=True)
        return next(codes)

    assert run_repeats(3, tmp_path / "g", one, stop=lambda c: c != 0) == [0, 1]
    assert read_group(tmp_path / "g").runs == ["r01", "r02"]
    with pytest.raises(ValueError, match="at least 1"):
        run_repeats(0, tmp_path / "h", one)


def test_attach_repeat_writes_a_group_that_compare_reads_with_the_between_run_model(
        refserver: RefServerHandle, tmp_path: Path):
    for name in ("a", "b"):
        r = cli("attach", "--url", refserver.url, "--out", str(tmp_path / name), "--repeat", "2",
                *WORKLOAD)
        assert r.returncode == 0, r.stderr + r.stdout
        assert f"run group: {tmp_path / name} (2 of 2 repeats)" in " ".join(r.stderr.split())
    g = read_group(tmp_path / "a")
    assert g.runs == ["r01", "r02"]
    assert all(read_manifest(d).status == "complete" for d in g.run_dirs())
    c = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json",
            str(tmp_path / "c.json"))
    assert c.returncode == 0, c.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["runs"] == [2, 2]
    assert "hierarchical bootstrap" in data["metrics"][0]["test"]


@pytest.mark.parametrize("restart", [False, True])
def test_run_repeat_starts_the_engine_once_or_once_per_repeat(tmp_path: Path, restart: bool):
    port = free_port()
    out = tmp_path / "g"
    r = cli("run", "--out", str(out), "--engine", "vllm", "--url", f"http://127.0.0.1:{port}",
            "--repeat", "2", *(["--restart-between"] if restart else []), *WORKLOAD, "--",
            *fake_engine(port))
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    g = read_group(out)
    assert g.runs == ["r01", "r02"]
    assert g.restart_between is restart
    ms = [read_manifest(d) for d in g.run_dirs()]
    assert all(m.status == "complete" for m in ms)
    assert all(m.engine is not None
               and "tests.faults.fake_engine" in " ".join(m.engine.command or []) for m in ms)
    starts = Counter("starting" in line for line in r.stderr.splitlines())[True]
    assert starts == (2 if restart else 1), r.stderr
    assert (out / "engine").is_dir() is not restart  # the kept engine's log


def test_attach_vs_interleaves_two_servers_and_compare_judges_the_rounds_paired(
        refserver: RefServerHandle, tmp_path: Path):
    out = tmp_path / "ab"
    r = cli("attach", "--url", refserver.url, "--vs", refserver.url, "--repeat", "3",
            "--order", "shuffled", "--seed", "5", "--out", str(out), *WORKLOAD)
    assert r.returncode == 0, r.stderr + r.stdout
    a, b = read_group(out / "A"), read_group(out / "B")
    assert (a.arm, b.arm) == ("A", "B")
    assert a.runs == b.runs == ["r01", "r02", "r03"]
    assert a.order == b.order
    assert [sorted(x for x, name in a.order if name == f"r0{i}") for i in (1, 2, 3)] == \
        [["A", "B"]] * 3  # each round one run of each arm
    assert "--vs" in a.command_line
    starts = [read_manifest(d).started_wall_ns for g in (a, b) for d in g.run_dirs()]
    assert len(set(starts)) == 6
    c = cli("compare", str(out / "A"), str(out / "B"), "--json", str(tmp_path / "c.json"))
    assert c.returncode == 0, c.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["runs"] == [3, 3]
    tests = {m["name"]: m["test"] for m in data["metrics"]}
    for name in ("ttft_p50", "e2e_p99", "output_throughput"):
        assert tests[name] == "interleaved rounds: per-round differences, paired t", tests
    assert any("3 interleaved rounds" in w for w in data["warnings"])


def test_vs_without_repeats_or_with_an_unknown_order_is_a_one_line_error(tmp_path: Path):
    for extra, msg in ((["--repeat", "1"], "--vs needs --repeat"),
                       (["--repeat", "2", "--order", "random"], "alternate or shuffled")):
        r = cli("attach", "--url", "http://127.0.0.1:9", "--vs", "http://127.0.0.1:9",
                "--out", str(tmp_path / "x"), *extra)
        assert r.returncode == 2
        assert msg in r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        assert not (tmp_path / "x").exists()


def test_run_vs_starts_each_arms_engine_for_each_of_its_runs(tmp_path: Path):
    import shlex

    port = free_port()
    out = tmp_path / "ab"
    b_cmd = fake_engine(port, "--itl-ms", "3")
    r = cli("run", "--out", str(out), "--engine", "vllm", "--url", f"http://127.0.0.1:{port}",
            "--repeat", "2", "--vs", shlex.join(b_cmd), *WORKLOAD, "--", *fake_engine(port))
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout[-2000:]
    a, b = read_group(out / "A"), read_group(out / "B")
    assert a.order == [["A", "r01"], ["B", "r01"], ["A", "r02"], ["B", "r02"]]
    assert Counter("starting" in line for line in r.stderr.splitlines())[True] == 4, r.stderr
    for g, marker in ((a, False), (b, True)):
        for d in g.run_dirs():
            m = read_manifest(d)
            assert m.status == "complete"
            assert m.engine is not None
            assert ("--itl-ms" in (m.engine.command or [])) is marker
    bad = cli("run", "--out", str(tmp_path / "x"), "--repeat", "2", "--vs", "'unclosed",
              "--", "true")
    assert bad.returncode == 2
    assert "No closing quotation" in bad.stderr
    assert "Traceback" not in bad.stderr + bad.stdout
