"""An S3 fault proxy in front of moto's server: HTTP/1.1 aware, loopback only, seeded.

    python -m chaos.s3proxy --port N --upstream-port M --record FILE [--seed S] [--rate R]

Each request from a client (keep-alive connections, `Expect: 100-continue` answered here) is read
whole, then, while faults are on, with probability `rate` each:

- `slowdown`: answered 503 SlowDown (S3's XML error body) without reaching moto;
- `internal`: answered 500 InternalError without reaching moto;
- `reset-request`: the connection is reset after half the request body (never reaches moto);
- `reset-response`: forwarded to moto (so it is done there), then half of moto's answer is sent
  and the connection reset: the client does not know its request succeeded;
- `slow`: forwarded after a pause of 0.5 to 2.5 s.

Every request becomes one JSON line in the record file: `seq`, `method`, `bucket`, `key`,
`partNumber`, `uploadId`, `op` (PutObject, UploadPart, CompleteMultipartUpload, ...), `fault`,
`forwarded` (moto received it), `upstreamStatus`, `status` (what the client received, 0 if cut),
`delivered` (the client received the whole answer), `start` and `end` (one counter shared by
every request: the order of events at the proxy: `arrival` when its head was read, `start` when
forwarding began, `end` when moto's answer was in, `done` when the client had all of it).

Standard input takes commands, one per line: `faults off`, `faults on`. The proxy exits when its
standard input closes. It prints its port on stdout's first line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import socket
import struct
import time
import urllib.parse
from dataclasses import asdict, dataclass
from typing import IO, Any

from chaos.commands import follow_commands

LOOPBACK = "127.0.0.1"
HEAD_LIMIT = 64 * 1024
FAULTS = ("slowdown", "internal", "reset-request", "reset-response", "slow")
ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>chaos-{seq}</RequestId></Error>"
)
ANSWERS = {
    "slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "internal": (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
}


@dataclass
class Record:
    seq: int
    method: str
    bucket: str
    key: str
    op: str
    partNumber: int | None
    uploadId: str | None
    fault: str | None = None
    forwarded: bool = False
    upstreamStatus: int = 0
    status: int = 0
    delivered: bool = False
    bytes: int = 0
    arrival: int = 0
    start: int = 0
    end: int = 0
    done: int = 0
    at: float = 0.0


def operation(method: str, key: str, query: dict[str, str]) -> str:
    """The S3 operation a request is, from its method, key and query (path-style addressing)."""
    if method == "PUT" and "partNumber" in query and "uploadId" in query:
        return "UploadPart"
    if method == "PUT" and key:
        return "PutObject"
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "POST" and "uploadId" in query:
        return "CompleteMultipartUpload"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if method == "DELETE":
        return "DeleteObject"
    if method == "GET" and "uploadId" in query:
        return "ListParts"
    if method == "GET" and "uploads" in query:
        return "ListMultipartUploads"
    if method == "GET" and not key:
        return "ListObjects"
    if method == "HEAD":
        return "HeadObject"
    return f"{method} {'object' if key else 'bucket'}"


def parse_target(target: str) -> tuple[str, str, dict[str, str]]:
    """(bucket, key, query) of a path-style request target."""
    parsed = urllib.parse.urlsplit(target)
    path = urllib.parse.unquote(parsed.path).lstrip("/")
    bucket, _, key = path.partition("/")
    query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    return bucket, key, query


@dataclass
class Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def encode(self, drop: frozenset[str] = frozenset()) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{key}: {value}" for key, value in self.headers if key.lower() not in drop]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_head(raw: bytes) -> Head:
    text = raw.decode("latin-1").rstrip("\r\n")
    first, *rest = text.split("\r\n")
    method, target, version = first.split(" ", 2)
    headers = [(key.strip(), value.strip()) for key, _, value in (line.partition(":") for line in rest)]
    return Head(method, target, version, headers)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream_port: int, record: IO[str], seed: int, rate: float) -> None:
        self.upstream_port = upstream_port
        self.record = record
        self.rng = random.Random(seed)
        self.rate = rate
        self.faults_on = True
        self.order = itertools.count(1)
        self.seq = itertools.count(1)

    def set_faults(self, on: bool) -> None:
        self.faults_on = on

    def choose_fault(self) -> str | None:
        if not self.faults_on:
            return None
        draw = self.rng.random()
        for index, name in enumerate(FAULTS):
            if draw < self.rate * (index + 1):
                return name
        return None

    def write(self, record: Record) -> None:
        record.at = time.time()
        self.record.write(json.dumps(asdict(record)) + "\n")
        self.record.flush()

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self.one_request(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the client connection is over."""
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        head = parse_head(raw)
        bucket, key, query = parse_target(head.target)
        record = Record(
            next(self.seq),
            head.method,
            bucket,
            key,
            operation(head.method, key, query),
            int(query["partNumber"]) if "partNumber" in query else None,
            query.get("uploadId"),
            arrival=next(self.order),
        )
        record.fault = self.choose_fault()
        try:
            return await self.serve_request(head, record, reader, writer)
        finally:  # whatever happened (the client may be gone mid-answer), the request is on record
            self.write(record)

    async def serve_request(
        self, head: Head, record: Record, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        fault = record.fault
        length = int(head.get("Content-Length") or 0)
        if (head.get("Expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if fault == "reset-request" and length > 1:
            await reader.readexactly(length // 2)
            reset(writer)
            return False
        body = await reader.readexactly(length) if length else b""
        record.bytes = length
        if fault == "reset-request":
            reset(writer)
            return False
        if fault in ANSWERS:
            await self.answer_error(writer, record, fault)
            return True
        if fault == "slow":
            await asyncio.sleep(0.5 + 2 * self.rng.random())
        answer = await self.forward(head, body, record)
        if answer is None:  # moto refused the connection: the client sees a reset
            reset(writer)
            return False
        if fault == "reset-response":
            writer.write(answer[: max(1, len(answer) // 2)])
            await writer.drain()
            reset(writer)
            return False
        writer.write(answer)
        await writer.drain()
        record.status, record.delivered, record.done = record.upstreamStatus, True, next(self.order)
        return True

    async def answer_error(self, writer: asyncio.StreamWriter, record: Record, fault: str) -> None:
        status, phrase, code, message = ANSWERS[fault]
        body = ERROR_BODY.format(code=code, message=message, seq=record.seq).encode()
        writer.write(
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nx-amz-request-id: chaos-{record.seq}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        record.status, record.delivered, record.done = status, True, next(self.order)

    async def forward(self, head: Head, body: bytes, record: Record) -> bytes | None:
        """Send the request to moto (one connection per request: moto closes it after one) and
        return its answer re-framed for a keep-alive client; None if moto could not be reached."""
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port, limit=HEAD_LIMIT)
        except OSError:
            return None
        record.forwarded = True
        record.start = next(self.order)
        try:
            up_writer.write(head.encode(drop=frozenset({"expect", "connection"})) + body)
            await up_writer.drain()
            raw_head = await up_reader.readuntil(b"\r\n\r\n")
            answer_head = raw_head.decode("latin-1").rstrip("\r\n").split("\r\n")
            status = int(answer_head[0].split(" ", 2)[1])
            headers = [line for line in answer_head[1:] if not line.lower().startswith("connection:")]
            length = header_value(headers, "content-length")
            chunked = (header_value(headers, "transfer-encoding") or "").lower() == "chunked"
            if head.method == "HEAD" or status in (204, 304):
                payload = b""
            elif chunked:  # passed on as it is: moto ends it by closing
                payload = await up_reader.read()
            elif length is not None:
                payload = await up_reader.readexactly(int(length))
            else:
                payload = await up_reader.read()
                headers.append(f"Content-Length: {len(payload)}")
        finally:
            with contextlib.suppress(OSError):
                up_writer.close()
        record.end = next(self.order)
        record.upstreamStatus = status
        return ("\r\n".join([answer_head[0], *headers]) + "\r\n\r\n").encode("latin-1") + payload


def header_value(lines: list[str], name: str) -> str | None:
    prefix = name.lower() + ":"
    return next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith(prefix)), None)


async def serve(port: int, upstream_port: int, record_path: str, seed: int, rate: float, faults: bool) -> None:
    with open(record_path, "a", encoding="utf-8") as record:
        proxy = FaultProxy(upstream_port, record, seed, rate)
        proxy.set_faults(faults)
        server = await asyncio.start_server(proxy.serve_client, LOOPBACK, port, limit=HEAD_LIMIT)
        print(server.sockets[0].getsockname()[1], flush=True)
        closed = follow_commands(proxy.set_faults)
        async with server:
            await closed.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--record", required=True, help="file of JSON lines, one per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.02, help="probability of each fault kind")
    parser.add_argument("--calm", action="store_true", help="start with the faults off")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.upstream_port, args.record, args.seed, args.rate, not args.calm))


def load_records(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


if __name__ == "__main__":
    main()
