"""Dead letters (SPEC 5): a message SQS gave up on (moto moves it) fails its job DEAD_LETTERED
when the dead-letter handler, invoked as Lambda would, processes it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.local.runtime import sqs_event
from chalicelib.queue import QueueMessage
from chalicelib.usecases.dead_letter import DeadLetterOutcome, handle_dead_letter


def body(job_id: str, **fields: Any) -> str:
    return QueueMessage(v=1, jobId=job_id, **fields).body()


def redriven_queue(sqs: Any) -> tuple[str, str]:
    """A queue whose messages go to its dead-letter queue after one receive."""
    name = f"dl-{uuid.uuid4().hex[:8]}"
    dead_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "1"})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    return url, dead_url


def test_a_message_past_its_receive_count_fails_its_job_through_the_dlq_handler(
    api: Any, sqs: Any, store: JobStore, make_job: Any
) -> None:
    job = make_job()
    url, dead_url = redriven_queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody=body(job.job_id))
    for _ in range(2):  # a worker that crashes: received, never deleted
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)
    dead = sqs.receive_message(QueueUrl=dead_url, AttributeNames=["All"], WaitTimeSeconds=0)["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    receives = int(dead[0]["Attributes"]["ApproximateReceiveCount"])

    response = api.lambda_.invoke("hls_dead_letters", sqs_event(dead, arn))

    assert response.payload == ["failed"]
    failed = store.get(job.job_id)
    assert (failed.status, failed.error_code) == (JobStatus.FAILED, "DEAD_LETTERED")
    assert failed.failed_reason and f"after {receives} deliveries" in failed.failed_reason
    assert failed.error_message == f"dead-lettered: ApproximateReceiveCount={receives}"


def test_each_record_of_a_batch_is_handled_and_a_malformed_one_acknowledged(
    api: Any, store: JobStore, make_job: Any
) -> None:
    waiting, done = make_job(jobId="w"), make_job(jobId="done", status="completed")
    bodies = ["not json", body(waiting.job_id), body(done.job_id), body("nobody"), json.dumps({"v": 2})]

    response = api.lambda_.invoke("master_dead_letters", api.events.generate_sqs_event(bodies))

    assert response.payload == ["malformed", "failed", "already-finished", "unknown-job", "malformed"]
    assert store.get("w").status == JobStatus.FAILED
    assert store.get("done").status == JobStatus.COMPLETED
    assert store.get("w").error_message == "dead-lettered: ApproximateReceiveCount=1"


def test_a_job_a_live_worker_holds_is_left_to_it(maintenance: Any, make_job: Any) -> None:
    job = make_job(status="active", leaseOwner="w", leaseExpiresAt=utcnow().replace(year=2100))

    assert handle_dead_letter(body(job.job_id), 3, maintenance) == DeadLetterOutcome.HELD_BY_WORKER
    assert maintenance.store.get(job.job_id).status == JobStatus.ACTIVE


def test_an_active_job_whose_worker_died_is_failed(maintenance: Any, make_job: Any) -> None:
    job = make_job(status="active", leaseOwner="w", leaseExpiresAt=utcnow().replace(year=2000))

    assert handle_dead_letter(body(job.job_id), 5, maintenance) == DeadLetterOutcome.FAILED
    assert maintenance.notifier.events == [("JobFailed", job.job_id, "failed")]


def test_a_job_only_the_message_carried_is_recorded_failed_so_it_can_be_retried(
    maintenance: Any, store: JobStore
) -> None:
    spec = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/x/720p",
        "label": "720p",
    }

    assert handle_dead_letter(body("from-sqs", job=spec), 4, maintenance) == DeadLetterOutcome.FAILED
    assert (
        handle_dead_letter(body("bad-spec", job={"jobType": "nope"}), 4, maintenance) == DeadLetterOutcome.UNKNOWN_JOB
    )

    recorded = store.get("from-sqs")
    assert (recorded.status, recorded.error_code, recorded.label) == (JobStatus.FAILED, "DEAD_LETTERED", "720p")
    assert store.retry("from-sqs", client_id=None).status == JobStatus.WAITING
    assert store.find("bad-spec") is None
