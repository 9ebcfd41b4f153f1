"""What happens to an active job whose worker's lease expired (SPEC 3, 7): one rule, two callers.

The worker that receives a redelivered message for such a job, and maintenance's fix-stuck, both
use these writes, each guarded by the lease that was read: whoever acts first wins, and a worker
renewing its lease at that moment either renews first (the guard fails) or loses its job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chalicelib.errors import ErrorCode
from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.jobs.store import JobStore

STALLED_REASON = "The worker uploading this job stopped answering and no attempts are left."


def expired_lease(job: UploadJob, now: datetime) -> dict[str, Any]:
    """The guard: the lease read is still the job's, and it has expired."""
    return {"leaseOwner": job.lease_owner, "leaseExpiresAt": {"$lt": now}}


def requeue_expired(
    store: JobStore, job: UploadJob, *, actor: str, reason: str, condition: Mapping[str, Any]
) -> UploadJob | None:
    """active → waiting, checkpoint kept, so the next worker resumes where the dead one stopped."""
    return store.transition(
        job.job_id,
        JobStatus.WAITING,
        sources=[JobStatus.ACTIVE],
        reason=reason,
        actor=actor,
        condition=condition,
        set_fields={"nextAttemptAt": store.now()},
    )


def stall_expired(
    store: JobStore, job: UploadJob, *, actor: str, detail: str, condition: Mapping[str, Any]
) -> UploadJob | None:
    """active → failed STALLED: the lease expired and no attempts are left."""
    return store.transition(
        job.job_id,
        JobStatus.FAILED,
        sources=[JobStatus.ACTIVE],
        reason="lease expired with no attempts left",
        actor=actor,
        condition=condition,
        set_fields={"errorCode": ErrorCode.STALLED.value, "failedReason": STALLED_REASON, "errorMessage": detail},
    )
