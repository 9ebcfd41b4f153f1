"""`GET /upload-jobs/analytics`: jobs over time, duration percentiles, failure reasons and the backlog.

Bounded for any number of jobs: the window is at most MAX_BUCKETS buckets (default the last 24 hours
by hour, or the last 30 days by day); each aggregation starts with a `$match` on an indexed field
(createdAt, or status with finishedAt) and the window, and its `$group` yields at most one group per
bucket, status and job type, per duration bin or per error code, however many jobs match. The
operators used ($subtract and $mod on dates, $log10, $floor, $min/$max/$sum/$first) are in MongoDB
Atlas, mongomock and mongoeco alike.

A bucket counts the jobs created in it (createdAt) and the jobs that ended completed, failed or
cancelled in it (finishedAt); `bytesUploaded` is the bytes of the jobs that completed in it and
`throughputMiBps` that over the bucket's length. Durations and failure reasons are over the jobs
that ended in the window. The backlog is now, whatever the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.errors import Invalid
from chalicelib.jobs.model import JobFilters, JobStatus, as_utc
from chalicelib.jobs.percentiles import summary
from chalicelib.jobs.store import JobStore, list_query
from chalicelib.logs import logger

MAX_BUCKETS = 400
FAILURE_REASONS_SHOWN = 20
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
MIB = 1024 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class QueueDepths(Protocol):
    """The part of chalicelib.queue.JobQueue the backlog reads (the domain does not import the adapter)."""

    def depths(self) -> dict[str, dict[str, int]]: ...


class BucketSize(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def length(self) -> timedelta:
        return timedelta(hours=1) if self is BucketSize.HOUR else timedelta(days=1)

    @property
    def default_window(self) -> timedelta:
        return timedelta(hours=24) if self is BucketSize.HOUR else timedelta(days=30)


class AnalyticsRequest(JobFilters):
    """The list's filters (`from`/`to` bound the window) and the bucket size."""

    bucket: BucketSize = BucketSize.HOUR


@dataclass(frozen=True)
class Window:
    """Whole buckets from `start` (a UTC hour or midnight) to `end` (exclusive)."""

    start: datetime
    end: datetime
    size: BucketSize

    @property
    def starts(self) -> list[datetime]:
        count = (self.end - self.start) // self.size.length
        return [self.start + i * self.size.length for i in range(count)]


