"""One slow or stuck client delays neither the caller nor the other clients (SPEC 8)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from chalicelib.jobs.model import utcnow
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import WebSocketNotifier

WAIT = 10.0  # a deadline against hanging, not a speed requirement


def in_an_hour() -> datetime:
    """A connection's token expiry that outlasts the test."""
    return utcnow() + timedelta(hours=1)


class StuckSender:
    """Delivers at once, except to `stuck`, which blocks until `release` is set."""

    def __init__(self, stuck: str) -> None:
        self.stuck = stuck
        self.release = threading.Event()
        self.received: dict[str, list[str]] = defaultdict(list)
        self._changed = threading.Condition()

    def send(self, connection_id: str, data: str) -> None:
        if connection_id == self.stuck:
            self.release.wait()
        with self._changed:
            self.received[connection_id].append(json.loads(data)["event"])
            self._changed.notify_all()

    def wait_for(self, connection_id: str, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.received[connection_id]) >= count, timeout=WAIT)


def test_a_stuck_client_does_not_hold_back_the_others_or_the_caller(database: Any, make_job: Any) -> None:
    registry = ConnectionRegistry(database)
    for connection_id in ("fast-1", "stuck", "fast-2"):
        registry.connect(connection_id, subject="admin", expires_at=in_an_hour())
        registry.subscribe(connection_id, all_jobs=True)
    sender = StuckSender(stuck="stuck")
    notifier = WebSocketNotifier(registry, sender, progress_interval_ms=0, workers=2)
    try:
        notifier.publish(JobEvent.QUEUED, make_job(jobId="job-1"))
        notifier.publish(JobEvent.CANCELLED, make_job(jobId="job-2", status="cancelled"))

        assert sender.wait_for("fast-1", 2)
        assert sender.wait_for("fast-2", 2)
        assert sender.received["stuck"] == []
        assert not notifier.flush(0.2)  # the end of an invocation gives up on the stuck client

        sender.release.set()
        assert notifier.flush(WAIT)
    finally:
        sender.release.set()
        notifier.close()
    # Once it answers, the slow client gets its events in order.
    assert sender.received["stuck"] == ["JobQueued", "JobCancelled"]
    assert sender.received["fast-1"] == ["JobQueued", "JobCancelled"]
