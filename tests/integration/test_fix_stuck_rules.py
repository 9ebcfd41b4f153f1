"""sync and fix-stuck on the store and SQS (moto): each SPEC 7 rule, its event, its message."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.errors import NotFound
from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import fix_stuck, sync_job

LONG_AGO = timedelta(hours=2)


def later(maintenance: Any, database: Any) -> Any:
    """The same services judging from two hours later (a store with a clock ahead)."""
    return dataclasses.replace(maintenance, store=JobStore(database, clock=lambda: utcnow() + LONG_AGO))


def queued(sqs: Any, url: str) -> list[dict[str, Any]]:
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def test_sync_requeues_a_job_whose_worker_died_and_keeps_its_checkpoint(
    maintenance: Any, make_job: Any, sqs: Any
) -> None:
    checkpoint = [{"key": "films/x/hls/720p/big.ts", "uploadId": "u-1", "partSize": 5, "size": 12, "parts": []}]
    job = make_job(
        status="active",
        attempts=2,
        leaseOwner="worker-dead",
        leaseExpiresAt=utcnow() - timedelta(seconds=1),
        writtenKeys=["films/x/hls/720p/seg000.ts"],
        multipartUploads=checkpoint,
    )

    answer = sync_job(job.job_id, maintenance)

    assert answer["jobId"] == job.job_id
    assert (answer["before"], answer["after"], answer["action"]) == ("active", "waiting", "requeued")
    assert "2 of 5 attempts" in answer["reason"]
    after = maintenance.store.get(job.job_id)
    assert after.lease_owner is None
    assert after.attempts == 2
    assert after.written_keys == ["films/x/hls/720p/seg000.ts"]
    assert after.multipart_uploads == checkpoint
    assert after.history[-1].actor == "maintenance"
    assert [m["jobId"] for m in queued(sqs, maintenance.settings.hls_queue_url)] == [job.job_id]
    assert maintenance.notifier.events == [("JobQueued", job.job_id, "waiting")]


def test_sync_fails_a_dead_workers_job_with_no_attempts_left_as_stalled(maintenance: Any, make_job: Any) -> None:
    job = make_job(status="active", attempts=5, leaseOwner="w", leaseExpiresAt=utcnow() - LONG_AGO)

    answer = sync_job(job.job_id, maintenance)

    assert (answer["after"], answer["action"]) == ("failed", "failed")
    failed = maintenance.store.get(job.job_id)
    assert failed.error_code == "STALLED"
    assert failed.failed_reason and "stopped answering" in failed.failed_reason
    assert failed.finished_at is not None and failed.can_cancel is False
    assert maintenance.notifier.events == [("JobFailed", job.job_id, "failed")]


def test_sync_leaves_a_job_with_a_live_lease_alone(maintenance: Any, make_job: Any, sqs: Any) -> None:
    job = make_job(status="active", attempts=1, leaseOwner="w", leaseExpiresAt=utcnow() + timedelta(seconds=60))

    answer = sync_job(job.job_id, maintenance)

    assert (answer["before"], answer["after"], answer["action"]) == ("active", "active", "none")
    assert maintenance.store.get(job.job_id).lease_owner == "w"
    assert queued(sqs, maintenance.settings.hls_queue_url) == []


def test_sync_of_an_unknown_job_is_not_found(maintenance: Any) -> None:
    with pytest.raises(NotFound):
        sync_job("no-such-job", maintenance)


def test_fix_stuck_resends_a_waiting_job_whose_message_was_lost_once_per_stuck_period(
    maintenance: Any, store: JobStore, database: Any, make_job: Any, sqs: Any
) -> None:
    job = make_job(now=utcnow() - LONG_AGO)
    url = maintenance.settings.hls_queue_url

    first = fix_stuck(maintenance)
    again = fix_stuck(maintenance)

    assert first == {"scanned": 1, "requeued": 1, "failed": 0, "cancelled": 0}
    assert again == {"scanned": 0, "requeued": 0, "failed": 0, "cancelled": 0}
    assert [m["jobId"] for m in queued(sqs, url)] == [job.job_id]
    resent = store.get(job.job_id)
    assert resent.status == JobStatus.WAITING
    assert resent.next_attempt_at is not None and resent.next_attempt_at > utcnow() - timedelta(minutes=1)
    assert fix_stuck(later(maintenance, database))["requeued"] == 1


def test_fix_stuck_leaves_waiting_jobs_in_their_backoff_alone(maintenance: Any, make_job: Any) -> None:
    make_job(now=utcnow() - LONG_AGO, nextAttemptAt=utcnow() + timedelta(minutes=5))
    make_job(jobId="fresh")

    assert fix_stuck(maintenance)["scanned"] == 0


def test_fix_stuck_finishes_the_cancel_of_a_dead_worker_and_aborts_its_upload(
    maintenance: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    key = "films/x/hls/720p/big.ts"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024)
    job = make_job(
        bucketName=bucket,
        status="active",
        attempts=1,
        cancelRequested=True,
        leaseOwner="dead",
        leaseExpiresAt=utcnow() - timedelta(seconds=5),
        multipartUploads=[{"key": key, "uploadId": upload_id, "partSize": 1024, "size": 4096, "parts": []}],
    )

    assert fix_stuck(maintenance) == {"scanned": 1, "requeued": 0, "failed": 0, "cancelled": 1}

    cancelled = maintenance.store.get(job.job_id)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.multipart_uploads == []
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert maintenance.notifier.events == [("JobCancelled", job.job_id, "cancelled")]


def test_a_requested_cancel_with_a_live_worker_is_left_to_that_worker(maintenance: Any, make_job: Any) -> None:
    job = make_job(status="active", cancelRequested=True, leaseOwner="w", leaseExpiresAt=utcnow() + LONG_AGO)

    assert fix_stuck(maintenance)["scanned"] == 0
    assert sync_job(job.job_id, maintenance)["action"] == "none"
    assert maintenance.store.get(job.job_id).status == JobStatus.ACTIVE


def test_a_job_whose_message_cannot_be_sent_stays_waiting_for_the_next_run(
    maintenance: Any, make_job: Any, store: JobStore, database: Any
) -> None:
    class BrokenQueue:
        def send(self, *args: Any, **kwargs: Any) -> str:
            raise ConnectionError("SQS is unreachable")

    job = make_job(status="active", attempts=1, leaseOwner="dead", leaseExpiresAt=utcnow() - LONG_AGO)
    broken = dataclasses.replace(maintenance, queue=BrokenQueue())

    assert fix_stuck(broken)["requeued"] == 1

    assert store.get(job.job_id).status == JobStatus.WAITING
    assert fix_stuck(later(maintenance, database)) == {"scanned": 1, "requeued": 1, "failed": 0, "cancelled": 0}
    assert maintenance.notifier.events == [("JobQueued", job.job_id, "waiting")]
