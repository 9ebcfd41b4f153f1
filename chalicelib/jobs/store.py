"""The job store over a pymongo database (MongoDB Atlas, or the embedded mongomock store).

Every status change is one `find_one_and_update` guarded by the job's current status (SPEC 3):
two actors can never both win, and a finished job is never overwritten. Queries stay within what
both MongoDB and mongomock support.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from chalicelib.errors import Conflict, ConflictReason, Invalid, NotFound
from chalicelib.jobs import percentiles, states
from chalicelib.jobs.model import (
    ClearStatus,
    JobFilters,
    JobStatus,
    ListFilters,
    UploadJob,
    as_utc,
    utcnow,
)
from chalicelib.jobs.search import SEARCH_FIELD, search_query, search_words

JOBS_COLLECTION = "upload_jobs"
# pymongo's constants, spelled out so importing the store does not import pymongo (cold start).
ASCENDING, DESCENDING = 1, -1
RETURN_AFTER = True
NEWEST_FIRST = [("createdAt", DESCENDING), ("jobId", DESCENDING)]
# One compound index per list filter, each ending in the list's sort, plus the maintenance scans.
FILTER_FIELDS = ("status", "resourceType", "jobType", "uploadType", "contentType", "resourceId", "label")
MAINTENANCE_INDEXES = (
    [("status", ASCENDING), ("leaseExpiresAt", ASCENDING)],
    [("status", ASCENDING), ("nextAttemptAt", ASCENDING)],
    [("cancelRequested", ASCENDING), ("status", ASCENDING)],
    [("status", ASCENDING), ("finishedAt", ASCENDING)],
    # Cleanup's question "does another job rely on this key?" (maintenance/ownership.py):
    # a multikey index over every job's recorded keys, and the folder each job writes into.
    [("writtenKeys", ASCENDING)],
    [("destinationPrefix", ASCENDING)],
    [("status", ASCENDING), ("sendPendingAt", ASCENDING)],
)
# Cleanup's claim on a job (maintenance/cleanup.py): while it holds, retry and a second cleanup
# are refused; it lapses on its own should the cleanup die.
CLEANUP_CLAIM_FIELDS = ("cleanupOwner", "cleanupUntil")
# The analytics' backlog reads the longest-waiting job from this one (chalicelib/jobs/analytics.py).
WAITING_SINCE_INDEX = [("status", ASCENDING), ("waitingSince", ASCENDING)]
SEARCH_INDEX = [(SEARCH_FIELD, ASCENDING)]
BACKFILL_BATCH = 500
# Duration histograms by the value of a field (JobStore.duration_bins).
Histograms = dict[Any, list[percentiles.Bin]]
STATUSES = tuple(s.value for s in JobStatus)
LOST_ANSWER_READS = 3  # reads of a job whose state change lost its answer, before giving up


def _values(statuses: Iterable[JobStatus | str]) -> list[str]:
    return sorted(JobStatus(s).value for s in statuses)


def encode_cursor(job: UploadJob) -> str:
    raw = json.dumps({"c": job.created_at.isoformat(), "j": job.job_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        return as_utc(datetime.fromisoformat(data["c"])), str(data["j"])
    # OverflowError: a date that leaves the calendar once made UTC.
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error) as exc:
        raise Invalid("cursor is not a cursor this API returned") from exc


def list_query(filters: JobFilters) -> dict[str, Any]:
    """The MongoDB filter for `GET /upload-jobs` (without the cursor), and the analytics' filters."""
    query: dict[str, Any] = {}
    exact = {
        "status": filters.status,
        "resourceType": filters.type,
        "jobType": filters.job_type,
        "uploadType": filters.upload_type,
        "contentType": filters.content_type,
        "resourceId": filters.resource_id,
        "label": filters.label,
    }
    query.update({field: str(value) for field, value in exact.items() if value is not None})
    created: dict[str, datetime] = {}
    if filters.from_ is not None:
        created["$gte"] = filters.from_
    if filters.to is not None:
        created["$lte"] = filters.to
    if created:
        query["createdAt"] = created
    if filters.q:
        query.update(search_query(filters.q))
    return query


def _naive(value: Any) -> Any:
    """A datetime without its zone (pymongo reads them naive unless tz_aware), other values as they are."""
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


