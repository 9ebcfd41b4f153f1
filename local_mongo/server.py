"""The local MongoDB wire-protocol server: mongoeco's proxy over its memory engine, in its own process.

Outside chalicelib: never packaged into the Lambda. Run by the separate Python >= 3.13 virtualenv `.venv-mongo` (requirements-mongo.txt), never imported
by the service: `.venv-mongo/bin/python local_mongo/server.py --port 27017`. It prints
`ready` once it listens and runs until SIGTERM or SIGINT. chalicelib/local/mongo_wire.py starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any


def drop_full_scan_on_single_insert() -> None:
    """mongoeco 4.11 compares a single inserted document's `_id` with every stored document's
    (`scan_payload_id`), although it has just looked the same `_id` up by its storage key: each
    insert costs O(documents), 1,000 inserts 3.8 s, 10,000 never end. The scan only matters for
    numeric `_id`s (1 == 1.0), which the engine still scans on its own; ours are ObjectIds."""
    from mongoeco.engines.memory import MemoryEngine  # type: ignore[import-not-found]

    ensure_unique = MemoryEngine._ensure_unique_indexes

    def without_payload_scan(self: Any, *args: Any, scan_payload_id: bool = False, **kwargs: Any) -> Any:
        return ensure_unique(self, *args, scan_payload_id=False, **kwargs)

    MemoryEngine._ensure_unique_indexes = without_payload_scan


async def serve(host: str, port: int) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer  # type: ignore[import-not-found]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with AsyncMongoEcoProxyServer(host=host, port=port):
        print("ready", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args()
    drop_full_scan_on_single_insert()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
