"""Notifications end to end: a job ends, its notification goes through the notification queue (moto's
SQS) to the app's `deliver_notifications` handler, which POSTs it to a real HTTP receiver on
loopback (verifying with the snippet of docs/notifications.md, as a user's would) or emails it
through moto's SES."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import NotificationNotDelivered
from chalicelib.jobs.model import JobStatus, utcnow
from chalicelib.local.aws import create_notification_queue
from chalicelib.local.runtime import LambdaContext, sqs_event
from chalicelib.maintenance import fix_stuck
from chalicelib.notify.rules import Verdict
from chalicelib.notify.signature import HEADER
from chalicelib.notify.webhook import WebhookSink
from chalicelib.queue import dead_letter_url
from chalicelib.services import set_services
from chalicelib.usecases.dead_letter import handle_dead_letter
from chalicelib.worker import Action, handle_message

SECRET = "whsec-integration-test"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def documented_verifier() -> Callable[..., bool]:
    """`verify_studio_signature` exactly as docs/notifications.md prints it."""
    section = DOCS.read_text().split("## Verifying a notification", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["verify_studio_signature"]  # type: ignore[no-any-return]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A webhook receiver: answers 401 to a bad signature, else the next of `answers` (then 204)."""

    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    verify = documented_verifier()
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            verified = verify(SECRET, self.headers.get(HEADER, ""), body)
            state.received.append(Received(dict(self.headers), body, verified))
            status = (state.answers.pop(0) if state.answers else 204) if verified else 401
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/studio"
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class HangingReceiver:
    """Accepts connections and never answers: a receiver that is down in the worst way."""

    url: str
    connections: list[socket.socket]


