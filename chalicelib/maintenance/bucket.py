"""What a job left in the bucket: its open multipart uploads and the objects it wrote itself.

A job's own keys are the ones it recorded (`writtenKeys`, announced before each write) and those of
its checkpointed multipart uploads: never a folder, whatever its `uploadPath` or
`destinationPrefix` names. Which keys a job *relies on* is wider (`owns_key`): its destination
covers the objects it skipped because identical bytes were already there.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import UploadError
from chalicelib.jobs import layout
from chalicelib.jobs.model import JobType, UploadJob, as_utc
from chalicelib.logs import logger

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
GONE_UPLOAD_CODES = frozenset({"NoSuchUpload", "404"})


@dataclass(frozen=True)
class OpenUpload:
    key: str
    upload_id: str


def checkpointed_uploads(job: UploadJob) -> list[OpenUpload]:
    """The multipart uploads the job recorded in its checkpoint."""
    return [
        OpenUpload(str(entry["key"]), str(entry["uploadId"]))
        for entry in job.multipart_uploads
        if entry.get("key") and entry.get("uploadId")
    ]


def single_keys(job: UploadJob) -> set[str]:
    """The keys of a job that writes named files (master, subtitle, video)."""
    if job.job_type == JobType.MASTER:
        return {layout.master_key(job)}
    if job.job_type == JobType.VIDEO:
        return {layout.video_key(job)}
    from chalicelib.upload.hls import subtitle_metadata  # parses playlists too: loaded only when needed

    language = subtitle_metadata(job.subtitle_path or "", job.subtitle_metadata).language or ""
    return {layout.subtitle_key(job, language), layout.subtitle_playlist_key(job, language)}


def own_keys(job: UploadJob) -> list[str]:
    """The only keys cleanup may delete or abort for this job: those it recorded writing."""
    return list(dict.fromkeys([*job.written_keys, *(upload.key for upload in checkpointed_uploads(job))]))


def owns_key(job: UploadJob, key: str) -> bool:
    """Whether this job relies on `key`: one it recorded, a file of its rendition, or its one
    named file (a job that skipped identical bytes recorded nothing, its destination speaks).

    A master job's prefix holds every rendition of the resource, so a key under the prefix is
    not enough: only the master playlist is the master job's.
    """
    if key in job.written_keys or any(upload.key == key for upload in checkpointed_uploads(job)):
        return True
    try:
        if job.job_type == JobType.HLS:
            return key.startswith(layout.hls_folder(job) + "/")
        return key in single_keys(job)
    except UploadError:  # a job whose layout is invalid never wrote anything
        return False


def _started_by_job(upload: dict[str, Any], job: UploadJob) -> bool:
    """An upload initiated after the job finished is another job's (a newer job for the same files)."""
    initiated = upload.get("Initiated")
    if job.finished_at is None or not isinstance(initiated, datetime):
        return True
    return as_utc(initiated) <= job.finished_at


def listed_uploads(s3: Any, job: UploadJob, keys: Collection[str]) -> Iterator[OpenUpload]:
    """Open multipart uploads of `keys` (the job's own) begun before the job finished.

    A safety net for uploads the job started but did not checkpoint (it died in between): the
    key was recorded before the upload began. One listing, under the keys' common prefix.
    """
    if not keys:
        return
    prefix = posixpath.commonprefix(sorted(keys))
    pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=job.bucket_name, Prefix=prefix)
    for page in pages:
        for upload in page.get("Uploads", []):
            if upload["Key"] in keys and _started_by_job(upload, job):
                yield OpenUpload(upload["Key"], upload["UploadId"])


def abort_uploads(s3: Any, bucket: str, uploads: Iterable[OpenUpload]) -> int:
    """Abort each upload once; returns how many were still open (an upload already gone counts 0)."""
    aborted = 0
    for upload in dict.fromkeys(uploads):
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=upload.key, UploadId=upload.upload_id)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in GONE_UPLOAD_CODES:
                continue
            raise
        aborted += 1
    return aborted


def delete_keys(s3: Any, bucket: str, keys: Iterable[str]) -> list[str]:
    """Delete objects in batches of 1,000; returns the keys that went (a key not there goes too)."""
    unique = list(dict.fromkeys(keys))
    deleted: list[str] = []
    for start in range(0, len(unique), DELETE_BATCH):
        batch = unique[start : start + DELETE_BATCH]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch]})
        failed = {error["Key"]: error.get("Code") for error in response.get("Errors", [])}
        if failed:
            logger.warning("could not delete %d objects from %s: %s", len(failed), bucket, failed)
        deleted.extend(key for key in batch if key not in failed)
    return deleted
