"""Deleting finished jobs (DELETE, clear, retention) without orphaning or breaking an object.

- A completed job's objects are the published title: its record goes, the objects stay, and
  they leave every other job's `writtenKeys` first, so no later cleanup can take them.
- A failed or cancelled job is cleaned up first, exactly as `POST .../cleanup` does without
  `removeSource` (its open uploads aborted, the objects it alone wrote deleted), under the same
  claim, and its record deleted only while that claim holds. If the bucket refuses to delete some
  of its objects, the job stays (409) and still lists them for a later delete or cleanup.
"""

from __future__ import annotations

from chalicelib.errors import Conflict, ConflictReason, NotFound
from chalicelib.jobs import states
from chalicelib.jobs.model import ClearStatus, JobStatus, UploadJob
from chalicelib.logs import logger
from chalicelib.maintenance.cleanup import KEEP_SOURCES, claimed, clean, holding
from chalicelib.maintenance.context import MaintenanceServices
from chalicelib.maintenance.ownership import hand_over_published


def delete_finished_job(job_id: str, services: MaintenanceServices) -> UploadJob:
    """The job as it was when deleted. 404 unknown, 409 not finished or its cleanup unfinished."""
    job = services.store.get(job_id)
    if job.status == JobStatus.COMPLETED:
        return _delete_completed(job, services)
    if job.status in states.CLEANABLE:
        return _delete_cleaned(job_id, services)
    raise Conflict(
        f"job {job_id} is {job.status}: only completed, failed or cancelled jobs can be deleted",
        ConflictReason.WRONG_STATE,
    )


def clear_finished(services: MaintenanceServices, status: ClearStatus, older_than_days: float | None = None) -> int:
    """`clear` and retention: each job deleted as DELETE does; one that cannot be (its bucket
    refused, another actor changed it) stays for the next time. Returns how many went."""
    deleted = 0
    for job_id in services.store.finished_job_ids(status, older_than_days):
        try:
            delete_finished_job(job_id, services)
        except (Conflict, NotFound) as error:
            logger.info("kept %s: %s", job_id, error, jobId=job_id)
            continue
        except Exception:  # the bucket or the store failing for one job never stops the others
            logger.exception("could not delete %s; it stays for the next run", job_id, jobId=job_id)
            continue
        deleted += 1
    return deleted


def _delete_completed(job: UploadJob, services: MaintenanceServices) -> UploadJob:
    hand_over_published(services.store, job)
    deleted = services.store.delete(job.job_id, [JobStatus.COMPLETED])
    if deleted is None:
        raise NotFound(f"no upload job {job.job_id!r}")
    return deleted


def _delete_cleaned(job_id: str, services: MaintenanceServices) -> UploadJob:
    store = services.store
    with claimed(store, job_id) as job:
        cleaned = clean(job, KEEP_SOURCES, services)
        if cleaned.kept:  # leaving the block with an error releases the claim
            raise Conflict(
                f"job {job_id} was not deleted: the bucket refused to delete {len(cleaned.kept)} of its objects; "
                "it still lists them, so a later delete or cleanup can finish"
            )
        deleted = store.delete(job_id, states.CLEANABLE, holding(job))
    if deleted is None:
        raise Conflict(f"job {job_id} changed while it was being deleted", ConflictReason.WRONG_STATE)
    return deleted
