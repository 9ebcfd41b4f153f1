"""fix-stuck's indexed queries find exactly the jobs that `diagnose` (what sync uses) would fix,
on every combination of status, lease, cancel flag, attempts and times; each job matches one rule."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from chalicelib.jobs.model import JobStatus, UploadJob, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance.rules import RULES, Fix, Moment, diagnose

STUCK_AFTER = timedelta(seconds=900)
MISSING = object()


def grid_documents(store: JobStore, make_job: Any, now: datetime) -> None:
    old, recent, future = now - timedelta(hours=1), now - timedelta(seconds=60), now + timedelta(seconds=60)
    leases = [MISSING, None, old, future]
    cancel_flags = [MISSING, False, True]
    times = [  # nextAttemptAt, updatedAt, waitingSince
        (old, old, old),
        (recent, old, old),
        (old, recent, old),
        (old, old, recent),
        (future, old, old),
        (MISSING, old, MISSING),
    ]
    combos = itertools.product(JobStatus, leases, cancel_flags, (1, 5), times)
    for number, (status, lease, cancel, attempts, (next_at, updated, since)) in enumerate(combos):
        fields = {
            "jobId": f"job-{number}",
            "status": status.value,
            "attempts": attempts,
            "leaseExpiresAt": lease,
            "cancelRequested": cancel,
            "nextAttemptAt": next_at,
            "updatedAt": updated,
            "waitingSince": since,
        }
        job = make_job(**{k: v for k, v in fields.items() if v is not MISSING}, now=old)
        missing = [name for name, value in fields.items() if value is MISSING]
        if missing:
            store.collection.update_one({"jobId": job.job_id}, {"$unset": dict.fromkeys(missing, "")})


def test_each_rule_query_matches_exactly_the_jobs_diagnose_would_fix(store: JobStore, make_job: Any) -> None:
    now = utcnow()
    grid_documents(store, make_job, now)
    moment = Moment(now, STUCK_AFTER)
    jobs = [UploadJob.from_document(d) for d in store.collection.find({})]
    needing = {job.job_id: diagnose(job, moment).fix for job in jobs}
    assert len(jobs) == 720
    matched: dict[str, list[str]] = {}
    for rule in RULES:
        found = {d["jobId"] for d in store.collection.find(rule.query(moment))}
        expected = {job_id for job_id, fix in needing.items() if fix in rule.fixes}
        assert found == expected, rule.name
        for job_id in found:
            matched.setdefault(job_id, []).append(rule.name)
    assert all(len(names) == 1 for names in matched.values())
    assert set(matched) == {job_id for job_id, fix in needing.items() if fix != Fix.NONE}
    assert set(needing.values()) == set(Fix)
