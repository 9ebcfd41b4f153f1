"""A state change and its SQS message (chalicelib/jobs/outbox.py): an actor that dies between the
two leaves a pending send that the next worker invocation or the schedule sends once it is half a
lease old (not the overdue rule's 15 minutes); a message that comes before a retry's backoff has
ended does not start the job."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.jobs.model import CreateJobRequest, JobStatus, ListFilters, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import run_scheduled_maintenance
from chalicelib.usecases import jobs
from chalicelib.worker import Action, WorkerOptions, WorkerResult, handle_message

FAST = WorkerOptions(cancel_poll_seconds=0.02)
RENDITION = {
    "jobType": "upload-hls-to-s3",
    "resourceType": "film",
    "resourceId": "64b7f0c2a1b2c3d4e5f60718",
    "hlsDir": "films/x/720p",
    "label": "720p",
}


class Died(BaseException):
    """The process ends here: nothing after this line runs."""


def dies_when_sending(services: Any) -> None:
    def die(**_: Any) -> None:
        raise Died

    services.sqs.meta.events.register("before-call.sqs.SendMessage", die, unique_id="dies-when-sending")


def throttled_puts(services: Any) -> None:
    def slow_down(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject")

    services.s3.meta.events.register("before-call.s3.PutObject", slow_down)


def run(services: Any, body: str) -> WorkerResult:
    return handle_message(body, services=services, context_remaining_ms=lambda: 900_000, options=FAST)


def messages(sqs: Any, url: str) -> list[dict[str, Any]]:
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(message["Body"]) for message in received]


def delayed(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"])


def pending_for(store: JobStore, job_id: str, seconds: float) -> None:
    """Time passes: the job's send has been pending for `seconds`."""
    since = store.now() - timedelta(seconds=seconds)
    store.collection.update_one({"jobId": job_id}, {"$set": {"sendPendingAt": since}})


def test_a_job_created_by_an_api_that_died_before_sending_is_sent_by_the_next_worker_invocation(
    services: Any, worker_services: Any, worker_job: Any, write_rendition: Any, sqs: Any, settings: Any
) -> None:
    api = worker_services()
    dies_when_sending(api)
    write_rendition(segments=2)
    with pytest.raises(Died):
        jobs.create_job(
            CreateJobRequest.model_validate(RENDITION),
            store=api.store,
            queue=api.queue,
            notifier=api.notifier,
            settings=api.settings,
        )
    (job,) = api.store.list(ListFilters())[0]
    assert messages(sqs, settings.hls_queue_url) == []
    pending_for(api.store, job.job_id, settings.lease_seconds)  # well past the grace of half a lease

    worker = worker_services()
    unrelated = run(worker, json.dumps({"v": 1, "jobId": "no-such-job"}))

    assert unrelated.action == Action.UNKNOWN_JOB
    [message] = messages(sqs, settings.hls_queue_url)
    assert message["jobId"] == job.job_id
    assert worker.store.get(job.job_id).send_pending_at is None
    assert run(worker, json.dumps(message)).action == Action.COMPLETED


def test_a_worker_that_died_between_going_back_to_waiting_and_sending_leaves_it_to_the_schedule(
    worker_services: Any,
    worker_job: Any,
    write_rendition: Any,
    maintenance: Any,
    database: Any,
    sqs: Any,
    settings: Any,
) -> None:
    dying = worker_services()
    write_rendition(segments=2)
    job = worker_job(dying)
    throttled_puts(dying)
    dies_when_sending(dying)
    with pytest.raises(Died):
        run(dying, json.dumps({"v": 1, "jobId": job.job_id}))
    stranded = dying.store.get(job.job_id)
    assert (stranded.status, stranded.attempts) == (JobStatus.WAITING, 1)
    assert messages(sqs, settings.hls_queue_url) == [] and delayed(sqs, settings.hls_queue_url) == 0

    ahead = timedelta(seconds=settings.lease_seconds)  # well past the grace of half a lease
    later = dataclasses.replace(maintenance, store=JobStore(database, clock=lambda: utcnow() + ahead))
    answer = run_scheduled_maintenance(later)

    assert answer["pendingSends"] == {"sent": 1}
    [message] = messages(sqs, settings.hls_queue_url)  # its backoff is over by then: not delayed
    assert message["jobId"] == job.job_id
    assert maintenance.store.get(job.job_id).send_pending_at is None


def test_a_message_that_comes_before_the_backoff_ends_is_put_back_without_spending_an_attempt(
    worker_services: Any, worker_job: Any, write_rendition: Any, sqs: Any, settings: Any, count_s3_requests: Any
) -> None:
    services = worker_services()
    write_rendition(segments=2)
    job = worker_job(services)
    retry_at = services.store.now() + timedelta(seconds=60)  # as an attempt that failed left it
    services.store.collection.update_one({"jobId": job.job_id}, {"$set": {"attempts": 1, "nextAttemptAt": retry_at}})
    requests = count_s3_requests(services.s3)

    early = run(services, json.dumps({"v": 1, "jobId": job.job_id}))

    waiting = services.store.get(job.job_id)
    assert (waiting.status, waiting.attempts, sum(requests.values())) == (JobStatus.WAITING, 1, 0)
    assert early.action == Action.NOT_DUE
    assert messages(sqs, settings.hls_queue_url) == [] and delayed(sqs, settings.hls_queue_url) == 1

    services.store.collection.update_one({"jobId": job.job_id}, {"$set": {"nextAttemptAt": services.store.now()}})
    on_time = run(services, json.dumps({"v": 1, "jobId": job.job_id}))

    assert (on_time.action, services.store.get(job.job_id).attempts) == (Action.COMPLETED, 2)


def test_a_healthy_create_sends_once_and_leaves_nothing_pending(
    worker_services: Any, sqs: Any, settings: Any, maintenance: Any, database: Any
) -> None:
    api = worker_services()

    job, created = jobs.create_job(
        CreateJobRequest.model_validate(RENDITION),
        store=api.store,
        queue=api.queue,
        notifier=api.notifier,
        settings=api.settings,
    )

    assert created and api.store.get(job.job_id).send_pending_at is None
    ahead = timedelta(seconds=settings.lease_seconds)
    later = dataclasses.replace(maintenance, store=JobStore(database, clock=lambda: utcnow() + ahead))
    assert run_scheduled_maintenance(later)["pendingSends"] == {"sent": 0}
    assert [message["jobId"] for message in messages(sqs, settings.hls_queue_url)] == [job.job_id]
