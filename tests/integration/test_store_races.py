"""Many threads racing the same transition produce exactly one winner (SPEC 3), on the store in use."""

from __future__ import annotations

import sys
from typing import Any

from chalicelib.jobs import states
from chalicelib.jobs.model import CreateJobRequest, JobStatus, new_job_document, utcnow
from chalicelib.jobs.store import JobStore

THREADS = 8


def make_job(store: JobStore, job_id: str) -> None:
    request = CreateJobRequest.model_validate(
        {
            "jobId": job_id,
            "jobType": "upload-hls-to-s3",
            "resourceType": "film",
            "resourceId": "64b7f0c2a1b2c3d4e5f60718",
            "hlsDir": "film/720p",
            "label": "720p",
        }
    )
    store.insert(new_job_document(request, bucket="media", max_attempts=5, now=utcnow()))


def claim(store: JobStore, job_id: str, owner: str) -> Any:
    return store.transition(
        job_id,
        JobStatus.ACTIVE,
        reason="claim",
        actor=owner,
        set_fields={"leaseOwner": owner},
        inc={"attempts": 1},
    )


def test_one_claim_wins_per_job(store: JobStore, race: Any) -> None:
    job_ids = [f"job-{i}" for i in range(50)]
    for job_id in job_ids:
        make_job(store, job_id)
    for job_id in job_ids:
        results = race(*[lambda j=job_id, w=w: claim(store, j, f"worker-{w}") for w in range(THREADS)])
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, job_id
        job = store.get(job_id)
        assert job.attempts == 1
        assert job.lease_owner == winners[0].lease_owner
        assert [h.to for h in job.history] == ["waiting", "active"]


def test_cancel_racing_completion_ends_in_exactly_one(store: JobStore, race: Any) -> None:
    outcomes = set()
    for index in range(40):
        job_id = f"race-{index}"
        make_job(store, job_id)
        claim(store, job_id, "worker")

        def complete(j: str = job_id) -> Any:
            return store.transition(j, JobStatus.COMPLETED, reason="done", actor="worker")

        def cancel(j: str = job_id) -> Any:
            return store.transition(j, JobStatus.CANCELLED, reason="cancel", actor="maintenance")

        results = race(complete, cancel, complete, cancel)
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        final = store.get(job_id)
        assert final.status == winners[0].status
        assert [h.to for h in final.history][-1] == final.status
        assert len(final.history) == 3
        outcomes.add(final.status)
    assert outcomes <= {"completed", "cancelled"}


def test_a_finished_job_is_never_overwritten(store: JobStore) -> None:
    make_job(store, "done")
    claim(store, "done", "worker")
    assert store.transition("done", JobStatus.COMPLETED, reason="done", actor="worker") is not None
    for target in (JobStatus.ACTIVE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.COMPLETED):
        sources = [s for s in JobStatus if states.allowed(s, target)]
        assert store.transition("done", target, reason="late", actor="other", sources=sources) is None
    assert store.get("done").status == "completed"


def test_history_keeps_the_last_fifty_changes(store: JobStore) -> None:
    make_job(store, "busy")
    for _ in range(40):
        claim(store, "busy", "worker")
        store.transition("busy", JobStatus.WAITING, reason="continuation", actor="worker")
    history = store.get("busy").history
    assert len(history) == 50
    assert history[-1].to == "waiting"
    assert history[-1].from_ == "active"


def test_threads_claiming_any_waiting_job_never_share_one(store: JobStore, race: Any) -> None:
    """The race SPEC 10 measured on bare mongomock: each waiting job is claimed exactly once."""
    total = 300
    for index in range(total):
        make_job(store, f"pool-{index}")
    collection = store.collection

    def drain(owner: str) -> list[str]:
        claimed = []
        while True:
            document = collection.find_one_and_update(
                {"status": "waiting"},
                {"$set": {"status": "active", "leaseOwner": owner}},
                return_document=True,
            )
            if document is None:
                return claimed
            claimed.append(document["jobId"])

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose any interleaving
    try:
        results = race(*[lambda w=w: drain(f"worker-{w}") for w in range(THREADS)])
    finally:
        sys.setswitchinterval(previous)
    claimed = [job_id for result in results for job_id in result]
    assert len(claimed) == total
    assert len(set(claimed)) == total
