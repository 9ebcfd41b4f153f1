"""The transfer engine against moto's server over HTTP: what lands in the bucket, and how."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.upload.engine import (
    MIB,
    EngineConfig,
    RecordingListener,
    RunStatus,
    TransferEngine,
    UploadItem,
    upload_item,
)
from chalicelib.upload.sources import Sources

PREFIX = "films/0123456789abcdef01234567/hls/720p"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
SMALL_PARTS = EngineConfig(concurrency=8, part_concurrency=2, part_size=5 * MIB, multipart_threshold=5 * MIB)


class Calls:
    """Counts S3 operations, their API parameters, and the most in flight at once (per operation
    and per key), via botocore's event hooks. `delay` holds each request open so overlaps show."""

    def __init__(self, client: Any, *operations: str, delay: float = 0.0) -> None:
        self.counts: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.peak_per_key: Counter[str] = Counter()
        self.params: list[dict[str, Any]] = []
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._delay = delay
        for operation in operations:
            client.meta.events.register(f"before-parameter-build.s3.{operation}", self._parameters)
            client.meta.events.register(f"before-call.s3.{operation}", self._before)
            client.meta.events.register(f"after-call.s3.{operation}", self._after)

    def _parameters(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["test_key"] = params.get("Key", "")
        with self._lock:
            self.params.append(dict(params))

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.counts[model.name] += 1
            for name in (model.name, context["test_key"]):
                self._in_flight[name] += 1
            self.peak[model.name] = max(self.peak[model.name], self._in_flight[model.name])
            self.peak_per_key[context["test_key"]] = max(
                self.peak_per_key[context["test_key"]], self._in_flight[context["test_key"]]
            )
        time.sleep(self._delay)

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            for name in (model.name, context["test_key"]):
                self._in_flight[name] -= 1


def write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def rendition_items(source_root: Path, folder: str = "r") -> list[UploadItem]:
    entries = Sources(source_root, []).directory(folder)
    return [upload_item(f"{PREFIX}/{e.relative_path}", e.file) for e in entries]


@pytest.fixture
def engine(s3: Any) -> Any:
    with TransferEngine(s3, EngineConfig(concurrency=8)) as transfer:
        yield transfer


def test_small_files_land_byte_identical_with_their_headers_and_acl(
    s3: Any, bucket: str, source_root: Path, engine: TransferEngine
) -> None:
    files = {
        "r/index.m3u8": b"#EXTM3U\n#EXTINF:4,\nseg_000.ts\n",
        "r/seg_000.ts": os.urandom(70_000),
        "r/sub/init.mp4": os.urandom(1000),
        "r/empty.key": b"",
    }
    write(source_root, files)
    listener = RecordingListener()
    result = engine.upload(bucket, rendition_items(source_root), listener=listener)

    assert result.status == RunStatus.COMPLETED
    assert sorted(result.written) == sorted(f"{PREFIX}/{name[2:]}" for name in files)
    assert listener.total_bytes == sum(len(data) for data in files.values())
    expected_headers = {
        "index.m3u8": ("application/vnd.apple.mpegurl", "public, max-age=10"),
        "seg_000.ts": ("video/mp2t", "public, max-age=31536000, immutable"),
        "sub/init.mp4": ("video/mp4", "public, max-age=31536000, immutable"),
        "empty.key": ("application/octet-stream", "public, max-age=31536000, immutable"),
    }
    for name, (content_type, cache_control) in expected_headers.items():
        stored = s3.get_object(Bucket=bucket, Key=f"{PREFIX}/{name}")
        assert stored["Body"].read() == files[f"r/{name}"]
        assert (stored["ContentType"], stored["CacheControl"]) == (content_type, cache_control)
        grants = s3.get_object_acl(Bucket=bucket, Key=f"{PREFIX}/{name}")["Grants"]
        assert {"URI": ALL_USERS, "Type": "Group"} in [g["Grantee"] for g in grants if g["Permission"] == "READ"]


def test_private_acl_when_public_read_is_off(s3: Any, bucket: str, source_root: Path) -> None:
    write(source_root, {"r/seg.ts": b"x"})
    with TransferEngine(s3, EngineConfig(concurrency=2, acl="private")) as engine:
        engine.upload(bucket, rendition_items(source_root))
    grants = s3.get_object_acl(Bucket=bucket, Key=f"{PREFIX}/seg.ts")["Grants"]
    assert all(g["Grantee"].get("URI") != ALL_USERS for g in grants)


def test_every_put_carries_content_md5_and_no_crc_header(
    s3: Any, bucket: str, source_root: Path, engine: TransferEngine
) -> None:
    write(source_root, {"r/a.ts": b"a" * 100, "r/b.ts": b"b" * 200})
    headers: list[dict[str, str]] = []
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: headers.append(dict(request.headers)))
    engine.upload(bucket, rendition_items(source_root))
    assert len(headers) == 2
    for sent in headers:
        assert "Content-MD5" in sent
        assert not [name for name in sent if name.lower().startswith("x-amz-checksum")]
        # The body goes with the headers: waiting for a 100 Continue costs a round trip per file.
        assert "Expect" not in sent


