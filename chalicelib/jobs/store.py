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
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from chalicelib.errors import Conflict, Invalid, NotFound
from chalicelib.jobs import states
from chalicelib.jobs.model import (
    ClearStatus,
    JobStatus,
    ListFilters,
    UploadJob,
    as_utc,
    utcnow,
)

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
)
STATUSES = tuple(s.value for s in JobStatus)


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


def list_query(filters: ListFilters) -> dict[str, Any]:
    """The MongoDB filter for `GET /upload-jobs` (without the cursor)."""
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
        pattern = {"$regex": re.escape(filters.q), "$options": "i"}
        query["$or"] = [{"resourceName": pattern}, {"filename": pattern}]
    return query


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


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
        for keys in MAINTENANCE_INDEXES:
            self._jobs.create_index(keys, name="_".join(f"{k}_{d}" for k, d in keys))

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

    def stats(self) -> dict[str, Any]:
        """Counts by status and metrics from one aggregation."""
        pipeline = [
            {
                "$group": {
                    "_id": "$status",
                    "count": {"$sum": 1},
                    "bytes": {"$sum": "$uploadedBytes"},
                    "durations": {"$push": "$durationSeconds"},
                }
            }
        ]
        groups = {g["_id"]: g for g in self._jobs.aggregate(pipeline)}
        counts = {status: int(groups.get(status, {}).get("count", 0)) for status in STATUSES}
        completed = groups.get(JobStatus.COMPLETED.value, {})
        durations = [float(d) for d in completed.get("durations", []) if isinstance(d, int | float)]
        finished = counts["completed"] + counts["failed"] + counts["cancelled"]
        return {
            "total": sum(counts.values()),
            **counts,
            "metrics": {
                "completionRate": round(counts["completed"] / finished, 4) if finished else 0.0,
                "failureRate": round(counts["failed"] / finished, 4) if finished else 0.0,
                "avgDurationSeconds": round(sum(durations) / len(durations), 3) if durations else None,
                "p95DurationSeconds": percentile(durations, 0.95),
                "bytesUploaded": int(completed.get("bytes", 0)),
            },
        }

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

        Returns the updated job, or None when the guard did not match: somebody else won.
        """
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
            document = self._jobs.find_one_and_update(
                {"jobId": job_id, "status": source, **(condition or {})},
                update,
                return_document=RETURN_AFTER,
            )
            if document is not None:
                return UploadJob.from_document(document)
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
        raise Conflict(f"job {job_id} is {current.status}: only waiting or active jobs can be cancelled")

    def retry(self, job_id: str, *, client_id: str | None, actor: str = "api") -> UploadJob:
        now = self.now()
        fields: dict[str, Any] = {
            "attempts": 0,
            "cancelRequested": False,
            "nextAttemptAt": now,
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
            condition={"sourceRemoved": {"$ne": True}},
        )
        if job is not None:
            return job
        current = self.get(job_id)
        if current.source_removed:
            raise Conflict(f"job {job_id} cannot be retried: cleanup removed its source files")
        raise Conflict(f"job {job_id} is {current.status}: only failed or cancelled jobs can be retried")

    def delete(self, job_id: str) -> UploadJob:
        document = self._jobs.find_one_and_delete({"jobId": job_id, "status": {"$in": _values(states.FINISHED)}})
        if document is not None:
            return UploadJob.from_document(document)
        current = self.get(job_id)
        raise Conflict(f"job {job_id} is {current.status}: only completed, failed or cancelled jobs can be deleted")

    def clear(self, status: ClearStatus, older_than_days: float | None = None) -> int:
        statuses = states.FINISHED if status == ClearStatus.ALL else [JobStatus(status.value)]
        query: dict[str, Any] = {"status": {"$in": _values(statuses)}}
        if older_than_days is not None:
            query["finishedAt"] = {"$lt": self.now() - timedelta(days=older_than_days)}
        return int(self._jobs.delete_many(query).deleted_count)
