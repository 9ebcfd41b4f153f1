"""The local gateway's management API: what another process posts with the production `ApiGatewaySender`
(a real boto3 `apigatewaymanagementapi` client over HTTP) reaches the WebSocket client; a gone one prunes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import boto3
import pytest

from chalicelib.jobs.model import utcnow
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import WebSocketNotifier
from chalicelib.realtime.senders import ApiGatewaySender, ConnectionGone, management_endpoint


@pytest.fixture
def management_sender(ws_gateway: Any) -> ApiGatewaySender:
    """The sender a worker process builds from WEBSOCKET_API_DOMAIN=http://... and an empty stage."""
    endpoint = management_endpoint(ws_gateway.serve_management_api(), "")
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    return ApiGatewaySender.for_endpoint(session, endpoint)


def connection_id(client: Any) -> str:
    return str(client.ask({"action": "whoami"})["connectionId"])


def test_a_message_posted_to_the_management_api_reaches_the_connection_as_sent(
    ws_connect: Any, management_sender: ApiGatewaySender
) -> None:
    client, other = ws_connect(), ws_connect()
    message = '{"event":"uploadProgress","jobId":"j-1","label":"caf\u00e9 \u2713"}'

    management_sender.send(connection_id(client), message)

    assert client.connection.recv(timeout=10) == message
    assert other.drain() == []  # only the addressed connection gets it


def test_an_unknown_connection_answers_410_gone(management_sender: ApiGatewaySender) -> None:
    with pytest.raises(ConnectionGone):
        management_sender.send("AAAAAAAAAAAAAAAA", '{"event":"pong"}')


def test_other_paths_are_not_found(ws_gateway: Any) -> None:
    request = urllib.request.Request(f"{ws_gateway.serve_management_api()}/@connections/", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 404


def test_a_notifier_over_the_management_api_prunes_a_gone_connection_and_still_reaches_the_others(
    ws_connect: Any, management_sender: ApiGatewaySender, realtime_services: Any, make_job: Any
) -> None:
    registry = realtime_services.connections
    first, closed, last = ws_connect(), ws_connect(), ws_connect()
    for client in (first, closed, last):
        client.ask({"action": "subscribe", "all": True})
    gone = connection_id(closed)
    closed.connection.close()
    deadline = time.monotonic() + 10
    while registry.find(gone) is not None and time.monotonic() < deadline:  # its $disconnect removes it
        time.sleep(0.05)
    # Back as a stale live record, as when a $disconnect is lost while the token is still valid.
    registry.connect(gone, subject="admin", expires_at=utcnow() + timedelta(hours=1))
    registry.subscribe(gone, all_jobs=True)
    notifier = WebSocketNotifier(registry, management_sender, progress_interval_ms=0)
    try:
        notifier.publish(JobEvent.COMPLETED, make_job(jobId="job-1", status="completed"))
        assert notifier.flush(10)
    finally:
        notifier.close()

    assert registry.find(gone) is None
    for client in (first, last):
        assert [(e["event"], e["jobId"]) for e in client.drain()] == [("JobCompleted", "job-1")]
