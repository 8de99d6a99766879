"""Fixtures of the end-to-end tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e._support import Tracker


@pytest.fixture
def tracker() -> Iterator[Tracker]:
    """The test's process tag and engine sessions; whatever of them is still alive after the
    test is killed (the tests assert that nothing is; this only keeps a failure from leaking
    engines into the rest of the tier)."""
    t = Tracker()
    yield t
    t.kill()
