"""SPEC 3's state rules as pure functions: the store turns them into guarded updates."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.jobs.model import HISTORY_LIMIT, HistoryEntry, JobStatus

WAITING, ACTIVE, COMPLETED, FAILED, CANCELLED = (
    JobStatus.WAITING,
    JobStatus.ACTIVE,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
FINISHED: frozenset[JobStatus] = frozenset({COMPLETED, FAILED, CANCELLED})
CANCELLABLE: frozenset[JobStatus] = frozenset({WAITING, ACTIVE})
RETRYABLE: frozenset[JobStatus] = frozenset({FAILED, CANCELLED})
CLEANABLE: frozenset[JobStatus] = frozenset({FAILED, CANCELLED})

# (from, to) pairs that SPEC 3 allows; nothing else is ever written.
TRANSITIONS: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (WAITING, ACTIVE),
        (ACTIVE, WAITING),
        (ACTIVE, COMPLETED),
        (ACTIVE, FAILED),
        (WAITING, CANCELLED),
        (ACTIVE, CANCELLED),
        (FAILED, WAITING),
        (CANCELLED, WAITING),
        # A waiting job can fail without running: dead-lettered message, or invalid before claim.
        (WAITING, FAILED),
    }
)

MAX_BACKOFF_SECONDS = 900  # SQS DelaySeconds ceiling
BASE_BACKOFF_SECONDS = 2.0


def allowed(source: JobStatus | str, target: JobStatus | str) -> bool:
    return (JobStatus(source), JobStatus(target)) in TRANSITIONS


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which `target` may be reached: the guard of a conditional update."""
    return frozenset(src for src, dst in TRANSITIONS if dst == target)


def can_cancel(status: JobStatus | str) -> bool:
    return JobStatus(status) in CANCELLABLE


def is_finished(status: JobStatus | str) -> bool:
    return JobStatus(status) in FINISHED


def backoff_seconds(attempt: int, rand: Callable[[], float] = random.random) -> int:
    """Exponential backoff with full jitter, capped at SQS's 900 s: attempt 1 → up to 2 s, 2 → 4 s..."""
    ceiling = min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2 ** max(attempt - 1, 0))
    return max(1, int(ceiling * (0.5 + rand() / 2)))


def history_push(
    source: JobStatus | str | None, target: JobStatus | str, *, at: datetime, reason: str, actor: str
) -> dict[str, Any]:
    """A `$push` that appends one state change and keeps only the last HISTORY_LIMIT entries."""
    entry = HistoryEntry(
        at=at, from_=JobStatus(source) if source else None, to=JobStatus(target), reason=reason, actor=actor
    )
    return {"history": {"$each": [entry.model_dump(mode="python", by_alias=True)], "$slice": -HISTORY_LIMIT}}


def status_fields(target: JobStatus | str, now: datetime) -> dict[str, Any]:
    """Fields that follow from entering `target` (canCancel, finishedAt, ...)."""
    target = JobStatus(target)
    fields: dict[str, Any] = {"status": target.value, "canCancel": target in CANCELLABLE, "updatedAt": now}
    if target in FINISHED:
        fields["finishedAt"] = now
        fields["leaseOwner"] = None
        fields["leaseExpiresAt"] = None
    if target == COMPLETED:
        fields["completedAt"] = now
    elif target == FAILED:
        fields["failedAt"] = now
    elif target == CANCELLED:
        fields["cancelledAt"] = now
    elif target == WAITING:
        fields["waitingSince"] = now
        fields["leaseOwner"] = None
        fields["leaseExpiresAt"] = None
        fields["finishedAt"] = None
    return fields
