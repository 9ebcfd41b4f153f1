"""Posting one message to one WebSocket connection: API Gateway's management API, or the local gateway's.

A sender raises `ConnectionGone` when the connection no longer exists (API Gateway's 410), so the
registry can forget it; any other exception is a failure of this one delivery.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

# A post to API Gateway takes tens of milliseconds; past this, one client must not hold up a sender thread.
SEND_TIMEOUT_SECONDS = 3.0


class ConnectionGone(Exception):
    """The connection is closed: API Gateway answered 410 (GoneException), or the gateway never knew it."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"WebSocket connection {connection_id!r} is gone")
        self.connection_id = connection_id


class Sender(Protocol):
    def send(self, connection_id: str, data: str) -> None:
        """Deliver `data` (one JSON text frame) or raise: ConnectionGone, or any error of this delivery."""
        ...

    def close(self, connection_id: str) -> None:
        """Close the connection (its token expired); a connection already gone is no error."""
        ...


def management_endpoint(domain: str, stage: str) -> str:
    """The management API's URL: `https://{domain}/{stage}`; a domain given as a URL is kept (moto, tests).

    An empty stage adds no path: custom domains and moto's endpoint have none.
    """
    base = domain if domain.startswith(("http://", "https://")) else f"https://{domain}"
    return f"{base.rstrip('/')}/{stage}" if stage else base.rstrip("/")


class ApiGatewaySender:
    """`post_to_connection` on an `apigatewaymanagementapi` client (built with short timeouts)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def for_endpoint(cls, session: Any, endpoint: str) -> ApiGatewaySender:
        from botocore.config import Config

        config = Config(
            connect_timeout=SEND_TIMEOUT_SECONDS,
            read_timeout=SEND_TIMEOUT_SECONDS,
            retries={"mode": "standard", "max_attempts": 2},
            max_pool_connections=32,
        )
        return cls(session.client("apigatewaymanagementapi", endpoint_url=endpoint, config=config))

    def send(self, connection_id: str, data: str) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data.encode())
        except self._client.exceptions.GoneException as exc:
            raise ConnectionGone(connection_id) from exc

    def close(self, connection_id: str) -> None:
        with contextlib.suppress(self._client.exceptions.GoneException):
            self._client.delete_connection(ConnectionId=connection_id)
