"""A connection API Gateway answers 410 (GoneException) for is removed; the others still get the event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chalicelib.jobs.model import utcnow
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.events import JobEvent
from chalicelib.realtime.notifier import WebSocketNotifier
from chalicelib.realtime.senders import ApiGatewaySender, ConnectionGone


def in_an_hour() -> datetime:
    """A connection's token expiry that outlasts the test."""
    return utcnow() + timedelta(hours=1)


@pytest.fixture
def management_client() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.session.Session().client(
        "apigatewaymanagementapi",
        endpoint_url="https://abc123.execute-api.us-east-1.amazonaws.com/api",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber


def expect_post(stubber: Stubber, connection_id: str) -> None:
    stubber.add_response("post_to_connection", {}, {"ConnectionId": connection_id, "Data": ANY})


def expect_gone(stubber: Stubber, connection_id: str) -> None:
    stubber.add_client_error(
        "post_to_connection",
        service_error_code="GoneException",
        http_status_code=410,
        expected_params={"ConnectionId": connection_id, "Data": ANY},
    )


def test_the_sender_turns_api_gateways_410_into_connection_gone(management_client: tuple[Any, Stubber]) -> None:
    client, stubber = management_client
    expect_gone(stubber, "closed-connection")

    with pytest.raises(ConnectionGone):
        ApiGatewaySender(client).send("closed-connection", '{"event":"pong"}')


def test_a_gone_connection_is_removed_and_the_others_still_receive(
    database: Any, make_job: Any, management_client: tuple[Any, Stubber]
) -> None:
    client, stubber = management_client
    registry = ConnectionRegistry(database)
    for connection_id in ("a-first", "b-gone", "c-last"):
        registry.connect(connection_id, subject="admin", expires_at=in_an_hour())
        registry.subscribe(connection_id, all_jobs=True)
    # One send thread: the stubbed answers are consumed in the (sorted) order of the connections.
    notifier = WebSocketNotifier(registry, ApiGatewaySender(client), progress_interval_ms=0, workers=1)
    expect_post(stubber, "a-first")
    expect_gone(stubber, "b-gone")
    expect_post(stubber, "c-last")
    expect_post(stubber, "a-first")
    expect_post(stubber, "c-last")
    try:
        notifier.publish(JobEvent.QUEUED, make_job(jobId="job-1"))
        assert notifier.flush(10)
        assert registry.find("b-gone") is None

        notifier.publish(JobEvent.CANCELLED, make_job(jobId="job-2", status="cancelled"))
        assert notifier.flush(10)
    finally:
        notifier.close()

    stubber.assert_no_pending_responses()
    assert registry.find("a-first") is not None
    assert registry.find("c-last") is not None
