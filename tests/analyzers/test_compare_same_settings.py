"""compare on two runs with the same recorded settings: a verdict beyond the minimum effect
comes with a warning that the intervals do not cover the machine's run-to-run noise."""

from __future__ import annotations

from pathlib import Path

from tests.analyzers._rundir import out, request, write_run


def test_compare_warns_when_identical_settings_still_differ(tmp_path: Path):
    """Same recorded settings, TTFT doubled: the verdict stands, and a warning says the
    intervals do not cover run-to-run noise."""
    from analyzers.compare import compare_runs

    def run(name: str, ttft: float):
        recs = [request(i, 10.0 * i, [out(10.0 * i + ttft + (i % 7)), out(10.0 * i + ttft + 20)],
                        done_ms=10.0 * i + ttft + 20, completion_tokens=2) for i in range(200)]
        return write_run(tmp_path, recs, name=name)

    a, b = run("a", 20.0), run("b", 40.0)
    c = compare_runs(a.path, b.path)
    assert any(m.verdict == "regressed" for m in c.metrics)
    assert c.manifest_changes == ()
    assert any("same recorded settings" in w for w in c.warnings)
    same = compare_runs(a.path, run("a2", 20.0).path)
    assert not any("same recorded settings" in w for w in same.warnings)
