"""A tiny webhook receiver for the local runtime (LOCAL_WEBHOOK_RECEIVER=1, which `make demo` sets).

It verifies each notification's signature as a real receiver would (chalicelib/notify/signature.py),
answers 401 to a bad or old one, logs the notification's `text` and keeps what it received, so the
demo can show a failure notification arriving.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.logs import logger
from chalicelib.notify.signature import HEADER, verify

PATH = "/local/webhook"


class WebhookReceiver:
    def __init__(self, host: str, port: int, secret: str) -> None:
        self.received: list[dict[str, Any]] = []
        self._secret = secret
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, wanted: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        """The first notification received that `wanted` accepts, waiting up to `timeout` seconds."""
        with self._changed:
            found: list[dict[str, Any]] = []

            def arrived() -> bool:
                found[:] = [payload for payload in self.received if wanted(payload)]
                return bool(found)

            self._changed.wait_for(arrived, timeout=timeout)
            return found[0] if found else None

    def _accept(self, payload: dict[str, Any]) -> None:
        logger.info("webhook received %s: %s", payload.get("event"), payload.get("text"))
        with self._changed:
            self.received.append(payload)
            self._changed.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != PATH or not verify(receiver._secret, self.headers.get(HEADER, ""), body, time.time()):
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver._accept(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one log line per notification is enough

        return Handler
