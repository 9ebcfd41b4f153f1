"""No log line ever holds the JWT secret, a token or an Authorization header (issue 13, Structured logs).

A full flow through the deployed entry points, with every line the service logs captured at DEBUG (the most
it ever says) and other libraries' at WARNING (what `make run` and Lambda show of them), plus stdout (the
metrics): HTTP requests with a good token and with bad ones, a WebSocket token and connections through the
local gateway with it and with bad tokens (`?token=` in the URL), and a job that fails in the worker.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chalicelib.auth import issue_token

SECRET = "a-stage-secret-nobody-may-read-in-logs-0123456789"


@pytest.fixture
def settings(settings: Any) -> Any:
    """The suite's settings with a real-looking secret of their own, so that it can be searched for."""
    return settings.model_copy(update={"auth_jwt_secret": SECRET})


@pytest.fixture
def realtime_services(services: Any) -> Any:
    """The WebSocket gateway serves the same services as the HTTP API and the workers."""
    return services


def refused(url: str) -> int:
    with pytest.raises(InvalidStatus) as refusal:
        connect(url, open_timeout=10)
    return int(refusal.value.response.status_code)


def test_a_full_flow_logs_no_secret_token_or_authorization_header(
    api: Any,
    ws_gateway: Any,
    invoke_worker: Any,
    admin_token: str,
    service_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad_tokens = {
        "garbage": "not-a-jwt-but-still-a-secret-value",
        "wrong secret": issue_token("another-secret-of-at-least-thirty-two-bytes"),
        "expired": issue_token(SECRET, ttl=-60),
        "not an admin": issue_token(SECRET, roles=("viewer",)),
    }
    body = {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/nowhere/720p",  # no such source: the job fails with SOURCE_NOT_FOUND
        "label": "720p",
    }
    created = api.http.post("/v1/studio/upload-jobs", headers=api.admin_headers, body=json.dumps(body))
    assert created.status_code == 201
    job_id = json.loads(created.body)["jobId"]
    for token in bad_tokens.values():
        answer = api.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code in (401, 403)
    issued = api.http.post("/v1/studio/ws-tokens", headers=api.admin_headers)
    ws_token = json.loads(issued.body)["token"]
    assert api.http.get("/v1/studio/upload-jobs", headers={"Authorization": f"Bearer {ws_token}"}).status_code == 401
    with connect(f"{ws_gateway.url}/?token={ws_token}", open_timeout=10) as connection:
        connection.send(json.dumps({"action": "subscribe", "jobIds": [job_id]}))
        connection.recv(timeout=10)
    for token in bad_tokens.values():
        assert refused(f"{ws_gateway.url}/?token={token}") in (401, 403)
    event = api.events.generate_sqs_event([json.dumps({"v": 1, "jobId": job_id})], queue_name="upload-hls-to-s3")
    invoke_worker("upload_hls_worker", event)

    logged = service_logs.getvalue() + capsys.readouterr().out
    lines = [json.loads(line) for line in service_logs.getvalue().splitlines()]
    failure = next(line for line in lines if line["message"].startswith(f"job {job_id} failed"))
    assert (failure["jobId"], failure["attempt"], failure["errorCode"]) == (job_id, 1, "SOURCE_NOT_FOUND")
    assert failure["requestId"]  # the worker invocation's
    assert '"JobsFailed"' in logged  # and its metric went out too
    secrets = {"the JWT secret": SECRET, "the admin token": admin_token, "the WebSocket token": ws_token}
    secrets.update({f"the {name} token": token for name, token in bad_tokens.items()})
    leaked = [name for name, value in secrets.items() if value in logged]
    assert leaked == [], f"{leaked} in the logs:\n{logged}"
    assert "Bearer" not in logged and "authorization" not in logged.lower()
