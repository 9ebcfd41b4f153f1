"""DELETE, clear and retention of a failed or cancelled job clean it up first (its open uploads
aborted, the objects it alone wrote deleted), so no object is orphaned; a completed job's objects
stay published after its record goes. Through chalice.test.Client, S3 on moto's server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from botocore.stub import Stubber

from chalicelib.jobs.model import utcnow

BASE = "/v1/studio/upload-jobs"
RENDITION = "films/64b7f0c2a1b2c3d4e5f60718/hls/720p/"
OTHER = "films/64b7f0c2a1b2c3d4e5f60718/hls/1080p/"


def keys(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def open_uploads(s3: Any, bucket: str) -> set[str]:
    return {upload["Key"] for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}


def wrote(make_job: Any, s3: Any, bucket: str, prefix: str, *names: str, **fields: Any) -> Any:
    """A job that put `names` under `prefix` and recorded them."""
    for name in names:
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=name.encode())
    label = prefix.rstrip("/").rsplit("/", 1)[-1]
    return make_job(
        bucketName=bucket, hlsDir=f"films/x/{label}", label=label, writtenKeys=[prefix + n for n in names], **fields
    )


def delete(api: Any, job_id: str) -> Any:
    return api.http.delete(f"{BASE}/{job_id}", headers=api.admin_headers)


def test_deleting_a_failed_job_first_deletes_what_it_wrote_and_aborts_its_uploads(
    api: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    big = RENDITION + "big.ts"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=big)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=big, UploadId=upload_id, PartNumber=1, Body=b"p" * 1024)
    job = wrote(
        make_job,
        s3,
        bucket,
        RENDITION,
        "seg000.ts",
        "seg001.ts",
        status="failed",
        multipartUploads=[{"key": big, "uploadId": upload_id, "parts": []}],
    )

    response = delete(api, job.job_id)

    assert (response.status_code, response.json_body) == (200, {"deleted": True})
    assert keys(s3, bucket) == set() and open_uploads(s3, bucket) == set()
    assert api.http.get(f"{BASE}/{job.job_id}", headers=api.admin_headers).status_code == 404


def test_deleting_a_failed_job_keeps_what_a_completed_job_relies_on(
    api: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    failed = wrote(make_job, s3, bucket, RENDITION, "seg000.ts", jobId="failed", status="failed")
    wrote(make_job, s3, bucket, RENDITION, "index.m3u8", jobId="published", status="completed")

    assert delete(api, failed.job_id).status_code == 200

    assert keys(s3, bucket) == {RENDITION + "seg000.ts", RENDITION + "index.m3u8"}


def test_deleting_a_completed_job_leaves_its_objects_out_of_every_later_cleanup(
    api: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    failed = wrote(make_job, s3, bucket, RENDITION, "seg000.ts", jobId="failed", status="cancelled")
    published = wrote(make_job, s3, bucket, RENDITION, "index.m3u8", jobId="published", status="completed")

    assert delete(api, published.job_id).status_code == 200
    assert delete(api, failed.job_id).status_code == 200

    assert keys(s3, bucket) == {RENDITION + "seg000.ts", RENDITION + "index.m3u8"}


def test_clear_cleans_up_each_failed_or_cancelled_job_before_deleting_it(
    api: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    wrote(make_job, s3, bucket, RENDITION, "seg000.ts", jobId="failed", status="failed")
    wrote(make_job, s3, bucket, OTHER, "seg000.ts", jobId="cancelled", status="cancelled")
    wrote(
        make_job, s3, bucket, "films/64b7f0c2a1b2c3d4e5f60718/hls/480p/", "seg000.ts", jobId="done", status="completed"
    )

    answer = api.http.post(f"{BASE}/clear", headers=api.admin_headers, body=json.dumps({"status": "all"}))

    assert answer.json_body == {"deleted": 3}
    assert keys(s3, bucket) == {"films/64b7f0c2a1b2c3d4e5f60718/hls/480p/seg000.ts"}


def test_retention_cleans_up_an_expired_failed_job_before_deleting_it(
    api: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    old = utcnow() - timedelta(days=31)
    wrote(make_job, s3, bucket, RENDITION, "seg000.ts", jobId="old-failed", status="failed", finishedAt=old)
    wrote(make_job, s3, bucket, OTHER, "seg000.ts", jobId="young-failed", status="failed", finishedAt=utcnow())
    event = api.events.generate_cw_event("aws.events", "Scheduled Event", {}, [])

    assert api.lambda_.invoke("scheduled_maintenance", event).payload["retention"] == {"deleted": 1}

    assert keys(s3, bucket) == {OTHER + "seg000.ts"}


def test_a_job_being_cleaned_up_is_not_deleted(api: Any, make_job: Any, s3: Any, bucket: str) -> None:
    job = wrote(
        make_job,
        s3,
        bucket,
        RENDITION,
        "seg000.ts",
        status="failed",
        cleanupOwner="another",
        cleanupUntil=utcnow() + timedelta(minutes=5),
    )

    assert delete(api, job.job_id).status_code == 409
    assert keys(s3, bucket) == {RENDITION + "seg000.ts"}
    assert api.http.get(f"{BASE}/{job.job_id}", headers=api.admin_headers).status_code == 200


def test_a_job_whose_objects_the_bucket_refused_to_delete_is_kept_and_still_lists_them(
    api: Any, services: Any, make_job: Any
) -> None:
    job = make_job(status="failed", writtenKeys=[RENDITION + "a.ts", RENDITION + "b.ts"])
    with Stubber(services.s3) as stubber:
        stubber.add_response("list_multipart_uploads", {"Bucket": "studio-media"})
        listed = [{"Key": RENDITION + name, "Size": 4, "ETag": '"e"'} for name in ("a.ts", "b.ts")]
        stubber.add_response("list_objects_v2", {"Contents": listed, "IsTruncated": False})
        refused = {
            "Deleted": [{"Key": RENDITION + "a.ts"}],
            "Errors": [{"Key": RENDITION + "b.ts", "Code": "InternalError"}],
        }
        stubber.add_response("delete_objects", refused)
        response = delete(api, job.job_id)

    assert response.status_code == 409
    assert "refused" in response.json_body["Message"]
    assert services.store.get(job.job_id).written_keys == [RENDITION + "b.ts"]
