"""A loopback S3 proxy playing a far-away, rate-limited S3 on one machine: requests 100 ms late, 503 SlowDown.

    python -m bench.proxy --upstream-port 5000 [--delay-ms 100] [--slowdown-rate 300 [--slowdown-burst 60]]
                          [--lifetime 1800]

The delay: every chunk read from a client is forwarded to the server `delay` after it arrived (a
delay line: chunks keep their order and their spacing, they are not slept one after the other), so
each request reaches the server 100 ms late, whatever its size, and each connection opened pays it
on its first request. Answers come back undelayed. That is 100 ms more per request, which is what
separates a tool that keeps many requests in flight from one that keeps few.

The SlowDown fault (with --slowdown-rate): requests above that rate (a token bucket, bench/slowdown.py)
are not forwarded; the proxy answers them itself, `delay` after they arrived, with S3's
`503 SlowDown` and its XML error body. A refused request's body is read and dropped and the
connection stays open, except for a request waiting on `Expect: 100-continue` (its body was never
sent): that answer closes the connection.

It reads each request's head to find where the request ends (Content-Length or chunked; clients
do not pipeline), so it counts requests too. Bounded: it listens on 127.0.0.1 only, forwards only
to 127.0.0.1, prints its port on stdout's first line, answers `counts` on standard input with a
JSON line {"requests": n, "slowdowns": n} (since it started), and exits when its standard input
closes (its parent is gone) or after `--lifetime`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bench.slowdown import RequestHead, TokenBucket, parse_head, slowdown_response

LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024
HEAD_END = b"\r\n\r\n"

DelayLine = asyncio.Queue[tuple[float, bytes]]  # (when to write it, chunk); b"" ends the stream


@dataclass
class Fault:
    """What the proxy does to requests, and what it has done so far."""

    delay: float
    bucket: TokenBucket | None  # None: every request is forwarded
    counts: Counter[str] = field(default_factory=lambda: Counter({"requests": 0, "slowdowns": 0}))


async def _exactly(reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
    while size > 0:
        piece = await reader.read(min(size, CHUNK))
        if not piece:
            raise asyncio.IncompleteReadError(b"", size)
        size -= len(piece)
        yield piece


async def _body(reader: asyncio.StreamReader, request: RequestHead) -> AsyncIterator[bytes]:
    """The request's body as it comes, framing included (chunk sizes, trailers)."""
    if not request.chunked:
        async for piece in _exactly(reader, request.content_length):
            yield piece
        return
    while True:
        size_line = await reader.readuntil(b"\r\n")
        yield size_line
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        async for piece in _exactly(reader, size + 2):  # the chunk and its CRLF
            yield piece
    while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
        yield trailer
    yield trailer


async def _answer_slowdown(writer: asyncio.StreamWriter, method: str, due: float, *, close: bool) -> None:
    """S3's answer reaches the client when the request would have reached S3 (`due`)."""
    await asyncio.sleep(max(0.0, due - time.monotonic()))
    writer.write(slowdown_response(method, close=close))
    await writer.drain()


async def _requests(
    reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, line: DelayLine, fault: Fault
) -> None:
    """Client -> delay line, request by request; those above the rate answered here instead."""
    while True:
        try:
            head = await reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError:  # the client closed its side (between requests)
            return
        request = parse_head(head)
        fault.counts["requests"] += 1
        admitted = fault.bucket is None or fault.bucket.admit(time.monotonic())
        if admitted:
            line.put_nowait((time.monotonic() + fault.delay, head))
        else:
            fault.counts["slowdowns"] += 1
            if request.expects_continue:
                due = time.monotonic() + fault.delay
                await _answer_slowdown(client_writer, request.method, due, close=True)
                return
        async for piece in _body(reader, request):
            if admitted:
                line.put_nowait((time.monotonic() + fault.delay, piece))
        if not admitted:
            await _answer_slowdown(client_writer, request.method, time.monotonic() + fault.delay, close=False)


async def _pipe_delayed(
    reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, writer: asyncio.StreamWriter, fault: Fault
) -> None:
    """Client -> server: each chunk of an admitted request written `delay` seconds after it was read."""
    line: DelayLine = asyncio.Queue()

    async def read() -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await _requests(reader, client_writer, line, fault)
        line.put_nowait((time.monotonic() + fault.delay, b""))

    reading = asyncio.create_task(read())
    try:
        while True:
            due, chunk = await line.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    finally:
        reading.cancel()
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Server -> client, as it comes."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError):
            writer.close()


# asyncio holds its tasks weakly: without these references a connection waiting on its sockets
# can be collected mid-way ("Task was destroyed but it is pending!", seen under SlowDown bursts).
_CONNECTIONS: set[asyncio.Task[None]] = set()


async def _serve_connection(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, upstream_port: int, fault: Fault
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(LOOPBACK, upstream_port)
    except OSError:
        client_writer.close()
        return
    upstream = asyncio.create_task(_pipe_delayed(client_reader, client_writer, server_writer, fault))
    downstream = asyncio.create_task(_pipe(server_reader, client_writer))
    _CONNECTIONS.update((upstream, downstream))
    try:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(upstream, downstream)
    finally:
        _CONNECTIONS.difference_update((upstream, downstream))
    for writer in (server_writer, client_writer):
        with contextlib.suppress(OSError):
            writer.close()


async def _commands(counts: Counter[str]) -> None:
    """Answers `counts` lines on standard input; returns when it reaches its end (a daemon thread
    reads it: exit never waits for it)."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def read_to_end() -> None:
        for command in sys.stdin:
            if command.strip() == "counts":
                print(json.dumps(dict(counts)), flush=True)
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=read_to_end, name="stdin", daemon=True).start()
    await closed.wait()


async def serve(upstream_port: int, fault: Fault, lifetime: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, upstream_port, fault), LOOPBACK, 0, limit=CHUNK
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_commands(fault.counts), lifetime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--slowdown-rate", type=float, default=None, help="requests per second before 503 SlowDown")
    parser.add_argument("--slowdown-burst", type=float, default=None, help="requests at once (default: rate / 5)")
    parser.add_argument("--lifetime", type=float, default=1800.0, help="seconds before it exits on its own")
    args = parser.parse_args()
    bucket = None
    if args.slowdown_rate is not None:
        burst = args.slowdown_burst or max(1.0, args.slowdown_rate / 5)
        bucket = TokenBucket(args.slowdown_rate, burst, time.monotonic())
    asyncio.run(serve(args.upstream_port, Fault(args.delay_ms / 1000, bucket), args.lifetime))


if __name__ == "__main__":
    main()
