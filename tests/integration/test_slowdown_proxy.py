"""bench/proxy.py's SlowDown fault in front of moto: a burst above the rate gets S3's 503 SlowDown, a trickle none.

The client retries nothing here (total_max_attempts 1), so every refusal reaches the test as S3 would send it.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from bench.harness import Proxy, s3_proxy
from tests.conftest import aws_client

RATE = 2.0  # requests a second; the burst is 1 (rate / 5, at least 1)


@pytest.fixture
def proxy(moto_endpoint: str) -> Any:
    port = urlparse(moto_endpoint).port
    assert port is not None
    with s3_proxy(port, delay_ms=0, slowdown_rate=RATE) as running:
        yield running


def _put(s3: Any, bucket: str, key: str, body: bytes | io.BytesIO) -> str:
    """The error code S3 answered, or "ok"."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        return str(error.response["Error"]["Code"])
    return "ok"


def test_a_burst_above_the_rate_gets_slowdowns_and_the_rest_is_stored(proxy: Proxy, bucket: str, s3: Any) -> None:
    client = aws_client(
        "s3", proxy.endpoint, max_pool_connections=30, retries={"mode": "standard", "total_max_attempts": 1}
    )
    before = proxy.counts()
    # A file-like body makes botocore wait on `Expect: 100-continue`; bytes do not: both paths.
    bodies: list[bytes | io.BytesIO] = [io.BytesIO(b"x" * 2048) if i % 2 else b"y" * 2048 for i in range(30)]
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda i: _put(client, bucket, f"burst/{i:02d}", bodies[i]), range(30)))
    after = proxy.counts()
    refused = answers.count("SlowDown")
    assert refused > 0 and set(answers) <= {"ok", "SlowDown"}
    assert after.slowdowns - before.slowdowns == refused
    assert after.requests - before.requests == 30
    stored = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="burst/").get("Contents", [])}
    assert stored == {f"burst/{i:02d}" for i, answer in enumerate(answers) if answer == "ok"}


def test_a_trickle_below_the_rate_is_never_refused(proxy: Proxy, bucket: str, s3: Any) -> None:
    client = aws_client("s3", proxy.endpoint, retries={"mode": "standard", "total_max_attempts": 1})
    before = proxy.counts()
    for i in range(4):
        time.sleep(1 / RATE)  # at least one token back before each request, however slow the machine
        assert _put(client, bucket, f"trickle/{i}", io.BytesIO(b"z" * 1024)) == "ok"
    assert proxy.counts().slowdowns == before.slowdowns
    assert s3.get_object(Bucket=bucket, Key="trickle/3")["Body"].read() == b"z" * 1024
