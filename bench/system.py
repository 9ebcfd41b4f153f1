"""The system under test in a process of its own: the local runtime, exactly as `make run` starts it.

    python -m bench.system --source-root DIR [--aws-port N] [--spaces-endpoint URL]

HTTP API, WebSocket gateway, SQS pollers calling the Lambda handlers, the workers and the embedded
MongoDB share this process; moto's server (S3 and SQS) runs in a child process. Being its own
process, it pays for its own work on its own interpreter lock, and its memory can be read in
/proc/<pid>/status.

When ready it prints `bench: ` and a JSON object: {"api", "ws", "aws", "s3", "pid", "token",
"settings"} ("s3" is where the workers send S3 requests: moto, or a proxy in front of it); other
lines on stdout (Chalice's server prints one) are not for the benchmark. Then it answers one
command per line of standard input, on a `bench: ` line too:

    writes JOB_ID   ->  {"writes": n, "reads": n}: MongoDB calls on the jobs collection naming the job

and stops everything it started when standard input closes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from chalicelib.jobs.store import JOBS_COLLECTION

ANSWER = "bench: "  # marks the lines of stdout meant for the benchmark
WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "delete_one",
        "delete_many",
        "bulk_write",
    }
)
READS = frozenset({"find", "find_one", "count_documents", "aggregate"})


def _job_id(argument: Any) -> str | None:
    """The jobId a filter or a document names, if it names exactly one."""
    if isinstance(argument, dict):
        value = argument.get("jobId")
        return value if isinstance(value, str) else None
    return None


class CountingCollection:
    """The jobs collection, counting each write and read call per job it names."""

    def __init__(self, collection: Any, writes: Counter[str], reads: Counter[str]) -> None:
        self._collection = collection
        self._writes = writes
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        counter = self._writes if name in WRITES else self._reads if name in READS else None
        if counter is None:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            job_id = _job_id(args[0] if args else kwargs.get("filter", kwargs.get("document")))
            if job_id is not None:
                counter[job_id] += 1
            return attribute(*args, **kwargs)

        return counted


class CountingDatabase:
    """The embedded database, handing out a counting jobs collection."""

    def __init__(self, database: Any, writes: Counter[str], reads: Counter[str]) -> None:
        self._database = database
        self._writes = writes
        self._reads = reads

    def __getitem__(self, name: str) -> Any:
        collection = self._database[name]
        return CountingCollection(collection, self._writes, self._reads) if name == JOBS_COLLECTION else collection

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._database, name)


def count_embedded_store() -> tuple[Counter[str], Counter[str]]:
    """Make the embedded store that Services builds count its calls (the harness's only hook)."""
    from chalicelib import embedded_mongo

    writes: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    build = embedded_mongo.embedded_database

    def counting_database(name: str) -> Any:
        return CountingDatabase(build(name), writes, reads)

    embedded_mongo.embedded_database = counting_database
    return writes, reads


_ANSWERS = sys.stdout


def answer(message: dict[str, Any]) -> None:
    print(ANSWER + json.dumps(message), file=_ANSWERS, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source-root", type=Path, required=True)
    parser.add_argument("--aws-port", type=int, default=0, help="moto's port (0: a free one)")
    parser.add_argument("--spaces-endpoint", default=None, help="the workers' S3 endpoint (default: moto)")
    args = parser.parse_args()
    sys.stdout = sys.stderr  # whatever else prints (Chalice's server does) never fills the answers' pipe
    logging.basicConfig(level=logging.WARNING, format="system %(levelname)s %(name)s: %(message)s")
    os.environ.pop("MONGODB_URI", None)  # the embedded store: the one whose calls we count

    from chalicelib.auth import TokenPolicy
    from chalicelib.local.aws import free_port
    from chalicelib.local.runtime import LocalRuntime, RuntimeOptions

    writes, reads = count_embedded_store()
    options = RuntimeOptions.from_environment()
    options.api_port, options.ws_port = free_port(), free_port()
    options.aws_port = args.aws_port or free_port()
    options.source_root = args.source_root
    options.spaces_endpoint = args.spaces_endpoint
    runtime = LocalRuntime(options)
    try:
        runtime.start()
        settings = runtime.services.settings
        ready = {
            "api": runtime.api_url,
            "ws": runtime.ws_url,
            "aws": options.aws_endpoint,
            "s3": settings.spaces_endpoint,
            "bucket": settings.spaces_bucket,
            "pid": os.getpid(),
            "token": TokenPolicy.from_settings(settings).issue(subject="bench"),
            "settings": {
                "progress_interval_ms": settings.progress_interval_ms,
                "upload_concurrency": settings.upload_concurrency,
                # The adaptive engine's ceiling; None in a tree without it (it then runs fixed).
                "upload_concurrency_max": getattr(settings, "upload_concurrency_max", None),
                "part_concurrency": settings.part_concurrency,
                "part_size": settings.part_size,
                "workers_per_queue": options.workers_per_queue,
            },
        }
        answer(ready)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "writes":
                answer({"writes": writes[argument], "reads": reads[argument]})
            else:
                answer({"error": f"unknown command {command!r}"})
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
