"""servescope bench through the CLI on CPU: host memory and gloo collectives across 2 and 4
local processes write run directories that compare and gate read (exit codes, metrics)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from profiler.cli import app
from profiler.commands_bench import parse_sizes

runner = CliRunner()
SIZES = "8:1M:32"  # 8 B, 256 B, 8 KiB, 256 KiB


def _bench(args: list[str]) -> str:
    res = runner.invoke(app, ["bench", *args], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    out = {}
    for n in (2, 4):
        out[f"gloo{n}"] = d / f"gloo{n}"
        _bench(["collectives", "--backend", "gloo", "--nproc", str(n), "--sizes", SIZES,
                "--repeats", "4", "--warmup", "1", "--out", str(out[f"gloo{n}"])])
    for tag in ("host_a", "host_b"):
        out[tag] = d / tag
        _bench(["hbm", "--device", "cpu", "--threads", "1", "--sizes", "64K,4M",
                "--repeats", "6", "--warmup", "1", "--out", str(out[tag])])
    return out


def test_collective_runs_hold_every_op_and_nccl_tests_math(runs):
    import pyarrow.parquet as pq

    for n in (2, 4):
        t = pq.read_table(runs[f"gloo{n}"] / "bench" / "bandwidth.parquet").to_pandas()
        ops = set(t["bench"])
        assert {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast",
                "reduce", "send_recv", "tp_decode_all_reduce"} <= ops
        assert set(t["ranks"]) == {n}
        assert set(t["transport"]) == {"gloo/tcp"}
        factor = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n,
                  "reduce_scatter": (n - 1) / n, "all_to_all": (n - 1) / n,
                  "broadcast": 1.0, "reduce": 1.0, "send_recv": 1.0,
                  "tp_decode_all_reduce": 2 * (n - 1) / n}
        for _, r in t.iterrows():
            assert r["bytes_per_s"] == pytest.approx(r["size_bytes"] / (r["time_ns"] / 1e9))
            assert r["bus_bytes_per_s"] == pytest.approx(r["bytes_per_s"] * factor[r["bench"]])
        # all-gather's size is n x the per-rank input: 8 B on 4 ranks of float32 cannot split
        ag = t[t["bench"] == "all_gather"]["size_bytes"].tolist()
        assert all(s % (4 * n) == 0 for s in ag)
        m = json.loads((runs[f"gloo{n}"] / "manifest.json").read_text())
        assert m["status"] == "complete"
        assert m["workload"]["kind"] == "bench"
        assert m["host"]["cpu_count"] >= 1


def test_compare_reads_bandwidth_metrics(runs, tmp_path):
    out = tmp_path / "c.json"
    res = runner.invoke(app, ["compare", str(runs["gloo2"]), str(runs["gloo4"]),
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    names = {m["spec"]["name"] for m in json.loads(out.read_text())["metrics"]}
    assert "bw_all_reduce" in names
    assert "bw_send_recv" in names
    assert not any(n.startswith("ttft") for n in names)  # a bench run has no requests
    res = runner.invoke(app, ["compare", str(runs["host_a"]), str(runs["host_b"])],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "bw_host_copy" in res.output


def test_gate_passes_and_fails_on_bandwidth(runs, tmp_path):
    ok = tmp_path / "ok.toml"
    ok.write_text('[budgets]\nbw_host_copy = ">= 1"\nbw_host_read = "-99%"\n')
    res = runner.invoke(app, ["gate", str(runs["host_b"]), "--baseline", str(runs["host_a"]),
                              "--budgets", str(ok)])
    assert res.exit_code == 0, res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[budgets]\nbw_host_copy = ">= 1e15"\n')  # 1 PB/s: no host reaches it
    res = runner.invoke(app, ["gate", str(runs["host_b"]), "--baseline", str(runs["host_a"]),
                              "--budgets", str(bad)])
    assert res.exit_code == 1, res.output
    missing = tmp_path / "missing.toml"
    missing.write_text('[budgets]\nbw_hbm_copy = "-5%"\n')
    res = runner.invoke(app, ["gate", str(runs["host_b"]), "--baseline", str(runs["host_a"]),
                              "--budgets", str(missing)])
    assert res.exit_code == 2


def test_bad_options_are_one_line_errors(tmp_path):
    for args in (["collectives", "--backend", "mpi", "--nproc", "2"],
                 ["collectives", "--backend", "gloo", "--ops", "all_reduce,bogus"],
                 ["hbm", "--device", "cpu", "--sizes", "12Q"],
                 ["net", "--tool", "ib_send_lat"],
                 ["p2p"]):
        res = runner.invoke(app, ["bench", *args, "--out", str(tmp_path / "x")])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output
        assert "error:" in res.output


def test_parse_sizes():
    assert parse_sizes("8:1M:32") == (8, 256, 8192, 262144)
    assert parse_sizes("64K,1M") == (65536, 1 << 20)
    assert parse_sizes("1:64") == (1, 4, 16, 64)
    with pytest.raises(ValueError, match="FROM <= TO"):
        parse_sizes("1M:8")
