"""SPEC 7's rules on one job: which fix maintenance makes, judged at one instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import CreateJobRequest, JobStatus, UploadJob, new_job_document
from chalicelib.maintenance.rules import ACTIONS, Fix, Moment, diagnose

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
STUCK_AFTER = timedelta(seconds=900)
MOMENT = Moment(NOW, STUCK_AFTER)
LONG_AGO = NOW - timedelta(hours=2)


def job(**fields: Any) -> UploadJob:
    request = CreateJobRequest(
        job_type="upload-hls-to-s3",
        resource_type="film",
        resource_id="64b7f0c2a1b2c3d4e5f60718",
        hls_dir="a",
        label="720p",
    )
    document = new_job_document(request, bucket="media", max_attempts=3, now=LONG_AGO)
    return UploadJob.model_validate({**document, **fields})


def active(expires_in: timedelta | None, attempts: int = 1, **fields: Any) -> UploadJob:
    expires = NOW + expires_in if expires_in is not None else None
    return job(status="active", leaseOwner="w-1", leaseExpiresAt=expires, attempts=attempts, **fields)


def test_active_job_with_a_live_lease_is_left_to_its_worker() -> None:
    assert diagnose(active(timedelta(seconds=5)), MOMENT).fix == Fix.NONE


def test_expired_lease_with_attempts_left_is_requeued() -> None:
    diagnosis = diagnose(active(timedelta(seconds=-1), attempts=2), MOMENT)
    assert diagnosis.fix == Fix.REQUEUE
    assert "2 of 3 attempts" in diagnosis.reason


def test_expired_lease_with_no_attempts_left_stalls() -> None:
    assert diagnose(active(timedelta(seconds=-1), attempts=3), MOMENT).fix == Fix.STALL


def test_active_job_without_a_lease_counts_as_expired() -> None:
    assert diagnose(active(None), MOMENT).fix == Fix.REQUEUE


def test_requested_cancel_on_a_dead_worker_is_finished() -> None:
    assert diagnose(active(timedelta(seconds=-1), cancelRequested=True), MOMENT).fix == Fix.CANCEL


def test_requested_cancel_with_a_live_worker_is_left_to_that_worker() -> None:
    assert diagnose(active(timedelta(seconds=30), cancelRequested=True), MOMENT).fix == Fix.NONE


def test_cancel_wins_over_requeue_even_with_attempts_left() -> None:
    assert diagnose(active(timedelta(seconds=-1), attempts=0, cancelRequested=True), MOMENT).fix == Fix.CANCEL


def test_waiting_job_with_a_requested_cancel_is_cancelled() -> None:
    assert diagnose(job(cancelRequested=True), MOMENT).fix == Fix.CANCEL


def test_waiting_job_untouched_long_after_its_attempt_was_due_is_resent() -> None:
    assert diagnose(job(), MOMENT).fix == Fix.RESEND


@pytest.mark.parametrize("field", ["nextAttemptAt", "updatedAt", "waitingSince"])
def test_waiting_job_touched_within_stuck_after_is_left_alone(field: str) -> None:
    recent = NOW - STUCK_AFTER + timedelta(seconds=1)
    assert diagnose(job(**{field: recent}), MOMENT).fix == Fix.NONE


def test_waiting_job_delayed_by_a_backoff_is_not_overdue() -> None:
    assert diagnose(job(nextAttemptAt=NOW + timedelta(seconds=600)), MOMENT).fix == Fix.NONE


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_finished_jobs_are_never_touched(status: JobStatus) -> None:
    finished = job(status=status, cancelRequested=True, leaseExpiresAt=LONG_AGO, attempts=9)
    assert diagnose(finished, MOMENT).fix == Fix.NONE


def test_sync_reports_resend_and_requeue_both_as_requeued() -> None:
    assert {ACTIONS[Fix.RESEND], ACTIONS[Fix.REQUEUE]} == {"requeued"}
    assert (ACTIONS[Fix.STALL], ACTIONS[Fix.CANCEL], ACTIONS[Fix.NONE]) == ("failed", "cancelled", "none")
