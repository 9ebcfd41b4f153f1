"""The WebSocket API's entry points (SPEC 8): connect with `?token=`, subscribe / ping / whoami, disconnect.

Registering this blueprint also registers `flush_realtime_events`, a middleware around every handler
of the app (HTTP, SQS, schedule): events published during an invocation are delivered before it
returns, as Lambda may freeze the container right after.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalice import Blueprint, Response
from chalice.app import Chalice, WebsocketAPI, WebsocketEvent, WebsocketEventSourceHandler

from chalicelib.errors import Forbidden, Invalid, Unauthorized
from chalicelib.http import as_chalice_error
from chalicelib.logs import logger
from chalicelib.realtime.senders import Sender
from chalicelib.services import get_services

FLUSH_TIMEOUT_SECONDS = 5.0
FLUSH_MARGIN_SECONDS = 1.0  # left to the Lambda runtime after the flush


class WebsocketBlueprint(Blueprint):
    """A Blueprint whose websocket handlers get Chalice's Lambda wrapper, as the app's own would.

    Chalice 1.34 wraps `on_ws_*` handlers only where `websocket_api` is set, which a Blueprint's is
    not: Lambda would call the bare function with `(event, context)`. A placeholder makes Chalice
    wrap them; `register` points the wrappers at the app's `websocket_api`.
    """

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self.websocket_api = WebsocketAPI()
        self._websocket_handlers: list[WebsocketEventSourceHandler] = []

    def _wrap_handler(self, handler_type: str, handler_name: str, user_handler: Callable[..., Any]) -> Any:
        wrapped = super()._wrap_handler(handler_type, handler_name, user_handler)
        if isinstance(wrapped, WebsocketEventSourceHandler):
            self._websocket_handlers.append(wrapped)
        return wrapped

    def register(self, app: Chalice, options: dict[str, Any]) -> None:
        for handler in self._websocket_handlers:
            handler.websocket_api = app.websocket_api
        super().register(app, options)


websocket = WebsocketBlueprint(__name__)


@websocket.middleware("all")
def flush_realtime_events(event: Any, get_response: Callable[[Any], Any]) -> Any:
    try:
        return get_response(event)
    finally:
        from chalicelib.realtime.notifier import flush_all

        budget = flush_budget(event)
        if not flush_all(budget):
            logger.warning("some WebSocket events were not delivered within %.1f s", budget)


def flush_budget(event: Any) -> float:
    """FLUSH_TIMEOUT_SECONDS, cut short so the invocation still ends within the Lambda's timeout."""
    remaining_ms = getattr(getattr(event, "context", None), "get_remaining_time_in_millis", None)
    if not callable(remaining_ms):  # an HTTP request: its context is API Gateway's, not Lambda's
        return FLUSH_TIMEOUT_SECONDS
    return max(0.0, min(FLUSH_TIMEOUT_SECONDS, remaining_ms() / 1000 - FLUSH_MARGIN_SECONDS))


@websocket.on_ws_connect()
def on_ws_connect(event: WebsocketEvent) -> Response | None:
    """Accept an admin's token from `?token=`; anything else refuses the connection (401 or 403)."""
    from chalicelib.auth import TokenPolicy, authenticate_admin

    services = get_services()
    token = (event.to_dict().get("queryStringParameters") or {}).get("token") or ""
    try:
        principal = authenticate_admin(token, TokenPolicy.from_settings(services.settings))
    except (Unauthorized, Forbidden) as exc:
        error = as_chalice_error(exc)
        assert error is not None
        return Response(body={"Code": type(error).__name__, "Message": str(exc)}, status_code=error.STATUS_CODE)
    expires_at = datetime.fromtimestamp(principal.expires_at, UTC)
    services.connections.connect(event.connection_id, subject=principal.subject, expires_at=expires_at)
    return None


@websocket.on_ws_message()
def on_ws_message(event: WebsocketEvent) -> None:
    """Answer the message; a connection whose token has expired gets an error, then is closed."""
    from chalicelib.realtime.connections import ConnectionExpired
    from chalicelib.realtime.messages import answer, error_reply, parse_message

    services = get_services()
    expired = False
    try:
        reply = answer(parse_message(event.body), event.connection_id, services.connections)
    except ConnectionExpired as exc:
        reply, expired = error_reply(str(exc)), True
    except Invalid as exc:
        reply = error_reply(str(exc))
    sender = _reply_sender(event)
    try:
        sender.send(event.connection_id, json.dumps(reply, separators=(",", ":")))
        if expired:
            sender.close(event.connection_id)
    except Exception as exc:  # the client left meanwhile, or the API did not answer: nothing to retry
        logger.warning("could not answer WebSocket connection %s: %s", event.connection_id, exc)


@websocket.on_ws_disconnect()
def on_ws_disconnect(event: WebsocketEvent) -> None:
    get_services().connections.remove(event.connection_id)


def _reply_sender(event: WebsocketEvent) -> Sender:
    """The configured sender; without one (no WEBSOCKET_API_DOMAIN), the API that delivered this event."""
    configured = get_services().websocket_sender
    if configured is not None:
        return configured
    from chalicelib.realtime.senders import management_endpoint

    return _api_gateway_sender(management_endpoint(event.domain_name, event.stage))


@functools.lru_cache(maxsize=4)
def _api_gateway_sender(endpoint: str) -> Sender:
    from chalicelib.realtime.senders import ApiGatewaySender

    return ApiGatewaySender.for_endpoint(get_services().boto_session, endpoint)
