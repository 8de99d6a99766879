from __future__ import annotations

import pytest

from profiler.workloads.errors import WorkloadError
from profiler.workloads.sessions import Session, Turn, with_arrivals


def test_defaults_flag_counts_as_approximate() -> None:
    s = Session(3, (Turn("hi", 1, 8), Turn("more", 1, 4)))
    assert s.group_id == -1
    assert s.arrival_offset_ns is None
    assert s.prompt_tokens_source == "words"
    assert s.prompt_tokens == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Turn("x", 1, 0), "max_tokens must be >= 1"),
        (lambda: Turn("x", -1, 3), "prompt_tokens must be >= 0"),
        (lambda: Session(0, ()), "non-empty tuple"),
        (lambda: Session(0, [Turn("x", 1, 1)]), "non-empty tuple"),  # type: ignore[arg-type]
        (lambda: Session(0, (Turn("x", 1, 1),), arrival_offset_ns=-5), "arrival_offset_ns"),
        (lambda: Session(0, (Turn("x", 1, 1),), prompt_tokens_source="guess"),  # type: ignore[arg-type]
         "'words'"),
    ],
)
def test_validation(make: object, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        make()  # type: ignore[operator]


def test_with_arrivals() -> None:
    sessions = [Session(i, (Turn("x", 1, 1),)) for i in range(3)]
    timed = with_arrivals(sessions, [0, 5, 9])
    assert [s.arrival_offset_ns for s in timed] == [0, 5, 9]
    assert [s.session_id for s in timed] == [0, 1, 2]
    with pytest.raises(WorkloadError, match="3 sessions but 2 arrival offsets"):
        with_arrivals(sessions, [0, 1])
