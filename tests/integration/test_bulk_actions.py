"""`POST /upload-jobs/bulk` through chalice.test.Client: each action on jobs in mixed states, the
skip reasons, the filter and its limit, bad bodies, and a bulk cancel racing a worker."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.http import error_code
from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.usecases import bulk
from tests.factories import hls_document

BULK = "/v1/studio/upload-jobs/bulk"
RENDITION = "films/64b7f0c2a1b2c3d4e5f60718/hls/720p/"


def post_bulk(api: Any, body: Any) -> Any:
    return api.http.post(BULK, headers=api.admin_headers, body=json.dumps(body))


def queued_job_ids(sqs: Any, url: str) -> list[str]:
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return sorted(json.loads(m["Body"])["jobId"] for m in received.get("Messages", []))


def statuses(store: Any, *job_ids: str) -> dict[str, str | None]:
    return {job_id: (job.status if (job := store.find(job_id)) else None) for job_id in job_ids}


def test_retry_requeues_failed_and_cancelled_and_skips_the_rest_by_reason(
    api: Any, make_job: Any, store: Any, sqs: Any, queues: dict[str, str]
) -> None:
    make_job(jobId="f1", status="failed", errorCode="NETWORK")
    make_job(jobId="c1", status="cancelled")
    make_job(jobId="w1", status="waiting")
    make_job(jobId="done", status="completed")
    make_job(jobId="gone-sources", status="failed", sourceRemoved=True)

    answer = post_bulk(api, {"action": "retry", "jobIds": ["f1", "c1", "w1", "done", "gone-sources", "nope", "f1"]})

    assert answer.status_code == 200
    assert answer.json_body == {
        "matched": 6,  # the repeated f1 counts once
        "done": 2,
        "skipped": {"not-retryable": 2, "source-removed": 1, "not-found": 1},
        "failed": [],
        "notReached": [],
    }
    assert statuses(store, "f1", "c1", "w1", "done") == {
        "f1": "waiting",
        "c1": "waiting",
        "w1": "waiting",
        "done": "completed",
    }
    assert store.get("f1").retry_count == 1  # retried once, not twice
    assert store.get("f1").error_code is None
    assert queued_job_ids(sqs, queues["upload-hls-to-s3"]) == ["c1", "f1"]


def test_cancel_cancels_waiting_requests_active_and_skips_finished(api: Any, make_job: Any, store: Any) -> None:
    make_job(jobId="w1", status="waiting")
    make_job(jobId="a1", status="active", leaseOwner="worker-1")
    make_job(jobId="done", status="completed")
    make_job(jobId="f1", status="failed")

    answer = post_bulk(api, {"action": "cancel", "jobIds": ["w1", "a1", "done", "f1", "nope"]}).json_body

    assert answer == {
        "matched": 5,
        "done": 2,
        "skipped": {"not-cancellable": 2, "not-found": 1},
        "failed": [],
        "notReached": [],
    }
    assert store.get("w1").status == "cancelled"
    active = store.get("a1")
    assert (active.status, active.cancel_requested) == ("active", True)  # the worker finishes the cancel
    assert statuses(store, "done", "f1") == {"done": "completed", "f1": "failed"}


def test_delete_removes_finished_jobs_and_cleans_failed_ones_first(
    api: Any, make_job: Any, store: Any, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key=RENDITION + "seg000.ts", Body=b"x")
    make_job(jobId="f1", bucketName=bucket, status="failed", writtenKeys=[RENDITION + "seg000.ts"])
    # Other renditions: a job writing into the same folder would keep the object (ownership.py).
    make_job(jobId="done", status="completed", label="1080p")
    make_job(jobId="a1", status="active", label="1080p")

    answer = post_bulk(api, {"action": "delete", "jobIds": ["f1", "done", "a1", "nope"]}).json_body

    assert answer == {
        "matched": 4,
        "done": 2,
        "skipped": {"not-deletable": 1, "not-found": 1},
        "failed": [],
        "notReached": [],
    }
    assert statuses(store, "f1", "done", "a1") == {"f1": None, "done": None, "a1": "active"}
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_cleanup_deletes_what_failed_jobs_wrote_and_keeps_them_retryable(
    api: Any, make_job: Any, store: Any, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key=RENDITION + "seg000.ts", Body=b"x")
    make_job(jobId="f1", bucketName=bucket, status="failed", progress=40, writtenKeys=[RENDITION + "seg000.ts"])
    make_job(jobId="w1", status="waiting", label="1080p")
    make_job(
        jobId="busy",
        label="480p",
        status="cancelled",
        cleanupOwner="other",
        cleanupUntil=utcnow() + timedelta(minutes=5),
    )

    answer = post_bulk(api, {"action": "cleanup", "jobIds": ["f1", "w1", "busy"]}).json_body

    assert answer == {
        "matched": 3,
        "done": 1,
        "skipped": {"not-cleanable": 1, "cleanup-running": 1},
        "failed": [],
        "notReached": [],
    }
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    cleaned = store.get("f1")
    assert (cleaned.status, cleaned.progress, cleaned.source_removed) == ("failed", 0, False)


def test_a_job_whose_bucket_fails_is_listed_as_failed_and_the_others_go_on(
    api: Any, make_job: Any, store: Any, s3: Any, bucket: str
) -> None:
    make_job(jobId="lost", bucketName="no-such-bucket", status="failed", writtenKeys=[RENDITION + "seg000.ts"])
    make_job(jobId="f1", bucketName=bucket, status="failed")

    answer = post_bulk(api, {"action": "cleanup", "jobIds": ["lost", "f1"]}).json_body

    assert (answer["matched"], answer["done"], answer["skipped"]) == (2, 1, {})
    assert answer["failed"] == [
        {"jobId": "lost", "Code": "InternalServerError", "Message": "could not cleanup the job"}
    ]
    assert store.get("lost").cleanup_owner is None  # its claim was released: a later cleanup can run


def test_a_filter_selects_like_the_list_route(api: Any, make_job: Any, store: Any) -> None:
    make_job(jobId="f-720", status="failed", label="720p")
    make_job(jobId="f-1080", status="failed", label="1080p")
    make_job(jobId="c-720", status="cancelled", label="720p")

    counted = post_bulk(api, {"action": "retry", "filter": {"status": "failed"}, "dryRun": True}).json_body
    assert counted == {"matched": 2, "done": 0, "skipped": {}, "failed": [], "notReached": []}
    assert statuses(store, "f-720", "f-1080") == {"f-720": "failed", "f-1080": "failed"}  # a count changes nothing

    answer = post_bulk(api, {"action": "retry", "filter": {"status": "failed", "label": "720p"}}).json_body

    assert answer == {"matched": 1, "done": 1, "skipped": {}, "failed": [], "notReached": []}
    assert statuses(store, "f-720", "f-1080", "c-720") == {
        "f-720": "waiting",
        "f-1080": "failed",
        "c-720": "cancelled",
    }


def test_a_filter_matching_more_than_the_limit_is_refused_whole(
    api: Any, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit made small, so the test inserts a few jobs and not a thousand.
    monkeypatch.setattr(bulk, "BULK_LIMIT", 3)
    for index in range(5):
        store.collection.insert_one(hls_document(f"f{index}", status="failed"))

    refused = post_bulk(api, {"action": "retry", "filter": {"status": "failed"}})

    assert refused.status_code == 409
    assert refused.json_body["Code"] == "ConflictError"
    assert "matches 5 jobs, more than the 3" in refused.json_body["Message"]
    assert {job.status for job in store.list(_all())[0]} == {"failed"}  # nothing was done
    counted = post_bulk(api, {"action": "retry", "filter": {"status": "failed"}, "dryRun": True})
    assert (counted.status_code, counted.json_body["matched"]) == (200, 5)  # the count goes beyond the limit
    narrowed = post_bulk(api, {"action": "retry", "filter": {"status": "failed", "q": "nothing-matches"}})
    assert narrowed.json_body == {"matched": 0, "done": 0, "skipped": {}, "failed": [], "notReached": []}


def _all() -> Any:
    from chalicelib.jobs.model import ListFilters

    return ListFilters(limit=500)


def test_jobs_not_reached_in_the_time_budget_are_counted_and_listed(
    maintenance: Any, make_job: Any, store: Any
) -> None:
    for job_id in ("w1", "w2", "w3", "w4"):
        make_job(jobId=job_id)
    ticks = iter(range(0, 1000, 8))  # each job takes 8 s of the 20 s budget

    request = bulk.BulkRequest.model_validate({"action": "cancel", "jobIds": ["w1", "w2", "w3", "w4"]})
    answer = bulk.run_bulk(request, maintenance, error_code, clock=lambda: float(next(ticks)))

    assert answer == {
        "matched": 4,
        "done": 2,
        "skipped": {"not-reached": 2},
        "failed": [],
        "notReached": ["w3", "w4"],
    }
    assert statuses(store, "w1", "w2", "w3", "w4") == {
        "w1": "cancelled",
        "w2": "cancelled",
        "w3": "waiting",
        "w4": "waiting",
    }


def test_a_thousand_ids_are_one_call(api: Any, make_job: Any) -> None:
    make_job(jobId="j0", status="failed")
    answer = post_bulk(api, {"action": "retry", "jobIds": [f"j{n}" for n in range(1000)]})
    assert answer.status_code == 200
    assert answer.json_body == {
        "matched": 1000,
        "done": 1,
        "skipped": {"not-found": 999},
        "failed": [],
        "notReached": [],
    }


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"action": "retry", "jobIds": ["a"], "filter": {"status": "failed"}}, "exactly one of jobIds and filter"),
        ({"action": "retry"}, "exactly one of jobIds and filter"),
        ({"action": "retry", "jobIds": []}, "jobIds"),
        ({"action": "retry", "jobIds": [f"j{n}" for n in range(1001)]}, "jobIds"),
        ({"action": "retry", "jobIds": [""]}, "jobIds.0"),
        ({"action": "retry", "jobIds": "a"}, "jobIds"),
        ({"action": "publish", "jobIds": ["a"]}, "action"),
        ({"jobIds": ["a"]}, "action"),
        ({"action": "retry", "jobIds": ["a"], "removeSource": True}, "removeSource"),
        ({"action": "retry", "filter": {"status": "lost"}}, "filter.status"),
        ({"action": "retry", "filter": {"limit": 5}}, "filter.limit"),
        ({"action": "retry", "jobIds": ["a"], "dryRun": True}, "dryRun"),
    ],
)
def test_bad_bodies_are_400_naming_the_problem(api: Any, make_job: Any, store: Any, body: Any, names: str) -> None:
    make_job(jobId="a", status="failed")
    response = post_bulk(api, body)
    assert response.status_code == 400
    assert response.json_body["Code"] == "BadRequestError"
    assert names in response.json_body["Message"]
    assert store.get("a").status == "failed"


def test_bulk_cancel_racing_a_worker_is_as_safe_as_single_cancels(
    maintenance: Any, store: Any, make_job: Any, race: Any
) -> None:
    """The worker claims and completes the jobs from the end of the list while the bulk cancel goes
    from its start: each job is either cancelled before any claim, or claimed and completed (the
    cancel then requested or skipped); never both, never a finished job overwritten."""
    job_ids = [f"race-{n:02d}" for n in range(40)]
    for job_id in job_ids:
        make_job(jobId=job_id)
    claimed: list[str] = []

    def worker() -> None:
        for job_id in reversed(job_ids):
            job = store.transition(job_id, JobStatus.ACTIVE, reason="claim", actor="worker", inc={"attempts": 1})
            if job is not None:
                claimed.append(job_id)
                store.transition(job_id, JobStatus.COMPLETED, reason="done", actor="worker")

    def bulk_cancel() -> dict[str, Any]:
        request = bulk.BulkRequest.model_validate({"action": "cancel", "jobIds": job_ids})
        return bulk.run_bulk(request, maintenance, error_code)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose any interleaving
    try:
        answer, _ = race(bulk_cancel, worker)
    finally:
        sys.setswitchinterval(previous)

    jobs = {job_id: store.get(job_id) for job_id in job_ids}
    cancelled = {job_id for job_id, job in jobs.items() if job.status == "cancelled"}
    completed = {job_id for job_id, job in jobs.items() if job.status == "completed"}
    assert cancelled | completed == set(job_ids)
    assert completed == set(claimed)  # a job the worker claimed was never cancelled under it
    for job_id in cancelled:
        assert [h.to for h in jobs[job_id].history] == ["waiting", "cancelled"]
        assert jobs[job_id].attempts == 0
    for job_id in completed:
        assert [h.to for h in jobs[job_id].history] == ["waiting", "active", "completed"]
    requested = {job_id for job_id in completed if jobs[job_id].cancel_requested}
    assert answer["matched"] == len(job_ids)
    assert answer["done"] == len(cancelled) + len(requested)
    assert answer["skipped"].get("not-cancellable", 0) == len(completed) - len(requested)
    assert answer["failed"] == []
