"""Adaptive concurrency against a storage that is far away or crowded: the engine keeps more
requests in flight when that pays, fewer when the storage answers 503 SlowDown, and every object
arrives intact either way."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from chalicelib.config import Settings
from chalicelib.spaces import spaces_client_config
from chalicelib.upload.engine import MIB, EngineConfig, RunStatus, TransferEngine, upload_item
from chalicelib.upload.sources import Sources
from chaos.s3proxy import HEAD_LIMIT, LOOPBACK, FaultProxy, Head, Record

PREFIX = "films/adaptive/hls/720p"


class CrowdedStorage(FaultProxy):
    """moto `latency` seconds away, answering 503 SlowDown to every request beyond `capacity` at once."""

    def __init__(self, upstream_port: int, record: IO[str], *, latency: float, capacity: int) -> None:
        super().__init__(upstream_port, record, seed=0, rate=0.0)
        self.latency = latency
        self.capacity = capacity
        self.port = 0  # set once it listens
        self.active = 0
        self.peak = 0
        self.slowdowns = 0

    async def serve_request(
        self, head: Head, record: Record, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        self.active += 1
        self.peak = max(self.peak, self.active)
        if self.active > self.capacity:
            record.fault = "slowdown"
            self.slowdowns += 1
        try:
            await asyncio.sleep(self.latency)
            return await super().serve_request(head, record, reader, writer)
        finally:
            self.active -= 1


class ProxyThread:
    """Serves a proxy on its own event loop, in a thread of the test process."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._serve, name="proxy", daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the proxy did not start"

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self.proxy.serve_client, LOOPBACK, 0, limit=HEAD_LIMIT)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def storage(moto_endpoint: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CrowdedStorage]:
    latency, capacity = request.param
    upstream = urllib.parse.urlsplit(moto_endpoint).port
    assert upstream is not None
    with open(tmp_path / "requests.jsonl", "w", encoding="utf-8") as record:
        proxy = CrowdedStorage(upstream, record, latency=latency, capacity=capacity)
        thread = ProxyThread(proxy)
        proxy.port = thread.port
        yield proxy
        thread.stop()


def through(proxy: CrowdedStorage) -> Any:
    """An S3 client configured as services.py builds one (standard retries, pool sized to the
    ceiling), pointed at the proxy."""
    settings = Settings(upload_concurrency=16, upload_concurrency_max=64)
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://{LOOPBACK}:{proxy.port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=spaces_client_config(settings),
    )


def small_files(source_root: Path, count: int, size: int = 1000) -> dict[str, bytes]:
    files = {f"seg_{n:04d}.ts": os.urandom(size + n) for n in range(count)}
    for name, data in files.items():
        (source_root / "r").mkdir(exist_ok=True)
        (source_root / "r" / name).write_bytes(data)
    return files


def upload_all(client: Any, bucket: str, source_root: Path, config: EngineConfig) -> Any:
    items = [upload_item(f"{PREFIX}/{e.relative_path}", e.file) for e in Sources(source_root, []).directory("r")]
    with TransferEngine(client, config) as engine:
        return engine.upload(bucket, items)


def assert_intact(s3: Any, bucket: str, files: dict[str, bytes]) -> None:
    listed = {o["Key"]: o["ETag"].strip('"') for o in s3.list_objects_v2(Bucket=bucket, MaxKeys=1000)["Contents"]}
    assert listed == {f"{PREFIX}/{name}": hashlib.md5(data).hexdigest() for name, data in files.items()}


@pytest.mark.parametrize("storage", [(0.03, 6)], indirect=True)
def test_on_slowdown_the_engine_shrinks_its_concurrency_and_every_object_arrives(
    storage: CrowdedStorage, s3: Any, bucket: str, source_root: Path
) -> None:
    files = small_files(source_root, 150)
    result = upload_all(through(storage), bucket, source_root, EngineConfig(concurrency=16, concurrency_max=64))

    assert result.status == RunStatus.COMPLETED
    assert_intact(s3, bucket, files)
    assert storage.slowdowns > 0
    assert result.concurrency is not None
    assert result.concurrency.throttled > 0
    assert result.concurrency.lowest <= storage.capacity < result.concurrency.start


@pytest.mark.parametrize("storage", [(0.05, 1000)], indirect=True)
def test_against_a_far_storage_concurrency_grows_above_the_start(
    storage: CrowdedStorage, s3: Any, bucket: str, source_root: Path
) -> None:
    files = small_files(source_root, 300)
    result = upload_all(through(storage), bucket, source_root, EngineConfig(concurrency=4, concurrency_max=48))

    assert result.status == RunStatus.COMPLETED
    assert_intact(s3, bucket, files)
    assert result.concurrency is not None
    assert result.concurrency.highest > 4
    assert storage.peak > 4


@pytest.mark.parametrize("storage", [(0.05, 1000)], indirect=True)
def test_a_maximum_equal_to_the_start_keeps_the_concurrency_fixed(
    storage: CrowdedStorage, s3: Any, bucket: str, source_root: Path
) -> None:
    files = small_files(source_root, 100)
    result = upload_all(through(storage), bucket, source_root, EngineConfig(concurrency=4, concurrency_max=4))

    assert result.status == RunStatus.COMPLETED
    assert_intact(s3, bucket, files)
    assert storage.peak == 4


@pytest.mark.parametrize("storage", [(0.05, 1000)], indirect=True)
def test_beyond_the_start_the_bodies_in_flight_stay_within_part_size_x_concurrency(
    storage: CrowdedStorage, s3: Any, bucket: str, source_root: Path
) -> None:
    files = small_files(source_root, 120, size=512 * 1024)
    config = EngineConfig(concurrency=2, concurrency_max=64, part_size=5 * MIB, multipart_threshold=5 * MIB)
    result = upload_all(through(storage), bucket, source_root, config)

    assert result.status == RunStatus.COMPLETED
    assert_intact(s3, bucket, files)
    assert result.concurrency is not None
    assert result.concurrency.highest > 20  # the limit grew past what memory allows...
    assert 2 < storage.peak <= 10 * MIB // (512 * 1024)  # ...requests did not: 20 bodies of 512 KiB
