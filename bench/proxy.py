"""A loopback TCP proxy that makes every request 100 ms late: a far-away S3, played on one machine.

    python -m bench.proxy --upstream-port 5000 [--delay-ms 100] [--lifetime 1800]

Every chunk read from a client is forwarded to the server `delay` after it arrived (a delay line:
chunks keep their order and their spacing, they are not slept one after the other), so each
request reaches the server 100 ms late, whatever its size, and each connection opened pays it on
its first request. Answers come back undelayed. That is 100 ms more per request, which is what
separates a tool that keeps many requests in flight from one that keeps few.

Bounded: it listens on 127.0.0.1 only, forwards only to 127.0.0.1, prints its port on stdout's
first line, and exits when its standard input closes (its parent is gone) or after `--lifetime`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024


async def _pipe_delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Client -> server: each chunk written `delay` seconds after it was read."""
    line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while chunk := await reader.read(CHUNK):
            line.put_nowait((time.monotonic() + delay, chunk))
        line.put_nowait((time.monotonic() + delay, b""))

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


async def _serve_connection(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, upstream_port: int, delay: float
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(LOOPBACK, upstream_port)
    except OSError:
        client_writer.close()
        return
    upstream = asyncio.create_task(_pipe_delayed(client_reader, server_writer, delay))
    downstream = asyncio.create_task(_pipe(server_reader, client_writer))
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await asyncio.gather(upstream, downstream)
    for writer in (server_writer, client_writer):
        with contextlib.suppress(OSError):
            writer.close()


async def _stdin_closed() -> None:
    """Returns when standard input reaches its end (a daemon thread reads it: exit never waits for it)."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def read_to_end() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=read_to_end, name="stdin", daemon=True).start()
    await closed.wait()


async def serve(upstream_port: int, delay: float, lifetime: float) -> None:
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, upstream_port, delay), LOOPBACK, 0, limit=CHUNK
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_stdin_closed(), lifetime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    parser.add_argument("--lifetime", type=float, default=1800.0, help="seconds before it exits on its own")
    args = parser.parse_args()
    asyncio.run(serve(args.upstream_port, args.delay_ms / 1000, args.lifetime))


if __name__ == "__main__":
    main()
