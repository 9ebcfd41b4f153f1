"""Each invocation's log lines carry the request id its caller can find again: API Gateway's for HTTP and
WebSocket requests, Lambda's for queue and scheduled invocations (chalicelib/blueprints/invocations.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from chalice.app import CloudWatchEvent, Request, SQSEvent, WebsocketEvent

from chalicelib.blueprints.invocations import request_id

LAMBDA = SimpleNamespace(aws_request_id="lambda-request-1")


def http_event(context: dict[str, Any]) -> dict[str, Any]:
    return {
        "multiValueQueryStringParameters": None,
        "headers": {"authorization": "Bearer x"},
        "pathParameters": None,
        "requestContext": {"httpMethod": "GET", "resourcePath": "/v1/health", **context},
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
    }


def test_an_http_request_is_named_by_api_gateway_else_by_lambda() -> None:
    assert request_id(Request(http_event({"requestId": "apigw-1"}), LAMBDA)) == "apigw-1"
    assert request_id(Request(http_event({}), LAMBDA)) == "lambda-request-1"  # chalice local sets none


def test_a_websocket_request_is_named_by_api_gateway() -> None:
    context = {"domainName": "ws.example", "stage": "api", "connectionId": "c1", "requestId": "apigw-ws-1"}
    assert request_id(WebsocketEvent({"requestContext": context}, LAMBDA)) == "apigw-ws-1"


def test_queue_and_scheduled_invocations_are_named_by_lambda() -> None:
    sqs = SQSEvent({"Records": []}, LAMBDA)
    scheduled = CloudWatchEvent(
        {
            "version": "0",
            "id": "e1",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-12-03T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {},
        },
        LAMBDA,
    )
    assert request_id(sqs) == request_id(scheduled) == "lambda-request-1"
