"""Events published during an invocation are delivered before it returns: Lambda may freeze the container
as soon as the handler is done, with the notifier's threads still holding them."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from chalice.test import Client

from chalicelib.auth import issue_token
from chalicelib.jobs.model import utcnow
from chalicelib.realtime.notifier import WebSocketNotifier


def in_an_hour() -> datetime:
    """A connection's token expiry that outlasts the test."""
    return utcnow() + timedelta(hours=1)


class UnhurriedSender:
    """Takes a while over each message, as a far-away API Gateway endpoint might."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, connection_id: str, data: str) -> None:
        time.sleep(0.3)
        with self._lock:
            self.received.append(json.loads(data))


def test_an_http_route_returns_only_after_its_event_was_delivered(realtime_services: Any, make_job: Any) -> None:
    import app as app_module

    sender = UnhurriedSender()
    realtime_services.install_websocket_sender(sender)
    realtime_services.connections.connect("dashboard", subject="admin", expires_at=in_an_hour())
    realtime_services.connections.subscribe("dashboard", all_jobs=True)
    make_job(jobId="old-job", status="completed")
    headers = {"Authorization": f"Bearer {issue_token(realtime_services.settings.auth_jwt_secret)}"}
    try:
        with Client(app_module.app, stage_name="local") as client:
            response = client.http.delete("/v1/studio/upload-jobs/old-job", headers=headers)

        assert response.status_code == 200
        assert [(m["event"], m["jobId"]) for m in sender.received] == [("JobDeleted", "old-job")]
    finally:
        notifier = realtime_services.notifier
        assert isinstance(notifier, WebSocketNotifier)
        notifier.close()
