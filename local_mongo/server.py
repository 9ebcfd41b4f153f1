"""The local MongoDB wire-protocol server: mongoeco's proxy over its memory engine, in its own process.

Outside chalicelib, so never packaged into the Lambda. Run by the separate Python >= 3.13
virtualenv `.venv-mongo` (requirements-mongo.txt), never imported by the service:
`.venv-mongo/bin/python local_mongo/server.py --port 27017`. It prints `ready` once it listens and
runs until SIGTERM or SIGINT. chalicelib/local/mongo_wire.py starts it.

Two operations of mongoeco 4.11 cost time in proportion to the data for no reason our data needs;
`speed_up_mongoeco` gives each a fast path with the same result (both measured, see
docs/architecture.md "Local MongoDB"), and leaves every other case to mongoeco's own code.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any


def speed_up_mongoeco() -> None:
    drop_full_scan_on_single_insert()
    pull_all_strings_by_set()


def drop_full_scan_on_single_insert() -> None:
    """mongoeco 4.11 compares a single inserted document's `_id` with every stored document's
    (`scan_payload_id`), although it has just looked the same `_id` up by its storage key: each
    insert costs O(documents), 1,000 inserts 3.8 s, 10,000 never end. The scan only matters for
    numeric `_id`s (1 == 1.0), which the engine still scans on its own; ours are ObjectIds."""
    from mongoeco.engines.memory import MemoryEngine

    ensure_unique = MemoryEngine._ensure_unique_indexes

    def without_payload_scan(self: Any, *args: Any, scan_payload_id: bool = False, **kwargs: Any) -> Any:
        return ensure_unique(self, *args, scan_payload_id=False, **kwargs)

    MemoryEngine._ensure_unique_indexes = without_payload_scan


def pull_all_strings_by_set() -> None:
    """`$pullAll` compares every array element with every value to remove (mongoeco's general
    equality, collation-aware): a cleanup forgetting 1,000 written keys took 10 s. Strings without
    a collation are equal exactly when `==` says so, so a set does it in one pass."""
    import mongoeco.core.operators as operators
    import mongoeco.core.update_array_operators as arrays

    general = arrays.apply_pull_all

    def pull_all(doc: dict[str, Any], instructions: Any, *, context: Any, helpers: Any) -> bool:
        strings_only = all(isinstance(i.value, list) and all(type(v) is str for v in i.value) for i in instructions)
        if context.collation is not None or not strings_only:
            return bool(general(doc, instructions, context=context, helpers=helpers))
        modified = False
        for application in arrays.resolve_array_instruction_applications(
            doc, instructions, context=context, helpers=helpers
        ):
            removals = set(application.instruction.value)
            for target in application.targets:
                found, current = arrays.get_document_value(doc, target.concrete_path)
                if not found:
                    continue
                if not isinstance(current, list):  # mongoeco raises the server's error
                    return bool(general(doc, instructions, context=context, helpers=helpers))
                kept = [value for value in current if not (type(value) is str and value in removals)]
                if len(kept) != len(current) and arrays.set_document_value(doc, target.concrete_path, kept):
                    modified = True
        return modified

    operators.apply_pull_all = pull_all


async def serve(host: str, port: int) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer

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
    speed_up_mongoeco()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
