"""A message whose sender died mid-request (a killed worker process) never reaches a WebSocket client."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

from chalicelib.local.ws_management import ManagementApi


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.arrived = threading.Event()

    def send(self, connection_id: str, data: str) -> None:
        self.sent.append((connection_id, data))
        self.arrived.set()


def post_raw(url: str, head: bytes, body: bytes) -> bytes:
    """Send a request's head and `body`, end our side, and read whatever the server answers."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def test_a_body_shorter_than_its_content_length_is_refused_not_delivered() -> None:
    sender = RecordingSender()
    api = ManagementApi(sender)
    api.start("127.0.0.1")
    try:
        whole = b'{"event":"JobCompleted","jobId":"j1"}'
        head = f"POST /@connections/c1 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(whole)}\r\n\r\n".encode()
        answer = post_raw(api.url, head, whole[:10])
        time.sleep(0.2)  # a delivery would have happened by now
        assert sender.sent == []
        assert answer.startswith(b"HTTP/1.1 400")

        assert post_raw(api.url, head, whole).startswith(b"HTTP/1.1 200")
        assert sender.arrived.wait(5)
        assert sender.sent == [("c1", whole.decode())]
    finally:
        api.stop()
