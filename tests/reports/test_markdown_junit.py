"""Markdown and JUnit renderings of real gate, compare and history results: the numbers the
analyzers returned, in the right cells, with hostile engine strings escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from analyzers.budgets import parse_budgets
from analyzers.compare import compare_runs
from analyzers.gate import GateResult, ValidityIssue, run_gate
from analyzers.history import run_history
from reports.junit import gate_junit, history_junit, xml_safe
from reports.markdown import (
    append_step_summary,
    comparison_markdown,
    gate_markdown,
    history_markdown,
    md_escape,
)
from tests.analyzers._gate_runs import lognormal_ms, synthetic_run

HOSTILE = "<script>alert(1)</script>|`x`\n**bold** [link](http://e) \x1b[31m\x00"
BUDGETS = parse_budgets('[budgets]\nttft_p50 = "+10%"\ne2e_p50 = "+10%"\n'
                        'error_rate = "<= 1%"\n')


def _pair(tmp_path: Path, scale: float) -> tuple[Path, Path]:
    ttft = lognormal_ms(300, 50, 0.3, 1)
    cmd = ["vllm", "serve", "m", "--chat-template", HOSTILE]
    synthetic_run(tmp_path, "a", ttft, manifest={"engine": {
        "name": "vllm", "command": ["vllm", "serve", "m"]}})
    synthetic_run(tmp_path, "b", ttft * scale, manifest={"engine": {
        "name": "vllm", "command": cmd}})
    return tmp_path / "a", tmp_path / "b"


def _rows(md: str, first_cell: str) -> list[list[str]]:
    """Cells of the table rows whose first cell is ``first_cell`` (escaped pipes kept)."""
    out = []
    for line in md.splitlines():
        if line.startswith(f"| {first_cell} |"):
            cells = [c.strip() for c in line.strip("|").replace("\\|", "\0").split("|")]
            out.append([c.replace("\0", "\\|") for c in cells])
    return out


def test_md_escape_neutralizes_markup():
    s = md_escape(HOSTILE)
    assert "<script>" not in s
    assert "\n" not in s
    assert "|" not in s.replace("\\|", "")
    assert "&lt;script&gt;" in s


def test_gate_markdown_reports_the_breaches_and_escapes_engine_flags(tmp_path):
    a, b = _pair(tmp_path, 2.0)
    g = run_gate(b, BUDGETS, baseline=a)
    md = gate_markdown(g)
    assert md.startswith("## servescope gate: ❌ regression (exit code 1)")
    row = _rows(md, "ttft\\_p50")[0]
    assert len(row) == 8
    assert row[1] == "+10%"
    assert row[4] == "+100.0 %"  # TTFT exactly doubled
    assert row[6] == "❌ breach"
    assert _rows(md, "error\\_rate")[0][6] == "✅ pass"
    flag = _rows(md, "engine.flag.--chat-template")
    assert len(flag) == 1
    assert len(flag[0]) == 3  # the hostile value did not add cells
    assert "<script>" not in md


def test_gate_markdown_for_invalid_input(tmp_path):
    a, _ = _pair(tmp_path, 1.0)
    g = run_gate(tmp_path / "missing", BUDGETS, baseline=a)
    md = gate_markdown(g)
    assert "⚠️ invalid input (exit code 2)" in md
    assert "does not exist" in md


def test_comparison_markdown_has_one_row_per_metric(tmp_path):
    a, b = _pair(tmp_path, 1.5)
    c = compare_runs(a, b)
    md = comparison_markdown(c)
    for m in c.metrics:
        rows = _rows(md, md_escape(m.name))
        assert len(rows) == 1, m.name
        assert len(rows[0]) == 8
        assert rows[0][6].endswith(m.verdict.value)
    assert "🔴 regressed" in _rows(md, "ttft\\_p50")[0][6]


def test_step_summary_is_appended_only_when_set(tmp_path):
    target = tmp_path / "summary.md"
    assert append_step_summary("x", env={}) is None
    assert append_step_summary("first", env={"GITHUB_STEP_SUMMARY": str(target)}) == target
    append_step_summary("second", env={"GITHUB_STEP_SUMMARY": str(target)})
    assert target.read_text() == "first\nsecond\n"


def _suite(xml: str) -> ET.Element:
    root = ET.fromstring(xml.encode())
    suite = root.find("testsuite")
    assert suite is not None
    return suite


def test_gate_junit_counts_failures_and_names_them(tmp_path):
    a, b = _pair(tmp_path, 2.0)
    g = run_gate(b, BUDGETS, baseline=a)
    suite = _suite(gate_junit(g))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    failed = {c.get("name"): c.find("failure") for c in suite.iter("testcase")}
    assert failed["ttft_p50 +10%"] is not None
    assert failed["e2e_p50 +10%"] is not None
    assert failed["error_rate <= 1%"] is None
    fail = failed["ttft_p50 +10%"]
    assert fail is not None
    assert "ttft_p50 +10% breached" in (fail.get("message") or "")
    assert "+100.0 %" in (fail.text or "")


def test_gate_junit_errors_for_validity_problems_with_control_characters():
    g = GateResult("b.toml", None, None, (), (
        ValidityIssue("candidate", "status", f"engine said {HOSTILE}"),
        ValidityIssue("baseline", "unreadable", "no such run & <dir>")), None, 0.95)
    xml = gate_junit(g)
    suite = _suite(xml)  # parses: no control characters left
    assert suite.get("errors") == "2"
    messages = [e.get("message") for e in suite.iter("error")]
    assert "no such run & <dir>" in messages
    assert any(m and "<script>" in m and "\x00" not in m for m in messages)


def test_xml_safe_keeps_text_and_drops_forbidden_characters():
    assert xml_safe("a\x00b\x1bc\td\ne") == "abc\td\ne"
    assert xml_safe("µ ∞ 🔴") == "µ ∞ 🔴"


def test_history_renderings(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(8):
        k = (1 + 0.04 * i) * (1 + 0.01 * rng.standard_normal())
        synthetic_run(tmp_path, f"r{i}", lognormal_ms(150, 50, 0.3, 7) * k,
                      manifest={"started_wall_ns": i})
    h = run_history([tmp_path], metrics=["ttft_p50", "error_rate"])
    suite = _suite(history_junit(h))
    failures = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failures == {"ttft_p50"}
    md = history_markdown(h)
    assert "(exit code 1)" in md
    assert "🔴 regressed" in _rows(md, "ttft\\_p50")[0][-1]
    assert "⚪ stable" in _rows(md, "error\\_rate")[0][-1]
