"""Cleanup takes only what the job alone wrote (SPEC 4, docs/cleanup.md): never an object another
job relies on (a later job that skipped identical bytes records nothing), never a folder its
`uploadPath` names, and never while a retry could be running: cleanup claims the job."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

from chalicelib.jobs.model import CleanupRequest, JobStatus, utcnow
from chalicelib.jobs.store import JobStore
from chalicelib.maintenance import cleanup_job, delete_finished_job
from chalicelib.worker import Action, handle_message

BASE = "/v1/studio/upload-jobs"
RENDITION = "films/64b7f0c2a1b2c3d4e5f60718/hls/720p/"
EARLIER_WRITES = ("seg000.ts", "seg001.ts")


def keys(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def cleanup(api: Any, job_id: str) -> Any:
    return api.http.post(f"{BASE}/{job_id}/cleanup", headers=api.admin_headers, body="{}")


def failed_earlier_job(make_job: Any, s3: Any, bucket: str, files: dict[str, bytes]) -> Any:
    """A job that uploaded two segments of the rendition, then failed."""
    for name in EARLIER_WRITES:
        s3.put_object(Bucket=bucket, Key=RENDITION + name, Body=files[name])
    return make_job(
        jobId="earlier", bucketName=bucket, status="failed", writtenKeys=[RENDITION + n for n in EARLIER_WRITES]
    )


def publish_later_job(worker_services: Any, worker_job: Any) -> Any:
    """A second job for the same rendition, run by the real worker to completion."""
    worker = worker_services()
    job = worker_job(worker, jobId="later")
    message = json.dumps({"v": 1, "jobId": job.job_id})
    result = handle_message(message, services=worker, context_remaining_ms=lambda: 900_000)
    assert result.action == Action.COMPLETED
    return worker.store.get(job.job_id)


def test_cleaning_up_an_earlier_failed_job_never_takes_what_a_later_job_published(
    api: Any, make_job: Any, worker_services: Any, worker_job: Any, write_rendition: Any, s3: Any, bucket: str
) -> None:
    files = write_rendition()
    earlier = failed_earlier_job(make_job, s3, bucket, files)
    later = publish_later_job(worker_services, worker_job)
    # The later job found the two segments already there, identical, and recorded nothing of them.
    assert not {RENDITION + name for name in EARLIER_WRITES} & set(later.written_keys)

    answer = cleanup(api, earlier.job_id)

    assert (answer.status_code, answer.json_body["deletedObjects"]) == (200, 0)
    assert keys(s3, bucket) == {RENDITION + name for name in files}


def test_a_published_title_keeps_its_objects_after_its_job_record_is_deleted(
    api: Any, make_job: Any, worker_services: Any, worker_job: Any, write_rendition: Any, s3: Any, bucket: str
) -> None:
    files = write_rendition()
    earlier = failed_earlier_job(make_job, s3, bucket, files)
    later = publish_later_job(worker_services, worker_job)

    assert api.http.delete(f"{BASE}/{later.job_id}", headers=api.admin_headers).status_code == 200
    answer = cleanup(api, earlier.job_id)

    assert (answer.status_code, answer.json_body["deletedObjects"]) == (200, 0)
    assert keys(s3, bucket) == {RENDITION + name for name in files}


def test_a_waiting_job_for_the_same_files_keeps_them_from_a_cleanup(
    api: Any, make_job: Any, write_rendition: Any, s3: Any, bucket: str
) -> None:
    """No worker has planned the waiting job yet: its destination is known from its creation."""
    earlier = failed_earlier_job(make_job, s3, bucket, write_rendition())
    api.http.post(BASE, headers=api.admin_headers, body=json.dumps(_rendition_body(jobId="queued")))

    assert cleanup(api, earlier.job_id).json_body["deletedObjects"] == 0
    assert keys(s3, bucket) == {RENDITION + name for name in EARLIER_WRITES}


def test_jobs_that_do_not_cover_a_key_do_not_keep_it(api: Any, make_job: Any, s3: Any, bucket: str) -> None:
    """A completed master playlist of the same film and another rendition rely on their own files only."""
    s3.put_object(Bucket=bucket, Key=RENDITION + "seg000.ts", Body=b"seg")
    earlier = make_job(jobId="earlier", bucketName=bucket, status="failed", writtenKeys=[RENDITION + "seg000.ts"])
    make_job(
        jobId="master",
        status="completed",
        jobType="upload-master-playlist",
        masterPlaylistPath="films/x/master.m3u8",
        hlsDir=None,
        label=None,
    )
    make_job(jobId="1080p", status="completed", hlsDir="films/x/1080p", label="1080p")

    assert cleanup(api, earlier.job_id).json_body["deletedObjects"] == 1
    assert keys(s3, bucket) == set()


def test_an_upload_path_naming_a_whole_folder_claims_nothing_in_it(
    api: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    """uploadPath `films` is a prefix of every film: the job may still delete and abort only its own keys."""
    s3.put_object(Bucket=bucket, Key="films/seg000.ts", Body=b"mine")
    s3.put_object(Bucket=bucket, Key="films/other/hls/1080p/seg000.ts", Body=b"not mine")
    other = "films/other/hls/1080p/big.ts"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=other)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=other, UploadId=upload_id, PartNumber=1, Body=b"p" * 1024)
    job = make_job(bucketName=bucket, status="failed", uploadPath="films", writtenKeys=["films/seg000.ts"])

    answer = cleanup(api, job.job_id)

    assert answer.json_body == {"abortedUploads": 0, "deletedObjects": 1, "removedFiles": 0}
    assert keys(s3, bucket) == {"films/other/hls/1080p/seg000.ts"}
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])] == [other]


def test_a_retry_waits_while_the_cleanup_runs(api: Any, services: Any, make_job: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key=RENDITION + "seg000.ts", Body=b"seg")
    job = make_job(bucketName=bucket, status="failed", writtenKeys=[RENDITION + "seg000.ts"])
    during: dict[str, int] = {}

    def meanwhile(**_: Any) -> None:
        during["retry"] = api.http.post(f"{BASE}/{job.job_id}/retry", headers=api.admin_headers).status_code
        during["cleanup"] = cleanup(api, job.job_id).status_code

    services.s3.meta.events.register("before-call.s3.DeleteObjects", meanwhile)
    answer = cleanup(api, job.job_id)

    assert during == {"retry": 409, "cleanup": 409}
    assert (answer.status_code, answer.json_body["deletedObjects"]) == (200, 1)
    services.s3.meta.events.unregister("before-call.s3.DeleteObjects", meanwhile)
    retried = api.http.post(f"{BASE}/{job.job_id}/retry", headers=api.admin_headers)
    assert (retried.status_code, retried.json_body["status"]) == (200, "waiting")


def test_the_claim_of_a_cleanup_that_died_lapses(api: Any, make_job: Any, bucket: str) -> None:
    gone = utcnow() - timedelta(seconds=1)
    make_job(
        jobId="held",
        bucketName=bucket,
        status="failed",
        cleanupOwner="alive",
        cleanupUntil=utcnow() + timedelta(minutes=5),
    )
    make_job(jobId="lapsed", bucketName=bucket, status="failed", cleanupOwner="dead", cleanupUntil=gone)

    refused = api.http.post(f"{BASE}/held/retry", headers=api.admin_headers)
    assert (refused.status_code, "being cleaned up" in refused.json_body["Message"]) == (409, True)
    assert cleanup(api, "held").status_code == 409
    assert cleanup(api, "lapsed").status_code == 200
    assert api.http.post(f"{BASE}/lapsed/retry", headers=api.admin_headers).json_body["status"] == JobStatus.WAITING


def _rendition_body(**fields: Any) -> dict[str, Any]:
    return {
        "jobType": "upload-hls-to-s3",
        "resourceType": "film",
        "resourceId": "64b7f0c2a1b2c3d4e5f60718",
        "hlsDir": "films/x/720p",
        "label": "720p",
        **fields,
    }


def test_a_completed_job_deleted_while_the_cleanup_looks_still_keeps_its_objects(
    maintenance: Any, database: Any, make_job: Any, s3: Any, bucket: str
) -> None:
    """The completed job's record goes between the cleanup's two questions (writtenKeys, then
    destinations): its hand-over has already dropped the key from the cleaned job's record."""
    s3.put_object(Bucket=bucket, Key=RENDITION + "seg000.ts", Body=b"seg")
    earlier = make_job(jobId="earlier", bucketName=bucket, status="failed", writtenKeys=[RENDITION + "seg000.ts"])
    make_job(jobId="published", bucketName=bucket, status="completed", writtenKeys=[RENDITION + "index.m3u8"])

    class DeletedMeanwhile(JobStore):
        def jobs_writing_into(self, *args: Any, **kwargs: Any) -> Any:
            delete_finished_job("published", maintenance)
            return super().jobs_writing_into(*args, **kwargs)

    racing = dataclasses.replace(maintenance, store=DeletedMeanwhile(database))

    assert cleanup_job(earlier.job_id, CleanupRequest(), racing)["deletedObjects"] == 0
    assert keys(s3, bucket) == {RENDITION + "seg000.ts"}
