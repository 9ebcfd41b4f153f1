"""End to end: a job created over HTTP and run by the Lambda worker handler reaches a WebSocket client,
every event delivered before its invocation returns (Lambda may freeze right after)."""

from __future__ import annotations

import json
from typing import Any

import pytest


@pytest.fixture
def realtime_services(services: Any) -> Any:
    """Here the gateway serves the full services: moto's S3 and SQS, as the route and the worker need."""
    return services


def test_a_job_created_over_http_and_run_by_the_worker_is_followed_live(
    api: Any, ws_connect: Any, write_rendition: Any, invoke_worker: Any
) -> None:
    client = ws_connect()
    client.ask({"action": "subscribe", "all": True})
    write_rendition("films/x/480p", segments=3)
    body = {
        "jobId": "live-480p",
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/x/480p",
        "label": "480p",
    }

    created = api.http.post("/v1/studio/upload-jobs", headers=api.admin_headers, body=json.dumps(body))
    assert created.status_code == 201
    assert [(e["event"], e["jobId"]) for e in client.drain()] == [("JobQueued", "live-480p")]

    message = json.dumps({"v": 1, "jobId": "live-480p"})
    invoke_worker("upload_hls_worker", api.events.generate_sqs_event([message], queue_name="upload-hls-to-s3"))
    events = client.drain()

    assert events[-1]["event"] == "JobCompleted"
    assert events[-1]["publicUrl"].endswith("films/64b7f0c2a1b2c3d4e5f60718/hls/480p/index.m3u8")
    assert events[-1]["durationSeconds"] is not None
    progress = [e["progress"] for e in events if e["event"] == "uploadProgress"]
    assert progress == sorted(progress)
    assert progress[-1] == 100
