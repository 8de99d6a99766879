"""Every string from the engine, the workload or the command line is escaped; prompts and
outputs stay out unless asked for; secrets in command lines are masked."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from profiler.commands_report import build_report
from reports.html.text import script_json
from tests.reports._html_runs import SECRETS, hostile_run


class _Scripts(HTMLParser):
    """Every element's tag, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]
        if tag == "script":
            self._in = dict(attrs)
            self.scripts.append((self._in, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    return hostile_run(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def page(hostile) -> str:
    return build_report(hostile)


def test_no_markup_from_the_run_reaches_the_page(page):
    p = _Scripts()
    p.feed(page)
    assert len(p.scripts) == 3  # figures (JSON), plotly.js (packed), the boot script
    assert [a.get("type") for a, _ in p.scripts] == ["application/json",
                                                     "application/octet-stream", None]
    assert "img" not in p.tags
    assert not [a for a in p.attrs if a.startswith("on")]  # no event handler anywhere
    assert "alert(" not in p.scripts[2][1]
    for bad in ("<script>alert", "<img", "<b onmouseover", "onerror=alert(2)>"):
        assert bad not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the model name, shown as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the error message, shown as text
    assert "run&lt;b onmouseover=alert(4)&gt;" in page


def test_figure_json_cannot_close_its_script_and_parses(page):
    p = _Scripts()
    p.feed(page)
    text = p.scripts[0][1]
    assert "</" not in text
    assert "<!--" not in text
    assert "<" not in text
    figs = json.loads(text)
    assert {f["id"] for f in figs} >= {"fig-cdf", "fig-timeline"}
    names = json.dumps(figs)
    assert "<b onmouseover" not in names  # run labels in plot text are escaped too


def test_script_json_escapes_html_breakers():
    s = script_json({"a": "</script><!--&\u2028", "n": float("nan")})
    assert "<" not in s
    assert ">" not in s
    assert "&" not in s
    assert "\u2028" not in s
    assert json.loads(s) == {"a": "</script><!--&\u2028", "n": None}


def test_outputs_and_prompts_stay_out_unless_asked(hostile, page):
    assert "PROMPT-TEXT" not in page
    with_text = build_report(hostile, include_text=True)
    assert "PROMPT-TEXT &lt;script&gt;alert(3)&lt;/script&gt;" in with_text
    assert "<script>alert(3)" not in with_text


def test_secrets_on_command_lines_are_masked(page):
    for secret in SECRETS:
        assert secret not in page
    assert "***REDACTED***" in page
