"""The embedded store's aggregate: a leading `$match` runs as a find, with mongomock's own answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pytest

from chalicelib.local.embedded_mongo import SerializedCollection

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PIPELINES: list[list[dict[str, Any]]] = [
    [{"$match": {"at": {"$gte": T0 + timedelta(hours=5), "$lt": T0 + timedelta(hours=9)}}}, {"$sort": {"n": 1}}],
    [{"$match": {"kind": {"$in": ["a", "b"]}}}, {"$group": {"_id": "$kind", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}],
    [{"$match": {"kind": "a"}}],
    [{"$group": {"_id": None, "total": {"$sum": "$n"}}}],
    [],
]


@pytest.fixture
def collections() -> tuple[Any, SerializedCollection]:
    raw = mongomock.MongoClient(tz_aware=False)["db"]["jobs"]
    raw.insert_many([{"n": n, "kind": "abc"[n % 3], "at": T0 + timedelta(hours=n)} for n in range(12)])
    return raw, SerializedCollection(raw)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_same_answers_as_mongomock(collections: tuple[Any, SerializedCollection], pipeline: Any) -> None:
    raw, serialized = collections
    assert serialized.aggregate(pipeline) == list(raw.aggregate(pipeline))
