"""The message a worker holds stays invisible past its lease from the start of the turn, so a
worker that dies at any moment is taken over when SQS redelivers the message, never acknowledged
as "held by a live lease" and left to fix-stuck."""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib.jobs.store import JobStore
from chalicelib.realtime.events import LogNotifier
from chalicelib.worker.lease import claim
from chalicelib.worker.progress import ProgressRecorder
from chalicelib.worker.supervisor import Supervisor

OWNER = "worker-1"
LEASE_SECONDS = 30
RENEW_EVERY = LEASE_SECONDS / 3


class RecordingQueue:
    """The JobQueue calls the supervisor makes, recorded with the time they were made."""

    def __init__(self) -> None:
        self.extensions: list[tuple[float, int]] = []
        self.extended = threading.Event()

    def change_visibility(self, queue: Any, receipt_handle: str, seconds: int) -> None:
        self.extensions.append((time.monotonic(), seconds))
        self.extended.set()


def test_the_first_tick_extends_the_message_past_the_lease_and_any_later_renewal(database: Any, make_job: Any) -> None:
    store = JobStore(database)
    job = claim(store, make_job().job_id, OWNER, LEASE_SECONDS)
    assert job is not None
    queue = RecordingQueue()
    supervisor = Supervisor(
        store=store,
        queue=queue,  # type: ignore[arg-type]
        notifier=LogNotifier(),
        job=job,
        owner=OWNER,
        recorder=ProgressRecorder(),
        lease_seconds=LEASE_SECONDS,
        progress_interval_seconds=1.0,
        cancel_poll_seconds=0.5,
        remaining_ms=lambda: 900_000,
        margin_ms=1000,
        receipt_handle="receipt-1",
    )
    started = time.monotonic()
    with supervisor:
        # Well before the first renewal interval ends: the queue's own visibility may be no longer than the lease.
        assert queue.extended.wait(RENEW_EVERY / 2), "the visibility was not extended at the start of the turn"
    at, seconds = queue.extensions[0]
    assert at - started < RENEW_EVERY / 2
    # The lease may be renewed up to one interval after this extension; the message must outlast that lease.
    assert seconds > LEASE_SECONDS + RENEW_EVERY
