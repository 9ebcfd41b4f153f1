"""A WebSocket connection ends with its token (issue 12): closed at `exp` by the gateway, its messages refused
and its events stopped once `exp` has passed; a short-lived WebSocket token comes from POST /v1/studio/ws-tokens."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client
from websockets.exceptions import ConnectionClosed

import app as app_module
from chalicelib.auth import WEBSOCKET_TOKEN_TTL_SECONDS, issue_token
from chalicelib.jobs.model import utcnow
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import WebSocketNotifier

WAIT = 10.0  # a deadline against hanging, not a speed requirement


def test_the_gateway_closes_a_connection_when_its_token_expires(ws_connect: Any, realtime_services: Any) -> None:
    client = ws_connect(issue_token(realtime_services.settings.auth_jwt_secret, ttl=2))
    connection_id = client.ask({"action": "whoami"})["connectionId"]

    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=WAIT)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "token expired"
    deadline = time.monotonic() + WAIT
    while realtime_services.connections.find(connection_id) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert realtime_services.connections.find(connection_id) is None  # its $disconnect ran


def test_through_the_gateway_a_message_after_exp_is_refused_and_the_socket_closed(
    ws_connect: Any, realtime_services: Any
) -> None:
    client = ws_connect(issue_token(realtime_services.settings.auth_jwt_secret, ttl=3600))
    connection_id = client.ask({"action": "whoami"})["connectionId"]
    realtime_services.database["ws_connections"].update_one(
        {"connectionId": connection_id}, {"$set": {"expiresAt": utcnow() - timedelta(seconds=1)}}
    )

    reply = client.ask({"action": "subscribe", "all": True})
    with pytest.raises(ConnectionClosed) as closed:
        client.recv(timeout=WAIT)

    assert reply["event"] == "error"
    assert "expired" in reply["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_connection_with_a_longer_token_stays_open(ws_connect: Any, realtime_services: Any) -> None:
    client = ws_connect(issue_token(realtime_services.settings.auth_jwt_secret, ttl=3600))
    client.ask({"action": "subscribe", "all": True})
    time.sleep(1.5)
    assert client.ask({"action": "ping"}) == {"event": "pong"}


class RecordingSender:
    """API Gateway's management API as a recorder: what was posted to, and which connections were deleted."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {}
        self.closed: list[str] = []
        self._lock = threading.Lock()

    def send(self, connection_id: str, data: str) -> None:
        with self._lock:
            self.sent.setdefault(connection_id, []).append(json.loads(data))

    def close(self, connection_id: str) -> None:
        with self._lock:
            self.closed.append(connection_id)


@pytest.fixture
def recording_sender(realtime_services: Any) -> Iterator[RecordingSender]:
    sender = RecordingSender()
    realtime_services.install_websocket_sender(sender)
    yield sender
    if isinstance(realtime_services.notifier, WebSocketNotifier):
        realtime_services.notifier.close()


def message_event(connection_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """What API Gateway hands the $default Lambda."""
    return {
        "requestContext": {
            "routeKey": "$default",
            "eventType": "MESSAGE",
            "connectionId": connection_id,
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "stage": "api",
            "apiId": "abc123",
        },
        "body": json.dumps(message),
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("message", [{"action": "ping"}, {"action": "whoami"}, {"action": "subscribe", "all": True}])
def test_a_message_after_exp_is_refused_and_the_connection_closed(
    realtime_services: Any, recording_sender: RecordingSender, message: dict[str, Any]
) -> None:
    realtime_services.connections.connect(
        "Expired0connId=", subject="admin", expires_at=utcnow() - timedelta(seconds=1)
    )
    with Client(app_module.app, stage_name="local") as client:
        client.lambda_.invoke("on_ws_message", message_event("Expired0connId=", message))

    [reply] = recording_sender.sent["Expired0connId="]
    assert reply["event"] == "error"
    assert "expired" in reply["message"]
    assert recording_sender.closed == ["Expired0connId="]
    subscription = realtime_services.connections.find("Expired0connId=")
    assert subscription is not None and not subscription.all


def test_a_live_connections_message_is_answered_and_it_stays(
    realtime_services: Any, recording_sender: RecordingSender
) -> None:
    realtime_services.connections.connect("Live0connId=", subject="admin", expires_at=utcnow() + timedelta(minutes=5))
    with Client(app_module.app, stage_name="local") as client:
        client.lambda_.invoke("on_ws_message", message_event("Live0connId=", {"action": "ping"}))

    assert recording_sender.sent["Live0connId="] == [{"event": "pong"}]
    assert recording_sender.closed == []


def test_events_stop_at_exp(realtime_services: Any, recording_sender: RecordingSender, make_job: Any) -> None:
    connections = realtime_services.connections
    connections.connect("Expired0connId=", subject="admin", expires_at=utcnow() + timedelta(minutes=5))
    connections.connect("Live0connId=", subject="admin", expires_at=utcnow() + timedelta(minutes=5))
    connections.subscribe("Expired0connId=", all_jobs=True)
    connections.subscribe("Live0connId=", all_jobs=True)
    realtime_services.database["ws_connections"].update_one(
        {"connectionId": "Expired0connId="}, {"$set": {"expiresAt": utcnow() - timedelta(seconds=1)}}
    )

    realtime_services.notifier.publish(JobEvent.QUEUED, make_job(jobId="job-1"))

    assert realtime_services.notifier.flush(WAIT)
    assert list(recording_sender.sent) == ["Live0connId="]


def test_the_connection_records_its_tokens_exp(realtime_services: Any) -> None:
    token = issue_token(realtime_services.settings.auth_jwt_secret, ttl=600)
    event = {
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": "New0connId=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "stage": "api",
            "apiId": "a",
        },
        "queryStringParameters": {"token": token},
        "isBase64Encoded": False,
    }
    with Client(app_module.app, stage_name="local") as client:
        assert client.lambda_.invoke("on_ws_connect", event).payload["statusCode"] == 200

    subscription = realtime_services.connections.find("New0connId=")
    assert subscription is not None and subscription.expires_at is not None
    assert abs((subscription.expires_at - (utcnow() + timedelta(seconds=600))).total_seconds()) < 5


# POST /v1/studio/ws-tokens -------------------------------------------------------------------


def test_the_ws_token_route_answers_a_short_lived_token_that_opens_a_websocket(
    realtime_services: Any, ws_connect: Any
) -> None:
    headers = {"Authorization": f"Bearer {issue_token(realtime_services.settings.auth_jwt_secret)}"}
    with Client(app_module.app, stage_name="local") as client:
        response = client.http.post("/v1/studio/ws-tokens", headers=headers)
        answer = response.json_body
        as_bearer = client.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Bearer {answer['token']}"})

    assert response.status_code == 201
    assert answer["expiresIn"] == WEBSOCKET_TOKEN_TTL_SECONDS
    websocket = ws_connect(answer["token"])
    connection_id = websocket.ask({"action": "whoami"})["connectionId"]
    subscription = realtime_services.connections.find(connection_id)
    assert subscription is not None and subscription.expires_at is not None
    assert (subscription.expires_at - utcnow()).total_seconds() <= WEBSOCKET_TOKEN_TTL_SECONDS
    assert as_bearer.status_code == 401  # it travels in a URL: it opens a WebSocket and nothing else
