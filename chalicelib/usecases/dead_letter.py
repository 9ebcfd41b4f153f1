"""Dead letters (SPEC 5): a message that SQS gave up on marks its job failed `DEAD_LETTERED`.

The handler gets the original message body. A malformed one is logged and acknowledged (nothing
can be done with it). A job that is already finished is left as it is; so is a job a live worker
holds (another delivery of it is being worked on: failing it would throw that work away).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chalicelib.errors import ErrorCode, Invalid
from chalicelib.jobs.model import CreateJobRequest, JobStatus, UploadJob, new_job_document
from chalicelib.jobs.recovery import lease_not_live
from chalicelib.logs import logger
from chalicelib.maintenance.context import MaintenanceServices
from chalicelib.queue import QueueMessage, parse_message
from chalicelib.realtime.events import JobEvent
from chalicelib.validation import parse

ACTOR = "dead-letter"


class DeadLetterOutcome(StrEnum):
    MALFORMED = "malformed"  # not a message of ours: logged, acknowledged
    UNKNOWN_JOB = "unknown-job"  # no such job, and no valid spec to record it from
    ALREADY_FINISHED = "already-finished"
    HELD_BY_WORKER = "held-by-worker"  # a live lease: another delivery is being worked on
    FAILED = "failed"


def handle_dead_letter(body: str, receive_count: int, services: MaintenanceServices) -> DeadLetterOutcome:
    """Mark the job of one dead-lettered message failed `DEAD_LETTERED`, unless it is finished."""
    try:
        message = parse_message(body)
    except Invalid as error:
        logger.warning("dropping a malformed dead letter: %s (body %.200r)", error, body)
        return DeadLetterOutcome.MALFORMED
    job_id = message.job_id or str((message.job or {})["jobId"])
    job = services.store.find(job_id) or _record_from_spec(job_id, message, services)
    if job is None:
        logger.warning("dead letter for unknown job %s: nothing to mark", job_id, jobId=job_id)
        return DeadLetterOutcome.UNKNOWN_JOB
    outcome = _fail(job, receive_count, services)
    logger.info("dead letter for %s (%d receives): %s", job_id, receive_count, outcome, jobId=job_id)
    return outcome


def _record_from_spec(job_id: str, message: QueueMessage, services: MaintenanceServices) -> UploadJob | None:
    """A producer that wrote only to SQS sent the job's spec, and no worker ever managed to create
    the job (MongoDB unreachable, say): record it, so that it shows up failed and can be retried."""
    if not message.job:
        return None
    try:
        request = parse(CreateJobRequest, {**message.job, "jobId": job_id})
    except Invalid as error:
        logger.warning("dead letter for unknown job %s carries an invalid spec: %s", job_id, error, jobId=job_id)
        return None
    settings = services.settings
    document = new_job_document(
        request, bucket=settings.spaces_bucket, max_attempts=settings.max_attempts, now=services.store.now()
    )
    job, _created = services.store.insert(document)
    return job


def _fail(job: UploadJob, receive_count: int, services: MaintenanceServices) -> DeadLetterOutcome:
    if job.is_finished:
        return DeadLetterOutcome.ALREADY_FINISHED
    store = services.store
    failed = store.transition(
        job.job_id,
        JobStatus.FAILED,
        sources=[JobStatus.WAITING, JobStatus.ACTIVE],
        reason=f"message dead-lettered after {receive_count} receives",
        actor=ACTOR,
        condition=lease_not_live(store.now()),
        set_fields=_failure_fields(receive_count),
    )
    if failed is not None:
        services.notifier.publish(JobEvent.FAILED, failed)
        return DeadLetterOutcome.FAILED
    current = store.get(job.job_id)
    return DeadLetterOutcome.ALREADY_FINISHED if current.is_finished else DeadLetterOutcome.HELD_BY_WORKER


def _failure_fields(receive_count: int) -> dict[str, Any]:
    return {
        "errorCode": ErrorCode.DEAD_LETTERED.value,
        "failedReason": (
            f"The upload could not be processed after {receive_count} deliveries of its queue message, "
            "which was moved to the dead-letter queue."
        ),
        "errorMessage": f"dead-lettered: ApproximateReceiveCount={receive_count}",
    }
