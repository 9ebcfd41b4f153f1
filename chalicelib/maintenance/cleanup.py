"""`POST /upload-jobs/{jobId}/cleanup` (SPEC 4): undo what a failed or cancelled job left behind.

The rules (docs/cleanup.md):
- A job deletes only keys it wrote itself: those it recorded (`writtenKeys`) and its checkpointed
  multipart uploads, whatever its `uploadPath` names (`bucket.own_keys`).
- Never a key another job relies on (`ownership.relied_on`): such keys are handed over, dropped
  from this job's record, so that no later cleanup of it takes them either.
- Cleanup claims the job first (`cleanupOwner`, `cleanupUntil`, one guarded write): retry and a
  second cleanup are refused while the claim holds; a claim whose cleanup died lapses after
  CLEANUP_CLAIM. DELETE, clear and retention of a failed or cancelled job use the same claim and
  the same cleanup before the record goes (maintenance/removal.py).

Order matters. With `removeSource`, the job is first marked `sourceRemoved` (the store's retry
refuses such a job). The bucket is cleaned before the job's record is, so a cleanup interrupted
halfway is simply run again: the record still lists what is left. Idempotent: once done, a
second call finds nothing and answers zeros.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.errors import Conflict, ConflictReason, UploadError
from chalicelib.jobs import states
from chalicelib.jobs.model import CleanupRequest, UploadJob
from chalicelib.jobs.store import CLEANUP_CLAIM_FIELDS, JobStore, no_cleanup_running
from chalicelib.logs import logger
from chalicelib.maintenance.bucket import abort_uploads, checkpointed_uploads, delete_keys, listed_uploads, own_keys
from chalicelib.maintenance.context import MaintenanceServices
from chalicelib.maintenance.ownership import relied_on
from chalicelib.upload.engine import list_existing
from chalicelib.upload.sources import Sources

CLEANABLE = sorted(status.value for status in states.CLEANABLE)
IN_CLEANABLE_STATE = {"status": {"$in": CLEANABLE}}
# Far longer than a cleanup takes (one DeleteObjects per 1,000 keys), shorter than a person waits.
CLEANUP_CLAIM = timedelta(minutes=5)
KEEP_SOURCES = CleanupRequest()


@dataclass(frozen=True)
class Cleaned:
    """What one cleanup did, and the keys it could not delete (they stay recorded)."""

    aborted: int
    deleted: int
    removed_files: int
    kept: tuple[str, ...]

    def answer(self) -> dict[str, int]:
        return {"abortedUploads": self.aborted, "deletedObjects": self.deleted, "removedFiles": self.removed_files}


def cleanup_job(job_id: str, request: CleanupRequest, services: MaintenanceServices) -> dict[str, int]:
    """Abort the job's open multipart uploads, delete the objects it alone wrote, and with
    `removeSource` its source files. Answers `{"abortedUploads", "deletedObjects", "removedFiles"}`."""
    with claimed(services.store, job_id) as job:
        cleaned = clean(job, request, services)
        release(services.store, job)
    return cleaned.answer()


@contextmanager
def claimed(store: JobStore, job_id: str) -> Iterator[UploadJob]:
    """The job, claimed for cleanup (409 unless failed or cancelled and not being cleaned). The
    claim is released if the body fails; on success the body releases it (or deletes the job)."""
    job = _claim(store, job_id)
    try:
        yield job
    except BaseException:
        release(store, job)
        raise


def _claim(store: JobStore, job_id: str) -> UploadJob:
    _require_cleanable(store.get(job_id))
    now = store.now()
    claim = {"cleanupOwner": uuid.uuid4().hex, "cleanupUntil": now + CLEANUP_CLAIM, "updatedAt": now}
    job = store.update_fields(job_id, {**IN_CLEANABLE_STATE, **no_cleanup_running(now)}, {"$set": claim})
    if job is not None:
        return job
    current = store.get(job_id)
    _require_cleanable(current)
    raise Conflict(
        f"job {job_id} is already being cleaned up: try again once that cleanup has finished",
        ConflictReason.CLEANUP_RUNNING,
    )


def release(store: JobStore, job: UploadJob) -> None:
    """Give the claim back (if it is still ours)."""
    store.update_fields(job.job_id, holding(job), {"$unset": dict.fromkeys(CLEANUP_CLAIM_FIELDS, "")})


def holding(job: UploadJob) -> dict[str, Any]:
    """The guard of every write made under the claim."""
    return {**IN_CLEANABLE_STATE, "cleanupOwner": job.cleanup_owner}


def clean(job: UploadJob, request: CleanupRequest, services: MaintenanceServices) -> Cleaned:
    """The cleanup itself, on a claimed job; its record is updated, the claim kept."""
    store, s3 = services.store, services.s3
    # The worker streams sources straight into the bucket: a job has no temporary files to remove.
    removed_files = 0
    if request.remove_source:
        sources = Sources.from_settings(services.settings, s3)
        refs = _removable_sources(job, sources)
        job = _forbid_retry(store, job)
        removed_files = _remove_sources(sources, refs)
    own = own_keys(job)
    relied = relied_on(store, job, own)
    # Read the record again: a completed job whose record was deleted while we looked had its
    # keys handed over (dropped from ours) before it went, so a key it published is never taken.
    still_listed = set(store.get(job.job_id).written_keys)
    mine = [key for key in own if key not in relied and key in still_listed]
    # Aborting an upload by its own UploadId never touches another job's: every checkpointed one goes.
    uploads = [*checkpointed_uploads(job), *listed_uploads(s3, job, set(mine))]
    aborted = abort_uploads(s3, job.bucket_name, uploads)
    # writtenKeys also names keys announced just before a PUT that never happened: delete (and
    # count) only those the bucket holds.
    present = list_existing(s3, job.bucket_name, mine)
    deleted = set(delete_keys(s3, job.bucket_name, [key for key in mine if key in present]))
    kept = tuple(key for key in mine if key in present and key not in deleted)
    _record_cleanup(store, job, [key for key in own if key not in kept])
    if relied:
        logger.info("cleanup of %s left %d objects other jobs rely on", job.job_id, len(relied), jobId=job.job_id)
    logger.info(
        "cleaned up %s: %d uploads aborted, %d objects deleted", job.job_id, aborted, len(deleted), jobId=job.job_id
    )
    return Cleaned(aborted, len(deleted), removed_files, kept)


def _require_cleanable(job: UploadJob) -> None:
    if job.status not in states.CLEANABLE:
        raise Conflict(
            f"job {job.job_id} is {job.status}: only failed or cancelled jobs can be cleaned up",
            ConflictReason.WRONG_STATE,
        )


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


def _remove_sources(sources: Sources, refs: list[str]) -> int:
    """Remove each source; one that turns out unsafe to remove (a symlink appeared) is a 409."""
    removed = 0
    for ref in refs:
        try:
            removed += sources.remove(ref)
        except UploadError as error:
            raise Conflict(f"the source {ref!r} cannot be removed: {error.reason}") from error
    return removed


def _forbid_retry(store: JobStore, job: UploadJob) -> UploadJob:
    """Mark the job `sourceRemoved` (retry answers 409 from now on), guarded by the claim."""
    marked = store.update_fields(job.job_id, holding(job), {"$set": {"sourceRemoved": True}})
    if marked is None:
        raise _changed(store, job.job_id)
    return marked


def _record_cleanup(store: JobStore, job: UploadJob, gone: list[str]) -> None:
    """Progress back to zero; forget the keys that are gone or handed over (any the bucket
    refused to delete stay for the next call)."""
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
        "$pullAll": {"writtenKeys": gone},
    }
    if store.update_fields(job.job_id, holding(job), update) is None:
        raise _changed(store, job.job_id)


def _changed(store: JobStore, job_id: str) -> Conflict:
    current = store.get(job_id)
    return Conflict(
        f"job {job_id} became {current.status} during cleanup: only failed or cancelled jobs are cleaned",
        ConflictReason.WRONG_STATE,
    )
