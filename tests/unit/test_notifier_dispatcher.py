"""The notifier's dispatcher thread: restarted when it has died, and a bounded queue in front of it that
drops only uploadProgress (the oldest first) and never a job's other events (issue 11, part 4)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest

from chalicelib.jobs.model import UploadJob
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import WebSocketNotifier
from tests.factories import hls_job

WAIT = 10.0  # a deadline against hanging, not a speed requirement


class RecordingSender:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, connection_id: str, data: str) -> None:
        with self._lock:
            self.received.append(json.loads(data))

    def events(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(message["event"], message["jobId"]) for message in self.received]


class OneConnection:
    """A registry with one connection following every job. `interested` is the dispatcher's own call:
    it counts the events dispatched, can hold the dispatcher (`hold`), and ends its thread for `fatal_job`."""

    def __init__(self, fatal_job: str = "") -> None:
        self.fatal_job = fatal_job
        self.dispatched: Counter[str] = Counter()
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()

    def interested(self, job_id: str, client_id: str | None) -> list[str]:
        if job_id == self.fatal_job:
            raise SystemExit  # whatever escapes the dispatcher ends its thread, as this does
        if self.hold.is_set() and not self.release.is_set():
            self.holding.set()
            self.release.wait(WAIT)
        self.dispatched[job_id] += 1
        return ["connection-1"]

    def remove(self, connection_id: str) -> None:
        pass


def job(job_id: str, **fields: Any) -> UploadJob:
    return hls_job(job_id, **fields)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the death is the point
def test_a_dispatcher_that_died_is_started_again_and_delivers_what_follows() -> None:
    registry = OneConnection(fatal_job="fatal")
    sender = RecordingSender()
    notifier = WebSocketNotifier(registry, sender, progress_interval_ms=0)  # type: ignore[arg-type]
    try:
        notifier.publish(JobEvent.QUEUED, job("fatal"))
        notifier.publish(JobEvent.COMPLETED, job("after", status="completed"))

        assert notifier.flush(WAIT)
        notifier.publish(JobEvent.FAILED, job("later", status="failed"))
        assert notifier.flush(WAIT)
    finally:
        notifier.close()

    assert sender.events() == [("JobCompleted", "after"), ("JobFailed", "later")]


def test_a_full_queue_drops_the_oldest_progress_and_keeps_every_other_event() -> None:
    registry = OneConnection()
    sender = RecordingSender()
    notifier = WebSocketNotifier(registry, sender, progress_interval_ms=0, queue_limit=20)  # type: ignore[arg-type]
    try:
        registry.hold.set()
        notifier.publish(JobEvent.QUEUED, job("first"))
        assert registry.holding.wait(WAIT)  # the dispatcher is stuck on its first event (a slow MongoDB)
        for percent in range(60):
            notifier.publish(JobEvent.PROGRESS, job("busy", status="active", progress=percent))
        for name in ("done-1", "done-2", "done-3"):
            notifier.publish(JobEvent.COMPLETED, job(name, status="completed"))
        notifier.publish(JobEvent.PROGRESS, job("busy", status="active", progress=61))

        registry.release.set()
        assert notifier.flush(WAIT)
    finally:
        registry.release.set()
        notifier.close()

    assert registry.dispatched["busy"] <= 20  # 61 were published: the queue held at most its limit
    assert notifier.dropped_progress == 61 - registry.dispatched["busy"]
    completed = [job_id for event, job_id in sender.events() if event == "JobCompleted"]
    assert completed == ["done-1", "done-2", "done-3"]
    progress = [message["progress"] for message in sender.received if message["event"] == "uploadProgress"]
    assert progress[-1] == 61  # the newest progress survives; the oldest were dropped
