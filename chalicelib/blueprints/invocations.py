"""Registering this blueprint registers `correlate_logs`, a middleware around every handler of the app
(HTTP, WebSocket, SQS, schedule): each invocation's log lines carry its `requestId` (chalicelib/logs.py).

The id is the one the caller can find again: API Gateway's for HTTP and WebSocket requests (its access
logs and the `x-amzn-RequestId` answer header show it), Lambda's for queue and scheduled invocations
(the START/END/REPORT lines of the function's log).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint
from chalice.app import Request, WebsocketEvent

from chalicelib import logs

invocations = Blueprint(__name__)


@invocations.middleware("all")
def correlate_logs(event: Any, get_response: Callable[[Any], Any]) -> Any:
    with logs.invocation(request_id(event)):
        return get_response(event)


def request_id(event: Any) -> str:
    if isinstance(event, Request):
        return str(event.context.get("requestId") or getattr(event.lambda_context, "aws_request_id", ""))
    if isinstance(event, WebsocketEvent):
        return str(event.to_dict().get("requestContext", {}).get("requestId", ""))
    return str(getattr(event.context, "aws_request_id", ""))  # SQS, schedule: the Lambda context
