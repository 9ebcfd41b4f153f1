"""Stopping and resuming the engine: checkpoints, cancel, time running out, errors mid-upload."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import ANY, Stubber

from chalicelib.errors import ErrorCode, PermanentUploadError, RetryableUploadError
from chalicelib.upload.engine import (
    MIB,
    EngineConfig,
    MultipartCheckpoint,
    RecordingListener,
    RunStatus,
    StopMode,
    TransferEngine,
    upload_item,
)
from chalicelib.upload.sources import Sources

KEY = "films/x/video/movie.mp4"
ONE_AT_A_TIME = EngineConfig(concurrency=1, part_concurrency=1, part_size=5 * MIB, multipart_threshold=5 * MIB)


def counter(client: Any, *operations: str) -> Counter[str]:
    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    for operation in operations:
        client.meta.events.register(f"before-parameter-build.s3.{operation}", count)
    return counts


class StopAfterParts(RecordingListener):
    """A listener whose `should_stop` answers `mode` once `parts` parts are done."""

    def __init__(self, parts: int, mode: StopMode) -> None:
        super().__init__()
        self.parts, self.mode = parts, mode

    def should_stop(self) -> StopMode | None:
        return self.mode if len(self.named("part_done")) >= self.parts else None


@pytest.fixture
def movie(source_root: Path) -> bytes:
    data = os.urandom(16 * MIB + 1)  # 4 parts of 5 MiB: 5, 5, 5, 1 (+1 byte)
    (source_root / "movie.mp4").write_bytes(data)
    return data


def movie_item(source_root: Path) -> Any:
    return upload_item(KEY, Sources(source_root, []).file("movie.mp4"))


def open_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_time_running_out_leaves_the_upload_open_and_the_checkpoint_resumes_it(
    s3: Any, bucket: str, source_root: Path, movie: bytes
) -> None:
    first = StopAfterParts(2, StopMode.SUSPEND)
    with TransferEngine(s3, ONE_AT_A_TIME) as engine:
        stopped = engine.upload(bucket, [movie_item(source_root)], listener=first, should_stop=first.should_stop)

    assert (stopped.status, stopped.stop_mode) == (RunStatus.STOPPED, StopMode.SUSPEND)
    (checkpoint,) = stopped.open_uploads
    assert (checkpoint.key, sorted(checkpoint.parts)) == (KEY, [1, 2])
    assert open_uploads(s3, bucket) == [checkpoint.upload_id]
    assert not first.named("multipart_aborted")

    # The worker stores the checkpoint on the job and hands it to the continuation.
    stored = MultipartCheckpoint.from_document(checkpoint.to_document())
    calls = counter(s3, "UploadPart", "CreateMultipartUpload", "ListParts", "PutObject")
    second = RecordingListener()
    with TransferEngine(s3, ONE_AT_A_TIME) as engine:
        resumed = engine.upload(bucket, [movie_item(source_root)], listener=second, checkpoints=[stored])

    assert resumed.status == RunStatus.COMPLETED
    assert calls == Counter({"ListParts": 1, "UploadPart": 2})  # only the missing parts 3 and 4
    assert sorted(e[3] for e in second.named("part_done")) == [3, 4]
    (started,) = second.named("multipart_started")
    assert (started[1].upload_id, sorted(started[1].parts)) == (checkpoint.upload_id, [1, 2])
    assert second.total_bytes == len(movie)  # parts found in the bucket count as progress
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == movie
    assert open_uploads(s3, bucket) == []


def test_a_checkpoint_whose_upload_is_gone_starts_over(s3: Any, bucket: str, source_root: Path, movie: bytes) -> None:
    first = StopAfterParts(1, StopMode.SUSPEND)
    with TransferEngine(s3, ONE_AT_A_TIME) as engine:
        stopped = engine.upload(bucket, [movie_item(source_root)], listener=first, should_stop=first.should_stop)
        (checkpoint,) = stopped.open_uploads
        s3.abort_multipart_upload(Bucket=bucket, Key=KEY, UploadId=checkpoint.upload_id)  # e.g. a lifecycle rule
        calls = counter(s3, "UploadPart", "CreateMultipartUpload")
        listener = RecordingListener()
        result = engine.upload(bucket, [movie_item(source_root)], listener=listener, checkpoints=[checkpoint])

    assert result.status == RunStatus.COMPLETED
    assert calls == Counter({"CreateMultipartUpload": 1, "UploadPart": 4})
    assert listener.named("multipart_aborted") == [("multipart_aborted", KEY, checkpoint.upload_id)]
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == movie


def test_a_part_the_checkpoint_knows_with_another_etag_is_sent_again(
    s3: Any, bucket: str, source_root: Path, movie: bytes
) -> None:
    first = StopAfterParts(2, StopMode.SUSPEND)
    with TransferEngine(s3, ONE_AT_A_TIME) as engine:
        (checkpoint,) = engine.upload(
            bucket, [movie_item(source_root)], listener=first, should_stop=first.should_stop
        ).open_uploads
        doubtful = MultipartCheckpoint(KEY, checkpoint.upload_id, checkpoint.part_size, checkpoint.size, {2: '"0"'})
        calls = counter(s3, "UploadPart")
        engine.upload(bucket, [movie_item(source_root)], checkpoints=[doubtful])
    assert calls == Counter({"UploadPart": 3})  # 2, 3 and 4; part 1 trusted from ListParts
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == movie


def test_cancel_during_a_multipart_upload_stops_within_a_part_and_aborts(
    s3: Any, bucket: str, source_root: Path, movie: bytes
) -> None:
    calls = counter(s3, "UploadPart", "CompleteMultipartUpload")
    listener = StopAfterParts(1, StopMode.CANCEL)
    config = EngineConfig(concurrency=2, part_concurrency=2, part_size=5 * MIB, multipart_threshold=5 * MIB)
    with TransferEngine(s3, config) as engine:
        result = engine.upload(bucket, [movie_item(source_root)], listener=listener, should_stop=listener.should_stop)

    assert (result.status, result.stop_mode) == (RunStatus.STOPPED, StopMode.CANCEL)
    assert calls == Counter({"UploadPart": 2})  # the two in flight when the cancel came; not 4
    assert len(listener.named("part_done")) == 2  # the one in flight was waited for and recorded
    assert result.open_uploads == ()
    assert len(listener.named("multipart_aborted")) == 1
    assert open_uploads(s3, bucket) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_cancel_before_start_aborts_checkpointed_uploads_and_sends_nothing(
    s3: Any, bucket: str, source_root: Path, movie: bytes
) -> None:
    first = StopAfterParts(1, StopMode.SUSPEND)
    with TransferEngine(s3, ONE_AT_A_TIME) as engine:
        (checkpoint,) = engine.upload(
            bucket, [movie_item(source_root)], listener=first, should_stop=first.should_stop
        ).open_uploads
        calls = counter(s3, "UploadPart", "PutObject", "ListObjectsV2")
        result = engine.upload(
            bucket, [movie_item(source_root)], should_stop=lambda: StopMode.CANCEL, checkpoints=[checkpoint]
        )
    assert result.status == RunStatus.STOPPED
    assert calls == Counter()
    assert open_uploads(s3, bucket) == []


def test_a_listener_failure_stops_the_run_and_is_raised(s3: Any, bucket: str, source_root: Path) -> None:
    for i in range(20):
        (source_root / f"s{i:02d}.ts").write_bytes(b"x")
    items = [upload_item(f"r/{e.relative_path}", e.file) for e in Sources(source_root, []).directory(".")]

    class Failing(RecordingListener):
        def file_done(self, key: str, size: int, skipped: bool) -> None:
            raise RuntimeError("database down")

    calls = counter(s3, "PutObject")
    with TransferEngine(s3, EngineConfig(concurrency=2)) as engine, pytest.raises(RuntimeError):
        engine.upload(bucket, items, listener=Failing())
    assert calls["PutObject"] <= 3  # the failing one and those already in flight, not all 20


# --- error paths where the call sequence matters: botocore's Stubber -------------------------------


@pytest.fixture
def stubbed() -> Any:
    client = boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(request_checksum_calculation="when_required", retries={"mode": "standard", "max_attempts": 1}),
    )
    with Stubber(client) as stubber:
        yield client, stubber


def begin_two_part_upload(stubber: Stubber) -> None:
    stubber.add_response("list_objects_v2", {"KeyCount": 0}, {"Bucket": "media", "Prefix": KEY, "Delimiter": "/"})
    stubber.add_response("create_multipart_upload", {"UploadId": "u-1"}, {**_any_params(), "Key": KEY})


def _any_params() -> dict[str, Any]:
    return {"Bucket": "media", "Key": ANY, "ContentType": ANY, "CacheControl": ANY, "ACL": ANY}


def two_part_item(source_root: Path) -> Any:
    (source_root / "movie.mp4").write_bytes(os.urandom(5 * MIB + 1))
    return movie_item(source_root)


def test_a_permanent_error_mid_upload_aborts_the_open_upload(stubbed: Any, source_root: Path) -> None:
    client, stubber = stubbed
    begin_two_part_upload(stubber)
    stubber.add_client_error("upload_part", "AccessDenied", "Access Denied", 403)
    stubber.add_response("abort_multipart_upload", {}, {"Bucket": "media", "Key": KEY, "UploadId": "u-1"})
    listener = RecordingListener()
    with TransferEngine(client, ONE_AT_A_TIME) as engine, pytest.raises(PermanentUploadError) as caught:
        engine.upload("media", [two_part_item(source_root)], listener=listener)
    assert caught.value.code == ErrorCode.ACCESS_DENIED
    assert "UploadPart" in caught.value.detail
    stubber.assert_no_pending_responses()
    assert listener.named("multipart_aborted") == [("multipart_aborted", KEY, "u-1")]


def test_a_retryable_error_mid_upload_leaves_the_upload_open(stubbed: Any, source_root: Path) -> None:
    client, stubber = stubbed
    begin_two_part_upload(stubber)
    stubber.add_client_error("upload_part", "InternalError", "We encountered an internal error", 500)
    aborts = counter(client, "AbortMultipartUpload")
    listener = RecordingListener()
    with TransferEngine(client, ONE_AT_A_TIME) as engine, pytest.raises(RetryableUploadError) as caught:
        engine.upload("media", [two_part_item(source_root)], listener=listener)
    assert caught.value.code == ErrorCode.STORAGE_ERROR
    stubber.assert_no_pending_responses()
    assert aborts == Counter()
    (started,) = listener.named("multipart_started")  # the worker has the checkpoint to resume from
    assert started[1].upload_id == "u-1"


def test_checkpoints_for_keys_outside_the_batch_stay_open_and_are_returned(
    s3: Any, bucket: str, source_root: Path, movie: bytes
) -> None:
    first = StopAfterParts(1, StopMode.SUSPEND)
    (source_root / "other.ts").write_bytes(b"x")
    with TransferEngine(s3, ONE_AT_A_TIME) as engine:
        (checkpoint,) = engine.upload(
            bucket, [movie_item(source_root)], listener=first, should_stop=first.should_stop
        ).open_uploads
        other = upload_item("films/x/other.ts", Sources(source_root, []).file("other.ts"))
        result = engine.upload(bucket, [other], checkpoints=[checkpoint])
    assert result.status == RunStatus.COMPLETED
    assert result.open_uploads == (checkpoint,)
    assert open_uploads(s3, bucket) == [checkpoint.upload_id]
