"""Retention (SPEC 7): finished jobs past JOB_RETENTION_DAYS go; 0 keeps every job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.jobs.model import utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import remove_expired_jobs


def test_only_finished_jobs_older_than_the_retention_are_removed(
    maintenance: Any, store: JobStore, make_job: Any
) -> None:
    now = utcnow()
    for status in ("completed", "failed", "cancelled"):
        make_job(jobId=f"old-{status}", status=status, finishedAt=now - timedelta(days=8))
    make_job(jobId="young", status="completed", finishedAt=now - timedelta(days=6))
    make_job(jobId="waiting-for-ages", now=now - timedelta(days=60))

    assert remove_expired_jobs(maintenance, 7) == 3
    assert {d["jobId"] for d in store.collection.find({})} == {"young", "waiting-for-ages"}


def test_a_retention_of_zero_days_keeps_every_job(maintenance: Any, store: JobStore, make_job: Any) -> None:
    make_job(status="completed", finishedAt=utcnow() - timedelta(days=3650))

    assert remove_expired_jobs(maintenance, 0) == 0
    assert store.collection.count_documents({}) == 1
