"""The embedded store's aggregate: a leading `$match` runs as a find (of only the fields a `$group`
reads), with mongomock's own answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import pytest

from chalicelib.embedded_mongo import SerializedCollection, grouped_fields

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PIPELINES: list[list[dict[str, Any]]] = [
    [{"$match": {"at": {"$gte": T0 + timedelta(hours=5), "$lt": T0 + timedelta(hours=9)}}}, {"$sort": {"n": 1}}],
    [{"$match": {"kind": {"$in": ["a", "b"]}}}, {"$group": {"_id": "$kind", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}],
    [{"$match": {"kind": "a"}}],
    [
        {"$match": {"n": {"$gte": 2}}},
        {"$sort": {"at": -1}},
        {
            "$group": {
                "_id": "$kind",
                "newest": {"$first": "$n"},
                "late": {"$sum": {"$cond": [{"$gt": ["$n", 6]}, 1, 0]}},
            }
        },
        {"$sort": {"_id": 1}},
    ],
    [{"$match": {"n": {"$lt": 5}}}, {"$group": {"_id": None, "docs": {"$push": "$$ROOT"}}}],
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


def test_the_fields_a_group_reads_are_known_and_whole_documents_are_kept_otherwise() -> None:
    group = {"$group": {"_id": {"k": "$kind", "day": {"$mod": ["$at.x", 7]}}, "n": {"$sum": "$n"}}}
    assert grouped_fields([{"$sort": {"created": 1}}, group, {"$project": {"x": 1}}]) == {"created", "kind", "at", "n"}
    assert grouped_fields([]) is None
    assert grouped_fields([{"$sort": {"n": 1}}]) is None  # the documents are the answer
    assert grouped_fields([{"$project": {"n": 1}}, group]) is None
    assert grouped_fields([{"$group": {"_id": None, "all": {"$push": "$$ROOT"}}}]) is None