def test_files_run_in_parallel_within_the_concurrency(s3: Any, bucket: str, source_root: Path) -> None:
    write(source_root, {f"r/seg_{i:03d}.ts": os.urandom(100) for i in range(24)})
    calls = Calls(s3, "PutObject", delay=0.2)
    with TransferEngine(s3, EngineConfig(concurrency=6)) as engine:
        result = engine.upload(bucket, rendition_items(source_root))
    assert len(result.written) == 24
    assert calls.peak["PutObject"] == 6


def test_a_multipart_file_lands_identical_with_parts_in_parallel(s3: Any, bucket: str, source_root: Path) -> None:
    data = os.urandom(12 * MIB + 123)  # parts of 5, 5 and 2 MiB
    write(source_root, {"movie.mp4": data})
    calls = Calls(s3, "UploadPart", "PutObject", delay=0.3)
    listener = RecordingListener()
    item = upload_item("films/x/video/movie.mp4", Sources(source_root, []).file("movie.mp4"))
    with TransferEngine(s3, SMALL_PARTS) as engine:
        result = engine.upload(bucket, [item], listener=listener)

    assert result.written == ("films/x/video/movie.mp4",)
    stored = s3.get_object(Bucket=bucket, Key="films/x/video/movie.mp4")
    assert stored["Body"].read() == data
    assert stored["ETag"].strip('"').endswith("-3")
    assert stored["ContentType"] == "video/mp4"
    assert calls.counts == Counter({"UploadPart": 3})
    assert calls.peak["UploadPart"] == 2  # parallel, but never above part_concurrency
    assert all("ContentMD5" in params for params in calls.params)
    assert sorted(e[3] for e in listener.named("part_done")) == [1, 2, 3]
    assert listener.total_bytes == len(data)
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_parts_are_read_when_they_start_not_when_the_file_is_scheduled(s3: Any, bucket: str, source_root: Path) -> None:
    """Memory stays bounded: with 2 units in flight, no more than 2 parts have been read when
    the first UploadPart goes out, though the file has 4."""
    write(source_root, {"movie.mp4": os.urandom(15 * MIB + 1)})
    source = Sources(source_root, []).file("movie.mp4")
    reads: list[int] = []

    class CountingSource:
        ref, size = source.ref, source.size

        def read(self, offset: int = 0, length: int | None = None) -> bytes:
            reads.append(offset)
            return source.read(offset, length)

    reads_at_first_part: list[int] = []
    s3.meta.events.register("before-call.s3.UploadPart", lambda **_: reads_at_first_part.append(len(reads)))
    # 2 units in flight; 4 parts of 5, 5, 5 and 1 MiB.
    config = EngineConfig(concurrency=2, part_concurrency=2, part_size=5 * MIB, multipart_threshold=5 * MIB)
    with TransferEngine(s3, config) as engine:
        engine.upload(bucket, [upload_item("v/movie.mp4", CountingSource())])
    assert len(reads) == 4
    assert reads_at_first_part[0] <= 2


def test_two_multipart_files_each_keep_within_part_concurrency(s3: Any, bucket: str, source_root: Path) -> None:
    write(source_root, {"v/a.mp4": os.urandom(11 * MIB), "v/b.mp4": os.urandom(11 * MIB), "v/c.txt": b"small"})
    calls = Calls(s3, "UploadPart", delay=0.3)
    items = [upload_item(f"video/{e.relative_path}", e.file) for e in Sources(source_root, []).directory("v")]
    with TransferEngine(s3, SMALL_PARTS) as engine:
        result = engine.upload(bucket, items)
    assert sorted(result.written) == ["video/a.mp4", "video/b.mp4", "video/c.txt"]
    assert calls.peak_per_key == Counter({"video/a.mp4": 2, "video/b.mp4": 2})
    assert calls.peak["UploadPart"] == 4  # both files at once: files and parts share the pool


