"""The local gateway's management API: API Gateway's `POST /@connections/{connectionId}` over HTTP.

Processes other than the gateway's own (the worker processes of `LOCAL_WORKER_PROCESSES=1`) reach
their WebSocket clients the way a deployed Lambda does: through `ApiGatewaySender`, a boto3
`apigatewaymanagementapi` client whose endpoint is this server (`WEBSOCKET_API_DOMAIN=http://...`,
`WEBSOCKET_API_STAGE` empty). The raw request body is the message; an unknown connection answers 410
with `x-amzn-ErrorType: GoneException`, which botocore turns into the client's `GoneException`, so
the sender's ConnectionGone and the registry's pruning run as in production.

Requests are not authenticated: the server listens on the loopback only, for the local runtime.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from chalicelib.logs import logger
from chalicelib.realtime.senders import ConnectionGone, Sender

CONNECTIONS_PATH = "/@connections/"


class ManagementApi:
    """An HTTP server in a background thread that hands each posted message to `sender`."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint to give `ApiGatewaySender` (as WEBSOCKET_API_DOMAIN)."""
        assert self._server is not None, "the management API is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, host: str, port: int = 0) -> None:
        """Listen on host:port (0 picks a free port) and serve in a background thread."""
        self._server = ThreadingHTTPServer((host, port), _handler_class(self._sender))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ws-management", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _handler_class(sender: Sender) -> type[BaseHTTPRequestHandler]:
    class ManagementRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # botocore keeps its connections open

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request (a killed worker): deliver nothing
                self._answer(HTTPStatus.BAD_REQUEST, "BadRequestException", "the message ended early")
                return
            connection_id = connection_id_of(self.path)
            if connection_id is None:
                self._answer(HTTPStatus.NOT_FOUND, "NotFoundException", f"no route {self.path}")
                return
            try:
                sender.send(connection_id, body.decode("utf-8", errors="replace"))
            except ConnectionGone:
                self._answer(HTTPStatus.GONE, "GoneException", f"connection {connection_id} is gone")
                return
            except Exception as exc:  # a timeout or a failure of this one delivery
                logger.warning("could not deliver to WebSocket connection %s: %s", connection_id, exc)
                self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, "InternalServerErrorException", str(exc))
                return
            self._answer(HTTPStatus.OK)

        def _answer(self, status: HTTPStatus, error_type: str = "", message: str = "") -> None:
            data = json.dumps({"message": message}).encode() if error_type else b""
            self.send_response(status)
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per event would drown the runtime's log

    return ManagementRequestHandler


def connection_id_of(path: str) -> str | None:
    """The connection id of `/@connections/{id}` (URL-decoded), or None for any other path."""
    route = urlsplit(path).path
    if not route.startswith(CONNECTIONS_PATH):
        return None
    connection_id = unquote(route[len(CONNECTIONS_PATH) :])
    return connection_id if connection_id and "/" not in connection_id else None
