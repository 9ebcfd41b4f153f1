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
        """mongomock's aggregate copies the whole collection before its first stage; a leading
        `$match` runs as a `find` instead (same filter code), so only the matching documents are
        copied: an analytics window over 100,000 jobs copies that window's jobs, not all of them."""
        from mongomock.aggregate import process_pipeline

        stages = list(pipeline)
        with _LOCK:
            if not stages or set(stages[0]) != {"$match"}:
                return list(self._collection.aggregate(stages, **kwargs))
            matching = list(self._collection.find(stages[0]["$match"]))
            return list(process_pipeline(matching, self._collection.database, stages[1:], None))

    def _serialized(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                result = method(*args, **kwargs)
                return list(result) if name in _MATERIALIZED else result

        return call


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