class JobStore:
    """Jobs in MongoDB. Takes a pymongo `Database` (or the embedded one) and a clock."""

    def __init__(self, database: Any, clock: Callable[[], datetime] = utcnow) -> None:
        self._jobs = database[JOBS_COLLECTION]
        self._clock = clock

    @property
    def collection(self) -> Any:
        return self._jobs

    def now(self) -> datetime:
        return self._clock()

    def ensure_indexes(self) -> None:
        """Idempotent: creating an index that exists with the same keys is a no-op."""
        self._jobs.create_index([("jobId", ASCENDING)], unique=True, name="jobId_unique")
        self._jobs.create_index(NEWEST_FIRST, name="newest_first")
        for field in FILTER_FIELDS:
            self._jobs.create_index([(field, ASCENDING), *NEWEST_FIRST], name=f"{field}_newest_first")
        for keys in (*MAINTENANCE_INDEXES, WAITING_SINCE_INDEX):
            self._jobs.create_index(keys, name="_".join(f"{k}_{d}" for k, d in keys))
        self._jobs.create_index(SEARCH_INDEX, name="search_words")
        self.backfill_search_words()

    def backfill_search_words(self) -> int:
        """Give jobs created before the word search their `searchWords` (idempotent; how many it wrote)."""
        written = 0
        while True:
            projection = {"_id": 1, "resourceName": 1, "filename": 1}
            batch = list(self._jobs.find({SEARCH_FIELD: {"$exists": False}}, projection, limit=BACKFILL_BATCH))
            for document in batch:
                words = search_words(document.get("resourceName"), document.get("filename"))
                self._jobs.update_one({"_id": document["_id"]}, {"$set": {SEARCH_FIELD: words}})
            written += len(batch)
            if len(batch) < BACKFILL_BATCH:
                return written

    # Reads -------------------------------------------------------------------------------

    def find(self, job_id: str) -> UploadJob | None:
        document = self._jobs.find_one({"jobId": job_id})
        return UploadJob.from_document(document) if document else None

    def get(self, job_id: str) -> UploadJob:
        job = self.find(job_id)
        if job is None:
            raise NotFound(f"no upload job {job_id!r}")
        return job

    def peek(self, job_id: str, fields: Iterable[str]) -> dict[str, Any] | None:
        """A few fields of one job (a cheap poll), or None when the job is gone."""
        projection = {"_id": 0, **dict.fromkeys(fields, 1)}
        document: dict[str, Any] | None = self._jobs.find_one({"jobId": job_id}, projection)
        return document

    def scan(self, query: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
        """Raw documents matching `query` (maintenance's indexed rule queries)."""
        return list(self._jobs.find(dict(query), limit=limit))

    def list(self, filters: ListFilters) -> tuple[list[UploadJob], str | None]:
        """Newest first; the cursor is (createdAt, jobId) of the last item, so inserts never shift pages."""
        query = list_query(filters)
        if filters.cursor:
            created, job_id = decode_cursor(filters.cursor)
            after = {"$or": [{"createdAt": {"$lt": created}}, {"createdAt": created, "jobId": {"$lt": job_id}}]}
            query = {"$and": [query, after]} if query else after
        documents = list(self._jobs.find(query, sort=NEWEST_FIRST, limit=filters.limit + 1))
        jobs = [UploadJob.from_document(d) for d in documents[: filters.limit]]
        next_cursor = encode_cursor(jobs[-1]) if len(documents) > filters.limit else None
        return jobs, next_cursor

    def title_jobs(
        self, resource_type: str, resource_id: str, *, limit: int, status: JobStatus | None = None
    ) -> tuple[UploadJob, ...]:
        """The newest `limit` jobs of one title (chalicelib/usecases/titles.py). Served by the index
        `resourceId_newest_first`: resourceId leads it and its sort is the list's; resourceType and
        status only sift the few jobs one resourceId has."""
        query: dict[str, Any] = {"resourceId": resource_id, "resourceType": resource_type}
        if status is not None:
            query["status"] = status.value
        return tuple(UploadJob.from_document(d) for d in self._jobs.find(query, sort=NEWEST_FIRST, limit=limit))

    def stats(self) -> dict[str, Any]:
        """Counts by status and metrics. Each count is one indexed count (status leads an index); the
        metrics read only the completed jobs, in two aggregations whose results are one total and a
        few hundred histogram bins, so nothing grows with the number of jobs (p95 from the bins)."""
        counts = {status: int(self._jobs.count_documents({"status": status})) for status in STATUSES}
        totals = [
            {"$match": {"status": JobStatus.COMPLETED.value}},
            {"$group": {"_id": None, "bytes": {"$sum": "$uploadedBytes"}, "avg": {"$avg": "$durationSeconds"}}},
        ]
        completed: dict[str, Any] = next(iter(self._jobs.aggregate(totals)), {})
        average = completed.get("avg")
        p95 = percentiles.summary(self.duration_bins({}).get(None, []), {"p95": 0.95})["p95"]
        finished = counts["completed"] + counts["failed"] + counts["cancelled"]
        return {
            "total": sum(counts.values()),
            **counts,
            "metrics": {
                "completionRate": round(counts["completed"] / finished, 4) if finished else 0.0,
                "failureRate": round(counts["failed"] / finished, 4) if finished else 0.0,
                "avgDurationSeconds": round(float(average), 3) if average is not None else None,
                "p95DurationSeconds": p95,
                "bytesUploaded": int(completed.get("bytes", 0)),
            },
        }

    def duration_bins(self, match: Mapping[str, Any], by: str | None = None) -> Histograms:
        """Histograms of completed jobs' durations (chalicelib/jobs/percentiles.py) among the jobs
        matching `match`: one per value of the field `by`, or one under None."""
        pipeline = [
            {"$match": {**match, "status": JobStatus.COMPLETED.value, "durationSeconds": {"$type": "number"}}},
            {
                "$group": {
                    "_id": {"by": f"${by}" if by else None, "key": percentiles.bin_key("durationSeconds")},
                    **percentiles.bin_accumulators("durationSeconds"),
                }
            },
        ]
        grouped: dict[Any, list[dict[str, Any]]] = {}
        for group in self._jobs.aggregate(pipeline):
            grouped.setdefault(group["_id"]["by"], []).append({**group, "key": group["_id"]["key"]})
        return {name: percentiles.bins_from_groups(groups) for name, groups in grouped.items()}

    # Writes ------------------------------------------------------------------------------

    def insert(self, document: Mapping[str, Any]) -> tuple[UploadJob, bool]:
        """Insert a new job; a repeated jobId returns the existing job and False."""
        from pymongo.errors import DuplicateKeyError  # mongomock raises pymongo's class too

        try:
            self._jobs.insert_one(dict(document))
        except DuplicateKeyError:
            return self.get(str(document["jobId"])), False
        return UploadJob.from_document(dict(document)), True

    def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        reason: str,
        actor: str,
        sources: Iterable[JobStatus] | None = None,
        condition: Mapping[str, Any] | None = None,
        set_fields: Mapping[str, Any] | None = None,
        inc: Mapping[str, int] | None = None,
        unset: Iterable[str] = (),
        minimum: Mapping[str, Any] | None = None,
    ) -> UploadJob | None:
        """Move one job to `target` if it is in one of `sources` (and matches `condition`).

        A connection failure whose write was applied anyway (its answer lost) counts as applied.

        Returns the updated job, or None when the guard did not match: somebody else won.
        """
        from pymongo.errors import ConnectionFailure  # mongomock raises pymongo's classes too

        allowed_sources = frozenset(sources) if sources is not None else states.sources_of(target)
        bad = [s for s in allowed_sources if not states.allowed(s, target)]
        if bad:
            raise ValueError(f"transition {bad} -> {target} is not in SPEC 3")
        now = self.now()
        base: dict[str, Any] = {"$set": {**states.status_fields(target, now), **(set_fields or {})}}
        if inc:
            base["$inc"] = dict(inc)
        if unset:
            base["$unset"] = dict.fromkeys(unset, "")
        if minimum:
            base["$min"] = dict(minimum)
        # One guarded update per possible source, so the history records the status really left.
        for source in _values(allowed_sources):
            update = {**base, "$push": states.history_push(source, target, at=now, reason=reason, actor=actor)}
            try:
                document = self._jobs.find_one_and_update(
                    {"jobId": job_id, "status": source, **(condition or {})},
                    update,
                    return_document=RETURN_AFTER,
                )
            except ConnectionFailure:
                # The answer may be lost, not the write: see whether the job carries our change.
                document = self._applied_despite_lost_answer(job_id, target, at=now, actor=actor)
                if document is None:
                    raise
            if document is not None:
                return UploadJob.from_document(document)
        return None

    def _applied_despite_lost_answer(
        self, job_id: str, target: JobStatus, *, at: datetime, actor: str
    ) -> dict[str, Any] | None:
        """The job, when it carries the history entry a transition pushed (this time, this actor,
        this target): the write was applied and only its answer was lost (a server without
        retryable writes, or a second blip in a row). None when it was not, or the job cannot be
        read either: the caller's connection failure stands (a worker raises, SQS redelivers)."""
        from pymongo.errors import ConnectionFailure

        for _ in range(LOST_ANSWER_READS):
            try:
                current = self._jobs.find_one({"jobId": job_id})
            except ConnectionFailure:
                continue
            history = (current or {}).get("history", [])
            wanted = (at.replace(tzinfo=None), actor, target.value)
            if any((_naive(e.get("at")), e.get("actor"), e.get("to")) == wanted for e in history):
                return dict(current or {})
            return None
        return None

    def update_fields(self, job_id: str, condition: Mapping[str, Any], update: Mapping[str, Any]) -> UploadJob | None:
        """A guarded non-status update (progress, checkpoint, lease renewal). None if the guard failed."""
        document = self._jobs.find_one_and_update(
            {"jobId": job_id, **condition}, dict(update), return_document=RETURN_AFTER
        )
        return UploadJob.from_document(document) if document else None

    # The API's state changes -------------------------------------------------------------

    def cancel(self, job_id: str, *, actor: str = "api") -> UploadJob:
        """Waiting: cancelled at once. Active: cancelRequested, the worker finishes the cancel."""
        job = self.transition(
            job_id, JobStatus.CANCELLED, sources=[JobStatus.WAITING], reason="cancelled while waiting", actor=actor
        )
        if job is not None:
            return job
        now = self.now()
        requested = self.update_fields(
            job_id,
            {"status": JobStatus.ACTIVE.value},
            {"$set": {"cancelRequested": True, "updatedAt": now}},
        )
        if requested is not None:
            return requested
        current = self.get(job_id)
        if current.status == JobStatus.WAITING:  # it went back to waiting in between: try again
            return self.cancel(job_id, actor=actor)
        raise Conflict(
            f"job {job_id} is {current.status}: only waiting or active jobs can be cancelled",
            ConflictReason.WRONG_STATE,
        )

    def retry(self, job_id: str, *, client_id: str | None, actor: str = "api") -> UploadJob:
        now = self.now()
        fields: dict[str, Any] = {
            "attempts": 0,
            "cancelRequested": False,
            "nextAttemptAt": now,
            "sendPendingAt": now,  # the caller sends the message (chalicelib/jobs/outbox.py)
            "errorCode": None,
            "failedReason": None,
            "errorMessage": None,
            "failedAt": None,
            "cancelledAt": None,
            "completedAt": None,
            "durationSeconds": None,
        }
        if client_id:
            fields["clientId"] = client_id
        job = self.transition(
            job_id,
            JobStatus.WAITING,
            sources=states.RETRYABLE,
            reason="retry",
            actor=actor,
            set_fields=fields,
            inc={"retryCount": 1},
            unset=("startedAt",),
            condition={"sourceRemoved": {"$ne": True}, **no_cleanup_running(now)},
        )
        if job is not None:
            return job
        current = self.get(job_id)
        if current.source_removed:
            raise Conflict(
                f"job {job_id} cannot be retried: cleanup removed its source files", ConflictReason.SOURCE_REMOVED
            )
        if current.cleanup_running(now):
            raise Conflict(
                f"job {job_id} is being cleaned up: retry it once the cleanup has finished",
                ConflictReason.CLEANUP_RUNNING,
            )
        raise Conflict(
            f"job {job_id} is {current.status}: only failed or cancelled jobs can be retried",
            ConflictReason.WRONG_STATE,
        )

    def delete(
        self, job_id: str, statuses: Iterable[JobStatus], condition: Mapping[str, Any] | None = None
    ) -> UploadJob | None:
        """Delete the job if it is in one of `statuses` (and matches `condition`); None if not."""
        query = {"jobId": job_id, "status": {"$in": _values(statuses)}, **(condition or {})}
        document = self._jobs.find_one_and_delete(query)
        return UploadJob.from_document(document) if document is not None else None

    def finished_job_ids(self, status: ClearStatus, older_than_days: float | None = None) -> tuple[str, ...]:
        """The jobs `clear` and retention remove: finished in `status`, finished before the age."""
        statuses = states.FINISHED if status == ClearStatus.ALL else [JobStatus(status.value)]
        query: dict[str, Any] = {"status": {"$in": _values(statuses)}}
        if older_than_days is not None:
            query["finishedAt"] = {"$lt": self.now() - timedelta(days=older_than_days)}
        return tuple(str(d["jobId"]) for d in self._jobs.find(query, {"_id": 0, "jobId": 1}))

    def matching_ids(self, filters: JobFilters, limit: int) -> tuple[str, ...]:
        """The ids of at most `limit` jobs matching the list filters, newest first (bulk actions)."""
        documents = self._jobs.find(list_query(filters), {"_id": 0, "jobId": 1}, sort=NEWEST_FIRST, limit=limit)
        return tuple(str(d["jobId"]) for d in documents)

    def count_matching(self, filters: JobFilters) -> int:
        return int(self._jobs.count_documents(list_query(filters)))

    # Which objects other jobs rely on (cleanup) -------------------------------------------

    def keys_listed_by_others(self, job_id: str, keys: Sequence[str], statuses: Iterable[JobStatus]) -> set[str]:
        """Those of `keys` that a job other than `job_id`, in one of `statuses`, lists in its
        writtenKeys: one match on the multikey index, only the matching keys sent back."""
        pipeline = [
            {
                "$match": {
                    "writtenKeys": {"$in": list(keys)},
                    "status": {"$in": _values(statuses)},
                    "jobId": {"$ne": job_id},
                }
            },
            {
                "$project": {
                    "_id": 0,
                    "keys": {"$filter": {"input": "$writtenKeys", "as": "k", "cond": {"$in": ["$$k", list(keys)]}}},
                }
            },
        ]
        return {key for document in self._jobs.aggregate(pipeline) for key in document["keys"]}

    def jobs_writing_into(
        self, job_id: str, prefixes: Sequence[str], statuses: Iterable[JobStatus]
    ) -> tuple[UploadJob, ...]:
        """Jobs other than `job_id`, in one of `statuses`, whose destinationPrefix is one of
        `prefixes` (without their history and keys, which the caller does not need)."""
        query = {
            "destinationPrefix": {"$in": list(prefixes)},
            "status": {"$in": _values(statuses)},
            "jobId": {"$ne": job_id},
        }
        projection = {"_id": 0, "history": 0, "writtenKeys": 0, "multipartUploads": 0}
        return tuple(UploadJob.from_document(d) for d in self._jobs.find(query, projection))

    def forget_written_keys(self, job_id: str, keys: Sequence[str], under: str | None = None) -> None:
        """Remove `keys` (and every key starting with `under`) from the writtenKeys of every job
        but `job_id`: no cleanup of theirs will delete those objects any more."""
        others: dict[str, Any] = {"jobId": {"$ne": job_id}}
        if keys:
            self._jobs.update_many(
                {**others, "writtenKeys": {"$in": list(keys)}}, {"$pull": {"writtenKeys": {"$in": list(keys)}}}
            )
        if under:
            starts = {"$regex": "^" + re.escape(under)}  # anchored: a range of the multikey index
            self._jobs.update_many({**others, "writtenKeys": starts}, {"$pull": {"writtenKeys": starts}})


def no_cleanup_running(now: datetime) -> dict[str, Any]:
    """No live cleanup claim: none ever taken, released (null), or lapsed."""
    return {"cleanupUntil": {"$not": {"$gte": now}}}
