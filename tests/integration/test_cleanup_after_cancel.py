"""A rendition cancelled in the middle (one segment half sent as a multipart upload): cleanup
through the API leaves no object of it and no open upload, and a retry then completes it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chalicelib.jobs.model import JobStatus
from chalicelib.worker import Action, WorkerOptions, WorkerResult, handle_message

BASE = "/v1/studio/upload-jobs"
RENDITION = "films/64b7f0c2a1b2c3d4e5f60718/hls/720p/"
MIB = 1024 * 1024
MULTIPART = {"part_size_mb": 5, "multipart_threshold_mb": 5, "part_concurrency": 1, "upload_concurrency": 1}
FAST = WorkerOptions(cancel_poll_seconds=0.02)
SUPERVISOR_NOTICES = 1.0  # many cancel polls and supervisor ticks


def write_rendition(root: Path) -> dict[str, bytes]:
    """Four small segments and an 11 MiB one (three parts), then the playlist naming them."""
    files = {f"seg00{n}.ts": bytes([n]) * 1024 for n in range(4)}
    files["seg004.ts"] = bytes([4]) * (11 * MIB)
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4"]
    for name in files:
        lines += ["#EXTINF:4.0,", name]
    files["index.m3u8"] = ("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n").encode()
    folder = root / "films/x/720p"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def run(services: Any, message: str) -> WorkerResult:
    return handle_message(message, services=services, context_remaining_ms=lambda: 900_000, options=FAST)


def rendition_keys(s3: Any, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=RENDITION).get("Contents", [])}


def test_cleanup_after_a_cancel_mid_rendition_leaves_nothing_and_the_retry_completes(
    api: Any,
    worker_services: Any,
    worker_job: Any,
    source_root: Path,
    s3: Any,
    bucket: str,
    sqs: Any,
    settings: Any,
) -> None:
    files = write_rendition(source_root)
    worker = worker_services(**MULTIPART)
    job = worker_job(worker)
    parts = {"sent": 0}

    def cancel_during_second_part(**_: Any) -> None:
        parts["sent"] += 1
        if parts["sent"] == 2:
            assert api.http.post(f"{BASE}/{job.job_id}/cancel", headers=api.admin_headers).status_code == 200
            time.sleep(SUPERVISOR_NOTICES)

    worker.s3.meta.events.register("before-call.s3.UploadPart", cancel_during_second_part)
    assert run(worker, json.dumps({"v": 1, "jobId": job.job_id})).action == Action.CANCELLED
    assert rendition_keys(s3, bucket) == {RENDITION + f"seg00{n}.ts" for n in range(4)}

    cleaned = api.http.post(f"{BASE}/{job.job_id}/cleanup", headers=api.admin_headers, body="{}")

    assert cleaned.status_code == 200
    assert cleaned.json_body == {"abortedUploads": 0, "deletedObjects": 4, "removedFiles": 0}
    assert rendition_keys(s3, bucket) == set()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    retried = api.http.post(f"{BASE}/{job.job_id}/retry", headers=api.admin_headers)
    assert (retried.status_code, retried.json_body["progress"]) == (200, 0)
    [message] = sqs.receive_message(QueueUrl=settings.hls_queue_url, WaitTimeSeconds=1)["Messages"]
    assert run(worker_services(**MULTIPART), message["Body"]).action == Action.COMPLETED
    assert rendition_keys(s3, bucket) == {RENDITION + name for name in files}
    playlist = s3.get_object(Bucket=bucket, Key=RENDITION + "index.m3u8")["Body"].read()
    assert playlist == files["index.m3u8"]
    assert worker.store.get(job.job_id).status == JobStatus.COMPLETED
