"""`POST /upload-jobs/{jobId}/cleanup` (SPEC 4): undo what a failed or cancelled job left behind.

Order matters. With `removeSource`, the job is first marked `sourceRemoved` (the store's retry
refuses such a job), so no retry can start on sources that are about to vanish. The bucket is
cleaned before the job's record is, so a cleanup interrupted halfway is simply run again: the
record still lists what is left. Idempotent: once done, a second call finds nothing and answers zeros.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.errors import Conflict, UploadError
from chalicelib.jobs import states
from chalicelib.jobs.model import CleanupRequest, UploadJob
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance.bucket import abort_uploads, checkpointed_uploads, delete_keys, listed_uploads
from chalicelib.maintenance.context import MaintenanceServices
from chalicelib.upload.engine import list_existing
from chalicelib.upload.sources import Sources

logger = logging.getLogger(__name__)

CLEANABLE = sorted(status.value for status in states.CLEANABLE)
IN_CLEANABLE_STATE = {"status": {"$in": CLEANABLE}}


def cleanup_job(job_id: str, request: CleanupRequest, services: MaintenanceServices) -> dict[str, int]:
    """Abort the job's open multipart uploads, delete the objects it wrote itself, and with
    `removeSource` its source files. Answers `{"abortedUploads", "deletedObjects", "removedFiles"}`."""
    store = services.store
    job = store.get(job_id)
    _require_cleanable(job)
    # The worker streams sources straight into the bucket: a job has no temporary files to remove.
    removed_files = 0
    if request.remove_source:
        sources = Sources.from_settings(services.settings, services.s3)
        refs = _removable_sources(job, sources)
        job = _forbid_retry(store, job)
        removed_files += sum(sources.remove(ref) for ref in refs)
    s3 = services.s3
    uploads = [*checkpointed_uploads(job), *listed_uploads(s3, job)]
    aborted = abort_uploads(s3, job.bucket_name, uploads)
    # writtenKeys also names keys announced just before a PUT that never happened: delete (and
    # count) only those the bucket holds.
    present = list_existing(s3, job.bucket_name, job.written_keys)
    deleted = delete_keys(s3, job.bucket_name, [key for key in job.written_keys if key in present])
    _record_cleanup(store, job, deleted)
    logger.info("cleaned up %s: %d uploads aborted, %d objects deleted", job_id, aborted, len(deleted))
    return {"abortedUploads": aborted, "deletedObjects": len(deleted), "removedFiles": removed_files}


def _require_cleanable(job: UploadJob) -> None:
    if job.status not in states.CLEANABLE:
        raise Conflict(f"job {job.job_id} is {job.status}: only failed or cancelled jobs can be cleaned up")


def _removable_sources(job: UploadJob, sources: Sources) -> list[str]:
    """The job's source references, each checked before anything is changed."""
    refs = list(job.source_paths().values())
    for ref in refs:
        try:
            location = sources.locate(ref)
        except UploadError as error:
            raise Conflict(f"the source {ref!r} cannot be removed: {error.reason}") from error
        if location.path == sources.root:
            raise Conflict(f"the source {ref!r} is SOURCE_ROOT itself and is never removed")
    return refs


def _forbid_retry(store: JobStore, job: UploadJob) -> UploadJob:
    """Mark the job `sourceRemoved` (retry answers 409 from now on), guarded by its state."""
    marked = store.update_fields(job.job_id, IN_CLEANABLE_STATE, {"$set": {"sourceRemoved": True}})
    if marked is None:
        raise _changed(store, job.job_id)
    return marked


def _record_cleanup(store: JobStore, job: UploadJob, deleted: list[str]) -> None:
    """Progress back to zero; forget the deleted keys (any that failed stay for the next call)."""
    now = store.now()
    update: dict[str, Any] = {
        "$set": {
            "progress": 0,
            "uploadedBytes": 0,
            "uploadedFiles": 0,
            "multipartUploads": [],
            "cleanedAt": now,
            "updatedAt": now,
        },
        "$pullAll": {"writtenKeys": deleted},
    }
    if store.update_fields(job.job_id, IN_CLEANABLE_STATE, update) is None:
        raise _changed(store, job.job_id)


def _changed(store: JobStore, job_id: str) -> Conflict:
    current = store.get(job_id)
    return Conflict(f"job {job_id} became {current.status} during cleanup: only failed or cancelled jobs are cleaned")
