"""fix-stuck over 10,000 jobs (2,040 on the wire server) of which 50 need fixing receives and writes only those 50."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any

from chalicelib.embedded_mongo import SerializedCollection
from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.store import JOBS_COLLECTION, JobStore
from chalicelib.maintenance import fix_stuck

WRITES = frozenset(
    {
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "update_one",
        "update_many",
        "replace_one",
        "insert_one",
        "insert_many",
        "delete_one",
        "delete_many",
        "bulk_write",
    }
)


class CountingCollection:
    """A collection that counts the documents its queries return, and the writes it receives."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.documents_read = 0
        self.writes: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if name in WRITES:
                self.writes[name] += 1
            elif name in ("find", "aggregate"):
                result = list(result)
                self.documents_read += len(result)
            elif name == "find_one" and result is not None:
                self.documents_read += 1
            return result

        return call


class CountingDatabase:
    def __init__(self, database: Any) -> None:
        self.jobs = CountingCollection(database[JOBS_COLLECTION])

    def __getitem__(self, name: str) -> CountingCollection:
        assert name == JOBS_COLLECTION
        return self.jobs


def insert_population(store: JobStore, make_job: Any) -> None:
    """9,950 jobs that need nothing and 50 that do, inserted in bulk; on the wire server a fifth of
    the healthy ones (1,990: its inserts cost about 2 ms each), the 50 alike. mongomock checks every
    unique index on each insert (quadratic), so there the indexes are built again after the insert;
    the wire server builds a unique index in quadratic time instead, so there it stays. Batches of
    1,000 keep each command short: the wire server answers pymongo's heartbeat between commands."""
    embedded = isinstance(store.collection, SerializedCollection)
    healthy_share = 1 if embedded else 5
    now = utcnow()
    old, later = now - timedelta(hours=2), now + timedelta(hours=1)  # later: still ahead however slow the insert
    template = store.collection.find_one({"jobId": make_job(jobId="template").job_id}, {"_id": 0})
    store.collection.delete_one({"jobId": "template"})
    healthy = [
        (4000, {"status": "completed", "finishedAt": old}),
        (2000, {"status": "failed", "finishedAt": old}),
        (1000, {"status": "cancelled", "finishedAt": old, "cancelRequested": True, "leaseExpiresAt": None}),
        (1500, {"status": "waiting", "nextAttemptAt": now, "updatedAt": now, "waitingSince": now}),
        (950, {"status": "waiting", "nextAttemptAt": later, "updatedAt": old, "waitingSince": old}),
        (500, {"status": "active", "leaseOwner": "live", "leaseExpiresAt": later, "attempts": 1}),
    ]
    stuck = [
        (20, {"status": "active", "leaseOwner": "dead", "leaseExpiresAt": old, "attempts": 2}),
        (10, {"status": "active", "leaseOwner": "dead", "leaseExpiresAt": old, "attempts": 5}),
        (10, {"status": "waiting", "nextAttemptAt": old, "updatedAt": old, "waitingSince": old}),
        (10, {"status": "active", "leaseOwner": "dead", "leaseExpiresAt": old, "cancelRequested": True}),
    ]
    healthy = [(count // healthy_share, fields) for count, fields in healthy]
    documents = []
    for group, (count, fields) in enumerate(healthy + stuck):
        documents += [{**template, **fields, "jobId": f"g{group}-{n}"} for n in range(count)]
    for index in store.collection.list_indexes():
        if index["name"] != "_id_" and (embedded or not index.get("unique")):
            store.collection.drop_index(index["name"])
    for start in range(0, len(documents), 1000):
        store.collection.insert_many(documents[start : start + 1000])
    store.ensure_indexes()


def test_fix_stuck_reads_and_writes_only_the_jobs_that_need_it(
    maintenance: Any, database: Any, store: JobStore, make_job: Any, sqs: Any
) -> None:
    insert_population(store, make_job)
    counting = CountingDatabase(database)
    wired = dataclasses.replace(maintenance, store=JobStore(counting))

    result = fix_stuck(wired)

    assert result == {"scanned": 50, "requeued": 30, "failed": 10, "cancelled": 10}
    assert counting.jobs.documents_read == 50
    assert sum(counting.jobs.writes.values()) == 50
    by_status = Counter(d["status"] for d in store.collection.find({"jobId": {"$regex": "^g(6|7|8|9)-"}}))
    assert by_status == {JobStatus.WAITING.value: 30, JobStatus.FAILED.value: 10, JobStatus.CANCELLED.value: 10}
    attributes = sqs.get_queue_attributes(
        QueueUrl=maintenance.settings.hls_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "30"
    assert Counter(event for event, _job, _status in maintenance.notifier.events) == {
        "JobQueued": 30,
        "JobFailed": 10,
        "JobCancelled": 10,
    }
