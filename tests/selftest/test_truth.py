from __future__ import annotations

import orjson

from profiler.selftest.truth import TruthRecord, TruthStore


def _rec(i: int) -> TruthRecord:
    return TruthRecord(f"r{i}", "chat", True, i, {})


def test_store_is_bounded_and_drops_oldest():
    store = TruthStore(capacity=3)
    for i in range(5):
        store.add(_rec(i))
    assert [r.request_id for r in store.records()] == ["r2", "r3", "r4"]
    assert store.dropped == 2
    store.clear()
    assert len(store) == 0


def test_json_has_every_field_and_filters_by_id():
    store = TruthStore()
    rec = _rec(1)
    rec.add_event("output", 10, 9, tokens=2, chars=6)
    store.add(rec)
    store.add(_rec(2))
    (doc,) = orjson.loads(store.to_json("r1"))
    assert doc["t_event_ns"] == [10]
    assert doc["t_sched_ns"] == [9]
    assert doc["kinds"] == ["output"]
    assert doc["tokens"] == [2]
    assert doc["chars"] == [6]
    assert doc["t_done_ns"] == -1
    assert len(orjson.loads(store.to_json())) == 2
