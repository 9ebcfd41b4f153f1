"""s3:// sources in a staging bucket (moto's server): ranged reads into parts, listing, removal."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import ErrorCode, PermanentUploadError
from chalicelib.upload.engine import MIB, EngineConfig, TransferEngine, upload_item
from chalicelib.upload.sources import Sources


@pytest.fixture
def staging(s3: Any) -> str:
    name = f"staging-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def sources(s3: Any, staging: str, source_root: Path) -> Sources:
    return Sources(source_root, [staging], s3)


def test_a_staging_object_is_uploaded_with_one_ranged_get_per_part(
    s3: Any, bucket: str, staging: str, sources: Sources
) -> None:
    data = os.urandom(12 * MIB + 5)
    s3.put_object(Bucket=staging, Key="renders/movie.mp4", Body=data)
    ranges: list[str | None] = []
    s3.meta.events.register(
        "before-parameter-build.s3.GetObject", lambda params, **_: ranges.append(params.get("Range"))
    )

    source = sources.file(f"s3://{staging}/renders/movie.mp4")
    assert source.size == len(data)
    config = EngineConfig(concurrency=4, part_concurrency=2, part_size=5 * MIB, multipart_threshold=5 * MIB)
    with TransferEngine(s3, config) as engine:
        engine.upload(bucket, [upload_item("films/x/video/movie.mp4", source)])

    assert sorted(ranges, key=str) == [
        f"bytes=0-{5 * MIB - 1}",
        f"bytes={10 * MIB}-{12 * MIB + 4}",
        f"bytes={5 * MIB}-{10 * MIB - 1}",
    ]
    assert s3.get_object(Bucket=bucket, Key="films/x/video/movie.mp4")["Body"].read() == data


def test_a_staging_prefix_lists_like_a_folder(s3: Any, staging: str, sources: Sources) -> None:
    for key, body in {"r/720p/index.m3u8": b"#EXTM3U\n", "r/720p/a/seg.ts": b"abc", "r/720p-other/x.ts": b"no"}.items():
        s3.put_object(Bucket=staging, Key=key, Body=body)
    entries = sources.directory(f"s3://{staging}/r/720p")
    assert [(e.relative_path, e.size) for e in entries] == [("a/seg.ts", 3), ("index.m3u8", 8)]
    assert entries[0].file.read(1, 2) == b"bc"
    assert entries[1].file.read() == b"#EXTM3U\n"


def test_missing_staging_sources_are_not_found(s3: Any, staging: str, sources: Sources) -> None:
    for call in (lambda: sources.file(f"s3://{staging}/nope.mp4"), lambda: sources.directory(f"s3://{staging}/nope")):
        with pytest.raises(PermanentUploadError) as caught:
            call()
        assert caught.value.code == ErrorCode.SOURCE_NOT_FOUND


def test_an_object_deleted_after_listing_is_not_found_when_read(s3: Any, staging: str, sources: Sources) -> None:
    s3.put_object(Bucket=staging, Key="gone.ts", Body=b"abc")
    source = sources.file(f"s3://{staging}/gone.ts")
    s3.delete_object(Bucket=staging, Key="gone.ts")
    with pytest.raises(PermanentUploadError) as caught:
        source.read()
    assert caught.value.code == ErrorCode.SOURCE_NOT_FOUND


@pytest.mark.parametrize("ref", ["s3://not-allowed/k.mp4", "s3://{staging}/a/../../b.mp4"])
def test_other_buckets_and_dot_dot_keys_are_forbidden(sources: Sources, staging: str, ref: str) -> None:
    with pytest.raises(PermanentUploadError) as caught:
        sources.file(ref.format(staging=staging))
    assert caught.value.code == ErrorCode.SOURCE_FORBIDDEN


def test_remove_deletes_a_staging_object_or_prefix(s3: Any, staging: str, sources: Sources) -> None:
    for key in ("r/720p/a.ts", "r/720p/b.ts", "r/movie.mp4", "r/keep.ts"):
        s3.put_object(Bucket=staging, Key=key, Body=b"x")
    assert sources.remove(f"s3://{staging}/r/720p") == 2
    assert sources.remove(f"s3://{staging}/r/movie.mp4") == 1
    assert sources.remove(f"s3://{staging}/r/movie.mp4") == 0
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=staging)["Contents"]] == ["r/keep.ts"]
