"""fix-stuck with the real upload worker on moto: a worker that dies mid-upload is found, its job
re-queued and finished by another worker without any part sent twice; with no attempts left it
fails STALLED; a cancel requested while it is dead is finished; a worker that comes back after
its job was re-queued cannot complete it."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import fix_stuck
from chalicelib.worker import Action, WorkerOptions, WorkerResult, handle_message

FILM = "films/64b7f0c2a1b2c3d4e5f60718"
MIB = 1024 * 1024
MULTIPART = {"part_size_mb": 5, "multipart_threshold_mb": 5, "part_concurrency": 1, "upload_concurrency": 1}
FAST = WorkerOptions(cancel_poll_seconds=0.02)
WAIT_SECONDS = 10


class Killed(BaseException):
    """The worker's process dying: nothing the worker catches, nothing written after it."""


def body(job_id: str) -> str:
    return json.dumps({"v": 1, "jobId": job_id})


def run(services: Any, message: str) -> WorkerResult:
    return handle_message(message, services=services, context_remaining_ms=lambda: 900_000, options=FAST)


def video_job(services: Any, worker_job: Any, root: Path, parts: int, **spec: Any) -> tuple[Any, bytes]:
    data = b"".join(bytes([n]) * (5 * MIB) for n in range(parts - 1)) + b"the last part"
    (root / "movie.mp4").write_bytes(data)
    return worker_job(services, jobType="upload-video-to-s3", sourcePath="movie.mp4", **spec), data


def record_parts(services: Any, on_part: Callable[[int], None] = lambda number: None) -> list[int]:
    """The part numbers the worker's client sends; `on_part(number)` runs before each is sent."""
    sent: list[int] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        number = int(params["query_string"]["partNumber"])
        on_part(number)
        sent.append(number)

    services.s3.meta.events.register("before-call.s3.UploadPart", hook)
    return sent


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def killed_at_part(services: Any, job_id: str, number: int) -> Callable[[int], None]:
    """Kill the worker as part `number` is about to go, once the parts before it are checkpointed."""

    def kill(part: int) -> None:
        if part == number:
            until(lambda: checkpointed_parts(services.store, job_id) == number - 1)
            raise Killed

    return kill


def checkpointed_parts(store: JobStore, job_id: str) -> int:
    uploads = store.get(job_id).multipart_uploads
    return len(uploads[0]["parts"]) if uploads else -1


def after_the_lease(maintenance: Any, database: Any) -> Any:
    """Maintenance judging from just after the dead worker's lease ran out (LEASE_SECONDS later)."""
    return dataclasses.replace(maintenance, store=store_after_the_lease(maintenance.settings, database))


def worker_after_the_lease(services: Any, database: Any) -> Any:
    """A worker at the same moment as `after_the_lease`'s maintenance: the job it re-queued is
    due from that moment on, not before."""
    services.store = store_after_the_lease(services.settings, database)
    return services


def store_after_the_lease(settings: Any, database: Any) -> JobStore:
    ahead = timedelta(seconds=settings.lease_seconds + 1)
    return JobStore(database, clock=lambda: utcnow() + ahead)


def received(sqs: Any, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [m["Body"] for m in messages]


def video_bytes(s3: Any, bucket: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=f"{FILM}/video/movie.mp4")["Body"].read())


def test_a_killed_worker_is_found_requeued_and_finished_by_another_without_a_part_sent_twice(
    worker_services: Any,
    worker_job: Any,
    maintenance: Any,
    database: Any,
    source_root: Path,
    s3: Any,
    bucket: str,
    sqs: Any,
    count_s3_requests: Any,
) -> None:
    dying = worker_services(progress_interval_ms=0, **MULTIPART)
    job, data = video_job(dying, worker_job, source_root, parts=4)
    first_parts = record_parts(dying, killed_at_part(dying, job.job_id, 3))
    with pytest.raises(Killed):
        run(dying, body(job.job_id))

    assert fix_stuck(after_the_lease(maintenance, database)) == {
        "scanned": 1,
        "requeued": 1,
        "failed": 0,
        "cancelled": 0,
    }
    [message] = received(sqs, maintenance.settings.hls_queue_url)
    healthy = worker_after_the_lease(worker_services(**MULTIPART), database)
    requests = count_s3_requests(healthy.s3)
    second_parts = record_parts(healthy)
    result = run(healthy, message)

    assert result.action == Action.COMPLETED
    assert (first_parts, second_parts) == ([1, 2], [3, 4])
    assert requests["CreateMultipartUpload"] == 0
    assert video_bytes(s3, bucket) == data
    done = healthy.store.get(job.job_id)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 2)
    assert ("lease expired: re-queued by maintenance", "maintenance") in [(h.reason, h.actor) for h in done.history]
    events = maintenance.notifier.names(job.job_id)
    assert "JobQueued" in events and events[-1] == "JobCompleted"


