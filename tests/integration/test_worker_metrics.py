"""The Lambda handlers publish their CloudWatch metrics (embedded metric format on stdout) before they return:
a worker invocation the completion or the failure of its job, the schedule the age of the oldest waiting job."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import utcnow


def published(captured: str) -> dict[str, dict[str, Any]]:
    """Each metric printed in EMF -> its line (each line holds one job's, or one run's, metrics)."""
    found = {}
    for text in captured.splitlines():
        line = json.loads(text) if text.startswith("{") else {}
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            found.update({metric["Name"]: line for metric in directive["Metrics"]})
    return found


@pytest.fixture(autouse=True)
def metrics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)


def sqs_event(api: Any, job_id: str) -> dict[str, Any]:
    return dict(api.events.generate_sqs_event([json.dumps({"v": 1, "jobId": job_id})], queue_name="upload-hls-to-s3"))


def test_a_worker_invocation_publishes_its_completed_job(
    api: Any,
    make_job: Any,
    bucket: str,
    write_rendition: Any,
    invoke_worker: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = write_rendition("films/x/720p", segments=2)
    job = make_job(bucketName=bucket)

    invoke_worker("upload_hls_worker", sqs_event(api, job.job_id))

    metrics = published(capsys.readouterr().out)
    line = metrics["JobsCompleted"]
    assert line is metrics["BytesUploaded"] is metrics["JobDurationSeconds"]
    assert (line["stage"], line["JobsCompleted"], line["BytesUploaded"]) == (
        "test",
        [1.0],
        [float(sum(map(len, files.values())))],
    )
    assert line["JobDurationSeconds"][0] >= 0
    assert "JobsFailed" not in metrics


def test_a_worker_invocation_publishes_its_failed_job_by_error_code(
    api: Any, make_job: Any, invoke_worker: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_job(hlsDir="films/nowhere/720p")

    invoke_worker("upload_hls_worker", sqs_event(api, job.job_id))

    line = published(capsys.readouterr().out)["JobsFailed"]
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["stage"], ["stage", "errorCode"]]
    assert (line["errorCode"], line["JobsFailed"]) == ("SOURCE_NOT_FOUND", [1.0])


def test_the_schedule_publishes_the_age_of_the_oldest_waiting_job(
    api: Any, make_job: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    now = utcnow()
    make_job(waitingSince=now - timedelta(minutes=40), nextAttemptAt=now + timedelta(hours=1))
    make_job(waitingSince=now - timedelta(minutes=5), nextAttemptAt=now + timedelta(hours=1))
    event = api.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])

    api.lambda_.invoke("scheduled_maintenance", event)

    [age] = published(capsys.readouterr().out)["OldestWaitingJobAgeSeconds"]["OldestWaitingJobAgeSeconds"]
    assert 40 * 60 <= age < 41 * 60
