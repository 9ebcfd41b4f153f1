"""Job events (SPEC 8) and the notifier interface that workers, the API and maintenance call."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from chalicelib.jobs.model import CAMEL, JobStatus, JobType, ResourceType, UploadJob, UploadType, iso_z, utcnow
from chalicelib.logs import logger


class JobEvent(StrEnum):
    PROGRESS = "uploadProgress"
    COMPLETED = "JobCompleted"
    FAILED = "JobFailed"
    CANCELLED = "JobCancelled"
    QUEUED = "JobQueued"
    DELETED = "JobDeleted"


class _Event(BaseModel):
    """What every job event carries: the job's progress and identity, and when it was sent."""

    model_config = ConfigDict(**CAMEL, extra="forbid")

    event: str
    job_id: str
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    uploaded_bytes: int
    total_bytes: int
    uploaded_files: int
    total_files: int
    job_type: JobType
    upload_type: UploadType
    label: str | None
    resource_type: ResourceType
    resource_id: str
    at: str = Field(description="When the event was sent, UTC, ISO 8601 with Z")


class UploadProgressEvent(_Event):
    event: Literal["uploadProgress"]


class JobCompletedEvent(_Event):
    event: Literal["JobCompleted"]
    duration_seconds: float | None
    public_url: str | None


class JobFailedEvent(_Event):
    event: Literal["JobFailed"]
    error_code: str | None
    failed_reason: str | None


class JobCancelledEvent(_Event):
    event: Literal["JobCancelled"]


class JobQueuedEvent(_Event):
    event: Literal["JobQueued"]


class JobDeletedEvent(_Event):
    event: Literal["JobDeleted"]


EVENT_MODELS: dict[JobEvent, type[_Event]] = {
    JobEvent.PROGRESS: UploadProgressEvent,
    JobEvent.COMPLETED: JobCompletedEvent,
    JobEvent.FAILED: JobFailedEvent,
    JobEvent.CANCELLED: JobCancelledEvent,
    JobEvent.QUEUED: JobQueuedEvent,
    JobEvent.DELETED: JobDeletedEvent,
}


def _job_fields(model: type[_Event]) -> tuple[str, ...]:
    """The job's JSON fields an event copies: every field of its model but `event` and `at`."""
    return tuple(to_camel(name) for name in model.model_fields if name not in ("event", "at"))


EVENT_FIELDS: dict[JobEvent, tuple[str, ...]] = {event: _job_fields(model) for event, model in EVENT_MODELS.items()}


def event_payload(event: JobEvent, job: UploadJob) -> dict[str, Any]:
    """The JSON object a WebSocket client receives for `event` on `job` (its EVENT_MODELS shape)."""
    data = job.to_api()
    payload = {"event": event.value, **{name: data.get(name) for name in EVENT_FIELDS[event]}}
    payload["at"] = iso_z(utcnow())
    return payload


class Notifier(Protocol):
    """Told of every status change and progress write. Must never raise into the caller."""

    def publish(self, event: JobEvent, job: UploadJob) -> None: ...


class LogNotifier:
    """The notifier when no WebSocket API is configured: one log line per event."""

    def publish(self, event: JobEvent, job: UploadJob) -> None:
        logger.info("%s %s %s %s%%", event.value, job.job_id, job.status, job.progress)
