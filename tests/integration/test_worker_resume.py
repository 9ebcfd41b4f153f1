"""A job survives redelivery, a second worker, a crash and the Lambda time limit without sending
a finished file or part again (SPEC 6: claim, lease, resume, continuation)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.jobs.model import JobStatus
from chalicelib.worker import Action, WorkerOptions, WorkerResult, handle_message

FILM = "films/64b7f0c2a1b2c3d4e5f60718"
MIB = 1024 * 1024
MULTIPART = {"part_size_mb": 5, "multipart_threshold_mb": 5, "part_concurrency": 1, "upload_concurrency": 1}
FAST = WorkerOptions(cancel_poll_seconds=0.02, time_margin_seconds=1)


class Crash(BaseException):
    """What a dying Lambda looks like from inside: not an error the worker handles."""


def body(job_id: str, **extra: Any) -> str:
    return json.dumps({"v": 1, "jobId": job_id, **extra})


def run(services: Any, job_id: str, remaining: Any = lambda: 900_000) -> WorkerResult:
    return handle_message(body(job_id), services=services, context_remaining_ms=remaining, options=FAST)


def write_video(root: Path, parts: int) -> bytes:
    data = b"".join(bytes([n]) * (5 * MIB) for n in range(parts - 1)) + b"last part"
    (root / "movie.mp4").write_bytes(data)
    return data


def video_bytes(s3: Any, bucket: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=f"{FILM}/video/movie.mp4")["Body"].read())


def test_a_redelivered_message_for_a_completed_job_sends_nothing(
    worker_services: Any, worker_job: Any, write_rendition: Any, count_s3_requests: Any
) -> None:
    services = worker_services()
    write_rendition(segments=3)
    job = worker_job(services)
    assert run(services, job.job_id).action == Action.COMPLETED
    requests = count_s3_requests(services.s3)

    again = run(services, job.job_id)

    assert (again.action, again.status) == (Action.IGNORED, JobStatus.COMPLETED)
    assert sum(requests.values()) == 0
    assert services.store.get(job.job_id).attempts == 1


def test_a_second_worker_leaves_a_job_another_one_holds(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    services = worker_services(**MULTIPART)
    data = write_video(source_root, parts=3)
    job = worker_job(services, jobType="upload-video-to-s3", sourcePath="movie.mp4")
    requests = count_s3_requests(services.s3)
    in_first_part, release = threading.Event(), threading.Event()

    def hold_first_part(**_: Any) -> None:
        if not in_first_part.is_set():
            in_first_part.set()
            release.wait(10)

    services.s3.meta.events.register("before-call.s3.UploadPart", hold_first_part)
    results: list[WorkerResult] = []
    first = threading.Thread(target=lambda: results.append(run(services, job.job_id)))
    first.start()
    assert in_first_part.wait(10)

    second = run(worker_services(**MULTIPART), job.job_id)
    release.set()
    first.join(10)

    assert (second.action, second.status) == (Action.IGNORED, JobStatus.ACTIVE)
    assert results[0].action == Action.COMPLETED
    assert requests["UploadPart"] == 3 and requests["CreateMultipartUpload"] == 1
    assert video_bytes(s3, bucket) == data


def test_after_a_crash_mid_multipart_the_next_worker_sends_only_the_missing_parts(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    crashing = worker_services(progress_interval_ms=0, **MULTIPART)
    data = write_video(source_root, parts=5)
    job = worker_job(crashing, jobType="upload-video-to-s3", sourcePath="movie.mp4")
    parts_sent = count_s3_requests(crashing.s3)

    def crash_on_third_part(**_: Any) -> None:
        if parts_sent["UploadPart"] == 3:
            threading.Event().wait(0.3)  # the supervisor checkpoints parts 1 and 2 meanwhile
            raise Crash

    crashing.s3.meta.events.register("before-call.s3.UploadPart", crash_on_third_part)
    with pytest.raises(Crash):
        run(crashing, job.job_id)
    stranded = crashing.store.get(job.job_id)
    assert stranded.status == JobStatus.ACTIVE and len(stranded.multipart_uploads[0]["parts"]) == 2
    # Time passes: the dead worker's lease expires, and SQS delivers the message again.
    expired = crashing.store.now() - timedelta(seconds=1)
    crashing.store.collection.update_one({"jobId": job.job_id}, {"$set": {"leaseExpiresAt": expired}})

    healthy = worker_services(**MULTIPART)
    requests = count_s3_requests(healthy.s3)
    result = run(healthy, job.job_id)

    assert result.action == Action.COMPLETED
    assert requests["UploadPart"] == 3 and requests["CreateMultipartUpload"] == 0
    assert video_bytes(s3, bucket) == data
    done = healthy.store.get(job.job_id)
    assert done.attempts == 2 and done.multipart_uploads == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert [h.reason for h in done.history][-3:] == [
        "lease expired: the previous worker stopped; taken over",
        "claimed by a worker",
        "every file is in the bucket",
    ]


def test_an_expired_lease_with_no_attempts_left_fails_stalled(
    worker_services: Any, worker_job: Any, worker_events: Any
) -> None:
    services = worker_services()
    job = worker_job(services)
    past = services.store.now() - timedelta(seconds=5)
    services.store.collection.update_one(
        {"jobId": job.job_id},
        {"$set": {"status": "active", "attempts": 5, "leaseOwner": "dead-worker", "leaseExpiresAt": past}},
    )

    result = run(services, job.job_id)

    failed = services.store.get(job.job_id)
    assert (result.action, failed.status, failed.error_code) == (Action.FAILED, JobStatus.FAILED, "STALLED")
    assert worker_events.names(job.job_id) == ["JobFailed"]


def test_an_upload_longer_than_one_invocation_completes_across_continuations(
    worker_services: Any,
    worker_job: Any,
    source_root: Path,
    s3: Any,
    bucket: str,
    sqs: Any,
    settings: Any,
    count_s3_requests: Any,
) -> None:
    services = worker_services(**MULTIPART)
    data = write_video(source_root, parts=3)
    job = worker_job(services, jobType="upload-video-to-s3", sourcePath="movie.mp4")
    requests = count_s3_requests(services.s3)

    def time_for_one_part() -> Any:
        """An invocation whose time runs out once it has sent one part."""
        start = requests["UploadPart"]
        return lambda: 10_000 if requests["UploadPart"] == start else 0

    message, receipt, results = body(job.job_id), None, []
    for _invocation in range(10):
        result = handle_message(
            message, services=services, context_remaining_ms=time_for_one_part(), receipt_handle=receipt, options=FAST
        )
        results.append(result.action)
        if result.action != Action.CONTINUED:
            break
        waiting = services.store.get(job.job_id)
        assert (waiting.status, waiting.attempts) == (JobStatus.WAITING, 0)
        received = sqs.receive_message(QueueUrl=settings.hls_queue_url, WaitTimeSeconds=1)["Messages"][0]
        message, receipt = received["Body"], received["ReceiptHandle"]
        assert json.loads(message)["continuation"] is True

    assert results[0] == Action.CONTINUED and results[-1] == Action.COMPLETED
    assert requests["UploadPart"] == 3 and requests["CreateMultipartUpload"] == 1
    assert video_bytes(s3, bucket) == data
    done = services.store.get(job.job_id)
    assert done.attempts == 1 and done.continuations == len(results) - 1 >= 2


def test_every_key_is_recorded_as_the_jobs_before_it_is_written(
    worker_services: Any, worker_job: Any, write_rendition: Any, s3: Any, settings: Any
) -> None:
    """A crash right after a PUT, before the next progress write, must not leave an object that
    cleanup does not know of: the job's keys are in writtenKeys before the first PUT of each phase."""
    services = worker_services(progress_interval_ms=3_600_000)  # no progress write would record them
    files = write_rendition(segments=4)
    job = worker_job(services)
    recorded_at_each_put: list[set[str]] = []
    services.s3.meta.events.register(
        "before-call.s3.PutObject",
        lambda params, **_: recorded_at_each_put.append(set(services.store.get(job.job_id).written_keys)),
    )

    assert run(services, job.job_id).action == Action.COMPLETED

    segments = {f"{FILM}/hls/720p/{name}" for name in files}
    playlist = next(key for key in segments if key.endswith("index.m3u8"))
    assert len(recorded_at_each_put) == len(files)
    assert all(segments - {playlist} <= recorded for recorded in recorded_at_each_put)
    assert playlist in recorded_at_each_put[-1]  # the playlist phase announces it before its PUT


