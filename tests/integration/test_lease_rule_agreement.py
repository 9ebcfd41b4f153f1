"""An active job with no lease (null or missing) is expired for every actor alike: the worker that
receives its message takes it over, sync and fix-stuck re-queue it, a dead letter fails it; and
the store's query finds exactly the jobs the pure rule calls expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.recovery import lease_expired_at, lease_not_live
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import fix_stuck, sync_job
from chalicelib.usecases.dead_letter import handle_dead_letter
from chalicelib.worker import lease

NO_LEASE = {"null": {"leaseExpiresAt": None}, "missing": {}}


def active_without_lease(make_job: Any, case: str) -> Any:
    return make_job(status="active", attempts=1, leaseOwner="gone", **NO_LEASE[case])


@pytest.mark.parametrize("case", sorted(NO_LEASE))
def test_the_worker_takes_over_an_active_job_with_no_lease(store: JobStore, make_job: Any, case: str) -> None:
    job = active_without_lease(make_job, case)

    assert lease.lease_expired(job, store)
    released = lease.release_expired(store, job, "worker-2")

    assert released is not None and released.status == JobStatus.WAITING
    claimed = lease.claim(store, job.job_id, "worker-2", lease_seconds=120)
    assert claimed is not None and claimed.lease_owner == "worker-2"


@pytest.mark.parametrize("case", sorted(NO_LEASE))
def test_sync_and_fix_stuck_requeue_an_active_job_with_no_lease(maintenance: Any, make_job: Any, case: str) -> None:
    synced = active_without_lease(make_job, case)
    scanned = make_job(jobId="scanned", status="active", attempts=1, leaseOwner="gone", **NO_LEASE[case])

    assert sync_job(synced.job_id, maintenance)["action"] == "requeued"
    assert fix_stuck(maintenance) == {"scanned": 1, "requeued": 1, "failed": 0, "cancelled": 0}
    assert maintenance.store.get(scanned.job_id).status == JobStatus.WAITING


@pytest.mark.parametrize("case", sorted(NO_LEASE))
def test_a_dead_letter_fails_an_active_job_with_no_lease(maintenance: Any, make_job: Any, case: str) -> None:
    job = active_without_lease(make_job, case)

    handle_dead_letter(f'{{"v": 1, "jobId": "{job.job_id}"}}', 5, maintenance)

    assert maintenance.store.get(job.job_id).error_code == "DEAD_LETTERED"


def test_the_query_finds_exactly_the_jobs_the_rule_calls_expired(store: JobStore, make_job: Any) -> None:
    now = utcnow()
    leases = {
        "null": {"leaseExpiresAt": None},
        "missing": {},
        "past": {"leaseExpiresAt": now - timedelta(seconds=1)},
        "now": {"leaseExpiresAt": now},
        "future": {"leaseExpiresAt": now + timedelta(seconds=60)},
    }
    jobs = {name: make_job(jobId=name, status="active", **fields) for name, fields in leases.items()}

    found = {d["jobId"] for d in store.scan({"status": "active", **lease_not_live(now)}, limit=10)}

    assert found == {name for name, job in jobs.items() if lease_expired_at(job.lease_expires_at, now)}
    assert found == {"null", "missing", "past"}
