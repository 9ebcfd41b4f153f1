"""Who receives a job's events (SPEC 8): connections following every job, following that job, or whose
connection id is the job's clientId; nobody else. And publishing never raises into the caller."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from chalicelib.jobs.model import utcnow
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import WebSocketNotifier


def in_an_hour() -> datetime:
    """A connection's token expiry that outlasts the test."""
    return utcnow() + timedelta(hours=1)


class RecordingSender:
    """A Sender that keeps what each connection received."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._lock = threading.Lock()

    def send(self, connection_id: str, data: str) -> None:
        with self._lock:
            self.received[connection_id].append(json.loads(data))


@pytest.fixture
def registry(database: Any) -> ConnectionRegistry:
    connections = ConnectionRegistry(database)
    connections.ensure_indexes()
    return connections


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def notifier(registry: ConnectionRegistry, sender: RecordingSender) -> Iterator[WebSocketNotifier]:
    built = WebSocketNotifier(registry, sender, progress_interval_ms=1000)
    yield built
    built.close()


def test_an_event_reaches_followers_of_all_jobs_of_that_job_and_the_jobs_client_only(
    registry: ConnectionRegistry, sender: RecordingSender, notifier: WebSocketNotifier, make_job: Any
) -> None:
    for connection_id in ("everything", "this-job", "other-job", "the-client", "idle"):
        registry.connect(connection_id, subject="admin", expires_at=in_an_hour())
    registry.subscribe("everything", all_jobs=True)
    registry.subscribe("this-job", job_ids=["job-1", "job-9"])
    registry.subscribe("other-job", job_ids=["job-2"])
    job = make_job(jobId="job-1", clientId="the-client")

    notifier.publish(JobEvent.QUEUED, job)

    assert notifier.flush(10)
    assert sorted(sender.received) == ["everything", "the-client", "this-job"]
    assert sender.received["this-job"][0]["event"] == "JobQueued"
    assert sender.received["this-job"][0]["jobId"] == "job-1"


def test_a_connection_that_unsubscribed_no_longer_receives(
    registry: ConnectionRegistry, sender: RecordingSender, notifier: WebSocketNotifier, make_job: Any
) -> None:
    registry.connect("watcher", subject="admin", expires_at=in_an_hour())
    registry.subscribe("watcher", all_jobs=True, job_ids=["job-1"])
    registry.unsubscribe("watcher", all_jobs=True)
    registry.unsubscribe("watcher", job_ids=["job-1"])

    notifier.publish(JobEvent.QUEUED, make_job(jobId="job-1"))

    assert notifier.flush(10)
    assert sender.received == {}


def test_progress_to_a_connection_is_throttled_but_its_final_100_arrives(
    registry: ConnectionRegistry, sender: RecordingSender, notifier: WebSocketNotifier, make_job: Any
) -> None:
    registry.connect("watcher", subject="admin", expires_at=in_an_hour())
    registry.subscribe("watcher", job_ids=["job-1"])
    job = make_job(jobId="job-1", status="active")

    for percent in (10, 20, 30, 100):  # well within one 1000 ms interval
        notifier.publish(JobEvent.PROGRESS, job.model_copy(update={"progress": percent}))
    notifier.publish(JobEvent.COMPLETED, job.model_copy(update={"progress": 100, "status": "completed"}))

    assert notifier.flush(10)
    received = [(message["event"], message["progress"]) for message in sender.received["watcher"]]
    # 20 and 30 fall inside the interval; 10 may be overtaken by 100 while still queued for the client.
    assert received[-2:] == [("uploadProgress", 100), ("JobCompleted", 100)]
    assert set(received[:-2]) <= {("uploadProgress", 10)}


def test_progress_held_back_is_sent_by_flush_at_the_end_of_an_invocation(
    registry: ConnectionRegistry, sender: RecordingSender, notifier: WebSocketNotifier, make_job: Any
) -> None:
    registry.connect("watcher", subject="admin", expires_at=in_an_hour())
    registry.subscribe("watcher", all_jobs=True)
    job = make_job(jobId="job-1", status="active")

    notifier.publish(JobEvent.PROGRESS, job.model_copy(update={"progress": 10}))
    notifier.publish(JobEvent.PROGRESS, job.model_copy(update={"progress": 40}))

    assert notifier.flush(10)
    assert [message["progress"] for message in sender.received["watcher"]][-1] == 40


class BrokenRegistry(ConnectionRegistry):
    def interested(self, job_id: str, client_id: str | None) -> list[str]:
        raise ConnectionError("MongoDB is unreachable")


def test_publishing_never_raises_into_the_caller_when_the_registry_fails(
    database: Any, sender: RecordingSender, make_job: Any
) -> None:
    notifier = WebSocketNotifier(BrokenRegistry(database), sender, progress_interval_ms=0)
    try:
        notifier.publish(JobEvent.QUEUED, make_job(jobId="job-1"))
        assert notifier.flush(10)
    finally:
        notifier.close()
    assert sender.received == {}


class FlakySender(RecordingSender):
    """Fails the first delivery to each connection with a transient error."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[str] = set()

    def send(self, connection_id: str, data: str) -> None:
        if connection_id not in self.failed:
            self.failed.add(connection_id)
            raise TimeoutError("read timeout")
        super().send(connection_id, data)


def test_a_failed_delivery_keeps_the_connection_and_the_next_event_arrives(
    registry: ConnectionRegistry, make_job: Any
) -> None:
    sender = FlakySender()
    notifier = WebSocketNotifier(registry, sender, progress_interval_ms=0)
    registry.connect("watcher", subject="admin", expires_at=in_an_hour())
    registry.subscribe("watcher", all_jobs=True)
    try:
        notifier.publish(JobEvent.QUEUED, make_job(jobId="job-1"))
        notifier.publish(JobEvent.CANCELLED, make_job(jobId="job-2", status="cancelled"))
        assert notifier.flush(10)
    finally:
        notifier.close()
    assert [message["event"] for message in sender.received["watcher"]] == ["JobCancelled"]
    assert registry.find("watcher") is not None
