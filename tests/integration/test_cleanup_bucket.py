"""Cleanup of a failed or cancelled job on moto's S3: what it deletes, what it leaves, and that a
second call finds nothing."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import Conflict, NotFound
from chalicelib.jobs.model import CleanupRequest, JobStatus
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import cleanup_job

RENDITION = "films/64b7f0c2a1b2c3d4e5f60718/hls/720p/"
OTHER_RENDITION = "films/64b7f0c2a1b2c3d4e5f60718/hls/1080p/"
KEEP = CleanupRequest()
REMOVE_SOURCE = CleanupRequest(removeSource=True)


def keys(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def open_uploads(s3: Any, bucket: str) -> set[str]:
    return {upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}


def start_upload(s3: Any, bucket: str, key: str) -> str:
    upload_id: str = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p" * 1024)
    return upload_id


def test_cleanup_deletes_what_the_job_wrote_and_aborts_its_uploads_only(
    maintenance: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    for name in ("seg000.ts", "seg001.ts", "index.m3u8"):
        s3.put_object(Bucket=bucket, Key=RENDITION + name, Body=b"data")
    s3.put_object(Bucket=bucket, Key=OTHER_RENDITION + "seg000.ts", Body=b"data")
    checkpointed = start_upload(s3, bucket, RENDITION + "big.ts")
    start_upload(s3, bucket, RENDITION + "lost.ts")  # started, then the worker died before its checkpoint
    start_upload(s3, bucket, OTHER_RENDITION + "big.ts")
    job = make_job(
        bucketName=bucket,
        status="failed",
        progress=40,
        uploadedBytes=8,
        uploadedFiles=3,
        destinationPrefix=RENDITION,
        # index.m3u8 was skipped: identical bytes were already there, so it is not the job's to delete.
        # lost.ts was recorded before its upload began (the worker announces every key first).
        writtenKeys=[RENDITION + "seg000.ts", RENDITION + "seg001.ts", RENDITION + "lost.ts"],
        multipartUploads=[{"key": RENDITION + "big.ts", "uploadId": checkpointed, "parts": []}],
    )

    answer = cleanup_job(job.job_id, KEEP, maintenance)

    assert answer == {"abortedUploads": 2, "deletedObjects": 2, "removedFiles": 0}
    assert keys(s3, bucket) == {RENDITION + "index.m3u8", OTHER_RENDITION + "seg000.ts"}
    assert open_uploads(s3, bucket) == {OTHER_RENDITION + "big.ts"}
    cleaned = maintenance.store.get(job.job_id)
    assert (cleaned.progress, cleaned.uploaded_bytes, cleaned.uploaded_files) == (0, 0, 0)
    assert (cleaned.written_keys, cleaned.multipart_uploads) == ([], [])
    assert cleaned.cleaned_at is not None and cleaned.status == JobStatus.FAILED
    assert cleanup_job(job.job_id, KEEP, maintenance) == {"abortedUploads": 0, "deletedObjects": 0, "removedFiles": 0}


def test_keys_announced_but_never_written_are_neither_deleted_nor_counted(
    maintenance: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    """A job cancelled after 1 of 3 announced files: cleanup counts the one object it removes."""
    s3.put_object(Bucket=bucket, Key=RENDITION + "seg000.ts", Body=b"data")
    job = make_job(
        bucketName=bucket,
        status="cancelled",
        destinationPrefix=RENDITION,
        writtenKeys=[RENDITION + "seg000.ts", RENDITION + "seg001.ts", RENDITION + "index.m3u8"],
    )

    answer = cleanup_job(job.job_id, KEEP, maintenance)

    assert answer == {"abortedUploads": 0, "deletedObjects": 1, "removedFiles": 0}
    assert keys(s3, bucket) == set()


def test_a_master_jobs_cleanup_never_touches_the_renditions_under_its_prefix(
    maintenance: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    hls = "films/64b7f0c2a1b2c3d4e5f60718/hls/"
    start_upload(s3, bucket, hls + "master.m3u8")
    start_upload(s3, bucket, RENDITION + "big.ts")
    job = make_job(
        bucketName=bucket,
        jobType="upload-master-playlist",
        masterPlaylistPath="films/x/master.m3u8",
        hlsDir=None,
        label=None,
        status="cancelled",
        destinationPrefix=hls,
        writtenKeys=[hls + "master.m3u8"],  # recorded before its upload began
    )

    assert cleanup_job(job.job_id, KEEP, maintenance)["abortedUploads"] == 1
    assert open_uploads(s3, bucket) == {RENDITION + "big.ts"}


def test_deletes_go_in_batches_of_a_thousand(
    maintenance: Any, make_job: Any, s3: Any, bucket: str, count_s3_requests: Any
) -> None:
    written = [f"{RENDITION}seg{n:04d}.ts" for n in range(1001)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), written))
    job = make_job(bucketName=bucket, status="failed", writtenKeys=written)
    requests = count_s3_requests(maintenance.s3)

    assert cleanup_job(job.job_id, KEEP, maintenance)["deletedObjects"] == 1001

    assert requests["DeleteObjects"] == 2
    assert keys(s3, bucket) == set()


@pytest.mark.parametrize("status", ["waiting", "active", "completed"])
def test_only_failed_or_cancelled_jobs_are_cleaned(maintenance: Any, make_job: Any, status: str) -> None:
    job = make_job(status=status, writtenKeys=[RENDITION + "seg000.ts"])

    with pytest.raises(Conflict):
        cleanup_job(job.job_id, KEEP, maintenance)
    assert maintenance.store.get(job.job_id).written_keys == [RENDITION + "seg000.ts"]


def test_cleanup_of_an_unknown_job_is_not_found(maintenance: Any) -> None:
    with pytest.raises(NotFound):
        cleanup_job("nope", KEEP, maintenance)


def test_remove_source_deletes_the_local_sources_and_forbids_a_retry(
    maintenance: Any, make_job: Any, source_root: Path, store: JobStore, bucket: str
) -> None:
    rendition = source_root / "films/x/720p"
    (rendition / "sub").mkdir(parents=True)
    for name in ("index.m3u8", "seg000.ts", "sub/seg001.ts"):
        (rendition / name).write_bytes(b"media")
    neighbour = source_root / "films/x/1080p/index.m3u8"
    neighbour.parent.mkdir(parents=True)
    neighbour.write_bytes(b"keep me")
    job = make_job(bucketName=bucket, status="cancelled", hlsDir="films/x/720p")

    assert cleanup_job(job.job_id, REMOVE_SOURCE, maintenance)["removedFiles"] == 3

    assert not rendition.exists() and neighbour.exists()
    assert store.get(job.job_id).source_removed is True
    with pytest.raises(Conflict, match="removed its source"):
        store.retry(job.job_id, client_id=None)
    assert cleanup_job(job.job_id, REMOVE_SOURCE, maintenance)["removedFiles"] == 0


def test_a_source_that_is_the_whole_source_root_is_never_removed(
    maintenance: Any, make_job: Any, source_root: Path, store: JobStore
) -> None:
    (source_root / "index.m3u8").write_bytes(b"#EXTM3U")
    job = make_job(status="failed", hlsDir=str(source_root))

    with pytest.raises(Conflict, match="SOURCE_ROOT"):
        cleanup_job(job.job_id, REMOVE_SOURCE, maintenance)

    assert (source_root / "index.m3u8").exists()
    assert store.get(job.job_id).source_removed is False
    assert store.retry(job.job_id, client_id=None).status == JobStatus.WAITING


def test_remove_source_deletes_the_staging_objects_of_an_s3_source(
    maintenance: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    staging = f"{bucket}-staging"
    s3.create_bucket(Bucket=staging)
    for name in ("index.m3u8", "seg000.ts"):
        s3.put_object(Bucket=staging, Key=f"out/720p/{name}", Body=b"media")
    s3.put_object(Bucket=staging, Key="out/1080p/index.m3u8", Body=b"other")
    settings = maintenance.settings.model_copy(update={"source_buckets": [staging]})
    job = make_job(bucketName=bucket, status="failed", hlsDir=f"s3://{staging}/out/720p")

    answer = cleanup_job(job.job_id, REMOVE_SOURCE, dataclasses.replace(maintenance, settings=settings))

    assert answer["removedFiles"] == 2
    assert keys(s3, staging) == {"out/1080p/index.m3u8"}


def test_keys_the_bucket_refused_to_delete_stay_recorded_for_the_next_call(maintenance: Any, make_job: Any) -> None:
    from botocore.stub import Stubber

    job = make_job(status="failed", writtenKeys=[RENDITION + "a.ts", RENDITION + "b.ts"], destinationPrefix=RENDITION)
    client = maintenance.s3
    with Stubber(client) as stubber:
        stubber.add_response("list_multipart_uploads", {"Bucket": "studio-media"})
        listed = [{"Key": RENDITION + name, "Size": 4, "ETag": '"e"'} for name in ("a.ts", "b.ts")]
        stubber.add_response("list_objects_v2", {"Contents": listed, "IsTruncated": False})
        stubber.add_response(
            "delete_objects",
            {
                "Deleted": [{"Key": RENDITION + "a.ts"}],
                "Errors": [{"Key": RENDITION + "b.ts", "Code": "InternalError"}],
            },
        )
        answer = cleanup_job(job.job_id, KEEP, maintenance)

    assert answer["deletedObjects"] == 1
    assert maintenance.store.get(job.job_id).written_keys == [RENDITION + "b.ts"]
