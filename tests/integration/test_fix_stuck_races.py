"""Maintenance racing workers: a live heartbeat is never stolen, a worker whose job was re-queued
can no longer finish it, and a cancel racing a completion ends in exactly one of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import fix_stuck
from chalicelib.maintenance.rules import Moment, diagnose
from chalicelib.maintenance.stuck import apply_fix
from chalicelib.worker.lease import renew
from chalicelib.worker.outcomes import Finisher
from chalicelib.worker.progress import ProgressRecorder

LEASE_SECONDS = 120
ROUNDS = 20


def expired_job(make_job: Any, number: int, **fields: Any) -> Any:
    return make_job(
        jobId=f"race-{number}",
        status="active",
        attempts=1,
        leaseOwner=f"owner-{number}",
        leaseExpiresAt=utcnow() - timedelta(milliseconds=1),
        **fields,
    )


def finisher(maintenance: Any, job: Any) -> Finisher:
    """The worker's own ending of a turn, as the job's lease owner (no engine call is made:
    the recorder holds no open upload)."""
    return Finisher(
        store=maintenance.store,
        queue=maintenance.queue,
        notifier=maintenance.notifier,
        settings=maintenance.settings,
        engine=None,  # type: ignore[arg-type]
        job=job,
        owner=str(job.lease_owner),
        recorder=ProgressRecorder(),
    )


def test_a_heartbeat_read_after_the_diagnosis_wins_over_the_fix(maintenance: Any, make_job: Any) -> None:
    job = expired_job(make_job, 0)
    moment = Moment(maintenance.store.now(), timedelta(seconds=900))
    diagnosis = diagnose(job, moment)

    renewed = renew(maintenance.store, job.job_id, str(job.lease_owner), LEASE_SECONDS)
    fixed = apply_fix(maintenance, job, diagnosis, moment)

    assert renewed is not None and fixed is None
    assert maintenance.store.get(job.job_id).lease_owner == job.lease_owner


def test_fix_stuck_racing_a_heartbeat_never_leaves_both_winners(maintenance: Any, make_job: Any, race: Any) -> None:
    store = maintenance.store
    for number in range(ROUNDS):
        job = expired_job(make_job, number)
        heartbeat, fixed = race(
            lambda job=job: renew(store, job.job_id, str(job.lease_owner), LEASE_SECONDS),
            lambda: fix_stuck(maintenance)["requeued"],
        )
        after = store.get(job.job_id)
        if heartbeat is not None:  # the worker kept its job
            assert (fixed, after.status, after.lease_owner) == (0, JobStatus.ACTIVE, job.lease_owner)
        else:  # maintenance took it back: the worker learns its lease is lost
            assert (fixed, after.status, after.lease_owner) == (1, JobStatus.WAITING, None)


def test_a_worker_back_after_its_job_was_requeued_cannot_complete_or_renew_it(maintenance: Any, make_job: Any) -> None:
    job = expired_job(make_job, 0)
    assert fix_stuck(maintenance)["requeued"] == 1

    result = finisher(maintenance, job).complete(public_url="u", total_bytes=1, total_files=1)

    assert result.action == "lease-lost"
    assert renew(maintenance.store, job.job_id, str(job.lease_owner), LEASE_SECONDS) is None
    assert maintenance.store.get(job.job_id).status == JobStatus.WAITING
    assert [name for name, *_ in maintenance.notifier.events] == ["JobQueued"]


def test_cancel_racing_completion_ends_in_exactly_one(
    maintenance: Any, make_job: Any, store: JobStore, race: Any
) -> None:
    """A slow worker completing while maintenance finishes a cancel requested during its silence."""
    for number in range(ROUNDS):
        job = expired_job(make_job, number, cancelRequested=True)
        completed, fixed = race(
            lambda job=job: finisher(maintenance, job).complete(public_url="u", total_bytes=1, total_files=1),
            lambda: fix_stuck(maintenance)["cancelled"],
        )
        after = store.get(job.job_id)
        events = maintenance.notifier.names(job.job_id)
        if after.status == JobStatus.COMPLETED:
            assert (completed.action, fixed) == ("completed", 0)
            assert "JobCancelled" not in events and "JobCompleted" in events
        else:
            assert (after.status, completed.action, fixed) == (JobStatus.CANCELLED, "lease-lost", 1)
            assert events == ["JobCancelled"]
