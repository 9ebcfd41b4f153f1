"""The worker's hold on a job: claim, renewal, and taking over a job whose worker died.

A lease is `leaseOwner` + `leaseExpiresAt` on the job. Every write a worker makes while it works
is guarded by `leaseOwner` (and status active), so a worker that lost its lease can change nothing.

Takeover: a message for an active job whose lease has expired means its worker died (Lambda
timeout, crash) and SQS redelivered the message, which is the fast path to recovery, so the worker
does what maintenance would do, atomically and guarded by the lease rule of `jobs.recovery`: back to waiting
when attempts are left (then claims it like any waiting job), else failed `STALLED`. A live lease
is left alone and the message acknowledged; maintenance recovers the job if that worker dies too.

A claim takes only a job that is due (`nextAttemptAt` not after now): a redelivered or duplicate
message must not skip a retry's backoff. The claim also ends the job's pending send: its message
has done its work (chalicelib/jobs/outbox.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.jobs.outbox import SEND_PENDING
from chalicelib.jobs.recovery import expired_lease, lease_expired_at, requeue_expired, stall_expired
from chalicelib.jobs.store import JobStore

NOT_CANCELLED = {"cancelRequested": {"$ne": True}}
# A message may arrive this much before the job's nextAttemptAt and still claim it: the clocks of
# the sender and the receiver differ by a little, and SQS's delays are whole seconds.
CLAIM_EARLY_SECONDS = 1.0


def new_owner(worker_id: str) -> str:
    """A lease owner unique to one handling of one message."""
    return f"{worker_id}-{uuid.uuid4().hex[:12]}"


def owned(owner: str) -> dict[str, str]:
    """The guard of every write a lease holder makes."""
    return {"status": JobStatus.ACTIVE.value, "leaseOwner": owner}


def claim(store: JobStore, job_id: str, owner: str, lease_seconds: int) -> UploadJob | None:
    """waiting and due → active with attempts + 1 and the lease taken; None when another actor
    won or the job is not due yet (`not_due` tells which)."""
    now = store.now()
    return store.transition(
        job_id,
        JobStatus.ACTIVE,
        sources=[JobStatus.WAITING],
        reason="claimed by a worker",
        actor=owner,
        condition={**NOT_CANCELLED, "nextAttemptAt": {"$not": {"$gt": due_by(now)}}},
        set_fields={"leaseOwner": owner, "leaseExpiresAt": now + timedelta(seconds=lease_seconds), "heartbeatAt": now},
        inc={"attempts": 1},
        minimum={"startedAt": now},
        unset=(SEND_PENDING,),
    )


def due_by(now: datetime) -> datetime:
    """A job whose nextAttemptAt is not after this may be claimed now."""
    return now + timedelta(seconds=CLAIM_EARLY_SECONDS)


def not_due(job: UploadJob, now: datetime) -> bool:
    """A waiting job whose next attempt (a retry's backoff, a master's re-check) is still ahead."""
    return job.status == JobStatus.WAITING and job.next_attempt_at is not None and job.next_attempt_at > due_by(now)


def lease_expired(job: UploadJob, store: JobStore) -> bool:
    return job.status == JobStatus.ACTIVE and lease_expired_at(job.lease_expires_at, store.now())


def release_expired(store: JobStore, job: UploadJob, actor: str) -> UploadJob | None:
    """An active job whose lease expired: waiting if attempts are left (or a cancel is requested),
    else failed STALLED.

    None when the guard did not hold (the lease was renewed, or another actor moved the job).
    """
    guard = expired_lease(job, store.now())
    # A requested cancel beats STALLED: back to waiting, where the caller finishes the cancel.
    if job.attempts < job.max_attempts or job.cancel_requested:
        reason = "lease expired: the previous worker stopped; taken over"
        return requeue_expired(store, job, actor=actor, reason=reason, condition=guard)
    detail = f"lease expired at {job.lease_expires_at}, {job.attempts} of {job.max_attempts} attempts"
    return stall_expired(store, job, actor=actor, detail=detail, condition=guard)


def renew(
    store: JobStore, job_id: str, owner: str, lease_seconds: int, update: Mapping[str, Any] | None = None
) -> UploadJob | None:
    """Extend the lease (with any other `update` in the same write); None when we no longer hold it."""
    now = store.now()
    combined: dict[str, Any] = {key: dict(value) for key, value in (update or {}).items()}
    combined.setdefault("$set", {}).update(
        {"leaseExpiresAt": now + timedelta(seconds=lease_seconds), "heartbeatAt": now, "updatedAt": now}
    )
    return store.update_fields(job_id, owned(owner), combined)
