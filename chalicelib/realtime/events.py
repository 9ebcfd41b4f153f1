"""Job events (SPEC 8) and the notifier interface that workers, the API and maintenance call."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.jobs.model import UploadJob, iso_z, utcnow

logger = logging.getLogger(__name__)


class JobEvent(StrEnum):
    PROGRESS = "uploadProgress"
    COMPLETED = "JobCompleted"
    FAILED = "JobFailed"
    CANCELLED = "JobCancelled"
    QUEUED = "JobQueued"
    DELETED = "JobDeleted"


PROGRESS_FIELDS = (
    "jobId",
    "status",
    "progress",
    "uploadedBytes",
    "totalBytes",
    "uploadedFiles",
    "totalFiles",
    "jobType",
    "uploadType",
    "label",
    "resourceType",
    "resourceId",
)
EXTRA_FIELDS: dict[JobEvent, tuple[str, ...]] = {
    JobEvent.COMPLETED: ("durationSeconds", "publicUrl"),
    JobEvent.FAILED: ("errorCode", "failedReason"),
}


def event_payload(event: JobEvent, job: UploadJob) -> dict[str, Any]:
    """The JSON object a WebSocket client receives for `event` on `job`."""
    data = job.to_api()
    payload = {"event": event.value, **{name: data.get(name) for name in PROGRESS_FIELDS}}
    payload.update({name: data.get(name) for name in EXTRA_FIELDS.get(event, ())})
    payload["at"] = iso_z(utcnow())
    return payload


class Notifier(Protocol):
    """Told of every status change and progress write. Must never raise into the caller."""

    def publish(self, event: JobEvent, job: UploadJob) -> None: ...


class LogNotifier:
    """The notifier when no WebSocket API is configured: one log line per event."""

    def publish(self, event: JobEvent, job: UploadJob) -> None:
        logger.info("%s %s %s %s%%", event.value, job.job_id, job.status, job.progress)
