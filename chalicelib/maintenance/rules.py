"""SPEC 7's rules for a job that needs fixing, as pure functions: no I/O here.

Each rule exists twice, in forms that must agree (tests check they do on the embedded store):
`diagnose` judges one job already read (sync), `Rule.query` finds every job the rule applies to
(fix-stuck) on an indexed field of MAINTENANCE_INDEXES, and `Rule.guard` is the condition the
fixing write re-checks atomically, so that a worker heartbeating at the same moment wins or loses
cleanly. The rules are disjoint: a job with `cancelRequested` is only ever cancelled.

A missing time counts as long past (`{"$not": {"$gte": t}}` matches null and absent fields).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.jobs.model import JobStatus, UploadJob, iso_z
from chalicelib.jobs.recovery import lease_expired_at, lease_not_live

NOT_CANCEL_REQUESTED = {"cancelRequested": {"$ne": True}}


class Fix(StrEnum):
    """What maintenance does to a job."""

    NONE = "none"
    REQUEUE = "requeue"  # active, lease expired, attempts left: back to waiting, re-sent
    STALL = "stall"  # active, lease expired, no attempts left: failed STALLED
    RESEND = "resend"  # waiting, untouched long after its next attempt was due: message re-sent
    CANCEL = "cancel"  # cancel requested and no live lease: cancelled


# The `action` that sync answers for each fix (SPEC 4).
ACTIONS: dict[Fix, str] = {
    Fix.NONE: "none",
    Fix.REQUEUE: "requeued",
    Fix.RESEND: "requeued",
    Fix.STALL: "failed",
    Fix.CANCEL: "cancelled",
}


@dataclass(frozen=True)
class Diagnosis:
    fix: Fix
    reason: str


@dataclass(frozen=True)
class Moment:
    """The instant one maintenance pass judges by, and its stuck cutoff."""

    now: datetime
    stuck_after: timedelta

    @property
    def cutoff(self) -> datetime:
        return self.now - self.stuck_after


def not_after(moment: datetime) -> dict[str, Any]:
    """Before `moment`, or missing."""
    return {"$not": {"$gte": moment}}


def _lease_live(job: UploadJob, now: datetime) -> bool:
    return not lease_expired_at(job.lease_expires_at, now)


def _before(value: datetime | None, moment: datetime) -> bool:
    return value is None or value < moment


def _untouched(job: UploadJob, cutoff: datetime) -> bool:
    return all(_before(value, cutoff) for value in (job.next_attempt_at, job.updated_at, job.waiting_since))


def diagnose(job: UploadJob, moment: Moment) -> Diagnosis:
    """Which fix (if any) this job needs now, with a sentence saying why."""
    now = moment.now
    if job.is_finished:
        return Diagnosis(Fix.NONE, f"The job is {job.status}: nothing to fix.")
    if job.cancel_requested:
        if _lease_live(job, now):
            return Diagnosis(Fix.NONE, "A cancel was requested; the worker holding the job finishes it.")
        return Diagnosis(Fix.CANCEL, "A cancel was requested and no live worker holds the job.")
    if job.status == JobStatus.ACTIVE:
        return _diagnose_active(job, now)
    if _untouched(job, moment.cutoff):
        due = iso_z(job.next_attempt_at) if job.next_attempt_at else "long ago"
        return Diagnosis(
            Fix.RESEND,
            f"The job has waited since its attempt was due ({due}) and no worker took it: its message was re-sent.",
        )
    return Diagnosis(Fix.NONE, "The job is waiting for a worker and is not overdue.")


def _diagnose_active(job: UploadJob, now: datetime) -> Diagnosis:
    if _lease_live(job, now):
        assert job.lease_expires_at is not None  # _lease_live checked it
        return Diagnosis(Fix.NONE, f"A worker holds the job until {iso_z(job.lease_expires_at)}.")
    used = f"{job.attempts} of {job.max_attempts} attempts used"
    if job.attempts < job.max_attempts:
        return Diagnosis(Fix.REQUEUE, f"The worker stopped answering (its lease expired); {used}: re-queued.")
    return Diagnosis(Fix.STALL, f"The worker stopped answering (its lease expired) and {used}.")


def _cancel_requested(moment: Moment) -> dict[str, Any]:
    return {"cancelRequested": True, **lease_not_live(moment.now)}


def _lease_expired(moment: Moment) -> dict[str, Any]:
    return {**lease_not_live(moment.now), **NOT_CANCEL_REQUESTED}


def _overdue_waiting(moment: Moment) -> dict[str, Any]:
    cutoff = moment.cutoff
    return {
        "nextAttemptAt": not_after(cutoff),
        "updatedAt": not_after(cutoff),
        "waitingSince": not_after(cutoff),
        **NOT_CANCEL_REQUESTED,
    }


@dataclass(frozen=True)
class Rule:
    """One of SPEC 7's rules as MongoDB filters: the scan, and the guard of the fixing write."""

    name: str
    fixes: tuple[Fix, ...]
    statuses: tuple[JobStatus, ...]
    condition: Callable[[Moment], dict[str, Any]]

    def query(self, moment: Moment) -> dict[str, Any]:
        """Every job the rule applies to: one query on an indexed field."""
        values = [status.value for status in self.statuses]
        status = values[0] if len(values) == 1 else {"$in": values}
        return {"status": status, **self.condition(moment)}

    def guard(self, job: UploadJob, moment: Moment) -> dict[str, Any]:
        """What the fixing write re-checks atomically (the status is the transition's own guard):
        the job still matches the rule and is still held by the lease owner that was read."""
        return {**self.condition(moment), "leaseOwner": job.lease_owner}


# The index each rule's query uses: (cancelRequested, status), (status, leaseExpiresAt),
# (status, nextAttemptAt).
CANCEL_REQUESTED = Rule("cancel requested", (Fix.CANCEL,), (JobStatus.ACTIVE, JobStatus.WAITING), _cancel_requested)
LEASE_EXPIRED = Rule("lease expired", (Fix.REQUEUE, Fix.STALL), (JobStatus.ACTIVE,), _lease_expired)
OVERDUE_WAITING = Rule("overdue waiting", (Fix.RESEND,), (JobStatus.WAITING,), _overdue_waiting)
RULES = (CANCEL_REQUESTED, LEASE_EXPIRED, OVERDUE_WAITING)
