"""Headless Chromium for the report's browser tests: Debian's chromium (``/usr/bin/chromium``,
or ``$SERVESCOPE_CHROMIUM``) driven by Playwright through its executable path; no Playwright
browser build is used. ``scripts/setup_browser.sh`` installs both. Screenshots and render
times go to ``$SERVESCOPE_ARTIFACTS`` (default ``tests/browser/artifacts/``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("SERVESCOPE_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("SERVESCOPE_ARTIFACTS", Path(__file__).parent / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup_browser.sh")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run scripts/setup_browser.sh")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()

