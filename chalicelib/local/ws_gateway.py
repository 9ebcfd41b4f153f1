"""The local WebSocket gateway of `make run` (SPEC 10): API Gateway's WebSocket contract on 127.0.0.1.

It calls the app's `on_ws_*` handlers the way Lambda does, through `app.handler_map` with
API-Gateway-shaped events: `$connect` during the opening handshake (a non-2xx answer refuses the
handshake with that HTTP status), `$default` for each message, `$disconnect` when the socket closes.
What the app sends to a connection id goes through `LocalGatewaySender`, which answers "gone" for an
unknown id, as API Gateway's 410 does, so the registry prunes it. Other processes post through the
management API (chalicelib/local/ws_management.py) that `serve_management_api` starts. Given the app's
connection registry, the gateway also closes each connection when the token it opened with expires
(close code 1008).

    gateway = start_gateway(app, "127.0.0.1", 8001, services=services)  # serves in a background thread
    ...
    gateway.stop()

The asyncio loop runs in its own thread; handlers run on a small thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice.local import LambdaContext
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from chalicelib.jobs.model import utcnow
from chalicelib.local.ws_management import ManagementApi
from chalicelib.logs import logger
from chalicelib.realtime.connections import ConnectionRegistry
from chalicelib.realtime.senders import SEND_TIMEOUT_SECONDS, ConnectionGone
from chalicelib.services import Services

LOCAL_API_ID = "local"
HANDLER_THREADS = 8
LAMBDA_MEMORY_MB = 256
LAMBDA_TIMEOUT_MS = 30_000
START_TIMEOUT_SECONDS = 10.0
POLICY_VIOLATION = 1008  # RFC 6455's close code for "this endpoint's policy refuses you"
TOKEN_EXPIRED = "token expired"


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters of base64)."""
    return base64.urlsafe_b64encode(os.urandom(12)).decode()[:16]


def epoch_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Client:
    connection_id: str
    connection: ServerConnection
    connected_at: int
    source_ip: str
    headers: dict[str, str] = field(default_factory=dict)
    expiry: asyncio.TimerHandle | None = None