def test_a_second_run_uploads_nothing(s3: Any, bucket: str, source_root: Path) -> None:
    write(source_root, {"r/index.m3u8": b"#EXTM3U\n", "r/seg.ts": os.urandom(5000), "r/big.mp4": os.urandom(11 * MIB)})
    items = rendition_items(source_root)
    with TransferEngine(s3, SMALL_PARTS) as engine:
        first = engine.upload(bucket, items)
        calls = Calls(s3, "PutObject", "UploadPart", "CreateMultipartUpload", "HeadObject", "ListObjectsV2")
        listener = RecordingListener()
        second = engine.upload(bucket, items, listener=listener)

    assert len(first.written) == 3
    assert second.status == RunStatus.COMPLETED
    assert second.written == ()
    assert sorted(second.skipped) == sorted(first.written)
    assert calls.counts == Counter({"ListObjectsV2": 1})  # one listing, no HEAD per file, nothing sent
    assert listener.total_bytes == sum(item.size for item in items)  # progress counts what the bucket holds
    assert all(event[3] is True for event in listener.named("file_done"))


class PutCountingListener(RecordingListener):
    """Records, at the announcement of the keys to write, how many PUTs had been sent."""

    def __init__(self, calls: Calls) -> None:
        super().__init__()
        self.calls = calls
        self.puts_at_announcement: list[int] = []

    def will_write(self, keys: Sequence[str]) -> None:
        self.puts_at_announcement.append(self.calls.counts["PutObject"])
        super().will_write(keys)


def test_keys_to_write_are_announced_before_the_first_put(s3: Any, bucket: str, source_root: Path) -> None:
    write(source_root, {"r/index.m3u8": b"#EXTM3U\n", "r/a.ts": b"a" * 500, "r/b.ts": b"b" * 700})
    items = rendition_items(source_root)
    already = next(item for item in items if item.key.endswith("a.ts"))
    s3.put_object(Bucket=bucket, Key=already.key, Body=b"a" * 500)
    listener = PutCountingListener(Calls(s3, "PutObject"))
    with TransferEngine(s3, EngineConfig(concurrency=4)) as engine:
        engine.upload(bucket, items, listener=listener)
    announced = listener.named("will_write")
    assert len(announced) == 1
    assert sorted(announced[0][1]) == sorted(item.key for item in items if item is not already)
    assert listener.puts_at_announcement == [0]
    assert listener.calls.counts["PutObject"] == 2


def test_a_changed_file_is_uploaded_again(s3: Any, bucket: str, source_root: Path, engine: TransferEngine) -> None:
    write(source_root, {"r/a.ts": b"one", "r/b.ts": b"two"})
    engine.upload(bucket, rendition_items(source_root))
    write(source_root, {"r/b.ts": b"TWO"})  # same size, other bytes
    result = engine.upload(bucket, rendition_items(source_root))
    assert result.written == (f"{PREFIX}/b.ts",)
    assert result.skipped == (f"{PREFIX}/a.ts",)
    assert s3.get_object(Bucket=bucket, Key=f"{PREFIX}/b.ts")["Body"].read() == b"TWO"


def test_phases_run_one_after_another_on_the_same_engine(
    s3: Any, bucket: str, source_root: Path, engine: TransferEngine
) -> None:
    write(source_root, {f"r/seg_{i}.ts": os.urandom(1000) for i in range(5)} | {"r/index.m3u8": b"#EXTM3U\n"})
    items = rendition_items(source_root)
    segments = [i for i in items if i.key.endswith(".ts")]
    playlists = [i for i in items if i.key.endswith(".m3u8")]
    engine.upload(bucket, segments)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {i.key for i in segments}  # every segment is there when the first phase returns
    engine.upload(bucket, playlists)
    assert len(s3.list_objects_v2(Bucket=bucket)["Contents"]) == 6


def test_a_missing_bucket_is_a_permanent_error(s3: Any, source_root: Path, engine: TransferEngine) -> None:
    write(source_root, {"r/seg.ts": b"x"})
    with pytest.raises(PermanentUploadError) as caught:
        engine.upload("no-such-bucket-here", rendition_items(source_root))
    assert caught.value.code == ErrorCode.ACCESS_DENIED
    assert "does not exist" in caught.value.reason
    assert "NoSuchBucket" in caught.value.detail


def test_a_source_deleted_mid_run_fails_the_run_as_not_found(
    s3: Any, bucket: str, source_root: Path, engine: TransferEngine
) -> None:
    write(source_root, {"r/a.ts": b"a", "r/b.ts": b"b"})
    items = rendition_items(source_root)
    (source_root / "r" / "b.ts").unlink()
    with pytest.raises(PermanentUploadError) as caught:
        engine.upload(bucket, items)
    assert caught.value.code == ErrorCode.SOURCE_NOT_FOUND


def test_the_same_key_twice_in_a_batch_is_a_programming_error(
    bucket: str, source_root: Path, engine: TransferEngine
) -> None:
    write(source_root, {"r/a.ts": b"a"})
    items = rendition_items(source_root)
    with pytest.raises(ValueError, match="same key"):
        engine.upload(bucket, items + items)
