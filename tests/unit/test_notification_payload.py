"""What a receiver gets: the WebSocket event's fields, more of the job, and a Slack-compatible text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.jobs.model import CreateJobRequest, UploadJob, new_job_document, utcnow
from chalicelib.notify.payload import build_payload
from chalicelib.realtime.events import EVENT_FIELDS, JobEvent
from tests.factories import hls_body


def job(**fields: Any) -> UploadJob:
    return UploadJob.from_document(
        new_job_document(
            CreateJobRequest.model_validate(hls_body(resourceName="Northern <Lights> & Co")),
            bucket="studio-media",
            max_attempts=5,
            now=utcnow(),
        )
        | fields
    )


def failed(**fields: Any) -> UploadJob:
    defaults = {"failedReason": "The worker stopped answering.", "finishedAt": utcnow()}
    return job(status="failed", errorCode="STALLED", attempts=5, **{**defaults, **fields})


def test_a_failure_carries_the_websocket_event_fields_and_the_job_s_main_fields() -> None:
    payload = build_payload(JobEvent.FAILED, failed(), stage="prod")
    assert set(EVENT_FIELDS[JobEvent.FAILED]) <= set(payload)
    assert payload["event"] == "JobFailed"
    assert payload["errorCode"] == "STALLED"
    assert payload["failedReason"] == "The worker stopped answering."
    assert (payload["stage"], payload["attempts"], payload["maxAttempts"]) == ("prod", 5, 5)
    assert payload["resourceName"] == "Northern <Lights> & Co"
    assert payload["finishedAt"].endswith("Z")


def test_the_text_is_one_slack_line_with_what_failed_and_why_escaped_as_slack_asks() -> None:
    payload = build_payload(JobEvent.FAILED, failed(jobId="j-1"), stage="prod")
    text = payload["text"]
    assert "\n" not in text
    assert text.startswith(":x: JobFailed `j-1` (upload-hls-to-s3 720p) of film Northern &lt;Lights&gt; &amp; Co")
    assert "STALLED: The worker stopped answering." in text
    assert text.endswith("[stage prod]")


def test_a_long_reason_is_cut_in_the_text_only() -> None:
    reason = "x" * 1000
    payload = build_payload(JobEvent.FAILED, failed(failedReason=reason), stage="dev")
    assert payload["failedReason"] == reason
    assert len(payload["text"]) < 500


def test_a_completion_says_how_long_it_took_and_where_it_is_published() -> None:
    done = job(status="completed", durationSeconds=12.34, publicUrl="https://cdn.example/films/x/720p/index.m3u8")
    payload = build_payload(JobEvent.COMPLETED, done, stage="prod")
    assert payload["publicUrl"] == "https://cdn.example/films/x/720p/index.m3u8"
    assert " in 12.3 s: https://cdn.example/films/x/720p/index.m3u8 " in payload["text"]


def test_announcing_one_ending_twice_keeps_its_notification_id_and_another_ending_gets_another() -> None:
    ended = failed()
    first = build_payload(JobEvent.FAILED, ended, stage="prod")
    again = build_payload(JobEvent.FAILED, ended, stage="prod")
    assert first["notificationId"] == again["notificationId"]
    later = ended.model_copy(
        update={"finished_at": ended.finished_at + timedelta(minutes=5)}
    )  # failed again after a retry
    assert build_payload(JobEvent.FAILED, later, stage="prod")["notificationId"] != first["notificationId"]
