"""What one queue message came to (the worker's answer to its caller) and the worker's knobs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.jobs.model import JobStatus, UploadJob

DEFAULT_TIME_MARGIN_SECONDS = 60.0
TIME_MARGIN_VARIABLE = "WORKER_TIME_MARGIN_SECONDS"


class Action(StrEnum):
    """What the worker did with a message. Every action acknowledges the message."""

    MALFORMED = "malformed"  # not a message we understand: logged and dropped
    UNKNOWN_JOB = "unknown-job"  # no such job and no spec to create it from
    INVALID_SPEC = "invalid-spec"  # a spec that fails the API's validation
    IGNORED = "ignored"  # finished, cancelled, or held by a live lease: nothing to do
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRY_SCHEDULED = "retry-scheduled"  # back to waiting, re-sent with a backoff delay
    CONTINUED = "continued"  # Lambda time ran short: back to waiting, re-sent as a continuation
    MASTER_WAITING = "master-waiting"  # references missing: re-checked later, no attempt spent
    NOT_DUE = "not-due"  # a waiting job's backoff has not ended: re-sent for the rest of it
    LEASE_LOST = "lease-lost"  # another actor took the job while we worked: we stopped


@dataclass(frozen=True)
class WorkerResult:
    action: Action
    job_id: str | None = None
    status: JobStatus | None = None
    detail: str = ""
    job: UploadJob | None = None  # as this turn finished it (completed, failed): what the metrics read


@dataclass(frozen=True)
class WorkerOptions:
    """Tunables that are not product settings.

    `time_margin_seconds`: stop this long before the invocation's time runs out (in-flight parts
    must finish and the checkpoint be written); never more than half the time the invocation had
    at its start, so every invocation does some work. `cancel_poll_seconds`: how often the job is
    re-read for `cancelRequested`. `worker_id`: lease owner prefix (a unique suffix is added per job).
    """

    time_margin_seconds: float = DEFAULT_TIME_MARGIN_SECONDS
    cancel_poll_seconds: float = 0.5
    worker_id: str = field(default_factory=lambda: f"worker-{os.getpid()}")

    def margin_ms(self, remaining_at_start_ms: float) -> float:
        """How long before the invocation's end the engine stops (see the class docstring)."""
        return min(self.time_margin_seconds * 1000, remaining_at_start_ms / 2)

    @classmethod
    def from_environment(cls) -> WorkerOptions:
        margin = os.environ.get(TIME_MARGIN_VARIABLE)
        return cls(time_margin_seconds=float(margin)) if margin else cls()
