"""sync one job, fix-stuck over all (SPEC 7): bring jobs in line with the queue and the workers.

Every fix is one guarded write (`Rule.guard`): a worker that renews its lease at the same moment
either renews first (the fix finds the lease live and does nothing) or loses its lease (its next
guarded write fails and it stops). A worker that comes back after its job was re-queued can
change nothing: every write a worker makes is guarded by its `leaseOwner`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.jobs.recovery import requeue_expired, stall_expired
from chalicelib.logs import logger
from chalicelib.maintenance.bucket import abort_uploads, checkpointed_uploads
from chalicelib.maintenance.context import ACTOR, MaintenanceServices
from chalicelib.maintenance.rules import (
    ACTIONS,
    CANCEL_REQUESTED,
    LEASE_EXPIRED,
    OVERDUE_WAITING,
    RULES,
    Diagnosis,
    Fix,
    Moment,
    diagnose,
)
from chalicelib.realtime.events import JobEvent

# A bound on one run's work; whatever is left is found by the next run.
MAX_FIXES_PER_RULE = 500


def moment_of(services: MaintenanceServices) -> Moment:
    return Moment(services.store.now(), timedelta(seconds=services.settings.stuck_after_seconds))


def sync_job(job_id: str, services: MaintenanceServices) -> dict[str, Any]:
    """Fix one job if it needs it. Answers `{"jobId", "before", "after", "action", "reason"}`."""
    job = services.store.get(job_id)
    moment = moment_of(services)
    diagnosis = diagnose(job, moment)
    after = job
    if diagnosis.fix != Fix.NONE:
        fixed = apply_fix(services, job, diagnosis, moment)
        if fixed is None:
            after = services.store.get(job_id)
            diagnosis = Diagnosis(Fix.NONE, f"Another actor changed the job first (it is now {after.status}).")
        else:
            after = fixed
    return {
        "jobId": job_id,
        "before": job.status,
        "after": after.status,
        "action": ACTIONS[diagnosis.fix],
        "reason": diagnosis.reason,
    }


def fix_stuck(services: MaintenanceServices) -> dict[str, int]:
    """Every job that needs fixing, found with one indexed query per rule (only those are read).
    Answers `{"scanned", "requeued", "failed", "cancelled"}`."""
    moment = moment_of(services)
    counts = {"scanned": 0, "requeued": 0, "failed": 0, "cancelled": 0}
    for rule in RULES:
        documents = services.store.scan(rule.query(moment), limit=MAX_FIXES_PER_RULE)
        for document in documents:
            counts["scanned"] += 1
            fix = _fix_one(services, document, rule.fixes, moment)
            if fix is not None:
                counts[ACTIONS[fix]] += 1
    if any(counts[action] for action in ("requeued", "failed", "cancelled")):
        logger.info("fix-stuck: %s", counts)
    return counts


def _fix_one(
    services: MaintenanceServices, document: dict[str, Any], fixes: tuple[Fix, ...], moment: Moment
) -> Fix | None:
    """The fix made to one job found by a rule's query, or None. One job that cannot be fixed
    (a malformed document, the bucket refusing an abort) is logged and never stops the run."""
    try:
        job = UploadJob.from_document(document)
        diagnosis = diagnose(job, moment)
        if diagnosis.fix in fixes and apply_fix(services, job, diagnosis, moment) is not None:
            return diagnosis.fix
    except Exception:
        logger.exception("maintenance could not fix job %s", document.get("jobId"), jobId=document.get("jobId"))
    return None


def apply_fix(services: MaintenanceServices, job: UploadJob, diagnosis: Diagnosis, moment: Moment) -> UploadJob | None:
    """Carry out `diagnosis`; the job after, or None when another actor changed it first."""
    fixers = {Fix.REQUEUE: _requeue, Fix.STALL: _stall, Fix.RESEND: _resend, Fix.CANCEL: _cancel}
    fixed = fixers[diagnosis.fix](services, job, diagnosis, moment)
    if fixed is None:
        logger.info("maintenance left %s alone: another actor changed it first", job.job_id, jobId=job.job_id)
    else:
        logger.info(
            "maintenance: %s %s -> %s: %s", job.job_id, job.status, fixed.status, diagnosis.reason, jobId=job.job_id
        )
    return fixed


def _requeue(services: MaintenanceServices, job: UploadJob, diagnosis: Diagnosis, moment: Moment) -> UploadJob | None:
    """Back to waiting, checkpoint kept: the next worker resumes where the dead one stopped."""
    guard = LEASE_EXPIRED.guard(job, moment)
    moved = requeue_expired(
        services.store, job, actor=ACTOR, reason="lease expired: re-queued by maintenance", condition=guard
    )
    if moved is not None:
        _send(services, moved)
    return moved


def _stall(services: MaintenanceServices, job: UploadJob, diagnosis: Diagnosis, moment: Moment) -> UploadJob | None:
    guard = LEASE_EXPIRED.guard(job, moment)
    failed = stall_expired(services.store, job, actor=ACTOR, detail=diagnosis.reason, condition=guard)
    if failed is not None:
        services.notifier.publish(JobEvent.FAILED, failed)
    return failed


def _resend(services: MaintenanceServices, job: UploadJob, diagnosis: Diagnosis, moment: Moment) -> UploadJob | None:
    """Re-send the message of a waiting job nobody took; `nextAttemptAt` moves to now, so the
    job is re-sent again only if it stays untouched for another STUCK_AFTER_SECONDS."""
    store = services.store
    now = store.now()
    guard = {"status": JobStatus.WAITING.value, **OVERDUE_WAITING.guard(job, moment)}
    touched = store.update_fields(job.job_id, guard, {"$set": {"nextAttemptAt": now, "updatedAt": now}})
    if touched is not None:
        _send(services, touched)
    return touched


def _cancel(services: MaintenanceServices, job: UploadJob, diagnosis: Diagnosis, moment: Moment) -> UploadJob | None:
    """Finish a cancel whose worker is gone: abort its open multipart uploads, then cancelled."""
    aborted = abort_uploads(services.s3, job.bucket_name, checkpointed_uploads(job))
    cancelled = services.store.transition(
        job.job_id,
        JobStatus.CANCELLED,
        sources=[JobStatus(job.status)],
        reason=f"cancel finished by maintenance ({aborted} multipart uploads aborted)",
        actor=ACTOR,
        condition=CANCEL_REQUESTED.guard(job, moment),
        set_fields={"multipartUploads": []},
    )
    if cancelled is not None:
        services.notifier.publish(JobEvent.CANCELLED, cancelled)
    return cancelled


def _send(services: MaintenanceServices, job: UploadJob) -> None:
    """If SQS fails, the job stays waiting with `nextAttemptAt` now: a later run re-sends it."""
    try:
        services.queue.send(job.queue_name, job.job_id)
    except Exception:
        logger.exception("could not re-send %s; a later maintenance run will", job.job_id, jobId=job.job_id)
        return
    services.notifier.publish(JobEvent.QUEUED, job)
