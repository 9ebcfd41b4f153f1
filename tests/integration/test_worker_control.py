"""Steering a running job (SPEC 3, 6): cancel between parts, a lost lease, a master that waits
for its renditions, progress writes that stay few however many files, MongoDB going away."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, PyMongoError

from chalicelib.jobs.model import JobStatus
from chalicelib.services import Services
from chalicelib.worker import Action, WorkerOptions, WorkerResult, handle_message

FILM = "films/64b7f0c2a1b2c3d4e5f60718"
MIB = 1024 * 1024
MULTIPART = {"part_size_mb": 5, "multipart_threshold_mb": 5, "part_concurrency": 1, "upload_concurrency": 1}
FAST = WorkerOptions(cancel_poll_seconds=0.02)
SUPERVISOR_NOTICES = 0.3  # longer than a cancel poll plus a supervisor tick


def run(services: Any, job_id: str) -> WorkerResult:
    return handle_message(
        json.dumps({"v": 1, "jobId": job_id}), services=services, context_remaining_ms=lambda: 900_000, options=FAST
    )


def video_job(services: Any, worker_job: Any, root: Path, parts: int) -> Any:
    (root / "movie.mp4").write_bytes(b"".join(bytes([n]) * (5 * MIB) for n in range(parts)))
    return worker_job(services, jobType="upload-video-to-s3", sourcePath="movie.mp4")


def during_part(services: Any, number: int, action: Any) -> None:
    """Run `action` while part `number` is being sent, and give the supervisor time to notice."""
    sent = {"parts": 0}

    def hook(**_: Any) -> None:
        sent["parts"] += 1
        if sent["parts"] == number:
            action()
            time.sleep(SUPERVISOR_NOTICES)

    services.s3.meta.events.register("before-call.s3.UploadPart", hook)


def test_a_cancel_stops_within_one_part_and_leaves_no_open_upload(
    worker_services: Any,
    worker_job: Any,
    worker_events: Any,
    source_root: Path,
    s3: Any,
    bucket: str,
    count_s3_requests: Any,
) -> None:
    services = worker_services(**MULTIPART)
    job = video_job(services, worker_job, source_root, parts=6)
    requests = count_s3_requests(services.s3)
    during_part(services, 2, lambda: services.store.cancel(job.job_id))

    result = run(services, job.job_id)

    cancelled = services.store.get(job.job_id)
    assert (result.action, cancelled.status) == (Action.CANCELLED, JobStatus.CANCELLED)
    assert requests["UploadPart"] == 2 and requests["AbortMultipartUpload"] == 1
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert cancelled.multipart_uploads == [] and cancelled.cancelled_at is not None
    assert worker_events.names(job.job_id)[-1] == "JobCancelled"


def test_a_cancel_that_raced_a_retry_is_finished_by_the_next_message(
    worker_services: Any, worker_job: Any, worker_events: Any
) -> None:
    services = worker_services()
    job = worker_job(services)
    services.store.collection.update_one({"jobId": job.job_id}, {"$set": {"cancelRequested": True}})

    result = run(services, job.job_id)

    assert (result.action, services.store.get(job.job_id).status) == (Action.CANCELLED, JobStatus.CANCELLED)
    assert worker_events.names(job.job_id) == ["JobCancelled"]


def test_a_worker_that_loses_its_lease_stops_and_writes_nothing_more(
    worker_services: Any, worker_job: Any, source_root: Path, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    services = worker_services(**MULTIPART)
    job = video_job(services, worker_job, source_root, parts=4)
    requests = count_s3_requests(services.s3)
    steal = {"$set": {"leaseOwner": "another-worker"}}
    during_part(services, 2, lambda: services.store.collection.update_one({"jobId": job.job_id}, steal))

    result = run(services, job.job_id)

    after = services.store.get(job.job_id)
    assert result.action == Action.LEASE_LOST
    assert (after.status, after.lease_owner, after.progress) == (JobStatus.ACTIVE, "another-worker", 0)
    assert requests["UploadPart"] == 2 and requests["AbortMultipartUpload"] == 0
    assert len(s3.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 1  # left for the new owner


def test_a_master_waits_for_its_renditions_without_spending_attempts(
    worker_services: Any,
    worker_job: Any,
    worker_events: Any,
    write_rendition: Any,
    source_root: Path,
    s3: Any,
    bucket: str,
    sqs: Any,
    settings: Any,
) -> None:
    services = worker_services()
    master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000\n720p/index.m3u8\n"
    (source_root / "master.m3u8").write_bytes(master)
    job = worker_job(
        services, jobType="upload-master-playlist", masterPlaylistPath="master.m3u8", subtitleLanguages=["en"]
    )

    first = run(services, job.job_id)

    waiting = services.store.get(job.job_id)
    assert (first.action, waiting.status, waiting.attempts) == (Action.MASTER_WAITING, JobStatus.WAITING, 0)
    delayed = sqs.get_queue_attributes(
        QueueUrl=settings.master_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert delayed["ApproximateNumberOfMessagesDelayed"] == "1"
    assert f"{FILM}/hls/720p/index.m3u8" in waiting.history[-1].reason
    assert "JobQueued" not in worker_events.names(job.job_id)

    write_rendition("films/x/720p", segments=2)
    assert run(services, worker_job(services).job_id).action == Action.COMPLETED
    s3.put_object(Bucket=bucket, Key=f"{FILM}/subtitles/en.vtt", Body=b"WEBVTT\n")
    # The re-check's delay passes: its message arrives when the job is due again.
    services.store.collection.update_one({"jobId": job.job_id}, {"$set": {"nextAttemptAt": services.store.now()}})

    second = run(services, job.job_id)

    done = services.store.get(job.job_id)
    assert (second.action, done.status, done.attempts) == (Action.COMPLETED, JobStatus.COMPLETED, 1)
    assert s3.get_object(Bucket=bucket, Key=f"{FILM}/hls/master.m3u8")["Body"].read() == master


class CountingDatabase:
    """The test's database, counting the writes made to the jobs collection."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.writes = 0
        self.fail_writes_after: int | None = None

    def __getitem__(self, name: str) -> Any:
        return CountingCollection(self._database[name], self)


