"""Connecting to the WebSocket API (SPEC 8): `?token=` under the HTTP rules; a bad token is refused at connect.

Through the local gateway with a real client, and through the handlers as Lambda calls them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.auth import issue_token


def refused_status(url: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10)
    return int(refused.value.response.status_code)


def connection_count(services: Any) -> int:
    return int(services.database["ws_connections"].count_documents({}))


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (None, 401),
        ("not-a-jwt", 401),
        (issue_token("another-secret-of-at-least-thirty-two-bytes"), 401),
        ("EXPIRED", 401),
        ("NOT_ADMIN", 403),
    ],
    ids=["no token", "garbage", "wrong secret", "expired", "not an admin"],
)
def test_a_bad_token_is_refused_at_connect(
    ws_gateway: Any, realtime_services: Any, token: str | None, status: int
) -> None:
    secret = realtime_services.settings.auth_jwt_secret
    token = {
        "EXPIRED": issue_token(secret, ttl=-60),
        "NOT_ADMIN": issue_token(secret, roles=("viewer",)),
    }.get(token or "", token)
    url = ws_gateway.url + ("/" if token is None else f"/?token={token}")

    assert refused_status(url) == status
    assert connection_count(realtime_services) == 0


def test_an_admin_connection_is_registered_until_it_closes(ws_connect: Any, realtime_services: Any) -> None:
    connections = realtime_services.connections
    client = ws_connect()
    connection_id = client.ask({"action": "whoami"})["connectionId"]
    assert connections.find(connection_id) is not None

    client.connection.close()

    deadline = time.monotonic() + 10
    while connections.find(connection_id) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert connections.find(connection_id) is None


def connect_event(token: str | None) -> dict[str, Any]:
    """What API Gateway hands the $connect Lambda."""
    return {
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": "Lambda0connId=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "stage": "api",
            "apiId": "abc123",
        },
        "queryStringParameters": None if token is None else {"token": token},
        "isBase64Encoded": False,
    }


def test_lambda_refuses_the_connect_with_the_http_status_and_accepts_an_admin(realtime_services: Any) -> None:
    from chalice.test import Client

    import app as app_module

    secret = realtime_services.settings.auth_jwt_secret
    with Client(app_module.app, stage_name="local") as client:
        missing = client.lambda_.invoke("on_ws_connect", connect_event(None)).payload
        forbidden = client.lambda_.invoke("on_ws_connect", connect_event(issue_token(secret, roles=("viewer",))))
        accepted = client.lambda_.invoke("on_ws_connect", connect_event(issue_token(secret))).payload

    assert missing["statusCode"] == 401
    assert forbidden.payload["statusCode"] == 403
    assert accepted["statusCode"] == 200
    assert realtime_services.connections.find("Lambda0connId=") is not None
