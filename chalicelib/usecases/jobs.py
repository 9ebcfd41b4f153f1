"""What the HTTP API does with jobs: one function per route, each over the store and the queue."""

from __future__ import annotations

from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import Invalid, UploadError
from chalicelib.jobs import outbox
from chalicelib.jobs.model import (
    ClearRequest,
    CreateJobRequest,
    ListFilters,
    RetryRequest,
    UploadJob,
    new_job_document,
)
from chalicelib.jobs.store import JobStore
from chalicelib.logs import logger
from chalicelib.maintenance import MaintenanceServices, clear_finished, delete_finished_job
from chalicelib.queue import JobQueue
from chalicelib.realtime.events import JobEvent, Notifier
from chalicelib.upload.sources import locate


def check_sources(request: CreateJobRequest, settings: Settings) -> None:
    """400 for a source outside SOURCE_ROOT or SOURCE_BUCKETS, naming the field."""
    for field, ref in request.source_paths().items():
        try:
            locate(ref, settings.source_root, settings.source_buckets)
        except UploadError as exc:
            raise Invalid(f"{field}: {exc.reason}") from exc
    if request.bucket_name and request.bucket_name != settings.spaces_bucket:
        raise Invalid(f"bucketName: only {settings.spaces_bucket!r} is configured")


def enqueue(job: UploadJob, store: JobStore, queue: JobQueue, notifier: Notifier) -> None:
    """Send the job's message (its pending send). If SQS fails, or we die first, the send stays
    pending and the next worker invocation or scheduled run sends it (chalicelib/jobs/outbox.py)."""
    try:
        outbox.send(store, queue, job)
    except Exception:
        logger.exception("could not enqueue %s; its pending send will be retried", job.job_id, jobId=job.job_id)
        return
    notifier.publish(JobEvent.QUEUED, job)


def create_job(
    request: CreateJobRequest, *, store: JobStore, queue: JobQueue, notifier: Notifier, settings: Settings
) -> tuple[UploadJob, bool]:
    """Insert the job (waiting) and send its message; a repeated jobId returns the existing job."""
    check_sources(request, settings)
    now = store.now()
    document = new_job_document(request, bucket=settings.spaces_bucket, max_attempts=settings.max_attempts, now=now)
    job, created = store.insert({**document, **outbox.pending_send(now)})
    if created:
        enqueue(job, store, queue, notifier)
    return job, created


def retry_job(job_id: str, request: RetryRequest, *, store: JobStore, queue: JobQueue, notifier: Notifier) -> UploadJob:
    job = store.retry(job_id, client_id=request.client_id)
    enqueue(job, store, queue, notifier)
    return job


def cancel_job(job_id: str, *, store: JobStore, notifier: Notifier) -> UploadJob:
    job = store.cancel(job_id)
    if job.status == "cancelled":
        notifier.publish(JobEvent.CANCELLED, job)
    return job


def delete_job(job_id: str, *, services: MaintenanceServices) -> None:
    """A failed or cancelled job is cleaned up first; a completed one's objects stay published."""
    job = delete_finished_job(job_id, services)
    services.notifier.publish(JobEvent.DELETED, job)


def clear_jobs(request: ClearRequest, *, services: MaintenanceServices) -> int:
    """Each job as `delete_job` does; a job whose cleanup cannot finish stays."""
    return clear_finished(services, request.status, request.older_than_days)


def list_jobs(filters: ListFilters, *, store: JobStore) -> dict[str, Any]:
    jobs, next_cursor = store.list(filters)
    return {"items": [job.to_api() for job in jobs], "nextCursor": next_cursor}


def job_stats(*, store: JobStore, queue: JobQueue) -> dict[str, Any]:
    stats = store.stats()
    try:
        stats["queues"] = queue.depths()
    except Exception:  # the counts are still worth showing when SQS does not answer
        logger.exception("could not read queue depths")
        stats["queues"] = {}
    return stats
