"""From an SQS body to a job: parse the message, and create the job it carries when it is new."""

from __future__ import annotations

from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import Invalid
from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document
from chalicelib.jobs.store import JobStore
from chalicelib.logs import logger
from chalicelib.queue import QueueMessage
from chalicelib.realtime.events import JobEvent, Notifier
from chalicelib.usecases.jobs import check_sources
from chalicelib.validation import parse


def message_job_id(message: QueueMessage) -> str:
    """The job a message names: its `jobId`, else the `jobId` of the spec it carries."""
    if message.job_id:
        return message.job_id
    assert message.job is not None  # parse_message refuses a message that names no job
    return str(message.job["jobId"])


def spec_request(job_id: str, spec: dict[str, Any], settings: Settings) -> CreateJobRequest:
    """Validate a message's `job` exactly as `POST /upload-jobs` would (Invalid otherwise)."""
    if spec.get("jobId") not in (None, job_id):
        raise Invalid(f"jobId: the message names {job_id!r} but its job says {spec['jobId']!r}")
    request = parse(CreateJobRequest, {**spec, "jobId": job_id})
    check_sources(request, settings)
    return request


def create_from_spec(
    job_id: str, spec: dict[str, Any], *, store: JobStore, notifier: Notifier, settings: Settings
) -> UploadJob:
    """Insert the job a producer sent straight to SQS; idempotent on jobId (a racing insert wins)."""
    request = spec_request(job_id, spec, settings)
    document = new_job_document(
        request, bucket=settings.spaces_bucket, max_attempts=settings.max_attempts, now=store.now()
    )
    job, created = store.insert(document)
    if created:
        logger.info("created job %s from its queue message", job_id)
        notifier.publish(JobEvent.QUEUED, job)
    return job