def test_a_killed_worker_with_no_attempts_left_is_failed_stalled(
    worker_services: Any, worker_job: Any, maintenance: Any, database: Any, source_root: Path, sqs: Any
) -> None:
    dying = worker_services(progress_interval_ms=0, **MULTIPART)
    job, _data = video_job(dying, worker_job, source_root, parts=2, maxAttempts=1)
    record_parts(dying, killed_at_part(dying, job.job_id, 2))
    with pytest.raises(Killed):
        run(dying, body(job.job_id))

    assert fix_stuck(after_the_lease(maintenance, database))["failed"] == 1

    stalled = maintenance.store.get(job.job_id)
    assert (stalled.status, stalled.error_code) == (JobStatus.FAILED, "STALLED")
    assert received(sqs, maintenance.settings.hls_queue_url) == []
    assert maintenance.notifier.names(job.job_id)[-1] == "JobFailed"


def test_a_cancel_requested_while_the_worker_is_dead_is_finished_and_its_upload_aborted(
    worker_services: Any, worker_job: Any, maintenance: Any, database: Any, source_root: Path, s3: Any, bucket: str
) -> None:
    dying = worker_services(progress_interval_ms=0, **MULTIPART)
    job, _data = video_job(dying, worker_job, source_root, parts=3)
    record_parts(dying, killed_at_part(dying, job.job_id, 2))
    with pytest.raises(Killed):
        run(dying, body(job.job_id))
    assert maintenance.store.cancel(job.job_id).cancel_requested is True
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

    assert fix_stuck(after_the_lease(maintenance, database))["cancelled"] == 1

    cancelled = maintenance.store.get(job.job_id)
    assert (cancelled.status, cancelled.multipart_uploads) == (JobStatus.CANCELLED, [])
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert maintenance.notifier.names(job.job_id)[-1] == "JobCancelled"


def test_a_worker_back_after_fix_stuck_requeued_its_job_cannot_complete_it(
    worker_services: Any,
    worker_job: Any,
    maintenance: Any,
    database: Any,
    source_root: Path,
    s3: Any,
    bucket: str,
    sqs: Any,
) -> None:
    paused = worker_services(progress_interval_ms=0, **MULTIPART)
    job, data = video_job(paused, worker_job, source_root, parts=3)
    at_last_part, resume = threading.Event(), threading.Event()

    def pause(number: int) -> None:
        """A worker frozen (GC pause, network partition) past its lease while sending the last part."""
        if number == 3:
            until(lambda: checkpointed_parts(paused.store, job.job_id) == 2)
            at_last_part.set()
            resume.wait(WAIT_SECONDS)

    first_parts = record_parts(paused, pause)
    results: list[WorkerResult] = []
    worker = threading.Thread(target=lambda: results.append(run(paused, body(job.job_id))))
    worker.start()
    assert at_last_part.wait(WAIT_SECONDS)

    requeued = fix_stuck(after_the_lease(maintenance, database))["requeued"]
    resume.set()
    worker.join(WAIT_SECONDS)

    assert requeued == 1
    assert results[0].action == Action.LEASE_LOST
    assert maintenance.store.get(job.job_id).status == JobStatus.WAITING
    [message] = received(sqs, maintenance.settings.hls_queue_url)
    healthy = worker_after_the_lease(worker_services(**MULTIPART), database)
    second_parts = record_parts(healthy)
    assert run(healthy, message).action == Action.COMPLETED
    assert first_parts == [1, 2, 3] and second_parts == []
    assert video_bytes(s3, bucket) == data
    history = maintenance.store.get(job.job_id).history
    claims = [entry.actor for entry in history if entry.reason == "claimed by a worker"]
    assert history[-1].reason == "every file is in the bucket"
    assert len(claims) == 2 and history[-1].actor == claims[1] != claims[0]
