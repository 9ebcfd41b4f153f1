"""The transfer engine against a plain 16-thread boto3 put_object loop, same files, same server.

A third contender is the same loop sending what the engine sends on every PUT (Content-MD5,
Content-Type, Cache-Control, ACL): the engine's own overhead is the gap to that one.

    .venv/bin/python bench/engine_vs_loop.py [--files 600] [--size-kib 128] [--rounds 3]

Starts moto's server in a process of its own (as `make run` does), writes the files under a
temporary folder, then alternates the two contenders (each into a fresh bucket, each with its own
client) so neither always gets the warm server. Prints the best and median time of each and
writes them as JSON to stdout's last line.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.upload.engine import EngineConfig, TransferEngine, upload_item
from chalicelib.upload.layout import IMMUTABLE
from chalicelib.upload.sources import Sources

LOOP_THREADS = 16
ENGINE_CONCURRENCY = 32


@contextmanager
def moto_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def s3_client(endpoint: str, pool: int) -> Any:
    """The client configuration the engine documents (no CRC headers, a connection per thread)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=pool,
            retries={"mode": "standard"},
        ),
    )


@contextmanager
def fresh_bucket(client: Any, prefix: str) -> Iterator[str]:
    """A new bucket, emptied and deleted afterwards (untimed) so moto's memory stays flat."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=bucket)


def run_loop(endpoint: str, root: Path, names: list[str], same_headers: bool = False) -> float:
    """16 threads of put_object; `same_headers` adds what the engine sends (MD5, type, cache, ACL)."""
    client = s3_client(endpoint, LOOP_THREADS)
    with fresh_bucket(client, "loop") as bucket:

        def put(name: str) -> None:
            data = (root / name).read_bytes()
            extra: dict[str, str] = {}
            if same_headers:
                digest = base64.b64encode(hashlib.md5(data).digest()).decode()
                extra = {
                    "ContentMD5": digest,
                    "ContentType": "video/mp2t",
                    "CacheControl": IMMUTABLE,
                    "ACL": "public-read",
                }
            client.put_object(Bucket=bucket, Key=f"films/bench/hls/720p/{name}", Body=data, **extra)

        started = time.perf_counter()
        with ThreadPoolExecutor(LOOP_THREADS) as pool:
            list(pool.map(put, names))
        return time.perf_counter() - started


def run_engine(endpoint: str, root: Path, names: list[str]) -> float:
    client = s3_client(endpoint, ENGINE_CONCURRENCY)
    with fresh_bucket(client, "engine") as bucket, TransferEngine(client, EngineConfig(ENGINE_CONCURRENCY)) as engine:
        started = time.perf_counter()
        # Listing the source folder and the destination (resume check) is the engine's job: timed.
        entries = Sources(root.parent, []).directory(root.name)
        items = [upload_item(f"films/bench/hls/720p/{e.relative_path}", e.file) for e in entries]
        result = engine.upload(bucket, items)
        elapsed = time.perf_counter() - started
        assert len(result.written) == len(names), result
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--size-kib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    contenders: dict[str, Callable[[str, Path, list[str]], float]] = {
        f"boto3 put_object loop ({LOOP_THREADS} threads)": run_loop,
        "same loop + the engine's headers": partial(run_loop, same_headers=True),
        f"TransferEngine (concurrency {ENGINE_CONCURRENCY})": run_engine,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        root = Path(tmp, "rendition")
        root.mkdir()
        names = [f"seg{i:05d}.ts" for i in range(args.files)]
        for name in names:
            (root / name).write_bytes(os.urandom(args.size_kib * 1024))
        for _ in range(args.rounds):
            for name, run in contenders.items():
                times[name].append(run(endpoint, root, names))

    total_mib = args.files * args.size_kib / 1024
    print(f"{args.files} files x {args.size_kib} KiB ({total_mib:.0f} MiB) to moto's server, {args.rounds} rounds")
    summary = {}
    for name, samples in times.items():
        best, median = min(samples), statistics.median(samples)
        summary[name] = {
            "best_s": round(best, 3),
            "median_s": round(median, 3),
            "files_per_s": round(args.files / best),
        }
        print(f"  {name:<40} best {best:6.2f} s  median {median:6.2f} s  {args.files / best:6.0f} files/s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
