"""What goes wrong is classified (SPEC 6): bad sources and invalid files fail at once with a code
and a sentence a person understands; storage hiccups go back to waiting with a delayed re-send
until the attempts run out; an HLS rendition that fails never publishes its playlist; messages
the worker cannot use are acknowledged, never crash it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.jobs.model import JobStatus
from chalicelib.worker import Action, WorkerResult, handle_message

FILM = "films/64b7f0c2a1b2c3d4e5f60718"
SPEC = {
    "jobType": "upload-hls-to-s3",
    "resourceType": "film",
    "resourceId": "64b7f0c2a1b2c3d4e5f60718",
    "hlsDir": "films/x/720p",
    "label": "720p",
}


def run(services: Any, job_id: str) -> WorkerResult:
    return handle_message(
        json.dumps({"v": 1, "jobId": job_id}), services=services, context_remaining_ms=lambda: 900_000
    )


def queued(sqs: Any, url: str) -> dict[str, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {"visible": int(attributes[names[0]]), "delayed": int(attributes[names[1]])}


def fail_puts_of(services: Any, suffix: str, code: str, status: int) -> None:
    """Every PutObject of a key ending in `suffix` fails with this S3 error (before reaching moto)."""

    def hook(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].endswith(suffix):
            error = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}
            raise ClientError(error, "PutObject")  # type: ignore[arg-type]

    services.s3.meta.events.register("before-parameter-build.s3.PutObject", hook)


def bucket_keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.mark.parametrize(
    ("prepare", "spec", "code", "reason"),
    [
        (lambda root: None, {}, "SOURCE_NOT_FOUND", "cannot be found"),
        (
            lambda root: (root / "films/x").mkdir(parents=True) or (root / "films/x/720p").symlink_to(root.parent),
            {},
            "SOURCE_FORBIDDEN",
            "outside SOURCE_ROOT",
        ),
        # The API refuses `..` at creation; the worker still refuses a job stored before that rule.
        (lambda root: None, {"stored": {"hlsDir": "../elsewhere"}}, "SOURCE_FORBIDDEN", "is not allowed"),
        (
            lambda root: (root / "bad.vtt").write_bytes(b"1\n00:00:00.000 --> 00:00:01.000\nhello\n"),
            {"jobType": "upload-subtitle-to-s3", "subtitlePath": "bad.vtt", "subtitleMetadata": {"language": "en"}},
            "INVALID_SUBTITLE",
            "does not start with WEBVTT",
        ),
        (
            lambda root: (
                (root / "films/x/720p").mkdir(parents=True) or (root / "films/x/720p/index.m3u8").write_text("hi")
            ),
            {},
            "INVALID_PLAYLIST",
            "does not start with #EXTM3U",
        ),
    ],
    ids=["missing", "symlink-out-of-root", "dot-dot", "invalid-webvtt", "invalid-playlist"],
)
def test_a_bad_source_fails_at_once_with_a_readable_reason(
    worker_services: Any,
    worker_job: Any,
    worker_events: Any,
    source_root: Path,
    sqs: Any,
    settings: Any,
    prepare: Any,
    spec: dict[str, Any],
    code: str,
    reason: str,
) -> None:
    services = worker_services()
    prepare(source_root)
    job = worker_job(services, **spec)

    result = run(services, job.job_id)

    failed = services.store.get(job.job_id)
    assert (result.action, failed.status, failed.error_code) == (Action.FAILED, JobStatus.FAILED, code)
    assert failed.failed_reason is not None and reason in failed.failed_reason
    assert failed.attempts == 1 and failed.finished_at is not None and not failed.can_cancel
    assert queued(sqs, settings.hls_queue_url) == {"visible": 0, "delayed": 0}
    assert worker_events.names(job.job_id)[-1] == "JobFailed"


def test_a_rendition_that_fails_on_one_segment_publishes_no_playlist(
    worker_services: Any, worker_job: Any, write_rendition: Any, s3: Any, bucket: str
) -> None:
    services = worker_services()
    write_rendition(segments=6)
    fail_puts_of(services, "seg003.ts", "AccessDenied", 403)
    job = worker_job(services)

    result = run(services, job.job_id)

    failed = services.store.get(job.job_id)
    assert (result.action, failed.error_code, failed.attempts) == (Action.FAILED, "ACCESS_DENIED", 1)
    assert "refused access" in (failed.failed_reason or "")
    assert "AccessDenied" in (failed.error_message or "")
    keys = bucket_keys(s3, bucket)
    assert f"{FILM}/hls/720p/index.m3u8" not in keys and f"{FILM}/hls/720p/seg003.ts" not in keys


def test_a_throttled_upload_waits_with_backoff_then_resumes_where_it_stopped(
    worker_services: Any,
    worker_job: Any,
    write_rendition: Any,
    s3: Any,
    bucket: str,
    sqs: Any,
    settings: Any,
    worker_events: Any,
    count_s3_requests: Any,
) -> None:
    failing = worker_services()
    files = write_rendition(segments=6)
    fail_puts_of(failing, "seg002.ts", "SlowDown", 503)
    job = worker_job(failing)

    result = run(failing, job.job_id)

    waiting = failing.store.get(job.job_id)
    assert (result.action, waiting.status, waiting.attempts) == (Action.RETRY_SCHEDULED, JobStatus.WAITING, 1)
    assert waiting.error_code == "THROTTLED" and waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > waiting.updated_at
    assert queued(sqs, settings.hls_queue_url) == {"visible": 0, "delayed": 1}
    assert worker_events.names(job.job_id)[-1] == "JobQueued"
    there = bucket_keys(s3, bucket)
    assert f"{FILM}/hls/720p/index.m3u8" not in there

    healthy = worker_services()
    requests = count_s3_requests(healthy.s3)
    assert run(healthy, job.job_id).action == Action.COMPLETED
    assert requests["PutObject"] == len(files) - len(there)  # nothing already there is sent again
    done = healthy.store.get(job.job_id)
    assert (done.attempts, done.error_code, done.error_message) == (2, None, None)


def test_a_job_that_keeps_failing_stops_after_its_attempts(
    worker_services: Any, worker_job: Any, write_rendition: Any
) -> None:
    services = worker_services(max_attempts=2)
    write_rendition(segments=2)
    fail_puts_of(services, ".ts", "InternalError", 500)
    job = worker_job(services)

    first, second = run(services, job.job_id), run(services, job.job_id)

    failed = services.store.get(job.job_id)
    assert (first.action, second.action) == (Action.RETRY_SCHEDULED, Action.FAILED)
    assert (failed.status, failed.error_code, failed.attempts) == (JobStatus.FAILED, "STORAGE_ERROR", 2)
    assert failed.failed_reason == "The storage had an internal error. It failed 2 times; no attempts are left."


def test_an_unexpected_error_is_retried_with_its_detail_kept(
    worker_services: Any, worker_job: Any, write_rendition: Any
) -> None:
    services = worker_services()
    write_rendition(segments=2)

    def explode(**_: Any) -> None:
        raise RuntimeError("disk on fire")

    services.s3.meta.events.register("before-call.s3.PutObject", explode)
    job = worker_job(services)

    result = run(services, job.job_id)

    waiting = services.store.get(job.job_id)
    assert (result.action, waiting.status, waiting.error_code) == (
        Action.RETRY_SCHEDULED,
        JobStatus.WAITING,
        "UPLOAD_FAILED",
    )
    assert "RuntimeError: disk on fire" in (waiting.error_message or "")


def test_a_master_whose_references_never_arrive_fails_naming_them(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str
) -> None:
    services = worker_services(master_wait_seconds=0)
    master = (
        b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\n1080p/index.m3u8\n"
    )
    (source_root / "master.m3u8").write_bytes(master)
    s3.put_object(Bucket=bucket, Key=f"{FILM}/hls/720p/index.m3u8", Body=b"#EXTM3U\n")
    job = worker_job(services, jobType="upload-master-playlist", masterPlaylistPath="master.m3u8")

    result = run(services, job.job_id)

    failed = services.store.get(job.job_id)
    assert (result.action, failed.error_code, failed.attempts) == (Action.FAILED, "MISSING_REFERENCES", 1)
    assert f"{FILM}/hls/1080p/index.m3u8" in (failed.failed_reason or "")
    assert "720p" not in (failed.failed_reason or "")
    assert f"{FILM}/hls/master.m3u8" not in bucket_keys(s3, bucket)


MESSAGES_TO_DROP = [
    ("not json at all", Action.MALFORMED),
    (json.dumps({"v": 2, "jobId": "x"}), Action.MALFORMED),
    (json.dumps({"v": 1}), Action.MALFORMED),
    (json.dumps({"v": 1, "jobId": "nobody-knows-me"}), Action.UNKNOWN_JOB),
    (json.dumps({"v": 1, "jobId": "bad-spec", "job": {**SPEC, "resourceId": "nope"}}), Action.INVALID_SPEC),
    (json.dumps({"v": 1, "jobId": "bad-source", "job": {**SPEC, "hlsDir": "/etc"}}), Action.INVALID_SPEC),
]


def test_a_message_the_worker_cannot_use_is_acknowledged(worker_services: Any) -> None:
    services = worker_services()

    results = [
        handle_message(body, services=services, context_remaining_ms=lambda: 900_000).action
        for body, _expected in MESSAGES_TO_DROP
    ]

    assert results == [expected for _body, expected in MESSAGES_TO_DROP]
    assert services.store.collection.count_documents({}) == 0