class LocalGatewaySender:
    """The Sender of the local gateway: posts into its event loop from any thread, with a timeout."""

    def __init__(self, gateway: LocalGateway) -> None:
        self._gateway = gateway

    def send(self, connection_id: str, data: str) -> None:
        loop = self._gateway.loop
        if loop is None or loop.is_closed():
            raise ConnectionGone(connection_id)
        future = asyncio.run_coroutine_threadsafe(self._gateway.deliver(connection_id, data), loop)
        try:
            delivered = future.result(SEND_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise TimeoutError(
                f"WebSocket connection {connection_id} did not take a message within {SEND_TIMEOUT_SECONDS} s"
            ) from exc
        if not delivered:
            raise ConnectionGone(connection_id)

    def close(self, connection_id: str) -> None:
        """What DeleteConnection does: close the socket (its `$disconnect` follows); unknown ids are ignored."""
        loop = self._gateway.loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._gateway.close(connection_id, TOKEN_EXPIRED), loop)
        try:
            future.result(SEND_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()


class LocalGateway:
    """One WebSocket server and the connections it holds, by API-Gateway-style connection id."""

    def __init__(self, app: Any, *, stage: str = "local", connections: ConnectionRegistry | None = None) -> None:
        self._app = app
        self._stage = stage
        self._connections = connections
        self._clients: dict[str, _Client] = {}  # only touched on the loop
        self._handshakes: dict[ServerConnection, _Client] = {}
        self._handlers = concurrent.futures.ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="ws-lambda")
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.host = ""
        self.port = 0
        self.sender = LocalGatewaySender(self)
        self._management: ManagementApi | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def domain_name(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, host: str, port: int) -> None:
        """Listen on host:port (0 picks a free port) and serve in a background thread; raises if it cannot."""
        ready = threading.Event()
        failure: list[BaseException] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(host, port, ready, failure), name="ws-gateway", daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError(f"the WebSocket gateway did not start on {host}:{port}")
        if failure:
            raise failure[0]

    def serve_management_api(self, port: int = 0) -> str:
        """Serve API Gateway's `POST /@connections/{id}` for this gateway on its host; returns its URL."""
        if self._management is None:
            management = ManagementApi(self.sender)
            management.start(self.host, port)
            self._management = management
        return self._management.url

    def stop(self) -> None:
        """Close every connection (each gets its `$disconnect`), stop the loop and the handler threads."""
        if self._management is not None:
            self._management.stop()
            self._management = None
        loop, stopping = self.loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._handlers.shutdown(wait=True, cancel_futures=True)

    async def deliver(self, connection_id: str, data: str) -> bool:
        """Send one text frame; False when no open connection has this id."""
        client = self._clients.get(connection_id)
        if client is None:
            return False
        try:
            await client.connection.send(data)
        except ConnectionClosed:
            return False
        return True

    async def close(self, connection_id: str, reason: str) -> None:
        """Close one connection with 1008 (policy violation); an unknown id is already closed."""
        client = self._clients.get(connection_id)
        if client is not None:
            await client.connection.close(POLICY_VIOLATION, reason)

    # The server ---------------------------------------------------------------------------

    def _run(self, host: str, port: int, ready: threading.Event, failure: list[BaseException]) -> None:
        assert self.loop is not None
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve(host, port, ready))
        except BaseException as exc:  # before serving, start() raises it; after, it is logged
            failure.append(exc)
            if ready.is_set():
                logger.exception("the WebSocket gateway stopped")
        finally:
            ready.set()
            self.loop.close()

    async def _serve(self, host: str, port: int, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        async with serve(self._session, host, port, process_request=self._connect) as server:
            self.host, self.port = host, int(server.sockets[0].getsockname()[1])
            # Chalice's wrapper derives an AWS endpoint (and needs a region) unless one is set: the first wins.
            self._app.websocket_api.configure(self.domain_name, self._stage)
            ready.set()
            await self._stopping.wait()

    async def _connect(self, connection: ServerConnection, request: Request) -> Response | None:
        """`$connect`: accept the handshake only when the app's connect handler answers 2xx."""
        remote = connection.remote_address
        headers = dict(request.headers.raw_items())
        client = _Client(new_connection_id(), connection, epoch_ms(), str(remote[0]) if remote else "", headers)
        query = parse_qs(urlsplit(request.path).query)
        event = self._event("$connect", "CONNECT", client)
        event.update(
            headers=client.headers,
            multiValueHeaders={name: [value] for name, value in client.headers.items()},
            queryStringParameters={name: values[-1] for name, values in query.items()} or None,
            multiValueQueryStringParameters=query or None,
        )
        answer = await self._invoke("$connect", event)
        status = int(answer.get("statusCode", HTTPStatus.OK))
        if not 200 <= status < 300:
            return connection.respond(status, f"{answer.get('body') or HTTPStatus(status).phrase}\n")
        self._handshakes[connection] = client
        return None

    async def _session(self, connection: ServerConnection) -> None:
        """An accepted connection: each message goes to `$default`, in order; closing calls `$disconnect`."""
        client = self._handshakes.pop(connection)
        self._clients[client.connection_id] = client
        try:
            await self._close_at_expiry(client)
            async for message in connection:
                await self._invoke("$default", self._message_event(client, message))
        except ConnectionClosed:
            pass
        finally:
            if client.expiry is not None:
                client.expiry.cancel()
            self._clients.pop(client.connection_id, None)
            event = self._event("$disconnect", "DISCONNECT", client)
            event["requestContext"].update(
                disconnectStatusCode=connection.close_code, disconnectReason=connection.close_reason or ""
            )
            await self._invoke("$disconnect", event)

    async def _close_at_expiry(self, client: _Client) -> None:
        """Schedule the close for when the connection's token expires, as the registry records it."""
        if self._connections is None:
            return
        loop = asyncio.get_running_loop()
        subscription = await loop.run_in_executor(self._handlers, self._connections.find, client.connection_id)
        expires_at = subscription.expires_at if subscription is not None else None
        delay = 0.0 if expires_at is None else max(0.0, (expires_at - utcnow()).total_seconds())
        client.expiry = loop.call_later(
            delay, lambda: loop.create_task(self.close(client.connection_id, TOKEN_EXPIRED))
        )

    # Events and handlers ------------------------------------------------------------------

    def _event(self, route_key: str, event_type: str, client: _Client) -> dict[str, Any]:
        """The fields API Gateway puts in every WebSocket event."""
        now = epoch_ms()
        return {
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "messageDirection": "IN",
                "connectionId": client.connection_id,
                "connectedAt": client.connected_at,
                "domainName": self.domain_name,
                "stage": self._stage,
                "apiId": LOCAL_API_ID,
                "requestId": uuid.uuid4().hex,
                "extendedRequestId": uuid.uuid4().hex,
                "requestTimeEpoch": now,
                "identity": {"sourceIp": client.source_ip, "userAgent": client.headers.get("User-Agent", "")},
            },
            "isBase64Encoded": False,
        }

    def _message_event(self, client: _Client, message: str | bytes) -> dict[str, Any]:
        event = self._event("$default", "MESSAGE", client)
        event["requestContext"]["messageId"] = uuid.uuid4().hex
        if isinstance(message, bytes):  # API Gateway passes binary frames base64-encoded
            event.update(body=base64.b64encode(message).decode(), isBase64Encoded=True)
        else:
            event["body"] = message
        return event

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._handlers, self._call_handler, route_key, event)

    def _call_handler(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        """What Lambda does for the route's function; a handler that raises is API Gateway's 500."""
        config = self._app.websocket_handlers.get(route_key)
        if config is None:  # no handler for this route: API Gateway accepts and drops
            return {"statusCode": HTTPStatus.OK}
        context = LambdaContext(config.name, memory_size=LAMBDA_MEMORY_MB, max_runtime_ms=LAMBDA_TIMEOUT_MS)
        try:
            answer = self._app.handler_map[config.name](event, context)
        except Exception:
            logger.exception("the %s handler failed", route_key)
            return {"statusCode": HTTPStatus.INTERNAL_SERVER_ERROR, "body": "Internal server error"}
        return answer if isinstance(answer, dict) else {"statusCode": HTTPStatus.OK}


def start_gateway(
    app: Any, host: str = "127.0.0.1", port: int = 8001, *, services: Services | None = None
) -> LocalGateway:
    """Serve `app`'s WebSocket handlers on host:port in a background thread; `.stop()` ends it.

    With `services`, the gateway's sender is installed there, so the app's events reach its connections.
    """
    gateway = LocalGateway(app, connections=services.connections if services is not None else None)
    gateway.start(host, port)
    if services is not None:
        services.install_websocket_sender(gateway.sender)
    return gateway
