"""A TCP proxy in front of the MongoDB wire server that drops connections now and then (seeded).

    python -m chaos.tcpproxy --upstream-port M [--port N] [--seed S] [--mean-seconds T]

Bytes pass both ways untouched. While faults are on, at random moments (exponential gaps of mean
`--mean-seconds`) one open connection, chosen at random, is reset on both sides, as an Atlas
failover or a network blip would: the operation in flight on it fails with a connection error.
Every drop is one line on stderr (`drop N`) and the total is printed on stdout at the end.

Standard input takes `faults off` / `faults on`; the proxy exits when it closes. It prints its
port on stdout's first line. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys

from chaos.commands import follow_commands
from chaos.s3proxy import reset

LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024

Pair = tuple[asyncio.StreamWriter, asyncio.StreamWriter]


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


class DroppingProxy:
    def __init__(self, upstream_port: int, seed: int, mean_seconds: float) -> None:
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.mean = mean_seconds
        self.faults_on = True
        self.open: list[Pair] = []
        self.drops = 0

    def set_faults(self, on: bool) -> None:
        self.faults_on = on

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream_port)
        except OSError:
            reset(writer)
            return
        pair = (writer, up_writer)
        self.open.append(pair)
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            if pair in self.open:
                self.open.remove(pair)

    async def drop_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / self.mean))
            if not self.faults_on or not self.open:
                continue
            pair = self.open.pop(self.rng.randrange(len(self.open)))
            for writer in pair:
                reset(writer)
            self.drops += 1
            print(f"drop {self.drops}", file=sys.stderr, flush=True)


async def serve(port: int, upstream_port: int, seed: int, mean_seconds: float, faults: bool) -> None:
    proxy = DroppingProxy(upstream_port, seed, mean_seconds)
    proxy.set_faults(faults)
    server = await asyncio.start_server(proxy.serve_client, LOOPBACK, port)
    print(server.sockets[0].getsockname()[1], flush=True)
    closed = follow_commands(proxy.set_faults)
    dropping = asyncio.create_task(proxy.drop_now_and_then())
    async with server:
        await closed.wait()
    dropping.cancel()
    print(f"drops {proxy.drops}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mean-seconds", type=float, default=5.0, help="mean time between two drops")
    parser.add_argument("--calm", action="store_true", help="start with the faults off")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.upstream_port, args.seed, args.mean_seconds, not args.calm))


if __name__ == "__main__":
    main()
