"""JUnit XML for gate and history results, for CI systems that show test reports.

One ``<testsuite>``; one ``<testcase>`` per budget (``classname="servescope.gate.budget"``),
per validity problem (``servescope.gate.validity``, as ``<error>``), or per history metric
(``servescope.gate.history``). A breached budget or a regressed metric is a ``<failure>``; an
uncertain budget passes with its reason in ``<system-out>``; a budget that could not be
evaluated is an ``<error>``. Built with ``xml.etree`` (which escapes markup); characters XML
1.0 cannot hold (control bytes an engine may print) are removed first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from analyzers.gate import BudgetResult, BudgetStatus, GateResult
from analyzers.history import History, HistoryVerdict
from reports.compare_format import fmt_change, fmt_interval, fmt_value

__all__ = ["gate_junit", "history_junit", "write_junit", "xml_safe"]

_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: object) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _INVALID_XML.sub("", str(text))


def _suite(name: str) -> ET.Element:
    return ET.Element("testsuite", {"name": name})


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": xml_safe(name),
                                             "time": "0"})


def _child(case: ET.Element, tag: str, message: str, body: str = "") -> None:
    el = ET.SubElement(case, tag, {"message": xml_safe(message), "type": tag})
    el.text = xml_safe(body or message)


def _finish(suite: ET.Element) -> str:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", "0")
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _budget_text(r: BudgetResult) -> str:
    spec = r.budget.spec
    parts = [f"baseline {fmt_value(spec, r.baseline)}", f"candidate {fmt_value(spec, r.candidate)}"]
    if r.change is not None:
        parts.append(f"change {fmt_change(spec, r.change)} "
                     f"(CI {fmt_interval(spec, r.change)}, {r.change.method})")
    if r.message:
        parts.append(r.message)
    return "; ".join(parts)


def gate_junit(g: GateResult) -> str:
    suite = _suite("servescope gate")
    for issue in g.issues:
        case = _case(suite, "servescope.gate.validity", f"{issue.run}: {issue.check}")
        _child(case, "error", issue.message)
    for r in g.results:
        case = _case(suite, "servescope.gate.budget", r.budget.describe())
        text = _budget_text(r)
        if r.status is BudgetStatus.BREACH:
            _child(case, "failure", f"{r.budget.describe()} breached", text)
        elif r.status is BudgetStatus.MISSING:
            _child(case, "error", r.message, text)
        else:
            ET.SubElement(case, "system-out").text = xml_safe(text)
    return _finish(suite)


def history_junit(h: History) -> str:
    suite = _suite("servescope gate history")
    if h.exit_code == 2:
        case = _case(suite, "servescope.gate.validity", "history: runs")
        _child(case, "error", f"{len(h.runs)} usable runs; history needs at least 4")
    for m in h.metrics:
        case = _case(suite, "servescope.gate.history", m.spec.name)
        cps = ", ".join(f"run {c.index + 1}: {fmt_value(m.spec, c.before_mean)} -> "
                        f"{fmt_value(m.spec, c.after_mean)} (p {c.p_value:.2g})"
                        for c in m.changes.change_points) or "no change point"
        text = f"{m.verdict.value}; {cps}; adjusted p {m.p_adjusted:.2g}"
        if m.verdict is HistoryVerdict.REGRESSED:
            _child(case, "failure", f"{m.spec.name} regressed", text)
        else:
            ET.SubElement(case, "system-out").text = xml_safe(text)
    return _finish(suite)


def write_junit(path: str | Path, xml: str) -> None:
    Path(path).write_text(xml, encoding="utf-8")