class CountingCollection:
    WRITES = frozenset({"find_one_and_update", "update_one", "update_many", "insert_one"})

    def __init__(self, collection: Any, counter: CountingDatabase) -> None:
        self._collection = collection
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if name not in self.WRITES:
            return attribute

        def write(*args: Any, **kwargs: Any) -> Any:
            self._counter.writes += 1
            limit = self._counter.fail_writes_after
            if limit is not None and self._counter.writes > limit:
                raise AutoReconnect("MongoDB went away")
            return attribute(*args, **kwargs)

        return write


def test_many_small_files_make_few_progress_writes(
    settings: Any, database: Any, services: Any, worker_job: Any, worker_events: Any, write_rendition: Any
) -> None:
    counting = CountingDatabase(database)
    worker = Services(
        settings.model_copy(update={"progress_interval_ms": 100}), database=counting, notifier=worker_events
    )
    write_rendition(segments=400, segment_size=100)
    job = worker_job(worker)
    before = counting.writes

    started = time.monotonic()
    assert run(worker, job.job_id).action == Action.COMPLETED
    seconds = time.monotonic() - started

    writes = counting.writes - before
    assert writes <= seconds / 0.1 + 10
    assert writes < 401 / 4
    progress_events = worker_events.names(job.job_id).count("uploadProgress")
    assert 2 <= progress_events <= writes


def test_mongodb_going_away_mid_upload_raises_so_sqs_redelivers(
    settings: Any, database: Any, services: Any, worker_job: Any, worker_events: Any, write_rendition: Any
) -> None:
    counting = CountingDatabase(database)
    worker = Services(
        settings.model_copy(update={"progress_interval_ms": 0}), database=counting, notifier=worker_events
    )
    write_rendition(segments=50, segment_size=100)
    job = worker_job(worker)
    counting.fail_writes_after = counting.writes + 2  # the claim and the totals go through

    with pytest.raises(PyMongoError):
        run(worker, job.job_id)

    assert JobStatus(database["upload_jobs"].find_one({"jobId": job.job_id})["status"]) == JobStatus.ACTIVE


def test_a_heartbeat_keeps_the_lease_and_the_message_while_the_job_runs(
    worker_services: Any, worker_job: Any, write_rendition: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = worker_services(lease_seconds=1, progress_interval_ms=60_000)
    write_rendition(segments=3)
    job = worker_job(services)
    extended: list[tuple[str, int]] = []
    monkeypatch.setattr(
        services.queue, "change_visibility", lambda queue, handle, seconds: extended.append((handle, seconds))
    )
    leases: list[Any] = []
    slow = threading.Event()

    def slow_segment(**_: Any) -> None:
        if not slow.is_set():
            slow.set()
            time.sleep(0.8)  # longer than a third of the lease: renewed meanwhile
            leases.append(services.store.get(job.job_id).lease_expires_at)

    services.s3.meta.events.register("before-call.s3.PutObject", slow_segment)
    claimed_until = services.store.now()

    result = handle_message(
        json.dumps({"v": 1, "jobId": job.job_id}),
        services=services,
        context_remaining_ms=lambda: 900_000,
        receipt_handle="the-receipt",
        options=FAST,
    )

    assert result.action == Action.COMPLETED
    assert leases[0] is not None and (leases[0] - claimed_until).total_seconds() > 1.2
    assert extended and extended[0][0] == "the-receipt" and extended[0][1] > 1


def test_a_cancel_whose_worker_died_is_finished_by_the_next_message(
    worker_services: Any, worker_job: Any, worker_events: Any, s3: Any, bucket: str
) -> None:
    services = worker_services()
    job = worker_job(services, jobType="upload-video-to-s3", sourcePath="movie.mp4")
    key = f"{FILM}/video/movie.mp4"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    checkpoint = {"key": key, "uploadId": upload_id, "partSize": 5 * MIB, "size": 12 * MIB, "parts": []}
    past = services.store.now().replace(year=2000)
    services.store.collection.update_one(
        {"jobId": job.job_id},
        {
            "$set": {
                "status": "active",
                "attempts": 5,
                "cancelRequested": True,
                "leaseOwner": "dead-worker",
                "leaseExpiresAt": past,
                "multipartUploads": [checkpoint],
            }
        },
    )

    result = run(services, job.job_id)

    cancelled = services.store.get(job.job_id)
    assert (result.action, cancelled.status, cancelled.multipart_uploads) == (
        Action.CANCELLED,
        JobStatus.CANCELLED,
        [],
    )
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert worker_events.names(job.job_id) == ["JobCancelled"]