@pytest.fixture
def hanging_receiver() -> Iterator[HangingReceiver]:
    listener = socket.create_server(("127.0.0.1", 0))
    state = HangingReceiver(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", [])

    def accept() -> None:
        while True:
            try:
                state.connections.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield state
    listener.close()
    for connection in state.connections:
        connection.close()


@pytest.fixture
def notify_queue(sqs: Any) -> str:
    return create_notification_queue(sqs, prefix=f"t{uuid.uuid4().hex[:8]}-")


@pytest.fixture
def notifying(worker_services: Any, notify_queue: str) -> Callable[..., Any]:
    """`notifying(url, **overrides)`: worker services notifying `url`, installed for the app's handler."""

    def make(url: str, **overrides: Any) -> Any:
        settings = {
            "notify_webhook_urls": [url],
            "notify_webhook_secret": SECRET,
            "notify_queue_url": notify_queue,
            "notify_timeout_seconds": 1.0,
            "notify_retry_base_seconds": 0,
            **overrides,
        }
        services = worker_services(**settings)
        set_services(services)  # the `services` fixture resets it afterwards
        return services

    return make


def run_job(services: Any, job: Any) -> Any:
    return handle_message(
        json.dumps({"v": 1, "jobId": job.job_id}), services=services, context_remaining_ms=lambda: 900_000
    )


def receive(sqs: Any, queue_url: str, wait_seconds: float = 10.0) -> list[dict[str, Any]]:
    """The messages visible in the queue, polling until one is or `wait_seconds` pass."""
    deadline = time.monotonic() + wait_seconds
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        if messages or time.monotonic() > deadline:
            return list(messages)


def deliver(sqs: Any, queue_url: str, message: dict[str, Any]) -> list[str]:
    """The app's deliver_notifications handler on one message, as Lambda calls it; deleted if it returns."""
    import app as app_module

    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    handler = app_module.app.handler_map["deliver_notifications"]
    outcomes: list[str] = handler(sqs_event([message], arn), LambdaContext("deliver_notifications", 60))
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return outcomes


def test_a_failed_job_s_notification_arrives_signed_and_the_documented_snippet_verifies_it(
    notifying: Any, worker_job: Any, receiver: Receiver, sqs: Any, notify_queue: str
) -> None:
    services = notifying(receiver.url)
    job = worker_job(services, hlsDir="films/missing/720p")  # no such folder: fails at once

    assert run_job(services, job).action == Action.FAILED
    (message,) = receive(sqs, notify_queue)
    assert receiver.received == []  # nothing is sent to a receiver until the queue's handler runs
    assert deliver(sqs, notify_queue, message) == ["delivered"]

    (request,) = receiver.received
    assert request.verified
    payload = request.payload
    assert (payload["event"], payload["jobId"], payload["status"]) == ("JobFailed", job.job_id, "failed")
    assert payload["errorCode"] == "SOURCE_NOT_FOUND"
    assert payload["text"].startswith(f":x: JobFailed `{job.job_id}`")
    assert request.headers["X-Studio-Event"] == "JobFailed"
    assert request.headers["X-Studio-Notification-Id"] == payload["notificationId"]
    assert receive(sqs, notify_queue, wait_seconds=0) == []


def test_the_documented_snippet_refuses_an_old_timestamp(receiver: Receiver) -> None:
    """A request signed ten minutes ago (a replay) is refused: 401, which is not retried."""
    replayed = WebhookSink(receiver.url, SECRET, timeout=2.0, clock=lambda: time.time() - 600)
    fresh = WebhookSink(receiver.url, SECRET, timeout=2.0)
    payload = {"event": "JobFailed", "jobId": "j-1", "notificationId": "n-1"}

    assert replayed.deliver(payload) == (Verdict.REFUSED, "HTTP 401")
    assert fresh.deliver(payload) == (Verdict.DELIVERED, "HTTP 204")
    assert [request.verified for request in receiver.received] == [False, True]


def test_a_500_is_retried_and_the_second_delivery_succeeds(
    notifying: Any, worker_job: Any, receiver: Receiver, sqs: Any, notify_queue: str
) -> None:
    services = notifying(receiver.url)
    receiver.answers = [500]
    run_job(services, worker_job(services, hlsDir="films/missing/720p"))

    (first,) = receive(sqs, notify_queue)
    with pytest.raises(NotificationNotDelivered, match="HTTP 500"):
        deliver(sqs, notify_queue, first)
    (second,) = receive(sqs, notify_queue)  # the same message, delivered again by SQS
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert deliver(sqs, notify_queue, second) == ["delivered"]

    assert len(receiver.received) == 2
    assert receiver.received[0].payload["notificationId"] == receiver.received[1].payload["notificationId"]
    assert receive(sqs, notify_queue, wait_seconds=0) == []


def test_a_failed_delivery_is_hidden_for_its_backoff(
    notifying: Any, worker_job: Any, receiver: Receiver, sqs: Any, notify_queue: str
) -> None:
    services = notifying(receiver.url, notify_retry_base_seconds=30)
    receiver.answers = [503]
    run_job(services, worker_job(services, hlsDir="films/missing/720p"))

    (message,) = receive(sqs, notify_queue)
    with pytest.raises(NotificationNotDelivered, match="next try in 30 s"):
        deliver(sqs, notify_queue, message)

    assert receive(sqs, notify_queue, wait_seconds=0) == []
    attributes = sqs.get_queue_attributes(QueueUrl=notify_queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_a_permanent_refusal_goes_to_the_dead_letter_queue_at_once(
    notifying: Any, worker_job: Any, receiver: Receiver, sqs: Any, notify_queue: str
) -> None:
    services = notifying(receiver.url)
    receiver.answers = [410]  # the hook was removed
    job = worker_job(services, hlsDir="films/missing/720p")
    run_job(services, job)

    (message,) = receive(sqs, notify_queue)
    assert deliver(sqs, notify_queue, message) == ["refused"]

    (dead,) = receive(sqs, dead_letter_url(notify_queue))
    assert json.loads(dead["Body"])["payload"]["jobId"] == job.job_id
    assert receive(sqs, notify_queue, wait_seconds=0) == []


def test_a_hanging_receiver_does_not_delay_the_job(
    notifying: Any,
    worker_services: Any,
    worker_job: Any,
    write_rendition: Any,
    hanging_receiver: HangingReceiver,
    sqs: Any,
    notify_queue: str,
) -> None:
    """The job completes as fast as with no notification at all; only the delivery waits, and gives up."""
    write_rendition(segments=3)
    quiet = worker_services()
    started = time.monotonic()
    assert run_job(quiet, worker_job(quiet, jobId="without-notifications")).action == Action.COMPLETED
    without = time.monotonic() - started

    # A receiver called inline would cost the job at least the 5 s timeout.
    services = notifying(hanging_receiver.url, notify_events=["JobFailed", "JobCompleted"], notify_timeout_seconds=5.0)
    started = time.monotonic()
    assert run_job(services, worker_job(services, jobId="with-a-hanging-receiver")).action == Action.COMPLETED
    with_hanging = time.monotonic() - started

    assert services.store.get("with-a-hanging-receiver").status == JobStatus.COMPLETED
    assert hanging_receiver.connections == []  # the worker never called the receiver
    assert with_hanging < without + 2.5, (with_hanging, without)
    (message,) = receive(sqs, notify_queue)
    assert json.loads(message["Body"])["payload"]["event"] == "JobCompleted"
    started = time.monotonic()
    with pytest.raises(NotificationNotDelivered, match="no answer"):
        deliver(sqs, notify_queue, message)
    assert time.monotonic() - started < 15  # NOTIFY_TIMEOUT_SECONDS (5 s here) ends the wait
    assert len(hanging_receiver.connections) == 1


def test_a_notification_that_cannot_be_enqueued_is_logged_and_the_job_completes(
    notifying: Any, worker_job: Any, write_rendition: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    write_rendition(segments=2)
    services = notifying(receiver.url, notify_queue_url=f"{receiver.url}/no-such-queue", notify_events=["JobCompleted"])
    job = worker_job(services)

    with caplog.at_level(logging.ERROR, logger="chalicelib.notify.enqueue"):
        assert run_job(services, job).action == Action.COMPLETED

    assert services.store.get(job.job_id).status == JobStatus.COMPLETED
    assert f"could not enqueue the JobCompleted notification of job {job.job_id}" in caplog.text


def test_a_dead_lettered_job_is_notified_with_its_error_code(
    notifying: Any, make_job: Any, receiver: Receiver, sqs: Any, notify_queue: str
) -> None:
    services = notifying(receiver.url)
    job = make_job(status="waiting")

    assert handle_dead_letter(json.dumps({"v": 1, "jobId": job.job_id}), 10, services).value == "failed"

    (message,) = receive(sqs, notify_queue)
    assert deliver(sqs, notify_queue, message) == ["delivered"]
    (request,) = receiver.received
    assert (request.payload["jobId"], request.payload["errorCode"]) == (job.job_id, "DEAD_LETTERED")


def test_a_stalled_job_is_notified_with_its_error_code(
    notifying: Any, make_job: Any, receiver: Receiver, sqs: Any, notify_queue: str
) -> None:
    """fix-stuck fails a job whose worker died with no attempts left: STALLED, notified by default."""
    services = notifying(receiver.url)
    expired = utcnow() - timedelta(hours=1)
    job = make_job(status="active", attempts=1, maxAttempts=1, leaseOwner="dead-worker", leaseExpiresAt=expired)

    assert fix_stuck(services)["failed"] == 1

    (message,) = receive(sqs, notify_queue)
    assert deliver(sqs, notify_queue, message) == ["delivered"]
    (request,) = receiver.received
    assert (request.payload["jobId"], request.payload["errorCode"]) == (job.job_id, "STALLED")


@pytest.fixture
def ses(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto's SES (v1, to verify the sender and count what was sent); the services' sesv2 client reaches it too."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", moto_endpoint)
    session = boto3.session.Session()
    # moto loads its SES backend on the first call: slow enough on a loaded machine that the sink's
    # 2 s timeout and retry would send the first email twice (a real SES could do the same).
    session.client("sesv2", endpoint_url=moto_endpoint, region_name="us-east-1").list_email_identities()
    return session.client("ses", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def emailing(worker_services: Any, notify_queue: str) -> Callable[[str], Any]:
    def make(sender: str) -> Any:
        services = worker_services(
            notify_email_to=["ops@example.com"], notify_email_from=sender, notify_queue_url=notify_queue
        )
        set_services(services)
        return services

    return make


def test_a_failure_is_emailed_through_ses(
    emailing: Any, worker_job: Any, ses: Any, sqs: Any, notify_queue: str
) -> None:
    sender = f"studio-{uuid.uuid4().hex[:8]}@example.com"
    ses.verify_email_identity(EmailAddress=sender)
    sent_before = ses.get_send_quota()["SentLast24Hours"]
    services = emailing(sender)
    run_job(services, worker_job(services, hlsDir="films/missing/720p"))

    (message,) = receive(sqs, notify_queue)
    assert json.loads(message["Body"])["sink"] == "email"
    assert deliver(sqs, notify_queue, message) == ["delivered"]
    sent = ses.get_send_quota()["SentLast24Hours"]
    assert sent == sent_before + 1, (sent_before, sent)


def test_an_email_from_an_unverified_sender_goes_to_the_dead_letter_queue(
    emailing: Any, worker_job: Any, ses: Any, sqs: Any, notify_queue: str
) -> None:
    services = emailing("nobody-verified-me@example.com")
    run_job(services, worker_job(services, hlsDir="films/missing/720p"))

    (message,) = receive(sqs, notify_queue)
    assert deliver(sqs, notify_queue, message) == ["refused"]
    (dead,) = receive(sqs, dead_letter_url(notify_queue))
    assert json.loads(dead["Body"])["sink"] == "email"