def test_a_crash_right_after_a_multipart_upload_starts_leaves_its_upload_id_on_the_job(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    """The new UploadId is on the job before its first part is sent (not at the next progress
    interval): a worker dying then leaves an upload the next worker resumes, never an orphan."""
    crashing = worker_services(progress_interval_ms=3_600_000, **MULTIPART)  # no progress write would
    data = write_video(source_root, parts=3)
    job = worker_job(crashing, jobType="upload-video-to-s3", sourcePath="movie.mp4")

    def crash_at_first_part(**_: Any) -> None:
        raise Crash

    crashing.s3.meta.events.register("before-call.s3.UploadPart", crash_at_first_part)
    with pytest.raises(Crash):
        run(crashing, job.job_id)
    stranded = crashing.store.get(job.job_id)
    (open_upload,) = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [upload["uploadId"] for upload in stranded.multipart_uploads] == [open_upload["UploadId"]]
    expired = crashing.store.now() - timedelta(seconds=1)
    crashing.store.collection.update_one({"jobId": job.job_id}, {"$set": {"leaseExpiresAt": expired}})

    healthy = worker_services(**MULTIPART)
    requests = count_s3_requests(healthy.s3)

    assert run(healthy, job.job_id).action == Action.COMPLETED
    assert requests["CreateMultipartUpload"] == 0 and video_bytes(s3, bucket) == data
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_deadline_while_hashing_a_large_source_continues_later_without_spending_an_attempt(
    worker_services: Any, worker_job: Any, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    """Resume compares a large source with the bucket's copy by reading all of it: the deadline
    stops that read midway (the job thread keeps asking while it waits), not after the whole file."""
    staging = f"{bucket}-staging"
    s3.create_bucket(Bucket=staging)
    parts = 4
    data = b"".join(bytes([n]) * (5 * MIB) for n in range(parts - 1)) + b"last part"
    s3.put_object(Bucket=staging, Key="movie.mp4", Body=data)
    same_bytes_already_there(s3, bucket, f"{FILM}/video/movie.mp4", data)
    services = worker_services(source_buckets=[staging], **MULTIPART)
    job = worker_job(services, jobType="upload-video-to-s3", sourcePath=f"s3://{staging}/movie.mp4")
    requests = count_s3_requests(services.s3)
    clock = {"remaining_ms": 900_000.0}
    deadline_seen = threading.Event()

    def remaining() -> float:
        if clock["remaining_ms"] == 0:
            deadline_seen.set()
        return clock["remaining_ms"]

    def deadline_during_first_read(**_: Any) -> None:
        if requests["GetObject"] == 1:
            clock["remaining_ms"] = 0  # the invocation's time runs out while the source is read
            deadline_seen.wait(5)

    services.s3.meta.events.register("before-call.s3.GetObject", deadline_during_first_read)

    result = run(services, job.job_id, remaining)

    continued = services.store.get(job.job_id)
    assert (result.action, continued.status, continued.attempts) == (Action.CONTINUED, JobStatus.WAITING, 0)
    assert requests["GetObject"] < parts  # the source was not read to its end
    assert requests["CreateMultipartUpload"] == requests["UploadPart"] == 0

    again = count_s3_requests(services.s3)
    assert run(services, job.job_id).action == Action.COMPLETED
    assert again["UploadPart"] == 0 and services.store.get(job.job_id).attempts == 1  # found identical


def same_bytes_already_there(s3: Any, bucket: str, key: str, data: bytes) -> None:
    """`data` at `key`, uploaded in 5 MiB parts (a multipart ETag), as an earlier job left it."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = [
        s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n + 1, Body=data[n * 5 * MIB : (n + 1) * 5 * MIB]
        )["ETag"]
        for n in range(-(-len(data) // (5 * MIB)))
    ]
    parts = [{"PartNumber": n + 1, "ETag": etag} for n, etag in enumerate(etags)]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
