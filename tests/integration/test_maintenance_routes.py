"""The maintenance routes and the schedule, through chalice.test.Client (SPEC 4, SPEC 7)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.store import JobStore

BASE = "/v1/studio/upload-jobs"


def post(api: Any, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    payload = json.dumps(body) if body is not None else ""
    return api.http.post(path, headers=api.admin_headers if headers is None else headers, body=payload)


@pytest.mark.parametrize("path", [f"{BASE}/j/cleanup", f"{BASE}/j/sync", f"{BASE}/fix-stuck"])
def test_maintenance_routes_need_an_admin_token(api: Any, path: str) -> None:
    assert post(api, path, headers={}).status_code == 401


def test_cleanup_answers_its_counts_and_refuses_jobs_it_may_not_clean(api: Any, make_job: Any, bucket: str) -> None:
    make_job(jobId="failed", status="failed", bucketName=bucket)
    make_job(jobId="running", status="active")

    cleaned = post(api, f"{BASE}/failed/cleanup")
    assert cleaned.status_code == 200
    assert cleaned.json_body == {"abortedUploads": 0, "deletedObjects": 0, "removedFiles": 0}
    assert post(api, f"{BASE}/running/cleanup", {"removeSource": False}).status_code == 409
    assert post(api, f"{BASE}/nobody/cleanup").status_code == 404
    refused = post(api, f"{BASE}/failed/cleanup", {"removeSources": True})
    assert refused.status_code == 400
    assert "removeSources" in refused.json_body["Message"]


def test_sync_answers_what_it_did(api: Any, make_job: Any) -> None:
    make_job(jobId="dead", status="active", attempts=1, leaseOwner="w", leaseExpiresAt=utcnow() - timedelta(minutes=5))

    response = post(api, f"{BASE}/dead/sync")

    assert response.status_code == 200
    assert response.json_body["jobId"] == "dead"
    assert (response.json_body["before"], response.json_body["after"]) == ("active", "waiting")
    assert response.json_body["action"] == "requeued"
    assert response.json_body["reason"]
    assert post(api, f"{BASE}/nobody/sync").status_code == 404


def test_fix_stuck_answers_its_counts(api: Any, make_job: Any) -> None:
    make_job(status="active", attempts=5, leaseOwner="w", leaseExpiresAt=utcnow() - timedelta(minutes=5))
    make_job(jobId="healthy")

    response = post(api, f"{BASE}/fix-stuck")

    assert response.status_code == 200
    assert response.json_body == {"scanned": 1, "requeued": 0, "failed": 1, "cancelled": 0}


def test_the_schedule_fixes_stuck_jobs_and_removes_finished_jobs_past_retention(
    api: Any, make_job: Any, store: JobStore
) -> None:
    now = utcnow()
    make_job(jobId="old-done", status="completed", finishedAt=now - timedelta(days=31))
    make_job(jobId="old-failed", status="failed", finishedAt=now - timedelta(days=31))
    make_job(jobId="recent-done", status="completed", finishedAt=now - timedelta(days=29))
    make_job(jobId="old-running", status="active", leaseOwner="w", leaseExpiresAt=now + timedelta(minutes=1))
    make_job(jobId="dead", status="active", attempts=1, leaseOwner="w", leaseExpiresAt=now - timedelta(minutes=5))
    event = api.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])

    response = api.lambda_.invoke("scheduled_maintenance", event)

    assert response.payload == {
        "fixStuck": {"scanned": 1, "requeued": 1, "failed": 0, "cancelled": 0},
        "pendingSends": {"sent": 0},
        "retention": {"deleted": 2},
    }
    remaining = {d["jobId"]: d["status"] for d in store.collection.find({})}
    assert remaining == {"recent-done": "completed", "old-running": "active", "dead": JobStatus.WAITING.value}
