"""The loop a team would write instead of the service: boto3 put_object over 16 threads.

    python bench/boto3_loop.py ENDPOINT BUCKET PREFIX FOLDER

Run as a process of its own, so it pays its interpreter start like the command-line tools. The
client is boto3's default but for a connection pool sized to the threads (the default 10 would
open and drop a connection per request beyond it).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

THREADS = 16


def main(endpoint: str, bucket: str, prefix: str, folder: str) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(max_pool_connections=THREADS)
    )
    paths = sorted(Path(folder).iterdir())

    def put(path: Path) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(put, paths))


if __name__ == "__main__":
    main(*sys.argv[1:5])
