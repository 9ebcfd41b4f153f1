"""Every SPEC 4 route of the control plane, through chalice.test.Client, with SQS on moto's server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import JobStatus

BASE = "/v1/studio/upload-jobs"
RESOURCE = "64b7f0c2a1b2c3d4e5f60718"


def hls_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": RESOURCE,
        "resourceName": "The Long Take",
        "hlsDir": "films/long-take/720p",
        "label": "720p",
    }
    body.update(overrides)
    return body


def post(api: Any, path: str, body: Any = None) -> Any:
    payload = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return api.http.post(path, headers=api.admin_headers, body=payload)


def get(api: Any, path: str) -> Any:
    return api.http.get(path, headers=api.admin_headers)


def messages(sqs: Any, url: str) -> list[dict[str, Any]]:
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def finish(services: Any, job_id: str, status: JobStatus) -> None:
    """Drive a job to a finished state the way a worker would."""
    store = services.store
    store.transition(job_id, JobStatus.ACTIVE, reason="claim", actor="test", inc={"attempts": 1})
    store.transition(job_id, status, reason="test", actor="test")


def test_health_needs_no_token(api: Any) -> None:
    response = api.http.get("/v1/health")
    assert response.status_code == 200
    assert response.json_body == {"status": "ok"}


def test_create_inserts_a_waiting_job_and_sends_one_message(api: Any, sqs: Any, queues: dict[str, str]) -> None:
    response = post(api, BASE, hls_body(jobId="film-720p"))
    assert response.status_code == 201
    job = response.json_body
    assert job["jobId"] == "film-720p"
    assert job["status"] == "waiting"
    assert job["queueName"] == "upload-hls-to-s3"
    assert job["uploadType"] == "hls"
    assert job["contentType"] == "video"
    assert job["canCancel"] is True
    assert job["createdAt"].endswith("Z")
    assert [m["jobId"] for m in messages(sqs, queues["upload-hls-to-s3"])] == ["film-720p"]


def test_repeated_job_id_returns_the_existing_job_without_a_second_message(
    api: Any, sqs: Any, queues: dict[str, str]
) -> None:
    first = post(api, BASE, hls_body(jobId="same"))
    second = post(api, BASE, hls_body(jobId="same", resourceName="other"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json_body["resourceName"] == "The Long Take"
    assert len(messages(sqs, queues["upload-hls-to-s3"])) == 1
    assert get(api, f"{BASE}?limit=10").json_body["items"].__len__() == 1


def test_master_jobs_go_to_the_master_queue(api: Any, sqs: Any, queues: dict[str, str]) -> None:
    body = {
        "jobType": "upload-master-playlist",
        "resourceType": "episode",
        "resourceId": RESOURCE,
        "masterPlaylistPath": "ep1/master.m3u8",
        "subtitleLanguages": ["en", "fr"],
    }
    response = post(api, BASE, body)
    assert response.status_code == 201
    assert response.json_body["contentType"] == "playlist"
    assert response.json_body["uploadType"] == "master_playlist"
    assert len(messages(sqs, queues["upload-master-playlist"])) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (hls_body(resourceId="not-an-object-id"), "resourceId"),
        (hls_body(jobType="upload-everything"), "jobType"),
        (hls_body(resourceType="book"), "resourceType"),
        (hls_body(hlsDir=None), "hlsDir"),
        (hls_body(label=None), "label"),
        (hls_body(hlsDir="../../etc"), "hlsDir"),
        (hls_body(hlsDir="/etc/passwd"), "hlsDir"),
        (hls_body(hlsDir="s3://someone-elses-bucket/x"), "hlsDir"),
        (hls_body(uploadPath="../escape"), "uploadPath"),
        (hls_body(contentType="subtitle"), "contentType"),
        (hls_body(colour="blue"), "colour"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api: Any, body: dict[str, Any], field: str) -> None:
    response = post(api, BASE, body)
    assert response.status_code == 400
    assert response.json_body["Code"] == "BadRequestError"
    assert field in response.json_body["Message"]


def test_malformed_json_is_a_400(api: Any) -> None:
    response = post(api, BASE, "{not json")
    assert response.status_code == 400


def test_a_symlink_leaving_the_source_root_is_refused(api: Any, source_root: Any, tmp_path: Any) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (source_root / "escape").symlink_to(outside)
    response = post(api, BASE, hls_body(hlsDir="escape"))
    assert response.status_code == 400
    assert "SOURCE_ROOT" in response.json_body["Message"]


def test_get_one_job_and_404(api: Any) -> None:
    post(api, BASE, hls_body(jobId="known"))
    assert get(api, f"{BASE}/known").json_body["jobId"] == "known"
    missing = get(api, f"{BASE}/unknown")
    assert missing.status_code == 404
    assert missing.json_body["Code"] == "NotFoundError"


def test_list_filters_and_newest_first(api: Any, services: Any) -> None:
    post(api, BASE, hls_body(jobId="a", label="480p"))
    post(api, BASE, hls_body(jobId="b", label="720p", resourceType="episode"))
    post(api, BASE, {**hls_body(jobId="c", label="1080p"), "resourceName": "Another Film"})
    finish(services, "a", JobStatus.FAILED)
    items = get(api, BASE).json_body["items"]
    assert [job["jobId"] for job in items] == ["c", "b", "a"]
    assert [j["jobId"] for j in get(api, f"{BASE}?status=failed").json_body["items"]] == ["a"]
    assert [j["jobId"] for j in get(api, f"{BASE}?type=episode").json_body["items"]] == ["b"]
    assert [j["jobId"] for j in get(api, f"{BASE}?label=1080p").json_body["items"]] == ["c"]
    assert [j["jobId"] for j in get(api, f"{BASE}?q=another").json_body["items"]] == ["c"]
    assert len(get(api, f"{BASE}?jobType=upload-hls-to-s3&uploadType=hls&contentType=video").json_body["items"]) == 3
    assert get(api, f"{BASE}?resourceId={RESOURCE}").json_body["items"].__len__() == 3


def test_list_date_range(api: Any, services: Any) -> None:
    post(api, BASE, hls_body(jobId="old"))
    created = services.store.get("old").created_at
    later = (created + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    earlier = (created - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert get(api, f"{BASE}?from={later}").json_body["items"] == []
    assert [j["jobId"] for j in get(api, f"{BASE}?from={earlier}&to={later}").json_body["items"]] == ["old"]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=501", "limit=ten", "status=stuck", "type=book", "jobType=x", "resourceId=zz", "cursor=@@@"],
)
def test_bad_filters_are_400(api: Any, query: str) -> None:
    response = get(api, f"{BASE}?{query}")
    assert response.status_code == 400
    assert response.json_body["Code"] == "BadRequestError"


def test_cursor_pages_are_stable_under_concurrent_inserts(api: Any) -> None:
    for index in range(5):
        post(api, BASE, hls_body(jobId=f"job-{index}"))
    first = get(api, f"{BASE}?limit=2").json_body
    assert [j["jobId"] for j in first["items"]] == ["job-4", "job-3"]
    post(api, BASE, hls_body(jobId="job-new"))  # arrives between two page reads
    second = get(api, f"{BASE}?limit=2&cursor={first['nextCursor']}").json_body
    third = get(api, f"{BASE}?limit=2&cursor={second['nextCursor']}").json_body
    assert [j["jobId"] for j in second["items"]] == ["job-2", "job-1"]
    assert [j["jobId"] for j in third["items"]] == ["job-0"]
    assert third["nextCursor"] is None


def test_stats_counts_metrics_and_queue_depths(api: Any, services: Any) -> None:
    for job_id in ("s1", "s2", "s3", "s4"):
        post(api, BASE, hls_body(jobId=job_id))
    finish(services, "s1", JobStatus.COMPLETED)
    finish(services, "s2", JobStatus.FAILED)
    services.store.cancel("s3")
    stats = get(api, f"{BASE}/stats").json_body
    assert (stats["waiting"], stats["active"], stats["completed"], stats["failed"], stats["cancelled"]) == (
        1,
        0,
        1,
        1,
        1,
    )
    assert stats["total"] == 4
    assert stats["metrics"]["completionRate"] == pytest.approx(1 / 3, abs=1e-3)
    assert stats["metrics"]["failureRate"] == pytest.approx(1 / 3, abs=1e-3)
    assert stats["queues"]["upload-hls-to-s3"]["visible"] == 4
    assert stats["queues"]["upload-hls-to-s3"]["deadLetter"] == 0
    assert set(stats["queues"]) == {"upload-hls-to-s3", "upload-master-playlist"}


def test_retry_only_failed_or_cancelled(api: Any, services: Any, sqs: Any, queues: dict[str, str]) -> None:
    post(api, BASE, hls_body(jobId="r"))
    assert post(api, f"{BASE}/r/retry").status_code == 409
    finish(services, "r", JobStatus.FAILED)
    messages(sqs, queues["upload-hls-to-s3"])  # drain the create message
    response = post(api, f"{BASE}/r/retry", {"clientId": "conn-1"})
    assert response.status_code == 200
    job = response.json_body
    assert (job["status"], job["retryCount"], job["attempts"], job["clientId"]) == ("waiting", 1, 0, "conn-1")
    assert job["history"][-1]["from"] == "failed"
    assert post(api, f"{BASE}/missing/retry").status_code == 404
    assert post(api, f"{BASE}/r/retry", {"clientId": 7, "other": 1}).status_code == 400


def test_cancel_waiting_is_immediate_and_active_is_requested(api: Any, services: Any) -> None:
    post(api, BASE, hls_body(jobId="w"))
    post(api, BASE, hls_body(jobId="act"))
    waiting = post(api, f"{BASE}/w/cancel").json_body
    assert (waiting["status"], waiting["canCancel"]) == ("cancelled", False)
    assert waiting["cancelledAt"] is not None
    services.store.transition("act", JobStatus.ACTIVE, reason="claim", actor="test")
    active = post(api, f"{BASE}/act/cancel").json_body
    assert (active["status"], active["cancelRequested"]) == ("active", True)
    assert post(api, f"{BASE}/w/cancel").status_code == 409
    assert post(api, f"{BASE}/nope/cancel").status_code == 404


def test_delete_only_finished(api: Any, services: Any) -> None:
    post(api, BASE, hls_body(jobId="d"))
    assert api.http.delete(f"{BASE}/d", headers=api.admin_headers).status_code == 409
    finish(services, "d", JobStatus.COMPLETED)
    response = api.http.delete(f"{BASE}/d", headers=api.admin_headers)
    assert (response.status_code, response.json_body) == (200, {"deleted": True})
    assert api.http.delete(f"{BASE}/d", headers=api.admin_headers).status_code == 404


def test_clear_by_status_and_age(api: Any, services: Any) -> None:
    for job_id in ("c1", "c2", "f1", "w1"):
        post(api, BASE, hls_body(jobId=job_id))
    finish(services, "c1", JobStatus.COMPLETED)
    finish(services, "c2", JobStatus.COMPLETED)
    finish(services, "f1", JobStatus.FAILED)
    assert post(api, f"{BASE}/clear", {"status": "completed", "olderThanDays": 1}).json_body == {"deleted": 0}
    assert post(api, f"{BASE}/clear", {"status": "completed"}).json_body == {"deleted": 2}
    assert post(api, f"{BASE}/clear", {"status": "all"}).json_body == {"deleted": 1}
    assert services.store.get("w1").status == "waiting"
    assert post(api, f"{BASE}/clear", {"status": "waiting"}).status_code == 400
    assert post(api, f"{BASE}/clear", {}).status_code == 400
