"""A MongoDB or SQS call that hangs ends, as an error, before the lease it guards would expire
(chalicelib/timeouts.py): against real servers on loopback that accept a request and never answer."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import bson
import pytest
from botocore.exceptions import ReadTimeoutError
from pymongo.errors import PyMongoError

from chalicelib.config import Settings
from chalicelib.jobs.model import QueueName
from chalicelib.services import Services

LEASE_SECONDS = 12
PORTS = range(27500, 27600)  # this suite's loopback ports
OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
HANDSHAKES = frozenset({"hello", "ismaster", "isMaster"})


class HangingServer:
    """A TCP server on loopback. `answer(request)` gives the bytes to reply to one request, or
    None to hang: the connection stays open and the request is never answered."""

    def __init__(self, read_request: Callable[[socket.socket], bytes | None], answer: Callable[[bytes], bytes | None]):
        self._read_request = read_request
        self._answer = answer
        self._stopped = threading.Event()
        self._socket = bind_free_port()
        self.port = self._socket.getsockname()[1]
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            while (request := self._read_request(connection)) is not None:
                reply = self._answer(request)
                if reply is None:
                    self._stopped.wait()
                    return
                connection.sendall(reply)
        except OSError:
            return

    def close(self) -> None:
        self._stopped.set()
        self._socket.close()
        for connection in self._connections:
            connection.close()


def bind_free_port() -> socket.socket:
    for port in PORTS:
        server = socket.socket()
        try:
            server.bind(("127.0.0.1", port))
        except OSError:
            server.close()
            continue
        server.listen()
        return server
    raise RuntimeError(f"no free port in {PORTS}")


def read_http_request(connection: socket.socket) -> bytes | None:
    data = connection.recv(65536)
    return data or None


def read_exactly(connection: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_wire_message(connection: socket.socket) -> bytes | None:
    header = read_exactly(connection, 4)
    if header is None:
        return None
    rest = read_exactly(connection, struct.unpack("<i", header)[0] - 4)
    return None if rest is None else header + rest


HELLO = {
    "ok": 1.0,
    "isWritablePrimary": True,
    "ismaster": True,
    "helloOk": True,
    "maxWireVersion": 17,
    "minWireVersion": 0,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "logicalSessionTimeoutMinutes": 30,
    "connectionId": 1,
}


def answer_handshakes_only(message: bytes) -> bytes | None:
    """A MongoDB that completes the driver's handshake (OP_QUERY or OP_MSG hello), then never
    answers a command: an operation that hangs on a live connection."""
    request_id, op_code = struct.unpack_from("<i", message, 4)[0], struct.unpack_from("<i", message, 12)[0]
    if op_code == OP_QUERY:
        collection_end = message.index(b"\x00", 20)
        command = bson.decode(message[collection_end + 9 :], codec_options=bson.CodecOptions())
    elif op_code == OP_MSG:
        command = bson.decode(message[21:])
    else:
        return None
    if not HANDSHAKES.intersection(command):
        return None
    document = bson.encode({**HELLO, "localTime": datetime.now()})
    if op_code == OP_QUERY:
        body = struct.pack("<iqii", 0, 0, 0, 1) + document
        return struct.pack("<iiii", 16 + len(body), 1, request_id, OP_REPLY) + body
    body = struct.pack("<I", 0) + b"\x00" + document
    return struct.pack("<iiii", 16 + len(body), 1, request_id, OP_MSG) + body


@pytest.fixture
def hanging_mongo() -> Iterator[HangingServer]:
    server = HangingServer(read_wire_message, answer_handshakes_only)
    yield server
    server.close()


@pytest.fixture
def hanging_http() -> Iterator[HangingServer]:
    server = HangingServer(read_http_request, lambda _request: None)
    yield server
    server.close()


def ends_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run `call` on a thread; the exception it ended with, or fail the test if it still runs
    after `seconds` (the call outlasted the lease)."""
    outcome: dict[str, BaseException | None] = {"error": None}

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call was still waiting after {seconds} s (the lease)"
    return outcome["error"]


def test_a_mongodb_write_that_hangs_ends_before_the_lease(hanging_mongo: HangingServer) -> None:
    uri = f"mongodb://127.0.0.1:{hanging_mongo.port}/?directConnection=true"
    settings = Settings(stage="test", mongodb_uri=uri, lease_seconds=LEASE_SECONDS)
    services = Services(settings)
    jobs = services.database["upload_jobs"]

    error = ends_within(LEASE_SECONDS, lambda: jobs.find_one_and_update({"jobId": "j"}, {"$set": {"x": 1}}))

    assert isinstance(error, PyMongoError)


def test_an_sqs_call_that_hangs_ends_before_the_lease(
    hanging_http: HangingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{hanging_http.port}")
    url = f"http://127.0.0.1:{hanging_http.port}/123456789012/upload-hls-to-s3"
    services = Services(Settings(stage="test", hls_queue_url=url, master_queue_url=url, lease_seconds=LEASE_SECONDS))

    error = ends_within(
        LEASE_SECONDS, lambda: services.queue.change_visibility(QueueName.HLS, "receipt", LEASE_SECONDS)
    )

    assert isinstance(error, ReadTimeoutError)
