"""Job events reach WebSocket clients (SPEC 8), through the local gateway with real clients.

Jobs move through the store and the container's notifier exactly as a worker moves them.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.jobs.model import JobStatus, UploadJob
from chalicelib.jobs.store import JobStore
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import flush_all

TOTAL_BYTES = 50 * 1024 * 1024
FLUSH = 10.0  # a deadline against hanging, not a speed requirement


class WorkerDouble:
    """Moves one job as a worker does: claim, progress writes, finish; publishing each step."""

    def __init__(self, store: JobStore, services: Any, job: UploadJob) -> None:
        self.store, self.notifier, self.job_id = store, services.notifier, job.job_id

    def claim(self) -> None:
        job = self.store.transition(
            self.job_id, JobStatus.ACTIVE, reason="claimed", actor="worker", inc={"attempts": 1}
        )
        assert job is not None

    def progress(self, uploaded: int, files: int = 1) -> None:
        percent = min(100, uploaded * 100 // TOTAL_BYTES)
        fields = {"uploadedBytes": uploaded, "totalBytes": TOTAL_BYTES, "uploadedFiles": files, "totalFiles": 10}
        job = self.store.update_fields(self.job_id, {"status": "active"}, {"$set": {**fields, "progress": percent}})
        assert job is not None
        self.notifier.publish(JobEvent.PROGRESS, job)

    def finish(self, target: JobStatus, event: JobEvent, **fields: Any) -> None:
        job = self.store.transition(self.job_id, target, reason="finished", actor="worker", set_fields=fields)
        assert job is not None
        self.notifier.publish(event, job)


def enqueue(make_job: Any, services: Any, **fields: Any) -> UploadJob:
    job: UploadJob = make_job(**fields)
    services.notifier.publish(JobEvent.QUEUED, job)
    return job


def test_a_subscriber_follows_a_job_from_queued_through_progress_to_completed(
    ws_connect: Any, realtime_services: Any, store: JobStore, make_job: Any
) -> None:
    client = ws_connect()
    client.ask({"action": "subscribe", "all": True})
    job = enqueue(make_job, realtime_services, jobId="film-720p", label="720p")
    worker = WorkerDouble(store, realtime_services, job)

    worker.claim()
    for step in range(1, 5):
        worker.progress(step * TOTAL_BYTES // 4, files=step)
        time.sleep(0.12)  # past the 100 ms interval, so every step is sent
    public_url = "https://cdn.example.com/films/64b7f0c2a1b2c3d4e5f60718/hls/720p/index.m3u8"
    worker.finish(JobStatus.COMPLETED, JobEvent.COMPLETED, durationSeconds=42.5, publicUrl=public_url, progress=100)
    assert flush_all(FLUSH)

    events = client.until("JobCompleted")
    assert events[0]["event"] == "JobQueued"
    assert {e["event"] for e in events[1:-1]} == {"uploadProgress"}
    progress = [e["progress"] for e in events[1:-1]]
    assert len(progress) >= 2  # a client slower than the steps may skip some, never go back
    assert progress == sorted(progress)
    assert progress[-1] == 100
    first = events[1]
    assert first["jobId"] == "film-720p"
    assert first["status"] == "active"
    assert first["totalBytes"] == TOTAL_BYTES
    assert first["uploadedFiles"] == 1
    assert (first["jobType"], first["uploadType"], first["label"]) == ("upload-hls-to-s3", "hls", "720p")
    assert (first["resourceType"], first["resourceId"]) == ("film", "64b7f0c2a1b2c3d4e5f60718")
    assert first["at"].endswith("Z")
    completed = events[-1]
    assert completed["status"] == "completed"
    assert completed["durationSeconds"] == 42.5
    assert completed["publicUrl"] == public_url


def test_a_failing_job_sends_job_failed_with_its_error_code_and_reason(
    ws_connect: Any, realtime_services: Any, store: JobStore, make_job: Any
) -> None:
    client = ws_connect()
    client.ask({"action": "subscribe", "jobIds": ["broken"]})
    worker = WorkerDouble(store, realtime_services, enqueue(make_job, realtime_services, jobId="broken"))

    worker.claim()
    reason = "The source folder films/x/720p does not exist."
    worker.finish(JobStatus.FAILED, JobEvent.FAILED, errorCode="SOURCE_NOT_FOUND", failedReason=reason)
    assert flush_all(FLUSH)

    failed = client.until("JobFailed")[-1]
    assert failed["errorCode"] == "SOURCE_NOT_FOUND"
    assert failed["failedReason"] == reason
    assert failed["status"] == "failed"


def test_the_connection_named_by_a_jobs_client_id_receives_its_events_without_subscribing(
    ws_connect: Any, realtime_services: Any, store: JobStore, make_job: Any
) -> None:
    owner, bystander = ws_connect(), ws_connect()
    owner_id = owner.ask({"action": "whoami"})["connectionId"]
    job = enqueue(make_job, realtime_services, jobId="mine", clientId=owner_id)
    WorkerDouble(store, realtime_services, job).claim()
    realtime_services.notifier.publish(JobEvent.CANCELLED, store.cancel("mine"))
    assert flush_all(FLUSH)

    assert [e["event"] for e in owner.until("JobCancelled")] == ["JobQueued", "JobCancelled"]
    assert bystander.drain() == []


def test_after_unsubscribing_a_client_receives_nothing_more(
    ws_connect: Any, realtime_services: Any, make_job: Any
) -> None:
    client = ws_connect()
    client.ask({"action": "subscribe", "all": True})
    enqueue(make_job, realtime_services, jobId="first")
    assert flush_all(FLUSH)
    assert [e["jobId"] for e in client.drain()] == ["first"]

    client.ask({"action": "unsubscribe", "all": True})
    enqueue(make_job, realtime_services, jobId="second")
    assert flush_all(FLUSH)

    assert client.drain() == []


def test_a_long_upload_sends_at_most_one_progress_per_interval_and_the_one_at_100(
    ws_connect: Any, realtime_services: Any, store: JobStore, make_job: Any
) -> None:
    interval = realtime_services.settings.progress_interval_ms / 1000
    client = ws_connect()
    client.ask({"action": "subscribe", "all": True})
    worker = WorkerDouble(store, realtime_services, enqueue(make_job, realtime_services, jobId="long"))
    worker.claim()

    started = time.monotonic()
    steps = 60
    for step in range(1, steps + 1):  # far more progress writes than intervals
        worker.progress(step * TOTAL_BYTES // steps)
        time.sleep(interval / 10)
    elapsed = time.monotonic() - started
    assert flush_all(FLUSH)

    progress = [e["progress"] for e in client.drain() if e["event"] == "uploadProgress"]
    assert progress[-1] == 100
    assert progress == sorted(progress)
    # The first at once, then one per elapsed interval, the held-back newest, and the one at 100.
    assert 2 <= len(progress) <= elapsed / interval + 3
    assert len(progress) < steps