def floor_to(moment: datetime, size: BucketSize) -> datetime:
    return EPOCH + ((moment - EPOCH) // size.length) * size.length


def window(request: AnalyticsRequest, now: datetime) -> Window:
    """The request's window in whole buckets; Invalid naming the field when it is empty or too long."""
    end = request.to or now
    start = request.from_ or end - request.bucket.default_window
    if start >= end:
        raise Invalid("from: must be before to")
    first = floor_to(start, request.bucket)
    last = floor_to(end, request.bucket)
    if last < end:  # `to` inside a bucket: that bucket is shown whole
        last += request.bucket.length
    buckets = (last - first) // request.bucket.length
    if buckets > MAX_BUCKETS:
        raise Invalid(
            f"from: the window holds {buckets} {request.bucket.value} buckets, at most {MAX_BUCKETS}: "
            "narrow from/to or use a larger bucket"
        )
    return Window(first, last, request.bucket)


def bucket_of(field: str, size: BucketSize) -> dict[str, Any]:
    """The start of the bucket holding the date in `field` (date - ((date - epoch) mod length))."""
    length_ms = int(size.length.total_seconds() * 1000)
    naive_epoch = EPOCH.replace(tzinfo=None)  # the store keeps naive UTC datetimes
    return {"$subtract": [f"${field}", {"$mod": [{"$subtract": [f"${field}", naive_epoch]}, length_ms]}]}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


class Analytics:
    """The aggregations behind one analytics answer, over the store's collection."""

    def __init__(self, store: JobStore, request: AnalyticsRequest) -> None:
        self._store = store
        self._jobs = store.collection
        self._request = request
        self.window = window(request, store.now())
        # The list's filters without its createdAt range: each part below bounds its own time field.
        self._filters = list_query(request.model_copy(update={"from_": None, "to": None}))

    def _in_window(self, field: str) -> dict[str, Any]:
        return {field: {"$gte": self.window.start, "$lt": self.window.end}}

    def _statuses(self, wanted: tuple[JobStatus, ...]) -> list[str]:
        """The wanted statuses that the request's status filter lets through."""
        return [s.value for s in wanted if self._request.status in (None, s)]

    def _finished_match(self, statuses: list[str]) -> dict[str, Any]:
        return {**self._filters, "status": {"$in": statuses}, **self._in_window("finishedAt")}

    def buckets(self) -> list[dict[str, Any]]:
        rows = {start: _empty_bucket() for start in self.window.starts}
        created = [
            {"$match": {**self._filters, **self._in_window("createdAt")}},
            {"$group": {"_id": bucket_of("createdAt", self.window.size), "count": {"$sum": 1}}},
        ]
        for group in self._jobs.aggregate(created):
            rows[as_utc(group["_id"])]["created"] = int(group["count"])
        finished_statuses = self._statuses(FINISHED)
        if finished_statuses:
            ended = [
                {"$match": self._finished_match(finished_statuses)},
                {
                    "$group": {
                        "_id": {"start": bucket_of("finishedAt", self.window.size), "status": "$status"},
                        "count": {"$sum": 1},
                        "bytes": {"$sum": "$uploadedBytes"},
                    }
                },
            ]
            for group in self._jobs.aggregate(ended):
                row = rows[as_utc(group["_id"]["start"])]
                row[group["_id"]["status"]] = int(group["count"])
                if group["_id"]["status"] == JobStatus.COMPLETED.value:
                    row["bytesUploaded"] = int(group["bytes"])
        seconds = self.window.size.length.total_seconds()
        for row in rows.values():
            row["throughputMiBps"] = round(row["bytesUploaded"] / MIB / seconds, 6)
        return [{"start": _iso(start), **row} for start, row in sorted(rows.items())]

    def durations(self) -> dict[str, dict[str, float | None]]:
        """p50/p95/p99 of the durations of the jobs that completed in the window, by jobType."""
        if not self._statuses((JobStatus.COMPLETED,)):
            return {}
        match = {**self._filters, **self._in_window("finishedAt")}
        histograms = self._store.duration_bins(match, by="jobType")
        return {str(job_type): summary(bins, PERCENTILES) for job_type, bins in sorted(histograms.items())}

    def failure_reasons(self) -> list[dict[str, Any]]:
        """Error codes of the jobs that failed in the window, most frequent first, each with the
        newest such failure as its example."""
        if not self._statuses((JobStatus.FAILED,)):
            return []
        pipeline = [
            {"$match": self._finished_match([JobStatus.FAILED.value])},
            {"$sort": {"finishedAt": -1}},
            {
                "$group": {
                    "_id": "$errorCode",
                    "count": {"$sum": 1},
                    "jobId": {"$first": "$jobId"},
                    "failedReason": {"$first": "$failedReason"},
                    "at": {"$first": "$finishedAt"},
                }
            },
            {"$sort": {"count": -1, "_id": 1}},
            {"$limit": FAILURE_REASONS_SHOWN},
        ]
        return [
            {
                "errorCode": group["_id"],
                "count": int(group["count"]),
                "example": {
                    "jobId": group["jobId"],
                    "failedReason": group["failedReason"],
                    "at": _iso(as_utc(group["at"])),
                },
            }
            for group in self._jobs.aggregate(pipeline)
        ]


def oldest_waiting(store: JobStore, filters: dict[str, Any]) -> tuple[str, float] | None:
    """The waiting job (under the filters) that has waited longest, and for how many seconds: since
    it last became waiting (created, retried, backed off or continued). One indexed lookup."""
    found = store.collection.find(
        {**filters, "status": JobStatus.WAITING.value, "waitingSince": {"$type": "date"}},
        {"_id": 0, "jobId": 1, "waitingSince": 1},
        sort=[("waitingSince", 1)],
        limit=1,
    )
    first = next(iter(found), None)
    if first is None:
        return None
    return str(first["jobId"]), round(max(0.0, (store.now() - as_utc(first["waitingSince"])).total_seconds()), 3)


def backlog(store: JobStore, filters: dict[str, Any]) -> dict[str, Any]:
    """Waiting and active jobs now (under the filters) and the longest wait."""
    counts = {
        status.value: int(store.collection.count_documents({**filters, "status": status.value}))
        for status in (JobStatus.WAITING, JobStatus.ACTIVE)
    }
    oldest = oldest_waiting(store, filters)
    return {
        "waiting": counts["waiting"],
        "active": counts["active"],
        "oldestWaitingSeconds": oldest[1] if oldest else None,
        "oldestWaitingJobId": oldest[0] if oldest else None,
    }


def queue_depths(queue: QueueDepths) -> dict[str, dict[str, int]] | None:
    """SQS's depths, or None when SQS does not answer (the rest is still worth showing)."""
    try:
        return queue.depths()
    except Exception:
        logger.exception("could not read queue depths")
        return None


def analytics(request: AnalyticsRequest, *, store: JobStore, queue: QueueDepths) -> dict[str, Any]:
    """The whole answer; the backlog honours every filter but status (it is about waiting and active)."""
    report = Analytics(store, request)
    filters = list_query(request.model_copy(update={"from_": None, "to": None, "status": None}))
    return {
        "from": _iso(report.window.start),
        "to": _iso(report.window.end),
        "bucket": request.bucket.value,
        "buckets": report.buckets(),
        "durations": report.durations(),
        "failureReasons": report.failure_reasons(),
        "backlog": {**backlog(store, filters), "queues": queue_depths(queue)},
    }


def _empty_bucket() -> dict[str, Any]:
    return {"created": 0, "completed": 0, "failed": 0, "cancelled": 0, "bytesUploaded": 0}
