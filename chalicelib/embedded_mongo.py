"""The embedded store for `make run` and tests: mongomock, with every operation serialized.

mongomock is not atomic across threads (SPEC 10: 8 threads racing `find_one_and_update` on 2,000
waiting documents won 7,315 claims), so one lock guards every collection call, and `find` and
`aggregate` return lists built under that lock rather than lazy cursors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_MATERIALIZED = frozenset({"find", "aggregate", "list_indexes"})


class SerializedCollection:
    """A mongomock collection whose every method runs under one process-wide lock."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute
        return self._serialized(name, attribute)

    def aggregate(self, pipeline: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        """mongomock's aggregate deep-copies the whole collection before its first stage. Here a
        leading `$match` runs as a `find` (the same filter code), so only the matching documents are
        copied, and of them only the fields a `$group` reads: an analytics window over 100,000 jobs
        copies a few fields of that window's jobs, not every job whole."""
        from mongomock.aggregate import process_pipeline

        stages = list(pipeline)
        leading_match = bool(stages) and set(stages[0]) == {"$match"}
        query, rest = (stages[0]["$match"], stages[1:]) if leading_match else ({}, stages)
        fields = grouped_fields(rest)
        with _LOCK:
            if not leading_match and fields is None:
                return list(self._collection.aggregate(stages, **kwargs))
            matching = list(self._collection.find(query, dict.fromkeys(fields, 1) if fields else None))
            return list(process_pipeline(matching, self._collection.database, rest, None))

    def _serialized(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                result = method(*args, **kwargs)
                return list(result) if name in _MATERIALIZED else result

        return call


# Stages that may come between the leading $match and the $group without reading other fields.
_ORDERING_STAGES = frozenset({"$sort", "$limit", "$skip"})


def grouped_fields(stages: list[dict[str, Any]]) -> set[str] | None:
    """The top-level fields that `stages` read when they end in a `$group` before which only
    $sort/$limit/$skip come; None when they may need whole documents."""
    fields: set[str] = set()
    for stage in stages:
        (name, spec), *more = stage.items()
        if more:
            return None
        if name == "$group":
            named = _field_references(spec)
            return None if named is None else fields | named
        if name not in _ORDERING_STAGES:
            return None
        if name == "$sort":
            fields |= {key.split(".")[0] for key in spec}
    return None


def _field_references(expression: Any) -> set[str] | None:
    """Top-level fields named by "$field.path" strings in an expression; None if it reads $$ROOT."""
    if isinstance(expression, str):
        if expression.startswith("$$"):
            return None
        return {expression[1:].split(".")[0]} if expression.startswith("$") else set()
    parts = expression.values() if isinstance(expression, dict) else expression if isinstance(expression, list) else []
    found: set[str] = set()
    for part in parts:
        named = _field_references(part)
        if named is None:
            return None
        found |= named
    return found


class SerializedDatabase:
    """A mongomock database handing out serialized collections."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.name = database.name

    def __getitem__(self, name: str) -> SerializedCollection:
        with _LOCK:
            return SerializedCollection(self._database[name])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def list_collection_names(self) -> list[str]:
        with _LOCK:
            return list(self._database.list_collection_names())


def embedded_database(name: str) -> SerializedDatabase:
    import mongomock  # local-only dependency: never packaged into the Lambda

    return SerializedDatabase(mongomock.MongoClient(tz_aware=False)[name])
